//! Persistence for Switchyard: configuration (sources, settings, metadata)
//! and the durable event log, each behind a trait so the server holds them
//! as `Arc<dyn ...>` and never sees the backend.
//!
//! The embedded backend is one SQLite file ([`SqliteStore`]); configuration
//! can live in Postgres instead ([`PostgresStore`]). This crate knows
//! nothing of HTTP.

mod ids;
mod model;
mod pgtls;
mod postgres;
mod sealed;
mod sqlite;

use async_trait::async_trait;

pub use ids::{new_secret, new_write_key};
pub use model::{
    Connection, ConnectionUpdate, DeadLetter, FAILURES_KEPT, FailureRecord, Handled, NewConnection,
    NewDeadLetter, NewEvent, NewRetry, ReplayRecord, Retry, STATS_MINUTES_KEPT, Source,
    StatsMinute, StoredEvent,
};
pub use postgres::PostgresStore;
pub use sealed::{SealedConfigStore, SecretKey, SecretSettings, is_sealed};
pub use sqlite::SqliteStore;
pub use switchyard_spec::Mode;

/// The one error type of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("postgres error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// Connecting failed, with the cause spelled out (a refused
    /// certificate, an unknown `sslmode`, an unreadable `sslrootcert`).
    #[error("postgres error: {0}")]
    PostgresConnect(String),
    #[error("the event-log writer has stopped")]
    WriterGone,
    #[error("the disk holding the event log is full")]
    Full,
    #[error("storage task failed: {0}")]
    Task(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(
        "the secret key does not open this database's secrets: give the key it was first started with (SWITCHYARD_SECRET_KEY, SWITCHYARD_SECRET_KEY_FILE, or secret.key in the data directory)"
    )]
    WrongSecretKey,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether the storage ran out of space (the disk is full): worth
    /// retrying once the operator made room, not a fault in the request.
    pub fn is_full(&self) -> bool {
        match self {
            StoreError::Full => true,
            StoreError::Database(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            _ => false,
        }
    }
}

/// Sources and instance metadata.
#[async_trait]
pub trait ConfigStore: Send + Sync {
    /// A value of the instance's own metadata (the admin token, ...).
    async fn meta(&self, key: &str) -> Result<Option<String>>;
    async fn set_meta(&self, key: &str, value: &str) -> Result<()>;

    /// Creates a source with a fresh write key.
    async fn create_source(&self, name: &str) -> Result<Source>;
    async fn sources(&self) -> Result<Vec<Source>>;
    async fn source(&self, id: &str) -> Result<Option<Source>>;
    async fn source_by_write_key(&self, write_key: &str) -> Result<Option<Source>>;
    /// Renames a source; raises its revision.
    async fn rename_source(&self, id: &str, name: &str) -> Result<Source>;
    /// Gives a source a new write key (the old one stops working at once);
    /// raises its revision.
    async fn rotate_write_key(&self, id: &str) -> Result<Source>;
    /// Deletes a source and its connections.
    async fn delete_source(&self, id: &str) -> Result<()>;

    /// Links a destination to a source; raises the source's revision.
    async fn create_connection(&self, new: NewConnection) -> Result<Connection>;
    async fn connection(&self, id: &str) -> Result<Option<Connection>>;
    /// A source's connections, oldest first.
    async fn connections(&self, source_id: &str) -> Result<Vec<Connection>>;
    /// Changes a connection; raises its source's revision.
    async fn update_connection(&self, id: &str, update: ConnectionUpdate) -> Result<Connection>;
    /// Removes a connection; raises its source's revision.
    async fn delete_connection(&self, id: &str) -> Result<()>;
}

