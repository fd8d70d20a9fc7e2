use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::{MAX_BATCH_BYTES, MAX_EVENT_BYTES, SpecError, time};

/// The six calls of Segment's spec: what the tracking API accepts, what a
/// destination's mode accepts in the catalog, what routing decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::Identify,
        EventType::Track,
        EventType::Page,
        EventType::Screen,
        EventType::Group,
        EventType::Alias,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Identify => "identify",
            EventType::Track => "track",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }

    /// The type named by a tracking path segment: the long form
    /// (`track`) or the browser's short form (`t`).
    pub fn from_path(segment: &str) -> Option<EventType> {
        Some(match segment {
            "identify" | "i" => EventType::Identify,
            "track" | "t" => EventType::Track,
            "page" | "p" => EventType::Page,
            "screen" | "s" => EventType::Screen,
            "group" | "g" => EventType::Group,
            "alias" | "a" => EventType::Alias,
            _ => return None,
        })
    }

    /// The type named by its long form (`track`).
    pub fn from_name(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// A connection mode: the browser calls the vendor's script (device), or
/// the server delivers to the vendor's API (cloud).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Device,
    Cloud,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Device, Mode::Cloud];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Device => "device",
            Mode::Cloud => "cloud",
        }
    }

    /// The mode named `device` or `cloud`.
    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// One event, validated and in its stored form.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub kind: EventType,
    pub message_id: String,
    /// The write key the body carried, if any (removed from `json`).
    pub write_key: Option<String>,
    /// The event as stored and later delivered: Segment's wire JSON with
    /// `messageId`, `receivedAt`, `timestamp` and `originalTimestamp` set.
    pub json: String,
}

/// A validated batch. All events are valid, or the batch is refused whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub write_key: Option<String>,
    pub events: Vec<Normalized>,
}

/// Parses the body of a single call (`/v1/track`, `/v1/t` ...). The path
/// decides the type.
pub fn parse_single(
    body: &[u8],
    kind: EventType,
    received_at: DateTime<Utc>,
) -> Result<Normalized, SpecError> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(SpecError::TooLarge {
            what: "event".into(),
            size: body.len(),
            limit: MAX_EVENT_BYTES,
        });
    }
    let value: Value = parse_json(body)?;
    let Value::Object(map) = value else {
        return Err(SpecError::NotAnObject {
            what: "body".into(),
        });
    };
    normalize(map, Some(kind), &Defaults::default(), received_at)
}

#[derive(Deserialize)]
struct RawBatch<'a> {
    #[serde(borrow)]
    batch: Option<Vec<&'a RawValue>>,
    #[serde(rename = "writeKey")]
    write_key: Option<Value>,
    #[serde(rename = "sentAt")]
    sent_at: Option<Value>,
    context: Option<Value>,
    integrations: Option<Value>,
}

/// Fields a batch sets for every event that does not set them itself.
#[derive(Default)]
struct Defaults {
    sent_at: Option<Value>,
    context: Option<Map<String, Value>>,
    integrations: Option<Map<String, Value>>,
}

/// Parses the body of `/v1/batch` (or `/v1/b`): `{batch: [...], writeKey?,
/// sentAt?, context?, integrations?}`.
pub fn parse_batch(body: &[u8], received_at: DateTime<Utc>) -> Result<Batch, SpecError> {
    if body.len() > MAX_BATCH_BYTES {
        return Err(SpecError::TooLarge {
            what: "batch".into(),
            size: body.len(),
            limit: MAX_BATCH_BYTES,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| SpecError::Malformed("not UTF-8".into()))?;
    if !text.trim_start().starts_with('{') {
        return Err(SpecError::NotAnObject {
            what: "body".into(),
        });
    }
    let raw: RawBatch<'_> =
        serde_json::from_str(text).map_err(|e| SpecError::Malformed(e.to_string()))?;
    let Some(items) = raw.batch else {
        return Err(SpecError::Missing {
            field: "batch".into(),
            hint: ": an array of events",
        });
    };
    let write_key = match raw.write_key {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(invalid("writeKey", "must be a string")),
    };
    let defaults = Defaults {
        sent_at: raw.sent_at,
        context: optional_object(raw.context, "context")?,
        integrations: optional_object(raw.integrations, "integrations")?,
    };
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let event = parse_batch_item(item, &defaults, received_at).map_err(|e| e.in_batch(i))?;
        events.push(event);
    }
    Ok(Batch { write_key, events })
}

fn parse_batch_item(
    item: &RawValue,
    defaults: &Defaults,
    received_at: DateTime<Utc>,
) -> Result<Normalized, SpecError> {
    let size = item.get().len();
    if size > MAX_EVENT_BYTES {
        return Err(SpecError::TooLarge {
            what: "event".into(),
            size,
            limit: MAX_EVENT_BYTES,
        });
    }
    match serde_json::from_str::<Value>(item.get()) {
        Ok(Value::Object(map)) => normalize(map, None, defaults, received_at),
        Ok(_) => Err(SpecError::NotAnObject {
            what: "event".into(),
        }),
        Err(e) => Err(SpecError::Malformed(e.to_string())),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, SpecError> {
    serde_json::from_slice(body).map_err(|e| SpecError::Malformed(e.to_string()))
}

fn invalid(field: &str, reason: &str) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn optional_object(
    value: Option<Value>,
    field: &str,
) -> Result<Option<Map<String, Value>>, SpecError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(invalid(field, "must be an object")),
    }
}

/// A non-empty string, or a number (some server libraries send numeric
/// user ids). `null` and absence are both `None`.
fn identity(map: &Map<String, Value>, field: &str) -> Result<Option<()>, SpecError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(_)) | Some(Value::Number(_)) => Ok(Some(())),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

