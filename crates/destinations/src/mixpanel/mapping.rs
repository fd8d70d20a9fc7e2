//! Segment events to mixpanel-browser calls.
//!
//! Follows segmentio/analytics.js-integrations' `mixpanel`: identify calls
//! `mixpanel.identify(userId)` and `mixpanel.people.set` with Segment's
//! special traits renamed to Mixpanel's reserved properties (`email` →
//! `$email`, `firstName` → `$first_name` …); track is `mixpanel.track(event,
//! properties)`; page tracks `Viewed {category} Page` and `Viewed {category}
//! {name} Page`; alias is `mixpanel.alias(userId, previousId)`. The classic
//! integration adds `people.track_charge(revenue)` only with its `people`
//! option, which Switchyard does not have: `Order Completed` is just the
//! track, as the captured mixpanel-browser requests show (one `/track`, no
//! `$transactions`). Group uses Mixpanel's `set_group` with the group key
//! `company`, the key Mixpanel's own documentation uses.

use crate::device::{Call, Event, Value, rename, setting};

/// Segment's reserved traits and Mixpanel's reserved profile properties.
const TRAITS: &[(&str, &str)] = &[
    ("created", "$created"),
    ("createdAt", "$created"),
    ("email", "$email"),
    ("firstName", "$first_name"),
    ("lastName", "$last_name"),
    ("lastSeen", "$last_seen"),
    ("name", "$name"),
    ("username", "$username"),
    ("phone", "$phone"),
    ("avatar", "$avatar"),
];

/// `mixpanel.init(token, {api_host})`.
pub fn init(settings: &Value) -> Vec<Call> {
    vec![Call::new(
        "mixpanel.init",
        vec![
            Value::str(setting(settings, "token", "")),
            Value::object(vec![(
                "api_host",
                Value::str(setting(settings, "apiHost", "https://api.mixpanel.com")),
            )]),
        ],
    )]
}

pub fn map(event: &Value, _settings: &Value) -> Vec<Call> {
    let event = Event::new(event);
    match event.kind {
        "identify" => {
            let mut calls = Vec::new();
            if let Some(id) = event.user_id {
                calls.push(Call::new("mixpanel.identify", vec![Value::str(id)]));
            }
            let traits = rename(&event.traits(), TRAITS);
            if !traits.members().is_empty() {
                calls.push(Call::new("mixpanel.people.set", vec![traits]));
            }
            calls
        }
        "track" => vec![track(event.name(), event.properties())],
        "page" => event
            .viewed_page_events()
            .iter()
            .map(|name| track(name, event.properties()))
            .collect(),
        "group" => match event.text("groupId") {
            Some(group) => vec![Call::new(
                "mixpanel.set_group",
                vec![Value::str("company"), Value::str(group)],
            )],
            None => Vec::new(),
        },
        "alias" => match (event.user_id, event.text("previousId")) {
            // Aliasing an id to itself is an error in Mixpanel; the classic
            // integration skips it too.
            (Some(to), Some(from)) if to == from => Vec::new(),
            (Some(to), Some(from)) => vec![Call::new(
                "mixpanel.alias",
                vec![Value::str(to), Value::str(from)],
            )],
            (Some(to), None) => vec![Call::new("mixpanel.alias", vec![Value::str(to)])],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn track(name: &str, properties: Value) -> Call {
    Call::new("mixpanel.track", vec![Value::str(name), properties])
}
