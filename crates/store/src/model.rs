use switchyard_spec::Mode;

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

/// A destination linked to a source, in one connection mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: String,
    pub source_id: String,
    /// The destination's catalog slug.
    pub destination: String,
    pub mode: Mode,
    pub enabled: bool,
    /// The validated settings, a JSON object (secrets included: the store
    /// holds them; what leaves the server is filtered above it).
    pub settings: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A connection to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConnection {
    pub source_id: String,
    pub destination: String,
    pub mode: Mode,
    pub enabled: bool,
    pub settings: String,
}

/// Changes to a connection; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionUpdate {
    pub mode: Option<Mode>,
    pub enabled: Option<bool>,
    pub settings: Option<String>,
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
    /// Position in the log; increases with each append and is never used
    /// again, so a delivery cursor stays valid.
    pub seq: i64,
    pub source_id: String,
    pub json: String,
}

/// An event delivery gave up on: the event, why, and the last request and
/// response (secrets already redacted by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadLetter {
    pub connection_id: String,
    /// The event's position in the log.
    pub seq: i64,
    pub message_id: String,
    /// The event as stored, so a retry needs nothing else.
    pub event: String,
    pub reason: String,
    pub request: Option<String>,
    pub response: Option<String>,
    pub attempts: i64,
}

/// A dead letter as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: i64,
    pub connection_id: String,
    pub seq: i64,
    pub message_id: String,
    pub event: String,
    pub reason: String,
    pub request: Option<String>,
    pub response: Option<String>,
    pub attempts: i64,
    pub failed_at: String,
}

/// Now, as stored: RFC 3339 with milliseconds, UTC.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl NewConnection {
    /// The connection as first stored, with a fresh id.
    pub(crate) fn into_connection(self) -> Connection {
        let at = now();
        Connection {
            id: crate::ids::new_id("con_"),
            source_id: self.source_id,
            destination: self.destination,
            mode: self.mode,
            enabled: self.enabled,
            settings: self.settings,
            created_at: at.clone(),
            updated_at: at,
        }
    }
}

impl ConnectionUpdate {
    /// Applies the changes it holds, and stamps the connection updated.
    pub(crate) fn apply(self, conn: &mut Connection) {
        if let Some(mode) = self.mode {
            conn.mode = mode;
        }
        if let Some(enabled) = self.enabled {
            conn.enabled = enabled;
        }
        if let Some(settings) = self.settings {
            conn.settings = settings;
        }
        conn.updated_at = now();
    }
}
