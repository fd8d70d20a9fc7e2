//! Cloud mode: PostHog's capture API (posthog.com/docs/api/capture),
//! `POST {apiHost}/batch/` with `{api_key, batch}`; the project API key in
//! the body is the only auth. PostHog limits a request's body to 20 MB, not
//! its number of events; a request here takes up to 1,000 events. Each
//! event has `event`, `distinct_id` (the userId, else the anonymousId),
//! `timestamp` (the event's) and `uuid`, which PostHog dedupes on: the
//! messageId when it is a UUID, else a UUID made from the SHA-256 of the
//! messageId (version 8, RFC 9562's name-based form), so a resend is
//! always the same event. No `sent_at`: PostHog would shift the timestamps
//! by the time between it and its arrival, and a resend keeps its body.
//!
//! The events follow the device mapping (`mapping.rs`), as posthog-js sends
//! its calls: track is the event with its properties; page is `$pageview`
//! with the page's URL as `$current_url`; screen is `$screen` with
//! `$screen_name`; identify is `$identify` with the traits as `$set` and
//! the anonymousId as `$anon_distinct_id`, which merges the two, or, without
//! a userId, `$set`; group is `$groupidentify` of the group type `company`
//! (`$group_type`, `$group_key`, the traits as `$group_set`, and `$groups`);
//! alias is `$create_alias`, `distinct_id` the previousId and `alias` the
//! userId. The context's IP is `$ip`; without one, `$geoip_disable` keeps
//! PostHog from placing the user at this server.

use crate::cloud::{
    Built, Forwarder, Json, Limits, Map, Request, Settings, base_url, json, settings_value,
    sha256_hex, setting, text, to_json, to_value,
};
use crate::device::Call;

pub struct Cloud;

const DEFAULT_HOST: &str = "https://us.i.posthog.com";

/// Events in one request; PostHog's own limit is 20 MB of body.
const MAX_EVENTS: usize = 1000;

/// Segment's context, as PostHog's properties.
const FROM_CONTEXT: &[(&str, &str)] = &[
    ("$current_url", "/context/page/url"),
    ("$referrer", "/context/page/referrer"),
    ("$raw_user_agent", "/context/userAgent"),
    ("$app_version", "/context/app/version"),
    ("utm_source", "/context/campaign/source"),
    ("utm_medium", "/context/campaign/medium"),
    ("utm_campaign", "/context/campaign/name"),
    ("utm_term", "/context/campaign/term"),
    ("utm_content", "/context/campaign/content"),
];

impl Forwarder for Cloud {
    fn limits(&self, _settings: &Settings) -> Limits {
        Limits::batch(MAX_EVENTS, 16 << 20)
    }

    fn build(&self, events: &[Json], settings: &Settings) -> Built {
        let mapping_settings = settings_value(settings);
        let mut built = Built::default();
        let mut batch = Vec::new();
        let mut indices = Vec::new();
        for (i, event) in events.iter().enumerate() {
            match capture(event, &mapping_settings) {
                Ok(item) => {
                    batch.push(item);
                    indices.push(i);
                }
                Err(Refusal::Skip(why)) => built.skipped.push((i, why)),
                Err(Refusal::Reject(why)) => built.rejected.push((i, why)),
            }
        }
        let url = format!("{}/batch/", base_url(settings, "apiHost", DEFAULT_HOST));
        let key = setting(settings, "apiKey", "");
        for (batch, indices) in batch.chunks(MAX_EVENTS).zip(indices.chunks(MAX_EVENTS)) {
            let body = json!({ "api_key": key, "batch": batch });
            built
                .requests
                .push(Request::post_json(&url, &body, indices.to_vec()));
        }
        built
    }
}

enum Refusal {
    Skip(String),
    Reject(String),
}

