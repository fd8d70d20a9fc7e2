//! Segment events to posthog-js calls.
//!
//! Segment has no open-source PostHog browser integration; this follows
//! posthog-js's documented API and PostHog's own Segment plugin: identify is
//! `posthog.identify(userId, traits)` (traits become person `$set`, as the
//! captured `vendor_posthog-js` request shows) or, without a user id,
//! `posthog.setPersonProperties(traits)`; track is `posthog.capture(event,
//! properties)`; page is `posthog.capture('$pageview', properties)` with the
//! page's URL as `$current_url`; group is `posthog.group('company', groupId,
//! traits)`, PostHog's documented default group type; alias is
//! `posthog.alias(userId, previousId)`.

use crate::device::{Call, Event, Value, first, setting};

/// `posthog.init(apiKey, {api_host, capture_pageview: false})`: page views
/// come from page calls, so the SDK's own are off.
pub fn init(settings: &Value) -> Vec<Call> {
    vec![Call::new(
        "posthog.init",
        vec![
            Value::str(setting(settings, "apiKey", "")),
            Value::object(vec![
                (
                    "api_host",
                    Value::str(setting(settings, "apiHost", "https://us.i.posthog.com")),
                ),
                ("capture_pageview", Value::Bool(false)),
            ]),
        ],
    )]
}

pub fn map(event: &Value, _settings: &Value) -> Vec<Call> {
    let event = Event::new(event);
    match event.kind {
        "identify" => match event.user_id {
            Some(id) => vec![Call::new(
                "posthog.identify",
                vec![Value::str(id), event.traits()],
            )],
            None => vec![Call::new(
                "posthog.setPersonProperties",
                vec![event.traits()],
            )],
        },
        "track" => vec![capture(event.name(), event.properties())],
        "page" => {
            let mut p = event.properties();
            let url = first(&p, &["url"]);
            p.set("$current_url", url);
            vec![capture("$pageview", p)]
        }
        "group" => match event.text("groupId") {
            Some(group) => vec![Call::new(
                "posthog.group",
                vec![Value::str("company"), Value::str(group), event.traits()],
            )],
            None => Vec::new(),
        },
        "alias" => match (event.user_id, event.text("previousId")) {
            (Some(to), Some(from)) if to == from => Vec::new(),
            (Some(to), Some(from)) => vec![Call::new(
                "posthog.alias",
                vec![Value::str(to), Value::str(from)],
            )],
            (Some(to), None) => vec![Call::new("posthog.alias", vec![Value::str(to)])],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn capture(name: &str, properties: Value) -> Call {
    Call::new("posthog.capture", vec![Value::str(name), properties])
}
