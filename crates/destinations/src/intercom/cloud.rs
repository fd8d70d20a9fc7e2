//! Cloud mode: Intercom's REST API (developers.intercom.com, API reference),
//! one request per event, at `apiHost`: `https://api.intercom.io`, or
//! `https://api.eu.intercom.io` / `https://api.au.intercom.io` for
//! workspaces hosted in the EU or Australia unless `apiHost` was changed (a
//! proxy). Every request carries `Authorization: Bearer {accessToken}`,
//! `Intercom-Version` (the `apiVersion` setting) and JSON bodies.
//!
//! The bodies follow the device mapping (`mapping.rs`), which makes the
//! Messenger's `trackEvent` and `update` calls:
//! - Track is Submit a data event, `POST /events`: `{event_name,
//!   created_at (the event's time in Unix seconds), user_id (the userId) or
//!   else email (the context's traits', else the properties'), metadata}`.
//!   The metadata is the mapping's: flat values only, a `revenue` as
//!   Intercom's monetary amount `price: {amount (cents), currency}`, and at
//!   most the 10 keys Intercom keeps (it ignores any after the tenth), the
//!   price among them. Intercom has no dedupe key for events: it drops an
//!   event with the same contact, name and `created_at` as one it has, so a
//!   resend (same timestamp) counts once.
//! - Identify is Create contact, `POST /contacts`: `{role: "user",
//!   external_id (the userId), email, phone, name, avatar (its URL),
//!   signed_up_at (the mapping's `created_at`), last_seen_at, owner_id,
//!   unsubscribed_from_emails, custom_attributes (the other flat traits)}`;
//!   without a userId the contact is made by email, and without either the
//!   identify is rejected. Intercom has no create-or-update by external id:
//!   a contact that exists already is answered 409 naming its Intercom id
//!   (`… already exists with id=…`), and the same attributes then go as an
//!   update of that contact, `PUT /contacts/{id}` (`Outcome::Then`).
//!   Custom attributes must exist in Intercom first (Settings → Data →
//!   People), or it answers 400. The mapping's `company` of a user is left
//!   out: it needs the same id.
//! - Group is Create or update a company, `POST /companies`, upserting by
//!   `company_id` (the groupId): `name`, `plan`, `size`, `website`,
//!   `industry`, `monthly_spend`, `remote_created_at` (the mapping's
//!   `created_at`) and the other flat traits as `custom_attributes`.
//!   Attaching the user to the company (`POST /contacts/{id}/companies`)
//!   takes both Intercom ids, from the answers, and is left to device mode.
//!
//! Answers: 200 and 202 are delivered; 400, 404 (an event of an unknown
//! user), 409 and 422 fail with the error list kept; 401 and 403 fail; 429
//! waits for `Retry-After`, else until `X-RateLimit-Reset` (a Unix time);
//! 5xx are retried.

use std::time::Duration;

use crate::cloud::{event_value, 
    Built, Forwarder, Json, Limits, Map, Outcome, Request, Response, Settings, base_url,
    event_millis, failed, json, setting, settings_value, standard, text, to_json,
};
use crate::device::Value;

pub struct Cloud;

const US_HOST: &str = "https://api.intercom.io";
const EU_HOST: &str = "https://api.eu.intercom.io";
const AU_HOST: &str = "https://api.au.intercom.io";
const DEFAULT_VERSION: &str = "2.14";

/// Metadata keys Intercom keeps per event.
const MAX_METADATA: usize = 10;

/// A contact's own fields in Create contact; other traits are custom.
const CONTACT_FIELDS: &[&str] = &[
    "email",
    "phone",
    "name",
    "last_seen_at",
    "owner_id",
    "unsubscribed_from_emails",
];

/// A company's own fields in Create or update a company.
const COMPANY_FIELDS: &[&str] = &[
    "company_id",
    "name",
    "plan",
    "size",
    "website",
    "industry",
    "monthly_spend",
];

/// Why a 409 fails when its answer names no contact to update.
const CONFLICT: &str = "Intercom has this contact already and its answer names no contact id to \
    update (PUT /contacts/{id})";

enum Refusal {
    Skip(String),
    Reject(String),
}

