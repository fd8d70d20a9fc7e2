use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection as Db, OptionalExtension, params};
use switchyard_spec::Mode;
use tokio::sync::{mpsc, oneshot};

use crate::ids::{new_id, new_write_key};
use crate::model::{decode, encode, now};
use crate::{
    ConfigStore, Connection, ConnectionUpdate, DeadLetter, DeliveryStore, EventLog, FAILURES_KEPT,
    FailureRecord, Handled, NewConnection, NewDeadLetter, NewEvent, NewRetry, ReplayRecord, Result,
    Retry, STATS_MINUTES_KEPT, Source, StatsMinute, StoreError, StoredEvent,
};

/// Migrations, applied in order; `PRAGMA user_version` counts those done.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sources (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        write_key TEXT NOT NULL UNIQUE,
        revision INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        source_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        type TEXT NOT NULL,
        received_at TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (source_id, message_id)
    );
    CREATE INDEX events_by_source ON events (source_id, seq);
", "
    CREATE TABLE connections (
        id TEXT PRIMARY KEY,
        source_id TEXT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
        destination TEXT NOT NULL,
        mode TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        settings TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX connections_by_source ON connections (source_id, created_at);
    CREATE TABLE source_methods (
        source_id TEXT NOT NULL,
        method TEXT NOT NULL,
        PRIMARY KEY (source_id, method)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO source_methods (source_id, method) SELECT DISTINCT source_id, type FROM events;
", "
    CREATE TABLE events_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        source_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        type TEXT NOT NULL,
        received_at TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (source_id, message_id)
    );
    INSERT INTO events_log (seq, source_id, message_id, type, received_at, body)
        SELECT seq, source_id, message_id, type, received_at, body FROM events ORDER BY seq;
    DROP TABLE events;
    ALTER TABLE events_log RENAME TO events;
    CREATE INDEX events_by_source ON events (source_id, seq);
    CREATE TABLE delivery_cursors (
        connection_id TEXT PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        event TEXT NOT NULL,
        reason TEXT NOT NULL,
        request TEXT,
        response TEXT,
        attempts INTEGER NOT NULL,
        failed_at TEXT NOT NULL
    );
    CREATE INDEX dead_letters_by_connection ON dead_letters (connection_id, id);
", "
    CREATE TABLE delivery_retries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        event TEXT NOT NULL,
        reason TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        first_failed_at TEXT NOT NULL,
        next_at TEXT NOT NULL
    );
    CREATE INDEX delivery_retries_due ON delivery_retries (connection_id, next_at);
    CREATE TABLE delivery_stats (
        connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
        minute INTEGER NOT NULL,
        received INTEGER NOT NULL,
        filtered TEXT NOT NULL,
        delivered INTEGER NOT NULL,
        dead_lettered INTEGER NOT NULL,
        failed_attempts INTEGER NOT NULL,
        latency TEXT NOT NULL,
        latency_sum_ms INTEGER NOT NULL,
        PRIMARY KEY (connection_id, minute)
    );
    CREATE TABLE delivery_failures (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
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
        read INTEGER NOT NULL,
        filtered INTEGER NOT NULL,
        delivered INTEGER NOT NULL,
        dead_lettered INTEGER NOT NULL,
        done INTEGER NOT NULL,
        error TEXT,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX delivery_replays_by_connection ON delivery_replays (connection_id, started_at);
"];

/// How many appends the writer commits at most in one transaction.
const GROUP_COMMIT_MAX: usize = 256;

struct AppendJob {
    events: Vec<NewEvent>,
    done: oneshot::Sender<Result<usize>>,
}

/// The embedded store: one SQLite file in WAL mode.
///
/// Configuration reads and writes share one connection. Event appends go
/// to a dedicated writer thread that commits whatever has queued up in one
/// transaction (group commit), so durability costs one sync per group,
/// not per event.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Db>>,
    writer: mpsc::Sender<AppendJob>,
    /// Connections for reading the event log forwards (delivery workers),
    /// so those reads queue neither behind configuration nor the writer.
    readers: Arc<Mutex<Vec<Db>>>,
    path: Arc<std::path::PathBuf>,
}

