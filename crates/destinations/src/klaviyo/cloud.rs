//! Cloud mode: Klaviyo's server-side API (developers.klaviyo.com/en/
//! reference), one event per request, at `apiHost` (`https://a.klaviyo.com`).
//! Every request carries `Authorization: Klaviyo-API-Key {privateApiKey}`,
//! the dated `revision` header (the `revision` setting) and JSON:API bodies
//! (`application/vnd.api+json`).
//!
//! - Track is Create Event, `POST /api/events` (up to 5 MB, 400
//!   properties): `{data: {type: "event", attributes: {properties, time,
//!   value?, value_currency?, unique_id, metric, profile}}}`. It follows the
//!   device mapping (`mapping.rs`): the metric is the event's name as it is
//!   (`Order Completed` stays `Order Completed`, as in device mode), the
//!   properties are the mapping's, with its `$value` (the revenue) as the
//!   event's `value` and `currency` as `value_currency`. `unique_id`, which
//!   Klaviyo dedupes on per profile and metric, is the mapping's `$event_id`
//!   (an order's `order_id`, so an order sent twice counts once) or else the
//!   messageId, so a resend is always the same event. The profile is found
//!   by `external_id` (the userId), `anonymous_id` (the anonymousId), and
//!   the `email` and `phone_number` of the context's traits (else the
//!   properties'); an event with none of them is rejected.
//! - Identify is Create or Update Profile, `POST /api/profile-import` (up to
//!   100 KB): the mapping's special properties as Klaviyo's profile
//!   attributes (`$id` → `external_id`, `$email` → `email`, `$phone_number`
//!   → `phone_number`, `$first_name`, `$last_name`, `$title`,
//!   `$organization`, `$image`; `$city`, `$region`, `$country`, `$zip` in
//!   `location`) and every other trait in `properties`. Klaviyo needs an
//!   email, a phone number or an external id to import a profile (it takes
//!   no anonymous id there); without one the identify is rejected.
//!
//! Answers: 202 (events) and 200 or 201 (profiles) are delivered; 400 with
//! `{"errors": [...]}`, 401 and 403 fail; 429 (after `Retry-After`) and 5xx
//! are retried. Klaviyo's bulk endpoints (Bulk Create Events, Bulk Import
//! Profiles) are asynchronous jobs whose items can fail after the answer,
//! so they are not used.

use crate::cloud::{event_value, 
    Built, Forwarder, Json, Limits, Map, Request, Settings, base_url, json, setting,
    settings_value, text, to_json, unix_millis,
};
use crate::device::Value;

pub struct Cloud;

const DEFAULT_HOST: &str = "https://a.klaviyo.com";
const DEFAULT_REVISION: &str = "2026-10-15";
const JSON_API: &str = "application/vnd.api+json";

/// Bytes of one Create Event request, and of one profile import.
const MAX_EVENT_BYTES: usize = 5_000_000;
const MAX_PROFILE_BYTES: usize = 100_000;

/// The mapping's special profile properties, as the API's attributes.
const PROFILE: &[(&str, &str)] = &[
    ("$id", "external_id"),
    ("$email", "email"),
    ("$phone_number", "phone_number"),
    ("$first_name", "first_name"),
    ("$last_name", "last_name"),
    ("$title", "title"),
    ("$organization", "organization"),
    ("$image", "image"),
];

/// The mapping's location properties, as the API's `location`.
const LOCATION: &[(&str, &str)] = &[
    ("$city", "city"),
    ("$region", "region"),
    ("$country", "country"),
    ("$zip", "zip"),
];

enum Refusal {
    Skip(String),
    Reject(String),
}

impl Forwarder for Cloud {
    fn limits(&self, _settings: &Settings) -> Limits {
        Limits::batch(1, MAX_EVENT_BYTES)
    }

    fn build(&self, events: &[Json], settings: &Settings) -> Built {
        let mapping_settings = settings_value(settings);
        let base = base_url(settings, "apiHost", DEFAULT_HOST);
        let mut built = Built::default();
        for (i, event) in events.iter().enumerate() {
            match body(event, &mapping_settings) {
                Ok((path, body)) => {
                    built.requests.push(request(settings, base, path, &body, i));
                }
                Err(Refusal::Skip(why)) => built.skipped.push((i, why)),
                Err(Refusal::Reject(why)) => built.rejected.push((i, why)),
            }
        }
        built
    }
}

fn request(settings: &Settings, base: &str, path: &str, body: &Json, index: usize) -> Request {
    let key = setting(settings, "privateApiKey", "");
    Request {
        method: "POST",
        url: format!("{base}{path}"),
        headers: vec![
            ("Authorization".into(), format!("Klaviyo-API-Key {key}")),
            (
                "revision".into(),
                setting(settings, "revision", DEFAULT_REVISION).to_string(),
            ),
            ("Accept".into(), JSON_API.into()),
            ("Content-Type".into(), JSON_API.into()),
        ],
        body: body.to_string().into_bytes(),
        events: vec![index],
    }
}

