//! Persistence for Switchyard: configuration (sources, settings, metadata)
//! and the durable event log, each behind a trait so the server holds them
//! as `Arc<dyn ...>` and never sees the backend.
//!
//! The embedded backend is one SQLite file ([`SqliteStore`]). This crate
//! knows nothing of HTTP.

mod ids;
mod model;
mod sqlite;

use async_trait::async_trait;

pub use ids::{new_secret, new_write_key};
pub use model::{NewEvent, Source, StoredEvent};
pub use sqlite::SqliteStore;

/// The one error type of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("the event-log writer has stopped")]
    WriterGone,
    #[error("storage task failed: {0}")]
    Task(String),
    #[error("{0} not found")]
    NotFound(&'static str),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

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
}
