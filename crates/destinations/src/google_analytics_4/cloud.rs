//! Cloud mode: Google Analytics 4's Measurement Protocol, as Google
//! documents it for web streams
//! (developers.google.com/analytics/devguides/collection/protocol/ga4), at
//! `apiHost` (`https://region1.google-analytics.com` collects in the EU).
//!
//! - `POST /mp/collect?measurement_id=G-…&api_secret=…`: the stream's
//!   measurement id and a Measurement Protocol API secret in the query, no
//!   other auth; a JSON body under 130 kB.
//! - A request carries at most 25 events, all of one user: `client_id` (the
//!   anonymousId, else the userId), `user_id` (the userId), and the
//!   context's `ip` and `userAgent` as `ip_override` and `user_agent`, from
//!   which GA4 derives location and device. A batch is grouped by those into
//!   as many requests as it takes. Each event carries its own
//!   `timestamp_micros` (its timestamp); the request's is its first event's.
//!   GA4 moves events older than 72 hours to 72 hours ago.
//! - Names and parameters follow the device mapping (`mapping.rs`): page is
//!   `page_view` (`page_location`, `page_title`, `page_referrer`),
//!   e-commerce spec events are GA4's recommended events (`Order Completed`
//!   → `purchase` with `transaction_id`, `value`, `currency`, `items` …),
//!   other events are custom events with their flat properties. As gtag.js
//!   does for every event, the context's page fills `page_location`,
//!   `page_referrer` and `page_title` where the mapping set none.
//!   `session_id` and `engagement_time_msec` are sent only where a custom
//!   event's properties have them: the mapping sets neither, and without
//!   them GA4 shows an event in no Realtime report and in no session.
//! - GA4's naming rules, which it enforces by dropping what breaks them:
//!   characters other than letters, digits and `_` in event and parameter
//!   names become `_`, names are cut to 40 characters; an event whose name
//!   does not start with a letter, is reserved (`session_start` …) or has a
//!   reserved prefix (`firebase_`, `ga_`, `google_`) is rejected, such a
//!   parameter left out. An event keeps its first 25 parameters and 200
//!   items; text values are cut to 100 characters (`page_location` 1,000,
//!   `page_referrer` 420, `page_title` 300); nested values but `items` are
//!   left out, as GA4 takes none, and booleans sent as text.
//! - There is no dedupe key: the Measurement Protocol has none, so an event
//!   sent twice (delivery is at least once: a retry after a lost answer)
//!   counts twice.
//! - Identify makes no event (the device mapping's user properties need
//!   one), so it is not part of cloud mode.

use crate::cloud::{
    Built, Forwarder, Json, Limits, Map, Outcome, Request, Response, Settings, base_url,
    event_millis, json, setting, settings_value, standard, text, to_json, to_value,
};
use crate::device::Value;

pub struct Cloud;

const DEFAULT_HOST: &str = "https://www.google-analytics.com";

/// Events in one request.
const MAX_EVENTS: usize = 25;
/// Parameters of one event.
const MAX_PARAMS: usize = 25;
/// Items of one event.
const MAX_ITEMS: usize = 200;
/// Characters of an event or parameter name.
const MAX_NAME: usize = 40;
/// Characters of a parameter's text value, but for the page's.
const MAX_VALUE: usize = 100;

/// Event names GA4 reserves, and those only app streams may send.
const RESERVED_EVENTS: &[&str] = &[
    "ad_activeview",
    "ad_click",
    "ad_exposure",
    "ad_impression",
    "ad_query",
    "ad_reward",
    "adunit_exposure",
    "app_clear_data",
    "app_exception",
    "app_install",
    "app_remove",
    "app_store_refund",
    "app_update",
    "app_upgrade",
    "dynamic_link_app_open",
    "dynamic_link_app_update",
    "dynamic_link_first_open",
    "error",
    "firebase_campaign",
    "firebase_in_app_message_action",
    "firebase_in_app_message_dismiss",
    "firebase_in_app_message_impression",
    "first_open",
    "first_visit",
    "in_app_purchase",
    "notification_dismiss",
    "notification_foreground",
    "notification_open",
    "notification_receive",
    "notification_send",
    "os_update",
    "screen_view",
    "session_start",
    "user_engagement",
];

/// Prefixes no event or parameter name may have (GA4 also reserves `_` and
/// `gtag.`, which a name starting with a letter, with `.` as `_`, cannot
/// have).
const RESERVED_PREFIXES: &[&str] = &["firebase_", "ga_", "google_"];