/// The path and body of the request an event becomes.
fn body(event: &Json, mapping_settings: &Value) -> Result<(&'static str, Json), Refusal> {
    let kind = event.get("type").and_then(Json::as_str).unwrap_or_default();
    if kind != "track" && kind != "identify" {
        return Err(Refusal::Skip(format!(
            "Klaviyo's cloud mode does not take {kind:?} calls"
        )));
    }
    // The mapping's one call: `klaviyo.push([command, …])`.
    let command: Vec<Json> = super::mapping::map(&event_value(event), mapping_settings)
        .first()
        .and_then(|c| c.args.first())
        .map(to_json)
        .and_then(|c| c.as_array().cloned())
        .unwrap_or_default();
    let (path, body, limit) = if kind == "track" {
        ("/api/events", track(event, &command)?, MAX_EVENT_BYTES)
    } else {
        ("/api/profile-import", identify(&command)?, MAX_PROFILE_BYTES)
    };
    let size = body.to_string().len();
    if size > limit {
        return Err(Refusal::Reject(format!(
            "Klaviyo takes at most {limit} bytes at {path}; this request is {size}"
        )));
    }
    Ok((path, body))
}

fn track(event: &Json, command: &[Json]) -> Result<Json, Refusal> {
    let name = command.get(1).and_then(Json::as_str).unwrap_or_default();
    if name.is_empty() {
        return Err(Refusal::Reject("Klaviyo needs an event name".to_string()));
    }
    if name.chars().count() >= 128 {
        return Err(Refusal::Reject(
            "Klaviyo's metric names are shorter than 128 characters".to_string(),
        ));
    }
    let time = event
        .get("timestamp")
        .and_then(Json::as_str)
        .filter(|t| unix_millis(t).is_some());
    let Some(time) = time else {
        return Err(Refusal::Reject("the event has no valid timestamp".to_string()));
    };
    let mut properties = match command.get(2) {
        Some(Json::Object(p)) => p.clone(),
        _ => Map::new(),
    };
    let profile = event_profile(event, &properties)?;
    let mut attributes = Map::new();
    match properties.remove("$value") {
        Some(value @ Json::Number(_)) => {
            attributes.insert("value".into(), value);
            if let Some(currency) = properties.get("currency").filter(|c| c.is_string()) {
                attributes.insert("value_currency".into(), currency.clone());
            }
        }
        Some(other) => {
            properties.insert("$value".into(), other);
        }
        None => {}
    }
    let unique_id = match properties.remove("$event_id") {
        Some(Json::String(id)) if !id.is_empty() => Some(id),
        Some(Json::Number(n)) => Some(n.to_string()),
        _ => text(event, "messageId"),
    };
    if let Some(id) = unique_id {
        attributes.insert("unique_id".into(), json!(id));
    }
    attributes.insert("properties".into(), Json::Object(properties));
    attributes.insert("time".into(), json!(time));
    attributes.insert(
        "metric".into(),
        json!({ "data": { "type": "metric", "attributes": { "name": name } } }),
    );
    attributes.insert(
        "profile".into(),
        json!({ "data": { "type": "profile", "attributes": profile } }),
    );
    Ok(json!({ "data": { "type": "event", "attributes": attributes } }))
}

/// The identifiers that find an event's profile.
fn event_profile(event: &Json, properties: &Map<String, Json>) -> Result<Json, Refusal> {
    let traits = event
        .pointer("/context/traits")
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    let from = |key: &str| {
        [traits.get(key), properties.get(key)]
            .into_iter()
            .flatten()
            .find_map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_string))
    };
    let mut profile = Map::new();
    for (attribute, value) in [
        ("email", from("email")),
        ("phone_number", from("phone")),
        ("external_id", text(event, "userId")),
        ("anonymous_id", text(event, "anonymousId")),
    ] {
        if let Some(value) = value {
            profile.insert(attribute.into(), json!(value));
        }
    }
    if profile.is_empty() {
        return Err(Refusal::Reject(
            "Klaviyo needs an email, phone number, userId or anonymousId for the event's profile"
                .to_string(),
        ));
    }
    Ok(Json::Object(profile))
}

fn identify(command: &[Json]) -> Result<Json, Refusal> {
    let traits = match command.get(1) {
        Some(Json::Object(t)) => t.clone(),
        _ => Map::new(),
    };
    let mut attributes = Map::new();
    let mut location = Map::new();
    let mut properties = Map::new();
    for (key, value) in traits {
        if let Some((_, to)) = PROFILE.iter().find(|(from, _)| *from == key) {
            let value = match value {
                // Klaviyo's external ids are strings; numeric user ids too.
                Json::Number(n) if *to == "external_id" => json!(n.to_string()),
                other => other,
            };
            attributes.insert((*to).into(), value);
        } else if let Some((_, to)) = LOCATION.iter().find(|(from, _)| *from == key) {
            location.insert((*to).into(), value);
        } else {
            properties.insert(key, value);
        }
    }
    let identified = ["email", "phone_number", "external_id"]
        .iter()
        .any(|k| attributes.get(*k).is_some_and(|v| !v.is_null()));
    if !identified {
        return Err(Refusal::Reject(
            "Klaviyo imports a profile by email, phone number or userId, and this identify has none"
                .to_string(),
        ));
    }
    if !location.is_empty() {
        attributes.insert("location".into(), Json::Object(location));
    }
    if !properties.is_empty() {
        attributes.insert("properties".into(), Json::Object(properties));
    }
    Ok(json!({ "data": { "type": "profile", "attributes": attributes } }))
}

