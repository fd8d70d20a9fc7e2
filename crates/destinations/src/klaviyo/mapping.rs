//! Segment events to klaviyo.js calls, through its `klaviyo.push([...])`
//! queue.
//!
//! Follows segmentio/analytics.js-integrations' `klaviyo` (written for
//! `_learnq`, whose commands `klaviyo.push` takes unchanged): identify is
//! `['identify', traits]` with Segment's traits renamed to Klaviyo's special
//! properties (`id` → `$id`, `email` → `$email`, `firstName` →
//! `$first_name`, `phone` → `$phone_number` …); track is `['track', event,
//! properties]` with `revenue` as `$value`, and for `Order Completed` the
//! `order_id` as `$event_id`, so a retried order counts once.

use crate::device::{Call, Event, Value, concat, rename, setting};

const SCRIPT_URL: &str = "https://static.klaviyo.com/onsite/js/klaviyo.js";

const TRAITS: &[(&str, &str)] = &[
    ("id", "$id"),
    ("email", "$email"),
    ("firstName", "$first_name"),
    ("lastName", "$last_name"),
    ("phone", "$phone_number"),
    ("title", "$title"),
    ("organization", "$organization"),
    ("city", "$city"),
    ("region", "$region"),
    ("country", "$country"),
    ("zip", "$zip"),
    ("avatar", "$image"),
];

/// klaviyo.js with the public API key as `?company_id=`.
pub fn script_url(settings: &Value) -> String {
    concat(&[
        setting(settings, "scriptUrl", SCRIPT_URL),
        "?company_id=",
        setting(settings, "publicApiKey", ""),
    ])
}

/// Nothing: klaviyo.js starts from its `company_id`.
pub fn init(_settings: &Value) -> Vec<Call> {
    Vec::new()
}

pub fn map(event: &Value, _settings: &Value) -> Vec<Call> {
    let event = Event::new(event);
    let push = |command: Vec<Value>| vec![Call::new("klaviyo.push", vec![Value::Array(command)])];
    match event.kind {
        "identify" => {
            let mut traits = rename(&event.traits(), TRAITS);
            if let Some(id) = event.user_id {
                traits.set("$id", Value::str(id));
            }
            push(vec![Value::str("identify"), traits])
        }
        "track" => {
            let mut p = rename(&event.properties(), &[("revenue", "$value")]);
            if event.name() == "Order Completed"
                && let Some(order) = p.get("order_id").cloned()
            {
                p.set("$event_id", order);
            }
            push(vec![Value::str("track"), Value::str(event.name()), p])
        }
        _ => Vec::new(),
    }
}
