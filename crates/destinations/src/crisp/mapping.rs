//! Segment events to Crisp chatbox commands, each pushed on `$crisp`.
//!
//! Follows Segment's Crisp destination (maintained by Crisp: identify sets
//! the visitor's name, email, phone and avatar, track adds to the visitor's
//! event stream; analytics.js-integrations has no Crisp) through the
//! commands of Crisp's `$crisp` web SDK:
//!
//! - identify is `["set", "user:email", [email]]`, `["set",
//!   "user:nickname", [name]]` (`name`, or `firstName` and `lastName`
//!   joined), `["set", "user:phone", [phone]]`, `["set", "user:avatar",
//!   [url]]`, `["set", "user:company", [name]]` (`company` as Segment's
//!   object with a `name`, or a string), each only when the trait is there,
//!   then `["set", "session:data", [[[key, value], …]]]` with the user id as
//!   `user_id` and every other flat trait, under its own key as Crisp's
//!   `crisp-sdk-web` passes them: Crisp takes only strings, numbers and
//!   booleans as data, so nested traits are dropped.
//! - track is `["set", "session:event", [[[event, data]]]]`, the data its
//!   flat properties (Crisp's optional color is left to its default).
//!
//! Crisp's chatbox reads `window.CRISP_WEBSITE_ID` when it loads; that
//! assignment belongs to the device host, before the script.

use crate::device::{Call, Event, Value, concat, scalars};

/// Crisp's user fields, each set from a trait: `(field, trait)`. `name`
/// stands for the name made of `firstName` and `lastName` where there is
/// none, and `company` for its `name` where it is Segment's object.
const USER: &[(&str, &str)] = &[
    ("user:email", "email"),
    ("user:nickname", "name"),
    ("user:phone", "phone"),
    ("user:avatar", "avatar"),
    ("user:company", "company"),
];

/// Traits that are Crisp's user fields (or make one), not session data.
const NOT_DATA: &[&str] = &[
    "email",
    "name",
    "firstName",
    "lastName",
    "phone",
    "avatar",
    "company",
];

/// Nothing: the chatbox starts from `CRISP_WEBSITE_ID`.
pub fn init(_settings: &Value) -> Vec<Call> {
    Vec::new()
}

pub fn map(event: &Value, _settings: &Value) -> Vec<Call> {
    let event = Event::new(event);
    match event.kind {
        "identify" => identify(&event),
        "track" if !event.name().is_empty() => {
            let entry = Value::Array(vec![
                Value::str(event.name()),
                scalars(&event.properties()),
            ]);
            vec![set("session:event", Value::Array(vec![entry]))]
        }
        _ => Vec::new(),
    }
}

/// `$crisp.push(["set", key, [value]])`.
fn set(key: &str, value: Value) -> Call {
    Call::new(
        "$crisp.push",
        vec![Value::Array(vec![
            Value::str("set"),
            Value::str(key),
            Value::Array(vec![value]),
        ])],
    )
}

fn identify(event: &Event) -> Vec<Call> {
    let mut traits = event.traits();
    let text = |traits: &Value, key| traits.get(key).and_then(Value::as_text).map(Value::str);
    if text(&traits, "name").is_none() {
        // "Ada Lovelace", or either name alone: a space left over at
        // either end goes; with neither, the name is empty and not set.
        let name = |key| traits.get(key).and_then(Value::as_str).unwrap_or_default();
        let joined = concat(&[name("firstName"), " ", name("lastName")]);
        let name = joined
            .strip_prefix(' ')
            .or(joined.strip_suffix(' '))
            .unwrap_or(&joined);
        traits.set("name", Value::str(name));
    }
    if let Some(name) = traits.get("company").and_then(|c| text(c, "name")) {
        traits.set("company", name);
    }
    let mut calls = Vec::new();
    for (field, key) in USER {
        if let Some(value) = text(&traits, key) {
            calls.push(set(field, value));
        }
    }
    let mut data = Vec::new();
    if let Some(id) = event.user_id {
        data.push(pair("user_id", Value::str(id)));
    }
    for (key, value) in traits.members() {
        if value.is_scalar() && !NOT_DATA.contains(&key.as_str()) {
            data.push(pair(key, value.clone()));
        }
    }
    if !data.is_empty() {
        calls.push(set("session:data", Value::Array(data)));
    }
    calls
}

/// `[key, value]`.
fn pair(key: &str, value: Value) -> Value {
    Value::Array(vec![Value::str(key), value])
}
