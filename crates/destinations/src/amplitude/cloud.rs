//! Cloud mode: Amplitude's HTTP V2 API (amplitude.com/docs/apis/analytics/
//! http-v2), `POST {apiHost}/2/httpapi` with `{api_key, events,
//! options?}`; the API key in the body is the only auth. The host is
//! `https://api2.amplitude.com`, or `https://api.eu.amplitude.com` for the
//! EU server zone unless `apiHost` was changed (a proxy). A request takes
//! up to 2,000 events and under 1 MB. Each event has `user_id` (the userId)
//! and `device_id` (the anonymousId), `time` in milliseconds and
//! `insert_id`, which Amplitude dedupes on for 7 days: the messageId, with
//! `-1`, `-2` … after it for the further events one call makes (a page's
//! second event), so a resend is always the same events. `minIdLength`
//! becomes `options.min_id_length` (Amplitude drops ids shorter than 5
//! characters otherwise).
//!
//! The events follow the device mapping (`mapping.rs`): track is the event
//! with its properties, a `revenue` property also the event's `revenue`,
//! `price`, `quantity`, `productId` and `revenueType`; page is `Viewed
//! {category} Page` and `Viewed {category} {name} Page`, and screen
//! likewise `Viewed … Screen`; identify is an `$identify` event `$set`ting
//! each trait; group is the `$identify` that `setGroup('[Segment] Group',
//! groupId)` sends (`groups` and the user property), and, when the call has
//! traits, a `$groupidentify` `$set`ting them on the group. Segment's
//! context gives Amplitude's `ip`, `language`, `os_name`, `os_version`,
//! `device_manufacturer`, `device_model`, `app_version`, `carrier`,
//! `country`, `city`, and `session_id` comes from `integrations.Amplitude`.
//!
//! Answers: 200 `{"code": 200, "events_ingested": N, …}`; 400 (invalid
//! events or API key) and 413 (too large; the byte limit keeps batches
//! under it, so it means one event alone is) fail; 429 waits 30 s, as
//! Amplitude asks of a throttled user or device, unless `Retry-After` says
//! otherwise; 5xx are retried.

use std::time::Duration;

use crate::cloud::{pack, viewed_screen_events, 
    Built, Forwarder, Json, Limits, Map, Outcome, Request, Response, Settings, base_url,
    event_millis, json, setting, settings_value, standard, text, to_json, to_value,
};
use crate::device::{Call, Value};

pub struct Cloud;

const US_HOST: &str = "https://api2.amplitude.com";
const EU_HOST: &str = "https://api.eu.amplitude.com";

/// Events in one request.
const MAX_EVENTS: usize = 2000;

/// How long Amplitude asks a throttled user or device to wait.
const THROTTLED: Duration = Duration::from_secs(30);

/// Segment's context, as Amplitude's event fields.
const FROM_CONTEXT: &[(&str, &str)] = &[
    ("ip", "/context/ip"),
    ("language", "/context/locale"),
    ("os_name", "/context/os/name"),
    ("os_version", "/context/os/version"),
    ("device_manufacturer", "/context/device/manufacturer"),
    ("device_model", "/context/device/model"),
    ("app_version", "/context/app/version"),
    ("carrier", "/context/network/carrier"),
    ("country", "/context/location/country"),
    ("city", "/context/location/city"),
];

/// Revenue fields of the mapping's track options, as Amplitude names them.
const REVENUE: &[&str] = &["revenue", "price", "quantity", "productId", "revenueType"];

fn endpoint(settings: &Settings) -> String {
    let host = base_url(settings, "apiHost", US_HOST);
    let host = if host == US_HOST && setting(settings, "serverZone", "US") == "EU" {
        EU_HOST
    } else {
        host
    };
    format!("{host}/2/httpapi")
}

impl Forwarder for Cloud {
    fn limits(&self, _settings: &Settings) -> Limits {
        // A page or group call can make two events; Segment's events carry
        // more context than Amplitude's, so this stays under 1 MB.
        Limits::batch(MAX_EVENTS / 2, 450_000)
    }

    fn build(&self, events: &[Json], settings: &Settings) -> Built {
        let mapping_settings = settings_value(settings);
        let mut built = Built::default();
        let mut parts = Vec::new();
        for (i, event) in events.iter().enumerate() {
            match amplitude_events(event, &mapping_settings) {
                Ok(items) => parts.push((i, items)),
                Err(Refusal::Skip(why)) => built.skipped.push((i, why)),
                Err(Refusal::Reject(why)) => built.rejected.push((i, why)),
            }
        }
        let url = endpoint(settings);
        let options = settings
            .get("minIdLength")
            .and_then(Json::as_f64)
            .filter(|n| *n >= 1.0)
            .map(|n| json!({ "min_id_length": n as i64 }));
        for (indices, items) in pack(parts, MAX_EVENTS) {
            let mut body = Map::new();
            body.insert("api_key".into(), json!(setting(settings, "apiKey", "")));
            body.insert("events".into(), Json::Array(items));
            if let Some(options) = &options {
                body.insert("options".into(), options.clone());
            }
            built
                .requests
                .push(Request::post_json(&url, &Json::Object(body), indices));
        }
        built
    }

    fn outcome(&self, _request: &Request, response: &Response<'_>) -> Outcome {
        match standard(response) {
            Outcome::Retry {
                after: None,
                reason,
            } if response.status == 429 => Outcome::Retry {
                after: Some(THROTTLED),
                reason,
            },
            outcome => outcome,
        }
    }
}

enum Refusal {
    Skip(String),
    Reject(String),
}