fn required_string(
    map: &Map<String, Value>,
    field: &str,
    hint: &'static str,
) -> Result<(), SpecError> {
    match map.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
        Some(Value::Number(_)) if field != "event" => Ok(()),
        None | Some(Value::Null) => Err(SpecError::Missing {
            field: field.into(),
            hint,
        }),
        Some(Value::String(_)) => Err(invalid(field, "must not be empty")),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

fn date(map: &Map<String, Value>, field: &str) -> Result<Option<DateTime<Utc>>, SpecError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => time::parse(s)
            .map(Some)
            .ok_or_else(|| invalid(field, "must be an ISO-8601 date with a time zone")),
        Some(_) => Err(invalid(field, "must be an ISO-8601 date string")),
    }
}

fn normalize(
    mut map: Map<String, Value>,
    path_kind: Option<EventType>,
    defaults: &Defaults,
    received_at: DateTime<Utc>,
) -> Result<Normalized, SpecError> {
    let kind = match path_kind {
        Some(k) => k,
        None => match map.get("type") {
            Some(Value::String(t)) => EventType::from_name(t).ok_or_else(|| {
                invalid(
                    "type",
                    "must be one of identify, track, page, screen, group, alias",
                )
            })?,
            None | Some(Value::Null) => {
                return Err(SpecError::Missing {
                    field: "type".into(),
                    hint: ": identify, track, page, screen, group or alias",
                });
            }
            Some(_) => return Err(invalid("type", "must be a string")),
        },
    };
    map.insert("type".into(), Value::String(kind.as_str().into()));

    if identity(&map, "userId")?.is_none() && identity(&map, "anonymousId")?.is_none() {
        return Err(SpecError::Missing {
            field: "userId".into(),
            hint: " (or `anonymousId`)",
        });
    }
    match kind {
        EventType::Track => required_string(&map, "event", ": the name of the action")?,
        EventType::Group => required_string(&map, "groupId", "")?,
        EventType::Alias => required_string(&map, "previousId", "")?,
        _ => {}
    }
    for field in ["properties", "traits", "context", "integrations"] {
        match map.get(field) {
            Some(Value::Object(_)) | None => {}
            Some(Value::Null) => {
                map.remove(field);
            }
            Some(_) => return Err(invalid(field, "must be an object")),
        }
    }
    if let Some(ctx) = &defaults.context {
        let own = map
            .entry("context")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(own) = own {
            for (k, v) in ctx {
                own.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    if let Some(integrations) = &defaults.integrations {
        map.entry("integrations")
            .or_insert_with(|| Value::Object(integrations.clone()));
    }
    if !map.contains_key("sentAt")
        && let Some(sent_at) = &defaults.sent_at
    {
        map.insert("sentAt".into(), sent_at.clone());
    }

    let write_key = match map.remove("writeKey") {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };

    let message_id = match map.get("messageId") {
        Some(Value::String(s)) if !s.is_empty() => {
            if s.len() > 256 {
                return Err(invalid("messageId", "must be at most 256 characters"));
            }
            s.clone()
        }
        None | Some(Value::Null) => {
            let id = uuid::Uuid::new_v4().to_string();
            map.insert("messageId".into(), Value::String(id.clone()));
            id
        }
        Some(Value::String(_)) => return Err(invalid("messageId", "must not be empty")),
        Some(_) => return Err(invalid("messageId", "must be a string")),
    };

    // timestamp = receivedAt − (sentAt − originalTimestamp): the client's
    // clock may be wrong, but the interval it measured is trusted.
    let original = date(&map, "timestamp")?;
    let sent_at = date(&map, "sentAt")?;
    let timestamp = match (original, sent_at) {
        (Some(orig), Some(sent)) => received_at - (sent - orig),
        (Some(orig), None) => orig,
        (None, _) => received_at,
    };
    if let Some(orig) = map.remove("timestamp") {
        map.insert("originalTimestamp".into(), orig);
    }
    map.insert("timestamp".into(), Value::String(time::format(timestamp)));
    map.insert(
        "receivedAt".into(),
        Value::String(time::format(received_at)),
    );

    let json = serde_json::to_string(&map).map_err(|e| SpecError::Malformed(e.to_string()))?;
    Ok(Normalized {
        kind,
        message_id,
        write_key,
        json,
    })
}