fn host(settings: &Settings) -> &str {
    let host = base_url(settings, "apiHost", US_HOST);
    if host != US_HOST {
        return host;
    }
    match setting(settings, "region", "us") {
        "eu" => EU_HOST,
        "au" => AU_HOST,
        _ => host,
    }
}

impl Forwarder for Cloud {
    fn limits(&self, _settings: &Settings) -> Limits {
        Limits::batch(1, 1 << 20)
    }

    fn build(&self, events: &[Json], settings: &Settings) -> Built {
        let mapping_settings = settings_value(settings);
        let base = host(settings);
        let mut built = Built::default();
        for (i, event) in events.iter().enumerate() {
            match body(event, &mapping_settings) {
                Ok((path, body)) => {
                    let request = Request::post_json(format!("{base}{path}"), &body, vec![i])
                        .header(
                            "Authorization",
                            format!("Bearer {}", setting(settings, "accessToken", "")),
                        )
                        .header(
                            "Intercom-Version",
                            setting(settings, "apiVersion", DEFAULT_VERSION),
                        )
                        .header("Accept", "application/json");
                    built.requests.push(request);
                }
                Err(Refusal::Skip(why)) => built.skipped.push((i, why)),
                Err(Refusal::Reject(why)) => built.rejected.push((i, why)),
            }
        }
        built
    }

    fn outcome(&self, request: &Request, response: &Response<'_>) -> Outcome {
        if response.status == 409 {
            // `A contact matching those details already exists with
            // id=…`: the same attributes, as an update of that contact.
            let existing = response.json().and_then(|body| {
                let message = body.pointer("/errors/0/message")?.as_str()?.to_string();
                let id = message.split("id=").nth(1)?.split_whitespace().next()?.to_string();
                id.chars().all(|c| c.is_ascii_alphanumeric()).then_some(id)
            });
            return match (existing, request.url.strip_suffix("/contacts")) {
                (Some(id), Some(base)) if request.method == "POST" => {
                    let mut update = request.clone();
                    update.method = "PUT";
                    update.url = format!("{base}/contacts/{id}");
                    Outcome::Then(Box::new(update))
                }
                _ => failed(response, CONFLICT),
            };
        }
        match standard(response) {
            Outcome::Retry {
                after: None,
                reason,
            } if response.status == 429 => Outcome::Retry {
                after: response.header("X-RateLimit-Reset").and_then(reset_in),
                reason,
            },
            other => other,
        }
    }
}

/// How long until `X-RateLimit-Reset`, a Unix time in seconds.
fn reset_in(value: &str) -> Option<Duration> {
    let at: i64 = value.trim().parse().ok()?;
    let wait = at - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(wait.clamp(0, 3600) as u64))
}