/// The Amplitude events of one Segment event.
fn amplitude_events(event: &Json, mapping_settings: &Value) -> Result<Vec<Json>, Refusal> {
    let kind = event.get("type").and_then(Json::as_str).unwrap_or_default();
    let user_id = text(event, "userId");
    let device_id = text(event, "anonymousId");
    if user_id.is_none() && device_id.is_none() {
        return Err(Refusal::Reject(
            "Amplitude needs a user_id or device_id: the event has neither userId nor anonymousId"
                .into(),
        ));
    }
    let Some(millis) = event_millis(event) else {
        return Err(Refusal::Reject("the event has no valid timestamp".into()));
    };
    if kind == "track" && text(event, "event").is_none() {
        return Err(Refusal::Reject("Amplitude needs an event name".into()));
    }
    // The fields every event of this call shares.
    let mut common = Map::new();
    for (key, pointer) in FROM_CONTEXT {
        if let Some(value) = event.pointer(pointer).and_then(Json::as_str)
            && !value.is_empty()
        {
            common.insert(key.to_string(), json!(value));
        }
    }
    if let Some(session) = event
        .pointer("/integrations/Amplitude/session_id")
        .filter(|s| s.is_number())
    {
        common.insert("session_id".into(), session.clone());
    }
    if let Some(user_id) = &user_id {
        common.insert("user_id".into(), json!(user_id));
    }
    if let Some(device_id) = &device_id {
        common.insert("device_id".into(), json!(device_id));
    }
    common.insert("time".into(), json!(millis));

    let calls = super::mapping::map(&to_value(event), mapping_settings);
    let mut items: Vec<Map<String, Json>> = Vec::new();
    match kind {
        "track" | "page" => {
            for call in calls.iter().filter(|c| c.function == "amplitude.track") {
                let mut item = Map::new();
                item.insert("event_type".into(), arg(call, 0));
                item.insert("event_properties".into(), arg(call, 1));
                if let Json::Object(options) = arg(call, 2) {
                    for key in REVENUE {
                        if let Some(value) = options.get(*key) {
                            item.insert(key.to_string(), value.clone());
                        }
                    }
                }
                items.push(item);
            }
            if items.is_empty() {
                return Err(Refusal::Skip(
                    "a page without a name or category makes no Amplitude event, as in device mode"
                        .into(),
                ));
            }
        }
        "screen" => {
            let properties = event.get("properties").cloned().unwrap_or(json!({}));
            for name in viewed_screen_events(event) {
                let mut item = Map::new();
                item.insert("event_type".into(), json!(name));
                item.insert("event_properties".into(), properties.clone());
                items.push(item);
            }
            if items.is_empty() {
                return Err(Refusal::Skip(
                    "a screen without a name or category makes no Amplitude event".into(),
                ));
            }
        }
        "identify" => {
            let set: Map<String, Json> = calls
                .iter()
                .filter(|c| c.function == "amplitude.identify")
                .flat_map(identify_sets)
                .collect();
            if set.is_empty() {
                return Err(Refusal::Skip(
                    "an identify without traits has no user properties for Amplitude".into(),
                ));
            }
            let mut item = Map::new();
            item.insert("event_type".into(), json!("$identify"));
            item.insert("user_properties".into(), json!({ "$set": set }));
            items.push(item);
        }
        "group" => {
            let Some(call) = calls.iter().find(|c| c.function == "amplitude.setGroup") else {
                return Err(Refusal::Reject("a group call needs a groupId".into()));
            };
            let (Some(group_type), group) = (arg(call, 0).as_str().map(str::to_string), arg(call, 1))
            else {
                return Err(Refusal::Reject("a group call needs a groupId".into()));
            };
            let mut groups = Map::new();
            groups.insert(group_type, group);
            let groups = Json::Object(groups);
            let mut item = Map::new();
            item.insert("event_type".into(), json!("$identify"));
            item.insert("groups".into(), groups.clone());
            item.insert("user_properties".into(), json!({ "$set": groups }));
            items.push(item);
            if let Some(Json::Object(traits)) = event.get("traits")
                && !traits.is_empty()
            {
                let mut item = Map::new();
                item.insert("event_type".into(), json!("$groupidentify"));
                item.insert("groups".into(), groups);
                item.insert("group_properties".into(), json!({ "$set": traits }));
                items.push(item);
            }
        }
        other => {
            return Err(Refusal::Skip(format!(
                "Amplitude's cloud mode takes no {other} calls"
            )));
        }
    }
    let message_id = text(event, "messageId");
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(n, mut item)| {
            item.extend(common.clone());
            if let Some(id) = &message_id {
                let id = if n == 0 {
                    id.clone()
                } else {
                    format!("{id}-{n}")
                };
                item.insert("insert_id".into(), json!(id));
            }
            Json::Object(item)
        })
        .collect())
}

/// The `(trait, value)` pairs of the mapping's `Identify` (`{_q: [{name:
/// 'set', args: [key, value]}]}`).
fn identify_sets(call: &Call) -> Vec<(String, Json)> {
    let queue = call
        .args
        .first()
        .and_then(|identify| identify.get("_q"))
        .map(Value::as_array)
        .unwrap_or_default();
    queue
        .iter()
        .filter(|op| op.get("name").and_then(Value::as_str) == Some("set"))
        .filter_map(|op| {
            let args = op.get("args")?.as_array();
            Some((args.first()?.as_str()?.to_string(), to_json(args.get(1)?)))
        })
        .collect()
}


/// A call's argument as JSON, `null` when absent.
fn arg(call: &Call, at: usize) -> Json {
    call.args.get(at).map(to_json).unwrap_or(Json::Null)
}
