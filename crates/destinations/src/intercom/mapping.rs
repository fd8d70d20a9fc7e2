//! Segment events to Intercom Messenger calls.
//!
//! Follows segmentio/analytics.js-integrations' `intercom`: identify is
//! `Intercom('update', {user_id, email, name, created_at, …})` with the
//! traits renamed (`createdAt` → `created_at` in Unix seconds, `firstName`
//! and `lastName` joined as `name` when there is none, `avatar` as an
//! Intercom avatar object, `company` with its `id` as `company_id`); track
//! is `Intercom('trackEvent', event, metadata)`, a `revenue` becoming
//! Intercom's `price: {amount (cents), currency}`; page is
//! `Intercom('update')`, which lets the Messenger check for new messages;
//! group is `Intercom('update', {company: {company_id, …traits}})`. Nested
//! values other than those are dropped: Intercom's attributes are flat.

use crate::device::{Call, Event, Value, concat, first, scalars, setting, unix_seconds, without};

const SCRIPT_URL: &str = "https://widget.intercom.io/widget/";

/// The Messenger script with the app id appended.
pub fn script_url(settings: &Value) -> String {
    concat(&[
        setting(settings, "scriptUrl", SCRIPT_URL),
        setting(settings, "appId", ""),
    ])
}

/// `Intercom('boot', {app_id[, api_base]})`, `api_base` for workspaces
/// hosted in the EU or Australia (Intercom's regional installation guide).
pub fn init(settings: &Value) -> Vec<Call> {
    let api_base = match setting(settings, "region", "us") {
        "eu" => Value::str("https://api-iam.eu.intercom.io"),
        "au" => Value::str("https://api-iam.au.intercom.io"),
        _ => Value::Null,
    };
    vec![intercom(
        "boot",
        Some(Value::object(vec![
            ("app_id", Value::str(setting(settings, "appId", ""))),
            ("api_base", api_base),
        ])),
    )]
}

pub fn map(event: &Value, _settings: &Value) -> Vec<Call> {
    let event = Event::new(event);
    match event.kind {
        "identify" => vec![intercom("update", Some(identify(&event)))],
        "track" => {
            let p = event.properties();
            let mut metadata = scalars(&without(&p, &["revenue", "currency"]));
            if let Some(revenue) = p.get("revenue").and_then(Value::as_f64) {
                let currency = first(&p, &["currency"]);
                let currency = if currency.is_null() {
                    Value::str("USD")
                } else {
                    currency
                };
                metadata.set(
                    "price",
                    Value::object(vec![
                        ("amount", Value::Number((revenue * 100.0).round())),
                        ("currency", currency),
                    ]),
                );
            }
            vec![Call::new(
                "Intercom",
                vec![Value::str("trackEvent"), Value::str(event.name()), metadata],
            )]
        }
        "page" => vec![intercom("update", None)],
        "group" => match event.text("groupId") {
            Some(group) => {
                let mut update =
                    Value::object(vec![("user_id", event.user_id.map_or(Value::Null, Value::str))]);
                update.set("company", company(&event.traits(), group));
                vec![intercom("update", Some(update))]
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn intercom(method: &str, argument: Option<Value>) -> Call {
    let mut args = vec![Value::str(method)];
    args.extend(argument);
    Call::new("Intercom", args)
}

fn identify(event: &Event) -> Value {
    let traits = event.traits();
    let mut user = scalars(&without(
        &traits,
        &[
            "id",
            "userId",
            "createdAt",
            "created",
            "firstName",
            "lastName",
            "avatar",
        ],
    ));
    user.set("user_id", event.user_id.map_or(Value::Null, Value::str));
    if user.get("name").is_none() {
        let first_name = traits.get("firstName").and_then(Value::as_text);
        let last_name = traits.get("lastName").and_then(Value::as_text);
        let name = match (first_name, last_name) {
            (Some(f), Some(l)) => Value::String(concat(&[f, " ", l])),
            (Some(n), None) | (None, Some(n)) => Value::str(n),
            _ => Value::Null,
        };
        user.set("name", name);
    }
    user.set("created_at", created_at(&traits));
    if let Some(url) = traits.get("avatar").and_then(Value::as_text) {
        user.set(
            "avatar",
            Value::object(vec![
                ("type", Value::str("avatar")),
                ("image_url", Value::str(url)),
            ]),
        );
    }
    if let Some(c) = traits.get("company")
        && let Some(id) = c.get("id").and_then(Value::as_text)
    {
        user.set("company", company(c, id));
    }
    user
}

/// A company for Intercom: `company_id`, flat traits, `created_at`.
fn company(traits: &Value, id: &str) -> Value {
    let mut company = scalars(&without(traits, &["id", "createdAt", "created"]));
    company.set("company_id", Value::str(id));
    company.set("created_at", created_at(traits));
    company
}

fn created_at(traits: &Value) -> Value {
    unix_seconds(&first(traits, &["createdAt", "created", "created_at"]))
        .map_or(Value::Null, Value::Number)
}