/// The path and body of the request an event becomes.
fn body(event: &Json, mapping_settings: &Value) -> Result<(&'static str, Json), Refusal> {
    let kind = event.get("type").and_then(Json::as_str).unwrap_or_default();
    let calls = super::mapping::map(&event_value(event), mapping_settings);
    // The mapping's `Intercom(method, argument…)`, as JSON.
    let args: Vec<Json> = calls
        .iter()
        .find(|c| c.function == "Intercom")
        .map(|c| c.args.iter().map(to_json).collect())
        .unwrap_or_default();
    let object_arg = |n: usize| match args.get(n) {
        Some(Json::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    match kind {
        "track" => Ok(("/events", track(event, object_arg(2))?)),
        "identify" => Ok(("/contacts", contact(object_arg(1))?)),
        "group" => {
            let company = match object_arg(1).remove("company") {
                Some(Json::Object(c)) => c,
                _ => {
                    return Err(Refusal::Reject(
                        "an Intercom company needs the group call's groupId".to_string(),
                    ));
                }
            };
            Ok(("/companies", company_body(company)))
        }
        other => Err(Refusal::Skip(format!(
            "Intercom's cloud mode does not take {other:?} calls"
        ))),
    }
}

fn track(event: &Json, metadata: Map<String, Json>) -> Result<Json, Refusal> {
    let Some(name) = text(event, "event") else {
        return Err(Refusal::Reject("Intercom needs an event name".to_string()));
    };
    let Some(millis) = event_millis(event) else {
        return Err(Refusal::Reject("the event has no valid timestamp".to_string()));
    };
    let mut body = json!({ "event_name": name, "created_at": millis.div_euclid(1000) });
    if let Some(user_id) = text(event, "userId") {
        body["user_id"] = json!(user_id);
    } else if let Some(email) = email(event) {
        body["email"] = json!(email);
    } else {
        // An anonymous visitor's event has no user in Intercom to go to:
        // not this destination's, as Segment's Intercom skips it too.
        return Err(Refusal::Skip(
            "Intercom finds an event's user by userId or email, and this event has neither"
                .to_string(),
        ));
    }
    if !metadata.is_empty() {
        body["metadata"] = Json::Object(first_ten(metadata));
    }
    Ok(body)
}

/// The context's traits' email, else the properties'.
fn email(event: &Json) -> Option<String> {
    ["/context/traits/email", "/properties/email"]
        .iter()
        .find_map(|p| event.pointer(p).and_then(Json::as_str))
        .filter(|e| !e.is_empty())
        .map(str::to_string)
}

/// The metadata Intercom keeps: the first ten keys, the price among them.
fn first_ten(metadata: Map<String, Json>) -> Map<String, Json> {
    if metadata.len() <= MAX_METADATA {
        return metadata;
    }
    let price = metadata.get("price").cloned();
    let room = MAX_METADATA - usize::from(price.is_some());
    let mut kept: Map<String, Json> = metadata
        .into_iter()
        .filter(|(k, _)| k != "price")
        .take(room)
        .collect();
    if let Some(price) = price {
        kept.insert("price".into(), price);
    }
    kept
}

/// Create contact's body from the mapping's `update` of a user.
fn contact(user: Map<String, Json>) -> Result<Json, Refusal> {
    let mut body = Map::new();
    body.insert("role".into(), json!("user"));
    let mut custom = Map::new();
    for (key, value) in user {
        match key.as_str() {
            "user_id" => {
                body.insert("external_id".into(), value);
            }
            "created_at" => {
                body.insert("signed_up_at".into(), value);
            }
            "avatar" => {
                if let Some(url) = value.get("image_url") {
                    body.insert("avatar".into(), url.clone());
                }
            }
            // A user's company takes the contact's Intercom id.
            "company" => {}
            k if CONTACT_FIELDS.contains(&k) => {
                body.insert(key, value);
            }
            _ if is_flat(&value) => {
                custom.insert(key, value);
            }
            _ => {}
        }
    }
    if !body.contains_key("external_id") && !body.get("email").is_some_and(Json::is_string) {
        return Err(Refusal::Reject(
            "Intercom creates a user by userId or email, and this identify has neither".to_string(),
        ));
    }
    if !custom.is_empty() {
        body.insert("custom_attributes".into(), Json::Object(custom));
    }
    Ok(Json::Object(body))
}

/// Create or update a company's body from the mapping's company.
fn company_body(company: Map<String, Json>) -> Json {
    let mut body = Map::new();
    let mut custom = Map::new();
    for (key, value) in company {
        match key.as_str() {
            "created_at" => {
                body.insert("remote_created_at".into(), value);
            }
            k if COMPANY_FIELDS.contains(&k) => {
                body.insert(key, value);
            }
            _ if is_flat(&value) => {
                custom.insert(key, value);
            }
            _ => {}
        }
    }
    if !custom.is_empty() {
        body.insert("custom_attributes".into(), Json::Object(custom));
    }
    Json::Object(body)
}

fn is_flat(value: &Json) -> bool {
    matches!(value, Json::String(_) | Json::Number(_) | Json::Bool(_))
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_reset_in_the_future_is_waited_for() {
        let soon = (chrono::Utc::now().timestamp() + 5).to_string();
        let wait = reset_in(&soon).unwrap();
        assert!((4..=5).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(reset_in("1700000000"), Some(Duration::ZERO));
        assert_eq!(reset_in("soon"), None);
    }

    #[test]
    fn metadata_keeps_ten_keys_and_the_price() {
        let mut metadata: Map<String, Json> =
            (0..12).map(|i| (format!("k{i:02}"), json!(i))).collect();
        metadata.insert("price".into(), json!({"amount": 100, "currency": "USD"}));
        let kept = first_ten(metadata);
        assert_eq!(kept.len(), 10);
        assert!(kept.contains_key("price") && kept.contains_key("k00"));
        assert!(!kept.contains_key("k09"));
    }
}
