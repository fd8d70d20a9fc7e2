use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use crate::ids::{new_id, new_write_key};
use crate::{ConfigStore, EventLog, NewEvent, Result, Source, StoreError, StoredEvent};

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
    conn: Arc<Mutex<Connection>>,
    writer: mpsc::Sender<AppendJob>,
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk before append() returns.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let done: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
        })
    }

    async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<AppendJob>) {
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
                let msg = e.to_string();
                for job in jobs {
                    let _ = job.done.send(Err(StoreError::Task(msg.clone())));
                }
            }
        }
    }
}

fn commit_group(conn: &mut Connection, jobs: &[AppendJob]) -> Result<Vec<usize>> {
    let tx = conn.transaction()?;
    let mut counts = Vec::with_capacity(jobs.len());
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO events (source_id, message_id, type, received_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
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

#[async_trait]
impl ConfigStore for SqliteStore {
    async fn meta(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        self.with_conn(move |c| {
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
        self.with_conn(|c| {
            let mut stmt =
                c.prepare_cached(&[SOURCE_COLUMNS, " ORDER BY created_at, id"].concat())?;
            let rows = stmt.query_map([], source_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn source(&self, id: &str) -> Result<Option<Source>> {
        let id = id.to_string();
        self.with_conn(move |c| {
            let mut stmt = c.prepare_cached(&[SOURCE_COLUMNS, " WHERE id = ?1"].concat())?;
            Ok(stmt.query_row([id], source_from_row).optional()?)
        })
        .await
    }

    async fn source_by_write_key(&self, write_key: &str) -> Result<Option<Source>> {
        let key = write_key.to_string();
        self.with_conn(move |c| {
            let mut stmt = c.prepare_cached(&[SOURCE_COLUMNS, " WHERE write_key = ?1"].concat())?;
            Ok(stmt.query_row([key], source_from_row).optional()?)
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
}