/// Parameter names GA4 reserves.
const RESERVED_PARAMS: &[&str] = &["firebase_conversion"];

/// The page parameters the context fills in, with their length limits.
const PAGE_PARAMS: &[(&str, &str, usize)] = &[
    ("page_location", "/context/page/url", 1000),
    ("page_referrer", "/context/page/referrer", 420),
    ("page_title", "/context/page/title", 300),
];

/// Who a request is about: every event in it shares these.
#[derive(PartialEq)]
struct Who {
    client_id: String,
    user_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
}

/// An event of a request: its index in the batch, the event, its time in
/// microseconds.
type Part = (usize, Json, i64);

enum Refusal {
    Skip(String),
    Reject(String),
}

impl Forwarder for Cloud {
    fn limits(&self, _settings: &Settings) -> Limits {
        // A batch may hold several users, each a request of up to 25 events.
        // A request's GA4 payload is no larger than its events' Segment
        // JSON, so a batch under 120 kB keeps every request under 130 kB.
        Limits::batch(100, 120_000)
    }

    fn build(&self, events: &[Json], settings: &Settings) -> Built {
        let mapping_settings = settings_value(settings);
        let mut built = Built::default();
        let mut groups: Vec<(Who, Vec<Part>)> = Vec::new();
        for (i, event) in events.iter().enumerate() {
            match mp_event(event, &mapping_settings) {
                Ok((who, item, micros)) => match groups.iter_mut().find(|(w, _)| *w == who) {
                    Some((_, items)) => items.push((i, item, micros)),
                    None => groups.push((who, vec![(i, item, micros)])),
                },
                Err(Refusal::Skip(why)) => built.skipped.push((i, why)),
                Err(Refusal::Reject(why)) => built.rejected.push((i, why)),
            }
        }
        let url = format!(
            "{}/mp/collect?measurement_id={}&api_secret={}",
            base_url(settings, "apiHost", DEFAULT_HOST),
            query_escape(setting(settings, "measurementId", "")),
            query_escape(setting(settings, "apiSecret", "")),
        );
        for (who, items) in groups {
            for chunk in items.chunks(MAX_EVENTS) {
                let mut body = Map::new();
                body.insert("client_id".into(), json!(who.client_id));
                if let Some(user_id) = &who.user_id {
                    body.insert("user_id".into(), json!(user_id));
                }
                if let Some(ip) = &who.ip {
                    body.insert("ip_override".into(), json!(ip));
                }
                if let Some(user_agent) = &who.user_agent {
                    body.insert("user_agent".into(), json!(user_agent));
                }
                if let Some((_, _, micros)) = chunk.first() {
                    body.insert("timestamp_micros".into(), json!(micros));
                }
                let events = chunk.iter().map(|(_, item, _)| item.clone()).collect();
                body.insert("events".into(), Json::Array(events));
                let indices = chunk.iter().map(|(i, _, _)| *i).collect();
                built
                    .requests
                    .push(Request::post_json(&url, &Json::Object(body), indices));
            }
        }
        built
    }

    /// Segment's policy. The Measurement Protocol answers 2xx to every
    /// request it receives, also to one whose events it then drops (a name
    /// or value against its rules), so a 2xx says only that the request
    /// arrived; `/debug/mp/collect` answers the same body with its
    /// validation messages, for checking by hand. Any other status is an
    /// HTTP-level problem that Google says not to retry as it is, but 429
    /// and 5xx are retried as for every destination.
    fn outcome(&self, _request: &Request, response: &Response<'_>) -> Outcome {
        standard(response)
    }
}

