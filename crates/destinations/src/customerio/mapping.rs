//! Segment events to Customer.io's `_cio` calls.
//!
//! Follows segmentio/analytics.js-integrations' `customerio`: identify is
//! `_cio.identify({id: userId, …traits})` with `createdAt` as `created_at`
//! in Unix seconds, and only for a known user (Customer.io has no anonymous
//! profiles in its browser snippet); track is `_cio.track(event,
//! properties)`; page is `_cio.page(url, properties)`.
//!
//! Customer.io's snippet takes the site id as the script tag's
//! `data-site-id` attribute (and `id="cio-tracker"`); setting them belongs to
//! the device host. The script URL is the `scriptUrl` setting as it is.

use crate::device::{Call, Event, Value, first, unix_seconds, without};

/// Nothing: the snippet starts from its script tag's `data-site-id`.
pub fn init(_settings: &Value) -> Vec<Call> {
    Vec::new()
}

pub fn map(event: &Value, _settings: &Value) -> Vec<Call> {
    let event = Event::new(event);
    match event.kind {
        "identify" => match event.user_id {
            Some(id) => {
                let traits = event.traits();
                let created = first(&traits, &["createdAt", "created"]);
                let mut person = without(&traits, &["createdAt", "created", "id"]);
                person.set("id", Value::str(id));
                person.set(
                    "created_at",
                    unix_seconds(&created).map_or(Value::Null, Value::Number),
                );
                vec![Call::new("_cio.identify", vec![person])]
            }
            None => Vec::new(),
        },
        "track" => vec![Call::new(
            "_cio.track",
            vec![Value::str(event.name()), event.properties()],
        )],
        "page" => {
            let p = event.properties();
            match first(&p, &["url"]) {
                url @ Value::String(_) => vec![Call::new("_cio.page", vec![url, p])],
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}
