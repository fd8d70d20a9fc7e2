use async_trait::async_trait;
use switchyard_spec::Mode;
use tokio::sync::Mutex;
use tokio_postgres::{Client, GenericClient, Row};

use crate::ids::{new_id, new_write_key};
use crate::model::{decode, encode, now};
use crate::{
    ConfigStore, Connection, ConnectionUpdate, DeadLetter, DeliveryStore, FAILURES_KEPT,
    FailureRecord, Handled, NewConnection, NewDeadLetter, NewRetry, ReplayRecord, Result, Retry,
    STATS_MINUTES_KEPT, Source, StatsMinute, StoreError,
};

/// Migrations, applied in order; `switchyard_schema` counts those done.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sources (
        seq BIGSERIAL,
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        write_key TEXT NOT NULL UNIQUE,
        revision BIGINT NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE TABLE connections (
        seq BIGSERIAL,
        id TEXT PRIMARY KEY,
        source_id TEXT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
        destination TEXT NOT NULL,
        mode TEXT NOT NULL,
        enabled BOOLEAN NOT NULL,
        settings TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX connections_by_source ON connections (source_id, seq);
",
    "
    CREATE TABLE delivery_cursors (
        connection_id TEXT PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
        seq BIGINT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE dead_letters (
        id BIGSERIAL PRIMARY KEY,
        connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
        seq BIGINT NOT NULL,
        message_id TEXT NOT NULL,
        event TEXT NOT NULL,
        reason TEXT NOT NULL,
        request TEXT,
        response TEXT,
        attempts BIGINT NOT NULL,
        failed_at TEXT NOT NULL
    );
    CREATE INDEX dead_letters_by_connection ON dead_letters (connection_id, id);
",
    "
    CREATE TABLE delivery_retries (
        id BIGSERIAL PRIMARY KEY,
        connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
        seq BIGINT NOT NULL,
        message_id TEXT NOT NULL,
        event TEXT NOT NULL,
        reason TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        first_failed_at TEXT NOT NULL,
        next_at TEXT NOT NULL
    );
    CREATE INDEX delivery_retries_due ON delivery_retries (connection_id, next_at);
    CREATE TABLE delivery_stats (
        connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
        minute BIGINT NOT NULL,
        received BIGINT NOT NULL,
        filtered TEXT NOT NULL,
        delivered BIGINT NOT NULL,
        dead_lettered BIGINT NOT NULL,
        failed_attempts BIGINT NOT NULL,
        latency TEXT NOT NULL,
        latency_sum_ms BIGINT NOT NULL,
        PRIMARY KEY (connection_id, minute)
    );
    CREATE TABLE delivery_failures (
        id BIGSERIAL PRIMARY KEY,
        connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
        at TEXT NOT NULL,
        message_ids TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        request TEXT NOT NULL,
        response TEXT
    );
    CREATE INDEX delivery_failures_by_connection ON delivery_failures (connection_id, id);
    CREATE TABLE delivery_replays (
        id TEXT PRIMARY KEY,
        connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
        from_at TEXT NOT NULL,
        to_at TEXT NOT NULL,
        read BIGINT NOT NULL,
        filtered BIGINT NOT NULL,
        delivered BIGINT NOT NULL,
        dead_lettered BIGINT NOT NULL,
        done BOOLEAN NOT NULL,
        error TEXT,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX delivery_replays_by_connection ON delivery_replays (connection_id, started_at);
",
];

/// Configuration in Postgres, for instances that run more than one
/// server replica. One client; statements are pipelined over it, and a
/// lock serialises transactions.
pub struct PostgresStore {
    client: Mutex<Client>,
}

const SOURCE_COLUMNS: &str = "SELECT id, name, write_key, revision, created_at FROM sources";
const CONNECTION_COLUMNS: &str = "SELECT id, source_id, destination, mode, enabled, settings, created_at, updated_at FROM connections";

fn source(row: &Row) -> Source {
    Source {
        id: row.get(0),
        name: row.get(1),
        write_key: row.get(2),
        revision: row.get(3),
        created_at: row.get(4),
    }
}

fn connection(row: &Row) -> Connection {
    let mode: String = row.get(3);
    Connection {
        id: row.get(0),
        source_id: row.get(1),
        destination: row.get(2),
        // Written only from a `Mode`; an unknown name is a connection the
        // server delivers nothing to, as a device one it has no adapter for.
        mode: Mode::from_name(&mode).unwrap_or(Mode::Device),
        enabled: row.get(4),
        settings: row.get(5),
        created_at: row.get(6),
        updated_at: row.get(7),
    }
}

async fn bump(c: &impl GenericClient, source_id: &str) -> Result<()> {
    let n = c
        .execute(
            "UPDATE sources SET revision = revision + 1 WHERE id = $1",
            &[&source_id],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("source"));
    }
    Ok(())
}

async fn source_by_id(c: &impl GenericClient, id: &str) -> Result<Source> {
    let sql = [SOURCE_COLUMNS, " WHERE id = $1"].concat();
    c.query_opt(&sql, &[&id])
        .await?
        .map(|r| source(&r))
        .ok_or(StoreError::NotFound("source"))
}

async fn connection_by_id(c: &impl GenericClient, id: &str) -> Result<Connection> {
    let sql = [CONNECTION_COLUMNS, " WHERE id = $1"].concat();
    c.query_opt(&sql, &[&id])
        .await?
        .map(|r| connection(&r))
        .ok_or(StoreError::NotFound("connection"))
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db`, with TLS as
    /// its `sslmode` and `sslrootcert` ask, as libpq reads them) and applies
    /// migrations.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let mut client = crate::pgtls::connect(url).await?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS switchyard_schema (version INTEGER NOT NULL);
                 INSERT INTO switchyard_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM switchyard_schema);",
            )
            .await?;
        let tx = client.transaction().await?;
        // One migrator at a time, across replicas.
        tx.batch_execute("LOCK TABLE switchyard_schema IN EXCLUSIVE MODE")
            .await?;
        let done: i32 = tx
            .query_one("SELECT version FROM switchyard_schema", &[])
            .await?
            .get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
            tx.batch_execute(sql).await?;
            let version = i as i32 + 1;
            tx.execute("UPDATE switchyard_schema SET version = $1", &[&version])
                .await?;
        }
        tx.commit().await?;
        Ok(PostgresStore {
            client: Mutex::new(client),
        })
    }

    /// Whether the server sees this connection as encrypted (TLS), as
    /// Postgres itself reports it.
    pub async fn connection_is_encrypted(&self) -> Result<bool> {
        let c = self.client.lock().await;
        let row = c
            .query_opt(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        Ok(row.is_some_and(|r| r.get(0)))
    }
}

#[async_trait]
impl ConfigStore for PostgresStore {
    async fn meta(&self, key: &str) -> Result<Option<String>> {
        let c = self.client.lock().await;
        Ok(
            c.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
                .await?
                .map(|r| r.get(0)),
        )
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let c = self.client.lock().await;
        c.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )
        .await?;
        Ok(())
    }

    async fn create_source(&self, name: &str) -> Result<Source> {
        let s = Source {
            id: new_id("src_"),
            name: name.to_string(),
            write_key: new_write_key(),
            revision: 1,
            created_at: now(),
        };
        let c = self.client.lock().await;
        c.execute(
            "INSERT INTO sources (id, name, write_key, revision, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&s.id, &s.name, &s.write_key, &s.revision, &s.created_at],
        )
        .await?;
        Ok(s)
    }

    async fn sources(&self) -> Result<Vec<Source>> {
        let c = self.client.lock().await;
        let sql = [SOURCE_COLUMNS, " ORDER BY seq"].concat();
        Ok(c.query(&sql, &[]).await?.iter().map(source).collect())
    }

    async fn source(&self, id: &str) -> Result<Option<Source>> {
        let c = self.client.lock().await;
        match source_by_id(&*c, id).await {
            Ok(s) => Ok(Some(s)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn source_by_write_key(&self, write_key: &str) -> Result<Option<Source>> {
        let c = self.client.lock().await;
        let sql = [SOURCE_COLUMNS, " WHERE write_key = $1"].concat();
        Ok(c.query_opt(&sql, &[&write_key]).await?.map(|r| source(&r)))
    }

    async fn rename_source(&self, id: &str, name: &str) -> Result<Source> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        tx.execute("UPDATE sources SET name = $2 WHERE id = $1", &[&id, &name])
            .await?;
        bump(&tx, id).await?;
        let s = source_by_id(&tx, id).await?;
        tx.commit().await?;
        Ok(s)
    }

    async fn rotate_write_key(&self, id: &str) -> Result<Source> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        tx.execute(
            "UPDATE sources SET write_key = $2 WHERE id = $1",
            &[&id, &new_write_key()],
        )
        .await?;
        bump(&tx, id).await?;
        let s = source_by_id(&tx, id).await?;
        tx.commit().await?;
        Ok(s)
    }

    async fn delete_source(&self, id: &str) -> Result<()> {
        let c = self.client.lock().await;
        if c.execute("DELETE FROM sources WHERE id = $1", &[&id])
            .await?
            == 0
        {
            return Err(StoreError::NotFound("source"));
        }
        Ok(())
    }

    async fn create_connection(&self, new: NewConnection) -> Result<Connection> {
        let conn = new.into_connection();
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        bump(&tx, &conn.source_id).await?;
        tx.execute(
            "INSERT INTO connections (id, source_id, destination, mode, enabled, settings, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&conn.id, &conn.source_id, &conn.destination, &conn.mode.as_str(), &conn.enabled, &conn.settings, &conn.created_at, &conn.updated_at],
        )
        .await?;
        tx.commit().await?;
        Ok(conn)
    }

    async fn connection(&self, id: &str) -> Result<Option<Connection>> {
        let c = self.client.lock().await;
        match connection_by_id(&*c, id).await {
            Ok(conn) => Ok(Some(conn)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn connections(&self, source_id: &str) -> Result<Vec<Connection>> {
        let c = self.client.lock().await;
        let sql = [CONNECTION_COLUMNS, " WHERE source_id = $1 ORDER BY seq"].concat();
        Ok(c.query(&sql, &[&source_id])
            .await?
            .iter()
            .map(connection)
            .collect())
    }

    async fn update_connection(&self, id: &str, update: ConnectionUpdate) -> Result<Connection> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        let mut conn = connection_by_id(&tx, id).await?;
        update.apply(&mut conn);
        tx.execute(
            "UPDATE connections SET mode = $2, enabled = $3, settings = $4, updated_at = $5 WHERE id = $1",
            &[&conn.id, &conn.mode.as_str(), &conn.enabled, &conn.settings, &conn.updated_at],
        )
        .await?;
        bump(&tx, &conn.source_id).await?;
        tx.commit().await?;
        Ok(conn)
    }

    async fn delete_connection(&self, id: &str) -> Result<()> {
        let mut c = self.client.lock().await;
        let tx = c.transaction().await?;
        let conn = connection_by_id(&tx, id).await?;
        tx.execute("DELETE FROM connections WHERE id = $1", &[&id])
            .await?;
        bump(&tx, &conn.source_id).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_handled(c: &impl GenericClient, handled: &Handled) -> Result<()> {
    insert_dead_letters(c, &handled.dead).await?;
    for r in &handled.retries {
        c.execute(
            "INSERT INTO delivery_retries (connection_id, seq, message_id, event, reason, attempts, first_failed_at, next_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &r.connection_id,
                &r.seq,
                &r.message_id,
                &r.event,
                &r.reason,
                &r.attempts,
                &r.first_failed_at,
                &r.next_at,
            ],
        )
        .await?;
    }
    Ok(())
}

async fn connection_exists(c: &impl GenericClient, id: &str) -> Result<bool> {
    Ok(
        c.query_opt("SELECT 1 FROM connections WHERE id = $1", &[&id])
            .await?
            .is_some(),
    )
}

const STATS_COLUMNS: &str = "connection_id, minute, received, filtered, delivered, dead_lettered, failed_attempts, latency, latency_sum_ms";

fn stats_minute(r: &Row) -> StatsMinute {
    StatsMinute {
        connection_id: r.get(0),
        minute: r.get(1),
        received: r.get(2),
        filtered: decode(r.get(3)),
        delivered: r.get(4),
        dead_lettered: r.get(5),
        failed_attempts: r.get(6),
        latency: decode(r.get(7)),
        latency_sum_ms: r.get(8),
    }
}

const REPLAY_COLUMNS: &str = "id, connection_id, from_at, to_at, read, filtered, delivered, dead_lettered, done, error, started_at, updated_at";

fn replay_record(r: &Row) -> ReplayRecord {
    ReplayRecord {
        id: r.get(0),
        connection_id: r.get(1),
        from: r.get(2),
        to: r.get(3),
        read: r.get(4),
        filtered: r.get(5),
        delivered: r.get(6),
        dead_lettered: r.get(7),
        done: r.get(8),
        error: r.get(9),
        started_at: r.get(10),
        updated_at: r.get(11),
    }
}

async fn insert_dead_letters(c: &impl GenericClient, dead: &[NewDeadLetter]) -> Result<()> {
    let at = now();
    for d in dead {
        c.execute(
            "INSERT INTO dead_letters (connection_id, seq, message_id, event, reason, request, response, attempts, failed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &d.connection_id,
                &d.seq,
                &d.message_id,
                &d.event,
                &d.reason,
                &d.request,
                &d.response,
                &d.attempts,
                &at,
            ],
        )
        .await?;
    }
    Ok(())
}

fn dead_letter(row: &Row) -> DeadLetter {
    DeadLetter {
        id: row.get(0),
        connection_id: row.get(1),
        seq: row.get(2),
        message_id: row.get(3),
        event: row.get(4),
        reason: row.get(5),
        request: row.get(6),
        response: row.get(7),
        attempts: row.get(8),
        failed_at: row.get(9),
    }
}

#[async_trait]
impl DeliveryStore for PostgresStore {
    async fn cursor(&self, connection_id: &str) -> Result<Option<i64>> {
        let client = self.client.lock().await;
        let row = client
            .query_opt(
                "SELECT seq FROM delivery_cursors WHERE connection_id = $1",
                &[&connection_id],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn advance(&self, connection_id: &str, seq: i64, handled: Handled) -> Result<()> {
        let mut client = self.client.lock().await;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO delivery_cursors (connection_id, seq, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (connection_id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
            &[&connection_id, &seq, &now()],
        )
        .await?;
        insert_handled(&tx, &handled).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_dead_letters(&self, dead: Vec<NewDeadLetter>) -> Result<()> {
        let mut client = self.client.lock().await;
        let tx = client.transaction().await?;
        insert_dead_letters(&tx, &dead).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dead_letters(&self, connection_id: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client.lock().await;
        let rows = client
            .query(
                "SELECT id, connection_id, seq, message_id, event, reason, request, response, attempts, failed_at
                 FROM dead_letters WHERE connection_id = $1 ORDER BY id LIMIT $2",
                &[&connection_id, &limit],
            )
            .await?;
        Ok(rows.iter().map(dead_letter).collect())
    }

    async fn dead_letter_count(&self, connection_id: &str) -> Result<i64> {
        let client = self.client.lock().await;
        let row = client
            .query_one(
                "SELECT count(*) FROM dead_letters WHERE connection_id = $1",
                &[&connection_id],
            )
            .await?;
        Ok(row.get(0))
    }

    async fn remove_dead_letters(&self, connection_id: &str, ids: Option<&[i64]>) -> Result<u64> {
        let client = self.client.lock().await;
        Ok(match ids {
            None => {
                client
                    .execute(
                        "DELETE FROM dead_letters WHERE connection_id = $1",
                        &[&connection_id],
                    )
                    .await?
            }
            Some(ids) => {
                let ids = ids.to_vec();
                client
                    .execute(
                        "DELETE FROM dead_letters WHERE connection_id = $1 AND id = ANY($2)",
                        &[&connection_id, &ids],
                    )
                    .await?
            }
        })
    }

    async fn due_retries(
        &self,
        connection_id: &str,
        now: &str,
        limit: usize,
    ) -> Result<Vec<Retry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client.lock().await;
        let rows = client
            .query(
                "SELECT id, connection_id, seq, message_id, event, reason, attempts, first_failed_at, next_at
                 FROM delivery_retries WHERE connection_id = $1 AND next_at <= $2
                 ORDER BY next_at, id LIMIT $3",
                &[&connection_id, &now, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Retry {
                id: r.get(0),
                retry: NewRetry {
                    connection_id: r.get(1),
                    seq: r.get(2),
                    message_id: r.get(3),
                    event: r.get(4),
                    reason: r.get(5),
                    attempts: r.get(6),
                    first_failed_at: r.get(7),
                    next_at: r.get(8),
                },
            })
            .collect())
    }

    async fn settle_retries(
        &self,
        connection_id: &str,
        ids: &[i64],
        handled: Handled,
    ) -> Result<()> {
        let ids = ids.to_vec();
        let mut client = self.client.lock().await;
        let tx = client.transaction().await?;
        tx.execute(
            "DELETE FROM delivery_retries WHERE connection_id = $1 AND id = ANY($2)",
            &[&connection_id, &ids],
        )
        .await?;
        insert_handled(&tx, &handled).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn retry_count(&self, connection_id: &str) -> Result<i64> {
        let client = self.client.lock().await;
        let row = client
            .query_one(
                "SELECT count(*) FROM delivery_retries WHERE connection_id = $1",
                &[&connection_id],
            )
            .await?;
        Ok(row.get(0))
    }

    async fn add_stats(&self, minutes: Vec<StatsMinute>) -> Result<()> {
        if minutes.is_empty() {
            return Ok(());
        }
        let mut client = self.client.lock().await;
        let tx = client.transaction().await?;
        let oldest = minutes.iter().map(|m| m.minute).max().unwrap_or(0) - STATS_MINUTES_KEPT;
        tx.execute("DELETE FROM delivery_stats WHERE minute < $1", &[&oldest])
            .await?;
        for m in &minutes {
            if !connection_exists(&tx, &m.connection_id).await? {
                continue;
            }
            // The row first, then locked: replicas adding to one minute
            // at once each add their own counts.
            tx.execute(
                "INSERT INTO delivery_stats (connection_id, minute, received, filtered, delivered, dead_lettered, failed_attempts, latency, latency_sum_ms)
                 VALUES ($1, $2, 0, '{}', 0, 0, 0, '[]', 0) ON CONFLICT DO NOTHING",
                &[&m.connection_id, &m.minute],
            )
            .await?;
            let sql = format!(
                "SELECT {STATS_COLUMNS} FROM delivery_stats WHERE connection_id = $1 AND minute = $2 FOR UPDATE"
            );
            let mut row = stats_minute(&tx.query_one(&sql, &[&m.connection_id, &m.minute]).await?);
            row.merge(m);
            tx.execute(
                "UPDATE delivery_stats SET received = $3, filtered = $4, delivered = $5,
                    dead_lettered = $6, failed_attempts = $7, latency = $8, latency_sum_ms = $9
                 WHERE connection_id = $1 AND minute = $2",
                &[
                    &row.connection_id,
                    &row.minute,
                    &row.received,
                    &encode(&row.filtered),
                    &row.delivered,
                    &row.dead_lettered,
                    &row.failed_attempts,
                    &encode(&row.latency),
                    &row.latency_sum_ms,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn stats(&self, connection_id: &str, since: i64) -> Result<Vec<StatsMinute>> {
        let client = self.client.lock().await;
        let sql = format!(
            "SELECT {STATS_COLUMNS} FROM delivery_stats WHERE connection_id = $1 AND minute >= $2 ORDER BY minute"
        );
        let rows = client.query(&sql, &[&connection_id, &since]).await?;
        Ok(rows.iter().map(stats_minute).collect())
    }

    async fn add_failures(&self, failures: Vec<FailureRecord>) -> Result<()> {
        if failures.is_empty() {
            return Ok(());
        }
        let mut client = self.client.lock().await;
        let tx = client.transaction().await?;
        let mut touched = std::collections::BTreeSet::new();
        for f in &failures {
            if !connection_exists(&tx, &f.connection_id).await? {
                continue;
            }
            tx.execute(
                "INSERT INTO delivery_failures (connection_id, at, message_ids, outcome, reason, request, response)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &f.connection_id,
                    &f.at,
                    &encode(&f.message_ids),
                    &f.outcome,
                    &f.reason,
                    &f.request,
                    &f.response,
                ],
            )
            .await?;
            touched.insert(f.connection_id.clone());
        }
        let kept = FAILURES_KEPT as i64;
        for id in touched {
            tx.execute(
                "DELETE FROM delivery_failures WHERE connection_id = $1 AND id NOT IN
                 (SELECT id FROM delivery_failures WHERE connection_id = $1 ORDER BY id DESC LIMIT $2)",
                &[&id, &kept],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn failures(&self, connection_id: &str, limit: usize) -> Result<Vec<FailureRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client.lock().await;
        let rows = client
            .query(
                "SELECT connection_id, at, message_ids, outcome, reason, request, response
                 FROM delivery_failures WHERE connection_id = $1 ORDER BY id DESC LIMIT $2",
                &[&connection_id, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| FailureRecord {
                connection_id: r.get(0),
                at: r.get(1),
                message_ids: decode(r.get(2)),
                outcome: r.get(3),
                reason: r.get(4),
                request: r.get(5),
                response: r.get(6),
            })
            .collect())
    }

    async fn save_replay(&self, replay: ReplayRecord) -> Result<()> {
        let client = self.client.lock().await;
        if !connection_exists(&*client, &replay.connection_id).await? {
            return Err(StoreError::NotFound("connection"));
        }
        client
            .execute(
                "INSERT INTO delivery_replays (id, connection_id, from_at, to_at, read, filtered, delivered, dead_lettered, done, error, started_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (id) DO UPDATE SET read = excluded.read, filtered = excluded.filtered,
                    delivered = excluded.delivered, dead_lettered = excluded.dead_lettered,
                    done = excluded.done, error = excluded.error, updated_at = excluded.updated_at",
                &[
                    &replay.id,
                    &replay.connection_id,
                    &replay.from,
                    &replay.to,
                    &replay.read,
                    &replay.filtered,
                    &replay.delivered,
                    &replay.dead_lettered,
                    &replay.done,
                    &replay.error,
                    &replay.started_at,
                    &replay.updated_at,
                ],
            )
            .await?;
        Ok(())
    }

    async fn replay(&self, id: &str) -> Result<Option<ReplayRecord>> {
        let client = self.client.lock().await;
        let sql = format!("SELECT {REPLAY_COLUMNS} FROM delivery_replays WHERE id = $1");
        Ok(client
            .query_opt(&sql, &[&id])
            .await?
            .map(|r| replay_record(&r)))
    }

    async fn replays(&self, connection_id: &str, limit: usize) -> Result<Vec<ReplayRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client.lock().await;
        let sql = format!(
            "SELECT {REPLAY_COLUMNS} FROM delivery_replays WHERE connection_id = $1
             ORDER BY started_at DESC, id DESC LIMIT $2"
        );
        let rows = client.query(&sql, &[&connection_id, &limit]).await?;
        Ok(rows.iter().map(replay_record).collect())
    }
}
