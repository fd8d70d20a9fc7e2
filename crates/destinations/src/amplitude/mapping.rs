//! Segment events to @amplitude/analytics-browser calls.
//!
//! Follows segmentio/analytics.js-integrations' `amplitude` (written for
//! the older amplitude-js, its calls translated to analytics-browser 2):
//! identify sets the user id and `$set`s each trait through an `Identify`;
//! track is `amplitude.track(event, properties)`, a `revenue` property also
//! set as the event's revenue (the classic integration's `logRevenueV2`,
//! here the event option Amplitude's HTTP API reads); page tracks `Viewed
//! {category} Page` and `Viewed {category} {name} Page`; group is
//! `setGroup('[Segment] Group', groupId)`, the classic default group type.
//!
//! An `Identify` is passed in the form analytics-browser's snippet builds
//! and the SDK replays (`{_q: [{name: 'set', args: [key, value]}]}`,
//! `convertProxyObjectToRealObject` in @amplitude/analytics-core), so it
//! needs no class from the page. What the SDK sends for these calls is in
//! the captured `vendor_amplitude-analytics-browser` requests.

use crate::device::{Call, Event, Value, first, setting};

/// `amplitude.init(apiKey, {serverZone, autocapture: false})`: page views
/// come from page calls, so the SDK's own are off.
pub fn init(settings: &Value) -> Vec<Call> {
    let server_url = match setting(settings, "serverUrl", "") {
        "" => Value::Null,
        url => Value::str(url),
    };
    vec![Call::new(
        "amplitude.init",
        vec![
            Value::str(setting(settings, "apiKey", "")),
            Value::object(vec![
                (
                    "serverZone",
                    Value::str(setting(settings, "serverZone", "US")),
                ),
                ("autocapture", Value::Bool(false)),
                // A proxy of the site's own: its address, and no remote
                // configuration from Amplitude's servers.
                ("serverUrl", server_url.clone()),
                (
                    "fetchRemoteConfig",
                    if server_url.is_null() {
                        Value::Null
                    } else {
                        Value::Bool(false)
                    },
                ),
            ]),
        ],
    )]
}

pub fn map(event: &Value, _settings: &Value) -> Vec<Call> {
    let event = Event::new(event);
    match event.kind {
        "identify" => {
            let mut calls = Vec::new();
            if let Some(id) = event.user_id {
                calls.push(Call::new("amplitude.setUserId", vec![Value::str(id)]));
            }
            let sets: Vec<Value> = event
                .traits()
                .members()
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    Value::object(vec![
                        ("name", Value::str("set")),
                        ("args", Value::Array(vec![Value::str(k), v.clone()])),
                    ])
                })
                .collect();
            if !sets.is_empty() {
                let identify = Value::object(vec![("_q", Value::Array(sets))]);
                calls.push(Call::new("amplitude.identify", vec![identify]));
            }
            calls
        }
        "track" => vec![track(&event, event.name())],
        "page" => event
            .viewed_page_events()
            .iter()
            .map(|name| track(&event, name))
            .collect(),
        "group" => match event.text("groupId") {
            Some(group) => vec![Call::new(
                "amplitude.setGroup",
                vec![Value::str("[Segment] Group"), Value::str(group)],
            )],
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// `amplitude.track(name, properties[, options])`, with the user id and any
/// revenue as event options.
fn track(event: &Event, name: &str) -> Call {
    let p = event.properties();
    let revenue = p.get("revenue").and_then(Value::as_f64);
    let mut options = Value::object(vec![("user_id", event.user_id.map_or(Value::Null, Value::str))]);
    if let Some(revenue) = revenue {
        options.set("revenue", Value::Number(revenue));
        options.set("price", first(&p, &["price"]));
        options.set("quantity", first(&p, &["quantity"]));
        options.set("productId", first(&p, &["productId", "product_id"]));
        options.set("revenueType", first(&p, &["revenueType", "revenue_type"]));
    }
    let mut args = vec![Value::str(name), p];
    if !options.members().is_empty() {
        args.push(options);
    }
    Call::new("amplitude.track", args)
}