fn open(path: &Path) -> Result<Db> {
    let conn = Db::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk before append() returns.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn migrate(conn: &mut Db) -> Result<()> {
    let done: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let mut conn = open(path)?;
        migrate(&mut conn)?;
        let writer_conn = open(path)?;
        let (tx, rx) = mpsc::channel(1024);
        std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || writer_loop(writer_conn, rx))
            .map_err(|e| StoreError::Task(e.to_string()))?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            writer: tx,
            readers: Arc::new(Mutex::new(Vec::new())),
            path: Arc::new(path.to_path_buf()),
        })
    }

    async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` on a pooled read connection (WAL lets readers run beside
    /// the writer); a connection that failed is not returned to the pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T> + Send + 'static,
    {
        let (readers, path) = (self.readers.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open(&path)?,
            };
            let result = f(&conn);
            if result.is_ok() {
                readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

fn writer_loop(mut conn: Db, mut rx: mpsc::Receiver<AppendJob>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP_COMMIT_MAX {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        match commit_group(&mut conn, &jobs) {
            Ok(counts) => {
                for (job, n) in jobs.into_iter().zip(counts) {
                    let _ = job.done.send(Ok(n));
                }
            }
            Err(e) => {
                let full = e.is_full();
                let msg = e.to_string();
                for job in jobs {
                    let error = if full {
                        StoreError::Full
                    } else {
                        StoreError::Task(msg.clone())
                    };
                    let _ = job.done.send(Err(error));
                }
            }
        }
    }
}

fn commit_group(conn: &mut Db, jobs: &[AppendJob]) -> Result<Vec<usize>> {
    let tx = conn.transaction()?;
    let mut counts = Vec::with_capacity(jobs.len());
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO events (source_id, message_id, type, received_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut seen = tx.prepare_cached(
            "INSERT OR IGNORE INTO source_methods (source_id, method) VALUES (?1, ?2)",
        )?;
        let mut recorded: Vec<(&str, &str)> = Vec::new();
        for job in jobs {
            let mut n = 0;
            for e in &job.events {
                n += stmt.execute(params![
                    e.source_id,
                    e.message_id,
                    e.kind,
                    e.received_at,
                    e.json
                ])?;
                let key = (e.source_id.as_str(), e.kind);
                if !recorded.contains(&key) {
                    seen.execute(params![key.0, key.1])?;
                    recorded.push(key);
                }
            }
            counts.push(n);
        }
    }
    tx.commit()?;
    Ok(counts)
}

fn source_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Source> {
    Ok(Source {
        id: row.get(0)?,
        name: row.get(1)?,
        write_key: row.get(2)?,
        revision: row.get(3)?,
        created_at: row.get(4)?,
    })
}

const SOURCE_COLUMNS: &str = "SELECT id, name, write_key, revision, created_at FROM sources";
const CONNECTION_COLUMNS: &str = "SELECT id, source_id, destination, mode, enabled, settings, created_at, updated_at FROM connections";

fn connection_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Connection> {
    let mode: String = row.get(3)?;
    Ok(Connection {
        id: row.get(0)?,
        source_id: row.get(1)?,
        destination: row.get(2)?,
        mode: Mode::from_name(&mode).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown connection mode `{mode}`").into(),
            )
        })?,
        enabled: row.get(4)?,
        settings: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

fn bump(c: &Db, source_id: &str) -> Result<()> {
    let n = c.execute(
        "UPDATE sources SET revision = revision + 1 WHERE id = ?1",
        [source_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound("source"));
    }
    Ok(())
}

fn source_by_id(c: &Db, id: &str) -> Result<Source> {
    let mut stmt = c.prepare_cached(&[SOURCE_COLUMNS, " WHERE id = ?1"].concat())?;
    stmt.query_row([id], source_from_row)
        .optional()?
        .ok_or(StoreError::NotFound("source"))
}

fn connection_by_id(c: &Db, id: &str) -> Result<Connection> {
    let mut stmt = c.prepare_cached(&[CONNECTION_COLUMNS, " WHERE id = ?1"].concat())?;
    stmt.query_row([id], connection_from_row)
        .optional()?
        .ok_or(StoreError::NotFound("connection"))
}

#[async_trait]
impl ConfigStore for SqliteStore {
    async fn meta(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        self.read(move |c| {
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                    .optional()?,
            )
        })
        .await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_string(), value.to_string());
        self.with_conn(move |c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
            Ok(())
        })
        .await
    }

    async fn create_source(&self, name: &str) -> Result<Source> {
        let source = Source {
            id: new_id("src_"),
            name: name.to_string(),
            write_key: new_write_key(),
            revision: 1,
            created_at: now(),
        };
        let s = source.clone();
        self.with_conn(move |c| {
            c.execute(
                "INSERT INTO sources (id, name, write_key, revision, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.id, s.name, s.write_key, s.revision, s.created_at],
            )?;
            Ok(())
        })
        .await?;
        Ok(source)
    }

    async fn sources(&self) -> Result<Vec<Source>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&[SOURCE_COLUMNS, " ORDER BY rowid"].concat())?;
            let rows = stmt.query_map([], source_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn source(&self, id: &str) -> Result<Option<Source>> {
        let id = id.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&[SOURCE_COLUMNS, " WHERE id = ?1"].concat())?;
            Ok(stmt.query_row([id], source_from_row).optional()?)
        })
        .await
    }

    async fn source_by_write_key(&self, write_key: &str) -> Result<Option<Source>> {
        let key = write_key.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&[SOURCE_COLUMNS, " WHERE write_key = ?1"].concat())?;
            Ok(stmt.query_row([key], source_from_row).optional()?)
        })
        .await
    }

    async fn rename_source(&self, id: &str, name: &str) -> Result<Source> {
        let (id, name) = (id.to_string(), name.to_string());
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            tx.execute("UPDATE sources SET name = ?2 WHERE id = ?1", [&id, &name])?;
            bump(&tx, &id)?;
            let source = source_by_id(&tx, &id)?;
            tx.commit()?;
            Ok(source)
        })
        .await
    }

    async fn rotate_write_key(&self, id: &str) -> Result<Source> {
        let id = id.to_string();
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE sources SET write_key = ?2 WHERE id = ?1",
                [&id, &new_write_key()],
            )?;
            bump(&tx, &id)?;
            let source = source_by_id(&tx, &id)?;
            tx.commit()?;
            Ok(source)
        })
        .await
    }

    async fn delete_source(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            if tx.execute("DELETE FROM sources WHERE id = ?1", [&id])? == 0 {
                return Err(StoreError::NotFound("source"));
            }
            tx.execute("DELETE FROM source_methods WHERE source_id = ?1", [&id])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn create_connection(&self, new: NewConnection) -> Result<Connection> {
        let conn = new.into_connection();
        let row = conn.clone();
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            bump(&tx, &row.source_id)?;
            tx.execute(
                "INSERT INTO connections (id, source_id, destination, mode, enabled, settings, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![row.id, row.source_id, row.destination, row.mode.as_str(), row.enabled, row.settings, row.created_at, row.updated_at],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await?;
        Ok(conn)
    }

    async fn connection(&self, id: &str) -> Result<Option<Connection>> {
        let id = id.to_string();
        self.read(move |c| match connection_by_id(c, &id) {
            Ok(conn) => Ok(Some(conn)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        })
        .await
    }

    async fn connections(&self, source_id: &str) -> Result<Vec<Connection>> {
        let id = source_id.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                &[CONNECTION_COLUMNS, " WHERE source_id = ?1 ORDER BY rowid"].concat(),
            )?;
            let rows = stmt.query_map([id], connection_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn update_connection(&self, id: &str, update: ConnectionUpdate) -> Result<Connection> {
        let id = id.to_string();
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            let mut conn = connection_by_id(&tx, &id)?;
            update.apply(&mut conn);
            tx.execute(
                "UPDATE connections SET mode = ?2, enabled = ?3, settings = ?4, updated_at = ?5 WHERE id = ?1",
                params![conn.id, conn.mode.as_str(), conn.enabled, conn.settings, conn.updated_at],
            )?;
            bump(&tx, &conn.source_id)?;
            tx.commit()?;
            Ok(conn)
        })
        .await
    }

    async fn delete_connection(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            let conn = connection_by_id(&tx, &id)?;
            tx.execute("DELETE FROM connections WHERE id = ?1", [&id])?;
            bump(&tx, &conn.source_id)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append(&self, events: Vec<NewEvent>) -> Result<usize> {
        if events.is_empty() {
            return Ok(0);
        }
        let (done, wait) = oneshot::channel();
        self.writer
            .send(AppendJob { events, done })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        wait.await.map_err(|_| StoreError::WriterGone)?
    }

    async fn recent(&self, source_id: Option<&str>, limit: usize) -> Result<Vec<StoredEvent>> {
        let source_id = source_id.map(str::to_string);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(move |c| {
            let map = |r: &rusqlite::Row<'_>| {
                Ok(StoredEvent {
                    seq: r.get(0)?,
                    source_id: r.get(1)?,
                    json: r.get(2)?,
                })
            };
            let rows = match source_id {
                Some(id) => {
                    let mut stmt = c.prepare_cached(
                        "SELECT seq, source_id, body FROM events WHERE source_id = ?1
                         ORDER BY seq DESC LIMIT ?2",
                    )?;
                    stmt.query_map(params![id, limit], map)?
                        .collect::<rusqlite::Result<Vec<_>>>()?
                }
                None => {
                    let mut stmt = c.prepare_cached(
                        "SELECT seq, source_id, body FROM events ORDER BY seq DESC LIMIT ?1",
                    )?;
                    stmt.query_map(params![limit], map)?
                        .collect::<rusqlite::Result<Vec<_>>>()?
                }
            };
            Ok(rows)
        })
        .await
    }

    async fn read_after(
        &self,
        source_id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let id = source_id.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, source_id, body FROM events WHERE source_id = ?1 AND seq > ?2
                 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![id, after, limit], |r| {
                Ok(StoredEvent {
                    seq: r.get(0)?,
                    source_id: r.get(1)?,
                    json: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn count_after(&self, source_id: &str, after: i64) -> Result<i64> {
        let id = source_id.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT count(*) FROM events WHERE source_id = ?1 AND seq > ?2",
                params![id, after],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn head(&self) -> Result<i64> {
        self.read(|c| {
            // The AUTOINCREMENT counter, not max(seq): it never goes back,
            // even when the newest rows are gone.
            let counter: Option<i64> = c
                .query_row(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(counter.unwrap_or(0))
        })
        .await
    }

    async fn position_at(&self, source_id: &str, at: &str) -> Result<i64> {
        let (id, at) = (source_id.to_string(), at.to_string());
        self.read(move |c| {
            let first: Option<i64> = c.query_row(
                "SELECT min(seq) FROM events WHERE source_id = ?1 AND received_at >= ?2",
                params![id, at],
                |r| r.get(0),
            )?;
            match first {
                Some(seq) => Ok(seq - 1),
                None => {
                    let counter: Option<i64> = c
                        .query_row(
                            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                            [],
                            |r| r.get(0),
                        )
                        .optional()?;
                    Ok(counter.unwrap_or(0))
                }
            }
        })
        .await
    }

    async fn prune_before(&self, before: &str) -> Result<u64> {
        let mut total = 0;
        // In chunks, so the writer is never held up for long.
        loop {
            let before = before.to_string();
            let n = self
                .with_conn(move |c| {
                    Ok(c.execute(
                        "DELETE FROM events WHERE seq IN
                         (SELECT seq FROM events WHERE received_at < ?1 ORDER BY seq LIMIT 5000)",
                        [before],
                    )?)
                })
                .await?;
            total += n as u64;
            if n < 5000 {
                return Ok(total);
            }
        }
    }

    async fn prune_to_size(&self, max_bytes: u64) -> Result<u64> {
        let mut total = 0;
        loop {
            // Pages in use (free pages are reused before the file grows),
            // and from them what one event takes on average.
            let n = self
                .with_conn(move |c| {
                    let pragma = |name: &str| -> Result<u64> {
                        let v: i64 = c.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?;
                        Ok(u64::try_from(v).unwrap_or(0))
                    };
                    let used = pragma("page_count")?.saturating_sub(pragma("freelist_count")?)
                        * pragma("page_size")?;
                    if used <= max_bytes {
                        return Ok(0);
                    }
                    let count: i64 =
                        c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
                    let count = u64::try_from(count).unwrap_or(0);
                    if count == 0 {
                        return Ok(0);
                    }
                    let each = (used / count).max(1);
                    let chunk = ((used - max_bytes) / each + 1).min(5000);
                    Ok(c.execute(
                        "DELETE FROM events WHERE seq IN
                         (SELECT seq FROM events ORDER BY seq LIMIT ?1)",
                        [i64::try_from(chunk).unwrap_or(5000)],
                    )?)
                })
                .await?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    }

    async fn methods_seen(&self, source_id: &str) -> Result<Vec<String>> {
        let id = source_id.to_string();
        self.with_conn(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT method FROM source_methods WHERE source_id = ?1 ORDER BY method",
            )?;
            let rows = stmt.query_map([id], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .await
    }
}

fn dead_letter_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetter> {
    Ok(DeadLetter {
        id: r.get(0)?,
        connection_id: r.get(1)?,
        seq: r.get(2)?,
        message_id: r.get(3)?,
        event: r.get(4)?,
        reason: r.get(5)?,
        request: r.get(6)?,
        response: r.get(7)?,
        attempts: r.get(8)?,
        failed_at: r.get(9)?,
    })
}

fn insert_handled(c: &Db, handled: &Handled) -> Result<()> {
    insert_dead_letters(c, &handled.dead)?;
    let mut stmt = c.prepare_cached(
        "INSERT INTO delivery_retries (connection_id, seq, message_id, event, reason, attempts, first_failed_at, next_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for r in &handled.retries {
        stmt.execute(params![
            r.connection_id,
            r.seq,
            r.message_id,
            r.event,
            r.reason,
            r.attempts,
            r.first_failed_at,
            r.next_at
        ])?;
    }
    Ok(())
}

fn connection_exists(c: &Db, id: &str) -> Result<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM connections WHERE id = ?1")?
        .exists([id])?)
}

fn stats_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StatsMinute> {
    let filtered: String = r.get(3)?;
    let latency: String = r.get(7)?;
    Ok(StatsMinute {
        connection_id: r.get(0)?,
        minute: r.get(1)?,
        received: r.get(2)?,
        filtered: decode(&filtered),
        delivered: r.get(4)?,
        dead_lettered: r.get(5)?,
        failed_attempts: r.get(6)?,
        latency: decode(&latency),
        latency_sum_ms: r.get(8)?,
    })
}

const REPLAY_COLUMNS: &str = "id, connection_id, from_at, to_at, read, filtered, delivered, dead_lettered, done, error, started_at, updated_at";

fn replay_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReplayRecord> {
    Ok(ReplayRecord {
        id: r.get(0)?,
        connection_id: r.get(1)?,
        from: r.get(2)?,
        to: r.get(3)?,
        read: r.get(4)?,
        filtered: r.get(5)?,
        delivered: r.get(6)?,
        dead_lettered: r.get(7)?,
        done: r.get(8)?,
        error: r.get(9)?,
        started_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

fn insert_dead_letters(c: &Db, dead: &[NewDeadLetter]) -> Result<()> {
    let mut stmt = c.prepare_cached(
        "INSERT INTO dead_letters (connection_id, seq, message_id, event, reason, request, response, attempts, failed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let at = now();
    for d in dead {
        stmt.execute(params![
            d.connection_id,
            d.seq,
            d.message_id,
            d.event,
            d.reason,
            d.request,
            d.response,
            d.attempts,
            at
        ])?;
    }
    Ok(())
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn cursor(&self, connection_id: &str) -> Result<Option<i64>> {
        let id = connection_id.to_string();
        self.with_conn(move |c| {
            Ok(c.query_row(
                "SELECT seq FROM delivery_cursors WHERE connection_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn advance(&self, connection_id: &str, seq: i64, handled: Handled) -> Result<()> {
        let id = connection_id.to_string();
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO delivery_cursors (connection_id, seq, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (connection_id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
                params![id, seq, now()],
            )?;
            insert_handled(&tx, &handled)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn add_dead_letters(&self, dead: Vec<NewDeadLetter>) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            insert_dead_letters(&tx, &dead)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn dead_letters(&self, connection_id: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        let id = connection_id.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, connection_id, seq, message_id, event, reason, request, response, attempts, failed_at
                 FROM dead_letters WHERE connection_id = ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![id, limit], dead_letter_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn dead_letter_count(&self, connection_id: &str) -> Result<i64> {
        let id = connection_id.to_string();
        self.with_conn(move |c| {
            Ok(c.query_row(
                "SELECT count(*) FROM dead_letters WHERE connection_id = ?1",
                [id],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn remove_dead_letters(&self, connection_id: &str, ids: Option<&[i64]>) -> Result<u64> {
        let id = connection_id.to_string();
        let ids = ids.map(<[i64]>::to_vec);
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            let n = match ids {
                None => tx.execute("DELETE FROM dead_letters WHERE connection_id = ?1", [&id])?,
                Some(ids) => {
                    let mut stmt = tx.prepare_cached(
                        "DELETE FROM dead_letters WHERE connection_id = ?1 AND id = ?2",
                    )?;
                    let mut n = 0;
                    for d in ids {
                        n += stmt.execute(params![id, d])?;
                    }
                    n
                }
            };
            tx.commit()?;
            Ok(n as u64)
        })
        .await
    }

    async fn due_retries(
        &self,
        connection_id: &str,
        now: &str,
        limit: usize,
    ) -> Result<Vec<Retry>> {
        let (id, now) = (connection_id.to_string(), now.to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, connection_id, seq, message_id, event, reason, attempts, first_failed_at, next_at
                 FROM delivery_retries WHERE connection_id = ?1 AND next_at <= ?2
                 ORDER BY next_at, id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![id, now, limit], |r| {
                Ok(Retry {
                    id: r.get(0)?,
                    retry: NewRetry {
                        connection_id: r.get(1)?,
                        seq: r.get(2)?,
                        message_id: r.get(3)?,
                        event: r.get(4)?,
                        reason: r.get(5)?,
                        attempts: r.get(6)?,
                        first_failed_at: r.get(7)?,
                        next_at: r.get(8)?,
                    },
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn settle_retries(
        &self,
        connection_id: &str,
        ids: &[i64],
        handled: Handled,
    ) -> Result<()> {
        let (id, ids) = (connection_id.to_string(), ids.to_vec());
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "DELETE FROM delivery_retries WHERE connection_id = ?1 AND id = ?2",
                )?;
                for r in &ids {
                    stmt.execute(params![id, r])?;
                }
            }
            insert_handled(&tx, &handled)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn retry_count(&self, connection_id: &str) -> Result<i64> {
        let id = connection_id.to_string();
        self.with_conn(move |c| {
            Ok(c.query_row(
                "SELECT count(*) FROM delivery_retries WHERE connection_id = ?1",
                [id],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn add_stats(&self, minutes: Vec<StatsMinute>) -> Result<()> {
        if minutes.is_empty() {
            return Ok(());
        }
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            let oldest = minutes.iter().map(|m| m.minute).max().unwrap_or(0) - STATS_MINUTES_KEPT;
            tx.execute("DELETE FROM delivery_stats WHERE minute < ?1", [oldest])?;
            for m in &minutes {
                if !connection_exists(&tx, &m.connection_id)? {
                    continue;
                }
                let mut row = tx
                    .query_row(
                        "SELECT connection_id, minute, received, filtered, delivered, dead_lettered, failed_attempts, latency, latency_sum_ms
                         FROM delivery_stats WHERE connection_id = ?1 AND minute = ?2",
                        params![m.connection_id, m.minute],
                        stats_from_row,
                    )
                    .optional()?
                    .unwrap_or_else(|| StatsMinute {
                        connection_id: m.connection_id.clone(),
                        minute: m.minute,
                        ..StatsMinute::default()
                    });
                row.merge(m);
                tx.execute(
                    "INSERT INTO delivery_stats (connection_id, minute, received, filtered, delivered, dead_lettered, failed_attempts, latency, latency_sum_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (connection_id, minute) DO UPDATE SET
                        received = excluded.received, filtered = excluded.filtered,
                        delivered = excluded.delivered, dead_lettered = excluded.dead_lettered,
                        failed_attempts = excluded.failed_attempts, latency = excluded.latency,
                        latency_sum_ms = excluded.latency_sum_ms",
                    params![
                        row.connection_id,
                        row.minute,
                        row.received,
                        encode(&row.filtered),
                        row.delivered,
                        row.dead_lettered,
                        row.failed_attempts,
                        encode(&row.latency),
                        row.latency_sum_ms
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn stats(&self, connection_id: &str, since: i64) -> Result<Vec<StatsMinute>> {
        let id = connection_id.to_string();
        self.with_conn(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT connection_id, minute, received, filtered, delivered, dead_lettered, failed_attempts, latency, latency_sum_ms
                 FROM delivery_stats WHERE connection_id = ?1 AND minute >= ?2 ORDER BY minute",
            )?;
            let rows = stmt.query_map(params![id, since], stats_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn add_failures(&self, failures: Vec<FailureRecord>) -> Result<()> {
        if failures.is_empty() {
            return Ok(());
        }
        self.with_conn(move |c| {
            let tx = c.transaction()?;
            let mut touched = std::collections::BTreeSet::new();
            for f in &failures {
                if !connection_exists(&tx, &f.connection_id)? {
                    continue;
                }
                tx.execute(
                    "INSERT INTO delivery_failures (connection_id, at, message_ids, outcome, reason, request, response)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        f.connection_id,
                        f.at,
                        encode(&f.message_ids),
                        f.outcome,
                        f.reason,
                        f.request,
                        f.response
                    ],
                )?;
                touched.insert(f.connection_id.clone());
            }
            for id in touched {
                tx.execute(
                    "DELETE FROM delivery_failures WHERE connection_id = ?1 AND id NOT IN
                     (SELECT id FROM delivery_failures WHERE connection_id = ?1 ORDER BY id DESC LIMIT ?2)",
                    params![id, FAILURES_KEPT as i64],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn failures(&self, connection_id: &str, limit: usize) -> Result<Vec<FailureRecord>> {
        let id = connection_id.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT connection_id, at, message_ids, outcome, reason, request, response
                 FROM delivery_failures WHERE connection_id = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![id, limit], |r| {
                let ids: String = r.get(2)?;
                Ok(FailureRecord {
                    connection_id: r.get(0)?,
                    at: r.get(1)?,
                    message_ids: decode(&ids),
                    outcome: r.get(3)?,
                    reason: r.get(4)?,
                    request: r.get(5)?,
                    response: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn save_replay(&self, replay: ReplayRecord) -> Result<()> {
        self.with_conn(move |c| {
            if !connection_exists(c, &replay.connection_id)? {
                return Err(StoreError::NotFound("connection"));
            }
            c.execute(
                "INSERT INTO delivery_replays (id, connection_id, from_at, to_at, read, filtered, delivered, dead_lettered, done, error, started_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (id) DO UPDATE SET read = excluded.read, filtered = excluded.filtered,
                    delivered = excluded.delivered, dead_lettered = excluded.dead_lettered,
                    done = excluded.done, error = excluded.error, updated_at = excluded.updated_at",
                params![
                    replay.id,
                    replay.connection_id,
                    replay.from,
                    replay.to,
                    replay.read,
                    replay.filtered,
                    replay.delivered,
                    replay.dead_lettered,
                    replay.done,
                    replay.error,
                    replay.started_at,
                    replay.updated_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn replay(&self, id: &str) -> Result<Option<ReplayRecord>> {
        let id = id.to_string();
        self.with_conn(move |c| {
            let sql = format!("SELECT {REPLAY_COLUMNS} FROM delivery_replays WHERE id = ?1");
            Ok(c.query_row(&sql, [id], replay_from_row).optional()?)
        })
        .await
    }

    async fn replays(&self, connection_id: &str, limit: usize) -> Result<Vec<ReplayRecord>> {
        let id = connection_id.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(move |c| {
            let sql = format!(
                "SELECT {REPLAY_COLUMNS} FROM delivery_replays WHERE connection_id = ?1
                 ORDER BY started_at DESC, id DESC LIMIT ?2"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![id, limit], replay_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}