/// One Segment event as a Measurement Protocol event, with who it is about
/// and its time in microseconds.
fn mp_event(event: &Json, mapping_settings: &Value) -> Result<(Who, Json, i64), Refusal> {
    let kind = event.get("type").and_then(Json::as_str).unwrap_or_default();
    if kind != "track" && kind != "page" {
        return Err(Refusal::Skip(format!(
            "GA4's cloud mode takes no {kind} calls"
        )));
    }
    let user_id = text(event, "userId");
    let Some(client_id) = text(event, "anonymousId").or_else(|| user_id.clone()) else {
        return Err(Refusal::Reject(
            "GA4 needs a client_id: the event has neither anonymousId nor userId".into(),
        ));
    };
    let Some(millis) = event_millis(event) else {
        return Err(Refusal::Reject("the event has no valid timestamp".into()));
    };
    let calls = super::mapping::map(&to_value(event), mapping_settings);
    let Some((name, params)) = calls.iter().find_map(|c| match c.args.as_slice() {
        [kind, name, params] if kind.as_str() == Some("event") => {
            Some((name.as_str().unwrap_or_default(), params))
        }
        _ => None,
    }) else {
        return Err(Refusal::Reject("the event maps to no GA4 event".into()));
    };
    let name = clean_name(name);
    if name.is_empty() {
        return Err(Refusal::Reject("GA4 needs an event name".into()));
    }
    if !name.chars().next().is_some_and(char::is_alphabetic) {
        return Err(Refusal::Reject(format!(
            "GA4 refuses the event name {name:?}: it must start with a letter"
        )));
    }
    if RESERVED_EVENTS.contains(&name.as_str()) || reserved_prefix(&name) {
        return Err(Refusal::Reject(format!(
            "GA4 reserves the event name {name:?}"
        )));
    }
    let mut out = ga_params(params);
    for (param, pointer, limit) in PAGE_PARAMS {
        if out.len() < MAX_PARAMS && !out.contains_key(*param) {
            let value = event.pointer(pointer).and_then(Json::as_str);
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                out.insert(param.to_string(), json!(truncate(value, *limit)));
            }
        }
    }
    let micros = millis * 1000;
    let mut item = Map::new();
    item.insert("name".into(), json!(name));
    if !out.is_empty() {
        item.insert("params".into(), Json::Object(out));
    }
    item.insert("timestamp_micros".into(), json!(micros));
    let context_text = |pointer: &str| {
        event
            .pointer(pointer)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let who = Who {
        client_id,
        user_id,
        ip: context_text("/context/ip"),
        user_agent: context_text("/context/userAgent"),
    };
    Ok((who, Json::Object(item), micros))
}

/// The mapping's parameters under GA4's rules: valid names, the first 25,
/// flat values but `items`.
fn ga_params(params: &Value) -> Map<String, Json> {
    let mut out = Map::new();
    for (key, value) in params.members() {
        if out.len() == MAX_PARAMS {
            break;
        }
        let Some(name) = param_name(key) else {
            continue;
        };
        let value = if name == "items" {
            items(value)
        } else {
            let limit = PAGE_PARAMS
                .iter()
                .find(|(param, _, _)| *param == name)
                .map_or(MAX_VALUE, |(_, _, limit)| *limit);
            flat(value, limit)
        };
        if let Some(value) = value {
            out.entry(name).or_insert(value);
        }
    }
    out
}

/// `items` as GA4 takes them: objects of flat values, at most 200.
fn items(value: &Value) -> Option<Json> {
    let items: Vec<Json> = value
        .as_array()
        .iter()
        .take(MAX_ITEMS)
        .map(|item| {
            let mut out = Map::new();
            for (key, value) in item.members() {
                if let (Some(name), Some(value)) = (param_name(key), flat(value, MAX_VALUE)) {
                    out.entry(name).or_insert(value);
                }
            }
            Json::Object(out)
        })
        .collect();
    (!items.is_empty()).then_some(Json::Array(items))
}

/// A parameter's value: text cut to `limit` characters, numbers as they
/// are, booleans as text; nothing for other values.
fn flat(value: &Value, limit: usize) -> Option<Json> {
    match value {
        Value::String(s) => Some(json!(truncate(s, limit))),
        Value::Number(_) => Some(to_json(value)),
        Value::Bool(b) => Some(json!(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// A parameter name under GA4's rules, or `None` when GA4 would drop it.
fn param_name(key: &str) -> Option<String> {
    let name = clean_name(key);
    let valid = name.chars().next().is_some_and(char::is_alphabetic)
        && !reserved_prefix(&name)
        && !RESERVED_PARAMS.contains(&name.as_str());
    valid.then_some(name)
}

/// Letters, digits and `_` only, at most 40 characters.
fn clean_name(raw: &str) -> String {
    raw.trim()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .take(MAX_NAME)
        .collect()
}

fn reserved_prefix(name: &str) -> bool {
    let lower = name.to_lowercase();
    RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
}

fn truncate(s: &str, limit: usize) -> String {
    s.chars().take(limit).collect()
}

/// A query parameter's value, percent-encoded but for unreserved
/// characters.
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
