//! Segment events to Hotjar `hj` calls.
//!
//! Follows segmentio/analytics.js-integrations' `hotjar` and Hotjar's
//! documented API: identify is `hj('identify', userId, attributes)` (a null
//! user id is allowed; nested attributes are dropped, Hotjar takes flat
//! ones); track is `hj('event', name)`, Hotjar events having no properties;
//! page is `hj('stateChange', url)`, how Hotjar learns of a page change in a
//! single-page app.
//!
//! Hotjar's tracking code reads `window._hjSettings = {hjid, hjsv: 6}` when
//! it loads; that assignment belongs to the device host, before the script.

use crate::device::{Call, Event, Value, concat, first, scalars, setting};

const SCRIPT_URL: &str = "https://static.hotjar.com/c/hotjar-";

/// `…/hotjar-{siteId}.js?sv=6`.
pub fn script_url(settings: &Value) -> String {
    concat(&[
        setting(settings, "scriptUrl", SCRIPT_URL),
        setting(settings, "siteId", ""),
        ".js?sv=6",
    ])
}

/// Nothing: Hotjar starts from `_hjSettings` on its own.
pub fn init(_settings: &Value) -> Vec<Call> {
    Vec::new()
}

pub fn map(event: &Value, _settings: &Value) -> Vec<Call> {
    let event = Event::new(event);
    let hj = |args: Vec<Value>| vec![Call::new("hj", args)];
    match event.kind {
        "identify" => hj(vec![
            Value::str("identify"),
            event.user_id.map_or(Value::Null, Value::str),
            scalars(&event.traits()),
        ]),
        "track" if !event.name().is_empty() => {
            hj(vec![Value::str("event"), Value::str(event.name())])
        }
        "page" => match first(&event.properties(), &["url"]) {
            Value::String(url) => hj(vec![Value::str("stateChange"), Value::String(url)]),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
