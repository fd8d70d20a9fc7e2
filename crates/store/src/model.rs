/// A website or app that sends events, identified by its write key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub id: String,
    pub name: String,
    pub write_key: String,
    /// Raised by every change to the source or its connections; bundles
    /// and settings responses are built for one revision.
    pub revision: i64,
    pub created_at: String,
}

/// An event accepted by the tracking API, ready to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub source_id: String,
    pub message_id: String,
    /// `track`, `identify`, ...
    pub kind: &'static str,
    pub received_at: String,
    /// The normalised event, Segment's wire JSON.
    pub json: String,
}

/// An event read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the log; increases with each append.
    pub seq: i64,
    pub source_id: String,
    pub json: String,
}