/// The PostHog event of one Segment event.
fn capture(event: &Json, mapping_settings: &crate::device::Value) -> Result<Json, Refusal> {
    let kind = event.get("type").and_then(Json::as_str).unwrap_or_default();
    let user_id = text(event, "userId");
    let anonymous_id = text(event, "anonymousId");
    let Some(mut distinct_id) = user_id.clone().or_else(|| anonymous_id.clone()) else {
        return Err(Refusal::Reject(
            "PostHog needs a distinct_id: the event has neither userId nor anonymousId".into(),
        ));
    };
    if kind == "track" && text(event, "event").is_none() {
        return Err(Refusal::Reject("PostHog needs an event name".into()));
    }
    let calls = super::mapping::map(&to_value(event), mapping_settings);
    let (name, mut properties) = match kind {
        "track" | "page" => {
            let Some(call) = find(&calls, "posthog.capture") else {
                return Err(Refusal::Skip("nothing to capture".into()));
            };
            (arg(call, 0), object(arg(call, 1)))
        }
        "screen" => {
            let mut properties = object(event.get("properties").cloned().unwrap_or(Json::Null));
            let screen = text(event, "name").or_else(|| {
                properties
                    .get("name")
                    .and_then(Json::as_str)
                    .map(str::to_string)
            });
            if let Some(screen) = screen {
                properties.insert("$screen_name".into(), json!(screen));
            }
            (json!("$screen"), properties)
        }
        "identify" => {
            if let Some(call) = find(&calls, "posthog.identify") {
                let mut properties = Map::new();
                properties.insert("$set".into(), arg(call, 1));
                if let Some(anonymous) = anonymous_id.as_deref()
                    && Some(anonymous) != user_id.as_deref()
                {
                    properties.insert("$anon_distinct_id".into(), json!(anonymous));
                }
                (json!("$identify"), properties)
            } else if let Some(call) = find(&calls, "posthog.setPersonProperties") {
                let mut properties = Map::new();
                properties.insert("$set".into(), arg(call, 0));
                (json!("$set"), properties)
            } else {
                return Err(Refusal::Skip("nothing to identify".into()));
            }
        }
        "group" => {
            let Some(call) = find(&calls, "posthog.group") else {
                return Err(Refusal::Reject("a group call needs a groupId".into()));
            };
            let (group_type, group_key) = (arg(call, 0), arg(call, 1));
            let mut groups = Map::new();
            if let Some(group_type) = group_type.as_str() {
                groups.insert(group_type.into(), group_key.clone());
            }
            let mut properties = Map::new();
            properties.insert("$group_type".into(), group_type);
            properties.insert("$group_key".into(), group_key);
            properties.insert("$group_set".into(), arg(call, 2));
            properties.insert("$groups".into(), Json::Object(groups));
            (json!("$groupidentify"), properties)
        }
        "alias" => {
            let Some(call) = find(&calls, "posthog.alias") else {
                return match (user_id, text(event, "previousId")) {
                    (Some(_), Some(_)) => Err(Refusal::Skip(
                        "the alias is the id itself: nothing to merge".into(),
                    )),
                    _ => Err(Refusal::Reject("an alias needs a userId".into())),
                };
            };
            let alias = arg(call, 0);
            let original = match call.args.get(1) {
                Some(from) => to_json(from),
                None => match anonymous_id.as_deref() {
                    Some(anonymous) if Some(anonymous) != alias.as_str() => json!(anonymous),
                    _ => {
                        return Err(Refusal::Reject(
                            "an alias needs a previousId or an anonymousId".into(),
                        ));
                    }
                },
            };
            if let Some(original) = original.as_str() {
                distinct_id = original.to_string();
            }
            let mut properties = Map::new();
            properties.insert("distinct_id".into(), original);
            properties.insert("alias".into(), alias);
            (json!("$create_alias"), properties)
        }
        other => {
            return Err(Refusal::Skip(format!(
                "PostHog's cloud mode takes no {other} calls"
            )));
        }
    };
    let mut out = Map::new();
    for (key, pointer) in FROM_CONTEXT {
        if let Some(value) = event.pointer(pointer).and_then(Json::as_str)
            && !value.is_empty()
        {
            out.insert(key.to_string(), json!(value));
        }
    }
    out.append(&mut properties);
    match event.pointer("/context/ip").and_then(Json::as_str) {
        Some(ip) if !ip.is_empty() => out.insert("$ip".into(), json!(ip)),
        _ => out.insert("$geoip_disable".into(), json!(true)),
    };
    let mut item = Map::new();
    item.insert("event".into(), name);
    item.insert("distinct_id".into(), json!(distinct_id));
    item.insert("properties".into(), Json::Object(out));
    if let Some(timestamp) = event.get("timestamp").filter(|t| t.is_string()) {
        item.insert("timestamp".into(), timestamp.clone());
    }
    item.insert("uuid".into(), json!(uuid(event)));
    Ok(Json::Object(item))
}

/// The messageId when it is a UUID, else a version 8 UUID of its SHA-256
/// (of the whole event when it has no messageId).
fn uuid(event: &Json) -> String {
    let id = text(event, "messageId").unwrap_or_else(|| event.to_string());
    if is_uuid(&id) {
        return id.to_ascii_lowercase();
    }
    let hex = sha256_hex(&id);
    let hex = hex.as_bytes();
    // Version 8 in the 13th digit, the RFC 9562 variant (10xx) in the 17th.
    let variant = b"89ab"[usize::from(hex_value(hex[16]) & 3)];
    let mut digits: Vec<u8> = hex[..32].to_vec();
    digits[12] = b'8';
    digits[16] = variant;
    let digits = String::from_utf8(digits).unwrap_or_default();
    format!(
        "{}-{}-{}-{}-{}",
        &digits[..8],
        &digits[8..12],
        &digits[12..16],
        &digits[16..20],
        &digits[20..32]
    )
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => 0,
    }
}

/// `8-4-4-4-12` hexadecimal digits.
fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn find<'a>(calls: &'a [Call], function: &str) -> Option<&'a Call> {
    calls.iter().find(|c| c.function == function)
}

/// A call's argument as JSON, `null` when absent.
fn arg(call: &Call, at: usize) -> Json {
    call.args.get(at).map(to_json).unwrap_or(Json::Null)
}

fn object(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        _ => Map::new(),
    }
}