/// The durable, append-only log of accepted events.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Appends events durably: when this returns `Ok`, they survive a
    /// crash. An event whose `(source_id, message_id)` is already in the
    /// log is skipped. Returns how many were new.
    async fn append(&self, events: Vec<NewEvent>) -> Result<usize>;

    /// The most recent events, newest first, of one source or of all.
    async fn recent(&self, source_id: Option<&str>, limit: usize) -> Result<Vec<StoredEvent>>;

    /// The calls (`track`, `page`, ...) a source has sent, sorted.
    async fn methods_seen(&self, source_id: &str) -> Result<Vec<String>>;

    /// Up to `limit` events of one source after position `after`, oldest
    /// first: what a delivery cursor reads next.
    async fn read_after(
        &self,
        source_id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>>;

    /// How many events of `source_id` are after position `after`: a
    /// cursor's lag.
    async fn count_after(&self, source_id: &str, after: i64) -> Result<i64>;

    /// The position of the newest event in the log (0 when empty).
    async fn head(&self) -> Result<i64>;

    /// The position just before the first event of `source_id` received at
    /// or after `at` (RFC 3339, UTC): where a replay from `at` starts.
    async fn position_at(&self, source_id: &str, at: &str) -> Result<i64>;

    /// Removes the events received before `before` (RFC 3339, UTC): the
    /// log's retention. Returns how many went.
    async fn prune_before(&self, before: &str) -> Result<u64>;

    /// Removes the oldest events until the log takes at most `max_bytes`
    /// on disk: the log's retention by size. Returns how many went.
    async fn prune_to_size(&self, max_bytes: u64) -> Result<u64>;
}

/// Cloud delivery's durable state, kept with the configuration: each
/// connection's cursor in the event log, its dead letters, the events it
/// retries on their own, its per-minute counts, recent failures and
/// replays. All of it goes when the connection is deleted.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// The log position up to which a connection has been handled.
    async fn cursor(&self, connection_id: &str) -> Result<Option<i64>>;

    /// Moves a connection's cursor to `seq` and stores what handling the
    /// events left (dead letters, retries), in one transaction: a crash
    /// leaves all or none.
    async fn advance(&self, connection_id: &str, seq: i64, handled: Handled) -> Result<()>;

    /// Stores dead letters without moving a cursor (a replay's, a retried
    /// dead letter failing again).
    async fn add_dead_letters(&self, dead: Vec<NewDeadLetter>) -> Result<()>;

    /// A connection's dead letters, oldest first, at most `limit`.
    async fn dead_letters(&self, connection_id: &str, limit: usize) -> Result<Vec<DeadLetter>>;

    /// How many dead letters a connection has.
    async fn dead_letter_count(&self, connection_id: &str) -> Result<i64>;

    /// Removes dead letters of a connection (the given ids, or all), and
    /// returns how many went.
    async fn remove_dead_letters(&self, connection_id: &str, ids: Option<&[i64]>) -> Result<u64>;

    /// A connection's retries due at `now` (RFC 3339, UTC), soonest
    /// first, at most `limit`.
    async fn due_retries(&self, connection_id: &str, now: &str, limit: usize)
    -> Result<Vec<Retry>>;

    /// Removes the retries `ids` (they were sent again) and stores what
    /// that left (new dead letters, retries for later), in one transaction.
    async fn settle_retries(
        &self,
        connection_id: &str,
        ids: &[i64],
        handled: Handled,
    ) -> Result<()>;

    /// How many events a connection retries on their own.
    async fn retry_count(&self, connection_id: &str) -> Result<i64>;

    /// Adds per-minute counts to what is stored for the same connection
    /// and minute, and forgets minutes older than [`STATS_MINUTES_KEPT`].
    async fn add_stats(&self, minutes: Vec<StatsMinute>) -> Result<()>;

    /// A connection's counts from minute `since` on (minutes since the
    /// epoch), oldest first.
    async fn stats(&self, connection_id: &str, since: i64) -> Result<Vec<StatsMinute>>;

    /// Keeps failed attempts; a connection keeps its newest
    /// [`FAILURES_KEPT`].
    async fn add_failures(&self, failures: Vec<FailureRecord>) -> Result<()>;

    /// A connection's failures, newest first, at most `limit`.
    async fn failures(&self, connection_id: &str, limit: usize) -> Result<Vec<FailureRecord>>;

    /// Stores a replay as it is now (inserted or updated by id).
    async fn save_replay(&self, replay: ReplayRecord) -> Result<()>;

    async fn replay(&self, id: &str) -> Result<Option<ReplayRecord>>;

    /// A connection's replays, newest first, at most `limit`.
    async fn replays(&self, connection_id: &str, limit: usize) -> Result<Vec<ReplayRecord>>;
}
