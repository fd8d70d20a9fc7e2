//! What cloud mode's forwarders speak: a destination's `cloud.rs` is a pure
//! [`Forwarder`], from Segment events and the connection's settings to the
//! HTTP requests its vendor's API documents, and from the vendor's response
//! to an [`Outcome`]. The delivery engine does the I/O (reading the log,
//! batching to [`Limits`], sending, retrying, dead letters).
//!
//! Only the server compiles this (the `cloud` feature): it may use
//! `serde_json` and `format!`, which the browser library must not.

use std::time::Duration;

pub use serde_json::{Map, Value as Json, json};

use crate::device::Value;

/// A connection's validated settings, defaults filled in.
pub type Settings = Map<String, Json>;

/// One HTTP request to a vendor's API.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `POST`, `PUT` …
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The indices, in the slice given to [`Forwarder::build`], of the
    /// events this request carries: its outcome is theirs.
    pub events: Vec<usize>,
}

impl Request {
    /// A `POST` of `body` as JSON.
    pub fn post_json(url: impl Into<String>, body: &Json, events: Vec<usize>) -> Request {
        Request {
            method: "POST",
            url: url.into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            events,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The body as text (every vendor here takes text bodies).
    pub fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_default()
    }
}

/// What [`Forwarder::build`] made of a batch of events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Built {
    pub requests: Vec<Request>,
    /// Events this destination does not take, by index, with the reason
    /// (`not selected`, …): counted as filtered, never sent.
    pub skipped: Vec<(usize, String)>,
    /// Events that cannot be delivered as they are (a required field the
    /// vendor needs is missing): dead-lettered at once with the reason.
    pub rejected: Vec<(usize, String)>,
}

/// A vendor's answer, as the engine received it.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub status: u16,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Response<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<Json> {
        serde_json::from_slice(self.body).ok()
    }

    fn reason(&self) -> String {
        let body = String::from_utf8_lossy(self.body);
        let body: String = body.chars().take(300).collect();
        format!("HTTP {}: {}", self.status, body.trim())
    }
}

/// What an attempt came to, for the events of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered,
    /// Try again later: not before `after` when the vendor said so
    /// (`Retry-After`).
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Never going to work as it is: dead-lettered with the reason.
    Failed {
        reason: String,
    },
    /// The vendor's answer asks for another request, for the same events
    /// (Intercom's "contact exists" names the contact to update): send it;
    /// its outcome is theirs. Followed once, not from a follow-up.
    Then(Box<Request>),
}

/// How a destination wants its events grouped and paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Events in one call to [`Forwarder::build`] (the vendor's batch limit).
    pub max_events: usize,
    /// Bytes of Segment events in one call: the vendor's request limit,
    /// with room for its own encoding.
    pub max_bytes: usize,
    /// The least time between two requests (Slack: about one a second).
    pub min_interval: Duration,
}

impl Limits {
    pub const fn batch(max_events: usize, max_bytes: usize) -> Limits {
        Limits {
            max_events,
            max_bytes,
            min_interval: Duration::ZERO,
        }
    }
}

/// One destination's cloud mode.
pub trait Forwarder: Send + Sync {
    fn limits(&self, settings: &Settings) -> Limits;

    /// The requests for `events` (Segment's wire JSON, as stored, each of a
    /// call this destination accepts in cloud mode). Each event is in at
    /// most one request, or skipped, or rejected.
    fn build(&self, events: &[Json], settings: &Settings) -> Built;

    /// What a response means. The default is Segment's documented policy
    /// ([`standard`]); vendors that answer 200 to a failure, or a 4xx that
    /// is worth retrying, say so here.
    fn outcome(&self, _request: &Request, response: &Response<'_>) -> Outcome {
        standard(response)
    }
}

/// Segment's retry policy: 2xx delivered; 408, 429 and 5xx other than 501
/// and 505 retried (after `Retry-After` when given); any other status
/// failed at once.
pub fn standard(response: &Response<'_>) -> Outcome {
    match response.status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500 | 502..=504 | 506..=599 => Outcome::Retry {
            after: response.header("Retry-After").and_then(retry_after),
            reason: response.reason(),
        },
        _ => Outcome::Failed {
            reason: response.reason(),
        },
    }
}

/// A failure with the response kept as its reason.
pub fn failed(response: &Response<'_>, why: &str) -> Outcome {
    Outcome::Failed {
        reason: format!("{why}; {}", response.reason()),
    }
}

/// `Retry-After` as seconds (`"2"`, `"1.5"`) or an HTTP date.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// A string setting, or `default` when unset or empty.
pub fn setting<'a>(settings: &'a Settings, key: &str, default: &'a str) -> &'a str {
    settings
        .get(key)
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(default)
}

/// A base URL setting without its trailing slash, so paths can be appended.
pub fn base_url<'a>(settings: &'a Settings, key: &str, default: &'a str) -> &'a str {
    setting(settings, key, default).trim_end_matches('/')
}

