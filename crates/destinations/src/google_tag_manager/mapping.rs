//! Segment events to `dataLayer.push` for Google Tag Manager.
//!
//! Follows segmentio/analytics.js-integrations' `google-tag-manager`: a
//! track pushes its properties with `event` set to the event's name and
//! `userId`/`segmentAnonymousId` added; a page pushes `Viewed {category}
//! Page` and `Viewed {category} {name} Page` the same way (its defaults
//! `trackCategorizedPages` and `trackNamedPages`). That integration has no
//! identify; here an identify pushes the traits with `event: "identify"`,
//! so a tag can fire on it.

use crate::device::{Call, Event, NOW_MS, Value, concat, setting};

const SCRIPT_URL: &str = "https://www.googletagmanager.com/gtm.js";

/// gtm.js with the container id, and an environment's `gtm_auth` and
/// `gtm_preview` when set (as Tag Manager's environment snippet has them).
pub fn script_url(settings: &Value) -> String {
    let base = concat(&[
        setting(settings, "scriptUrl", SCRIPT_URL),
        "?id=",
        setting(settings, "containerId", ""),
    ]);
    match settings.get("environmentAuth").and_then(Value::as_text) {
        Some(auth) => concat(&[
            &base,
            "&gtm_auth=",
            auth,
            "&gtm_preview=",
            setting(settings, "environmentPreview", ""),
            "&gtm_cookies_win=x",
        ]),
        None => base,
    }
}

/// The push Tag Manager's snippet makes: `{'gtm.start': Date.now(), event:
/// 'gtm.js'}`, which fires the container's page view triggers.
pub fn init(_settings: &Value) -> Vec<Call> {
    vec![push(Value::object(vec![
        ("gtm.start", Value::str(NOW_MS)),
        ("event", Value::str("gtm.js")),
    ]))]
}

pub fn map(event: &Value, _settings: &Value) -> Vec<Call> {
    let event = Event::new(event);
    match event.kind {
        "track" => vec![push(with_ids(&event, event.properties(), event.name()))],
        "page" => event
            .viewed_page_events()
            .iter()
            .map(|name| push(with_ids(&event, event.properties(), name)))
            .collect(),
        "identify" => vec![push(with_ids(&event, event.traits(), "identify"))],
        _ => Vec::new(),
    }
}

fn push(value: Value) -> Call {
    Call::new("dataLayer.push", vec![value])
}

fn with_ids(event: &Event, mut object: Value, name: &str) -> Value {
    if let Some(id) = event.user_id {
        object.set("userId", Value::str(id));
    }
    if let Some(id) = event.anonymous_id {
        object.set("segmentAnonymousId", Value::str(id));
    }
    object.set("event", Value::str(name));
    object
}
