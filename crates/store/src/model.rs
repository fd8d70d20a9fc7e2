use std::collections::BTreeMap;

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

/// An event set aside to be sent again on its own: the vendor kept
/// failing it while it delivered others, so it does not hold its
/// connection's cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRetry {
    pub connection_id: String,
    pub seq: i64,
    pub message_id: String,
    pub event: String,
    /// The last failure (secrets already redacted by the caller).
    pub reason: String,
    pub attempts: i64,
    /// When it first failed (RFC 3339, UTC): its retry window starts here.
    pub first_failed_at: String,
    /// When to send it next (RFC 3339, UTC).
    pub next_at: String,
}

/// A retry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub id: i64,
    pub retry: NewRetry,
}

/// What handling events left behind besides deliveries: dead letters and
/// events to retry on their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handled {
    pub dead: Vec<NewDeadLetter>,
    pub retries: Vec<NewRetry>,
}

impl Handled {
    pub fn is_empty(&self) -> bool {
        self.dead.is_empty() && self.retries.is_empty()
    }

    pub fn extend(&mut self, other: Handled) {
        self.dead.extend(other.dead);
        self.retries.extend(other.retries);
    }
}

impl From<Vec<NewDeadLetter>> for Handled {
    fn from(dead: Vec<NewDeadLetter>) -> Handled {
        Handled {
            dead,
            retries: Vec::new(),
        }
    }
}

/// One minute of a connection's delivery counts. Counts of the same
/// connection and minute add up, from any number of processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsMinute {
    pub connection_id: String,
    /// Minutes since the Unix epoch.
    pub minute: i64,
    pub received: i64,
    /// Events not sent, by reason.
    pub filtered: BTreeMap<String, i64>,
    pub delivered: i64,
    pub dead_lettered: i64,
    pub failed_attempts: i64,
    /// Latencies from receipt to the vendor's 2xx: a count per bucket,
    /// the buckets being the caller's.
    pub latency: Vec<i64>,
    pub latency_sum_ms: i64,
}

impl StatsMinute {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &StatsMinute) {
        self.received += other.received;
        for (reason, n) in &other.filtered {
            *self.filtered.entry(reason.clone()).or_default() += n;
        }
        self.delivered += other.delivered;
        self.dead_lettered += other.dead_lettered;
        self.failed_attempts += other.failed_attempts;
        if self.latency.len() < other.latency.len() {
            self.latency.resize(other.latency.len(), 0);
        }
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            *a += b;
        }
        self.latency_sum_ms += other.latency_sum_ms;
    }
}

/// How many minutes of counts are kept.
pub const STATS_MINUTES_KEPT: i64 = 24 * 60 + 60;

/// A failed attempt as the admin shows it (secrets already redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRecord {
    pub connection_id: String,
    pub at: String,
    pub message_ids: Vec<String>,
    /// `retry`, `retry_later` or `dead_letter`.
    pub outcome: String,
    pub reason: String,
    pub request: String,
    pub response: Option<String>,
}

/// How many failures are kept per connection, newest first.
pub const FAILURES_KEPT: usize = 50;

/// A replay of a time range of the log to one connection, and how far it
/// got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayRecord {
    pub id: String,
    pub connection_id: String,
    pub from: String,
    pub to: String,
    pub read: i64,
    pub filtered: i64,
    pub delivered: i64,
    pub dead_lettered: i64,
    pub done: bool,
    pub error: Option<String>,
    pub started_at: String,
    pub updated_at: String,
}

/// A small value as stored in a text column: JSON.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A text column back; a value that does not read is empty rather than an
/// error, so one damaged row does not hide the others.
pub(crate) fn decode<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}