/// `Authorization: Basic` of `user:password`.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// The lowercase hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// The lowercase hex HMAC-SHA256 of `body` with `secret`.
pub fn hmac_sha256_hex(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Milliseconds since the Unix epoch of an ISO 8601 date.
pub fn unix_millis(date: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(date)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// The event's `timestamp` (set by the server for every stored event) in
/// milliseconds since the Unix epoch.
pub fn event_millis(event: &Json) -> Option<i64> {
    event
        .get("timestamp")
        .and_then(Json::as_str)
        .and_then(unix_millis)
}

/// A string member of the event (`messageId`, `userId` …), non-empty;
/// numbers (numeric user ids) as their decimal text.
pub fn text(event: &Json, key: &str) -> Option<String> {
    match event.get(key)? {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An object member of the event (`properties`, `traits`, `context`),
/// empty when absent.
pub fn object(event: &Json, key: &str) -> Map<String, Json> {
    match event.get(key) {
        Some(Json::Object(map)) => map.clone(),
        _ => Map::new(),
    }
}

/// The event as device mode's [`Value`], so a cloud forwarder can share its
/// destination's device mapping (`mapping::map`) and turn the calls it makes
/// into the vendor's HTTP payloads.
pub fn to_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Number(n.as_f64().unwrap_or_default()),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        Json::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect())
        }
    }
}

/// The event as device mode's [`Value`] for its mapping, numeric user and
/// anonymous ids (some server libraries send them) as their text, as the
/// browser would have them.
pub fn event_value(event: &Json) -> Value {
    let mut event = event.clone();
    for key in ["userId", "anonymousId"] {
        if let Some(Json::Number(n)) = event.get(key) {
            event[key] = json!(n.to_string());
        }
    }
    to_value(&event)
}

/// The events analytics.js's classic integrations make of a screen call,
/// as `Event::viewed_page_events` of a page: `Viewed {category} Screen`,
/// then `Viewed {category} {name} Screen` (or `Viewed {name} Screen`).
pub fn viewed_screen_events(event: &Json) -> Vec<String> {
    let field = |key: &str| {
        text(event, key).or_else(|| {
            event
                .get("properties")
                .and_then(|p| p.get(key))
                .and_then(Json::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
    };
    let (category, name) = (field("category"), field("name"));
    let mut names = Vec::new();
    if let Some(category) = &category {
        names.push(format!("Viewed {category} Screen"));
    }
    match (&category, &name) {
        (Some(category), Some(name)) => names.push(format!("Viewed {category} {name} Screen")),
        (None, Some(name)) => names.push(format!("Viewed {name} Screen")),
        _ => {}
    }
    names
}

/// Packs each event's vendor items (`(event index, items)`) into requests
/// of at most `size` items, one event's items never split across two:
/// `(the events' indices, their items)` a request.
pub fn pack(parts: Vec<(usize, Vec<Json>)>, size: usize) -> Vec<(Vec<usize>, Vec<Json>)> {
    let mut out: Vec<(Vec<usize>, Vec<Json>)> = Vec::new();
    for (i, items) in parts {
        match out.last_mut() {
            Some((indices, batch)) if batch.len() + items.len() <= size => {
                indices.push(i);
                batch.extend(items);
            }
            _ => out.push((vec![i], items)),
        }
    }
    out
}

/// The settings as device mode's [`Value`].
pub fn settings_value(settings: &Settings) -> Value {
    to_value(&Json::Object(settings.clone()))
}

/// Device mode's [`Value`] as JSON: integral numbers stay integers.
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => json!(*n as i64),
        Value::Number(n) => json!(n),
        Value::String(s) => Json::String(s.clone()),
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Object(members) => Json::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(String, String)]) -> Outcome {
        standard(&Response {
            status,
            headers,
            body: b"{}",
        })
    }

    #[test]
    fn the_standard_policy_is_segments() {
        assert_eq!(response(200, &[]), Outcome::Delivered);
        assert_eq!(response(204, &[]), Outcome::Delivered);
        for status in [408, 429, 500, 502, 503, 504, 599] {
            assert!(
                matches!(response(status, &[]), Outcome::Retry { .. }),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 413, 422, 501, 505] {
            assert!(
                matches!(response(status, &[]), Outcome::Failed { .. }),
                "{status}"
            );
        }
        let after = [("retry-after".to_string(), "2".to_string())];
        assert!(matches!(
            response(429, &after),
            Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(2)
        ));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(retry_after("-1"), None);
        assert_eq!(retry_after("soon"), None);
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn digests_match_known_values() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256_hex("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn values_round_trip_with_integers_kept() {
        let event = json!({"a": 1, "b": 1.5, "c": [true, null, "x"], "d": {"e": -3}});
        assert_eq!(to_json(&to_value(&event)), event);
    }
}
