//! Cloud mode: Customer.io's Track API (docs.customer.io/integrations/api/
//! track/), HTTP Basic auth of `siteId:apiKey`, at `trackHost`:
//! `https://track.customer.io`, or `https://track-eu.customer.io` for EU
//! workspaces unless `trackHost` was changed (a proxy).
//!
//! Known people's calls go to the v2 batch endpoint, `POST /api/v2/batch`
//! with `{"batch": [operation, …]}`, one operation per Segment event: at
//! most 100 a request (Segment's own batch size for Customer.io), a request
//! under 500 KB and an operation under 32 KB, as Customer.io documents (a
//! larger operation is rejected). v2 identifies a person by `id`, `email`,
//! `phone` or `cio_id` only, so an anonymous track, page or screen is
//! Customer.io's documented anonymous event, `POST /api/v1/events` with
//! `{name, anonymous_id, type?, id, timestamp, data}`, a request of its own
//! (a mixed batch is split by endpoint).
//!
//! - Identify is the person operation `identify` of `{id: userId}` with the
//!   device mapping's person (`mapping.rs`: the traits, `createdAt` as
//!   `created_at` in Unix seconds) as `attributes`, plus the event's
//!   `anonymous_id`, which makes Customer.io merge that visitor's anonymous
//!   events into the person, and `timestamp`, which orders updates; like
//!   device mode, it needs a userId.
//! - Track is the operation `event` named as the event, page `page` named
//!   by its URL (the mapping's `properties.url`, else `context.page.url`),
//!   screen `screen` named by its name, each with the properties as
//!   `attributes` (`data` for an anonymous event), `timestamp` in Unix
//!   seconds and `id`, the dedupe key, which Customer.io wants as a ULID: the
//!   messageId when it is one, else a ULID made of the event's time and the
//!   SHA-256 of the messageId, so a resend is always the same event.
//! - Group is the object operation `identify` of `{object_type_id,
//!   object_id: groupId}` (the type from the traits' `object_type_id` or
//!   `objectTypeId`, else `"1"`) with the traits as its `attributes` and
//!   `cio_relationships` relating the user to it (`identify_anonymous` and
//!   the `anonymous_id` for an anonymous visitor), which creates or updates
//!   the object and relates the person in one operation.
//! - Alias is the person operation `merge` of `secondary: {id: previousId}`
//!   into `primary: {id: userId}`.
//!
//! Answers: 200 `{}` delivered; 207 Multi-Status lists the operations
//! refused (`errors[].batch_index`) while the others were taken: the
//! request counts as failed, with the answer kept, so the engine sends each
//! of its events again on its own and only the refused ones end as dead
//! letters (the others are taken again harmlessly: events carry their
//! dedupe `id`, identify and relationships set what is already set; only a
//! merge already done may then be refused); 400 (v2's `errors`, v1's
//! `meta.errors`) and 401 fail; 429 (after `Retry-After`) and 5xx are
//! retried.

use crate::cloud::{event_value, 
    Built, Forwarder, Json, Limits, Map, Outcome, Request, Response, Settings, base_url,
    basic_auth, event_millis, failed, json, object, setting, settings_value, standard, text,
    to_json, to_value,
};
use crate::device::{Value, unix_seconds};

pub struct Cloud;

const US_HOST: &str = "https://track.customer.io";
const EU_HOST: &str = "https://track-eu.customer.io";

/// Operations in one request.
const MAX_OPERATIONS: usize = 100;
/// Bytes of one operation, and of one request.
const MAX_OPERATION_BYTES: usize = 32_000;
const MAX_REQUEST_BYTES: usize = 500_000;
/// `{"batch":[` and `]}` around the operations.
const WRAPPER_BYTES: usize = 12;

/// Crockford's base 32, the alphabet of ULIDs.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// What one Segment event becomes.
enum Part {
    /// An operation of a v2 batch.
    Operation(Json),
    /// A v1 anonymous event, a request of its own.
    Anonymous(Json),
}

enum Refusal {
    Skip(String),
    Reject(String),
}

fn host(settings: &Settings) -> &str {
    let host = base_url(settings, "trackHost", US_HOST);
    if host == US_HOST && setting(settings, "region", "us") == "eu" {
        EU_HOST
    } else {
        host
    }
}

impl Forwarder for Cloud {
    fn limits(&self, _settings: &Settings) -> Limits {
        // Segment's events carry more context than the operations made of
        // them; `build` still cuts requests by the operations' own size.
        Limits::batch(MAX_OPERATIONS, MAX_REQUEST_BYTES)
    }

    fn build(&self, events: &[Json], settings: &Settings) -> Built {
        let mapping_settings = settings_value(settings);
        let mut built = Built::default();
        let (mut operations, mut anonymous) = (Vec::new(), Vec::new());
        for (i, event) in events.iter().enumerate() {
            match part(event, &mapping_settings) {
                Ok(Part::Anonymous(body)) => anonymous.push((i, body)),
                Ok(Part::Operation(op)) => {
                    let size = op.to_string().len();
                    if size > MAX_OPERATION_BYTES {
                        built.rejected.push((
                            i,
                            format!(
                                "Customer.io takes operations of at most 32 KB; this one is {size} bytes"
                            ),
                        ));
                    } else {
                        operations.push((i, op, size));
                    }
                }
                Err(Refusal::Skip(why)) => built.skipped.push((i, why)),
                Err(Refusal::Reject(why)) => built.rejected.push((i, why)),
            }
        }
        let host = host(settings);
        let auth = basic_auth(setting(settings, "siteId", ""), setting(settings, "apiKey", ""));
        let batch_url = format!("{host}/api/v2/batch");
        for (indices, batch) in chunks(operations) {
            let request = Request::post_json(&batch_url, &json!({ "batch": batch }), indices)
                .header("Authorization", auth.clone());
            built.requests.push(request);
        }
        let anonymous_url = format!("{host}/api/v1/events");
        for (i, body) in anonymous {
            let request = Request::post_json(&anonymous_url, &body, vec![i])
                .header("Authorization", auth.clone());
            built.requests.push(request);
        }
        built
    }

    fn outcome(&self, _request: &Request, response: &Response<'_>) -> Outcome {
        if response.status == 207 {
            let refused: Vec<String> = response
                .json()
                .and_then(|body| body.get("errors").cloned())
                .and_then(|errors| errors.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e.get("batch_index").and_then(Json::as_u64))
                .map(|i| i.to_string())
                .collect();
            let why = if refused.is_empty() {
                "Customer.io refused part of the batch".to_string()
            } else {
                format!(
                    "Customer.io refused the batch's operations {} and took the others",
                    refused.join(", ")
                )
            };
            return failed(response, &why);
        }
        standard(response)
    }
}

/// Packs operations into requests of at most [`MAX_OPERATIONS`] and
/// [`MAX_REQUEST_BYTES`].
fn chunks(operations: Vec<(usize, Json, usize)>) -> Vec<(Vec<usize>, Vec<Json>)> {
    let mut out: Vec<(Vec<usize>, Vec<Json>, usize)> = Vec::new();
    for (i, op, size) in operations {
        match out.last_mut() {
            Some((indices, batch, bytes))
                if batch.len() < MAX_OPERATIONS && *bytes + 1 + size <= MAX_REQUEST_BYTES =>
            {
                indices.push(i);
                batch.push(op);
                *bytes += 1 + size;
            }
            _ => out.push((vec![i], vec![op], WRAPPER_BYTES + size)),
        }
    }
    out.into_iter().map(|(i, b, _)| (i, b)).collect()
}

/// The one operation, or anonymous event, a Segment event becomes.
fn part(event: &Json, mapping_settings: &Value) -> Result<Part, Refusal> {
    let kind = event.get("type").and_then(Json::as_str).unwrap_or_default();
    let user_id = text(event, "userId");
    let anonymous_id = text(event, "anonymousId");
    let person = match (&user_id, &anonymous_id) {
        (Some(id), _) => Some(Person::Known(id.clone())),
        (None, Some(anonymous)) => Some(Person::Anonymous(anonymous.clone())),
        (None, None) => None,
    };
    let seconds = event_millis(event).map(|ms| ms.div_euclid(1000));
    let calls = super::mapping::map(&event_value(event), mapping_settings);
    let arg = |function: &str, n: usize| {
        calls
            .iter()
            .find(|c| c.function == function)
            .and_then(|c| c.args.get(n))
            .map(to_json)
    };
    let need_person = || {
        person.clone().ok_or_else(|| {
            Refusal::Reject("Customer.io needs a userId or an anonymousId".to_string())
        })
    };
    match kind {
        "identify" => {
            let (Some(id), Some(Json::Object(mut attributes))) =
                (&user_id, arg("_cio.identify", 0))
            else {
                return Err(Refusal::Reject(
                    "Customer.io identifies a person by userId, and this identify has none"
                        .to_string(),
                ));
            };
            attributes.remove("id");
            if let Some(anonymous) = &anonymous_id {
                attributes
                    .entry("anonymous_id")
                    .or_insert_with(|| json!(anonymous));
            }
            let mut op = json!({
                "type": "person",
                "identifiers": { "id": id },
                "action": "identify",
                "attributes": attributes,
            });
            if let Some(s) = seconds {
                op["timestamp"] = json!(s);
            }
            Ok(Part::Operation(op))
        }
        "track" => {
            let who = need_person()?;
            let Some(name) = text(event, "event") else {
                return Err(Refusal::Reject("Customer.io needs an event name".to_string()));
            };
            let attributes = arg("_cio.track", 1).unwrap_or_else(|| json!({}));
            Ok(person_event(event, who, "event", &name, attributes, seconds))
        }
        "page" => {
            let who = need_person()?;
            let (name, attributes) = match (arg("_cio.page", 0), arg("_cio.page", 1)) {
                (Some(Json::String(url)), Some(properties)) => (url, properties),
                _ => {
                    let url = event
                        .pointer("/context/page/url")
                        .and_then(Json::as_str)
                        .filter(|u| !u.is_empty());
                    let Some(url) = url else {
                        return Err(Refusal::Reject(
                            "Customer.io names a page view by its URL, and this page has none"
                                .to_string(),
                        ));
                    };
                    (url.to_string(), Json::Object(object(event, "properties")))
                }
            };
            Ok(person_event(event, who, "page", &name, attributes, seconds))
        }
        "screen" => {
            let who = need_person()?;
            let properties = object(event, "properties");
            let name = text(event, "name").or_else(|| {
                properties
                    .get("name")
                    .and_then(Json::as_str)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
            });
            let Some(name) = name else {
                return Err(Refusal::Reject(
                    "Customer.io names a screen view, and this screen has no name".to_string(),
                ));
            };
            let attributes = Json::Object(properties);
            Ok(person_event(event, who, "screen", &name, attributes, seconds))
        }
        "group" => group(event, user_id.as_deref(), anonymous_id.as_deref()).map(Part::Operation),
        "alias" => {
            let (Some(primary), Some(secondary)) = (user_id, text(event, "previousId")) else {
                return Err(Refusal::Reject(
                    "merging in Customer.io needs a userId and a previousId".to_string(),
                ));
            };
            if primary == secondary {
                return Err(Refusal::Reject(
                    "the previousId is the userId: there is nobody to merge".to_string(),
                ));
            }
            Ok(Part::Operation(json!({
                "type": "person",
                "action": "merge",
                "primary": { "id": primary },
                "secondary": { "id": secondary },
            })))
        }
        other => Err(Refusal::Skip(format!(
            "Customer.io's cloud mode does not take {other:?} calls"
        ))),
    }
}

/// Who an event is of.
#[derive(Clone)]
enum Person {
    Known(String),
    Anonymous(String),
}

/// A person's event, page or screen view, with its dedupe `id`: an
/// operation of the batch for a known person, a v1 anonymous event (`data`
/// for `attributes`, `type` for the action) for an anonymous one.
fn person_event(
    event: &Json,
    person: Person,
    action: &str,
    name: &str,
    attributes: Json,
    seconds: Option<i64>,
) -> Part {
    let mut body = match &person {
        Person::Known(id) => json!({
            "type": "person",
            "identifiers": { "id": id },
            "action": action,
            "name": name,
            "attributes": attributes,
        }),
        Person::Anonymous(anonymous) => {
            let mut body = json!({ "name": name, "anonymous_id": anonymous, "data": attributes });
            if action != "event" {
                body["type"] = json!(action);
            }
            body
        }
    };
    if let Some(id) = text(event, "messageId").map(|m| event_id(&m, event_millis(event))) {
        body["id"] = json!(id);
    }
    if let Some(s) = seconds {
        body["timestamp"] = json!(s);
    }
    match person {
        Person::Known(_) => Part::Operation(body),
        Person::Anonymous(_) => Part::Anonymous(body),
    }
}

/// A group call as the object it names, related to the user.
fn group(event: &Json, user_id: Option<&str>, anonymous_id: Option<&str>) -> Result<Json, Refusal> {
    let Some(group_id) = text(event, "groupId") else {
        return Err(Refusal::Reject(
            "a Customer.io object needs the group call's groupId".to_string(),
        ));
    };
    let (action, relationship) = match (user_id, anonymous_id) {
        (Some(id), _) => ("identify", json!({ "identifiers": { "id": id } })),
        (None, Some(anonymous)) => (
            "identify_anonymous",
            json!({ "identifiers": { "anonymous_id": anonymous } }),
        ),
        (None, None) => {
            return Err(Refusal::Reject(
                "relating a Customer.io object needs a userId or an anonymousId".to_string(),
            ));
        }
    };
    let mut traits = object(event, "traits");
    let type_id = [
        traits.remove("object_type_id"),
        traits.remove("objectTypeId"),
    ]
    .into_iter()
    .flatten()
    .find_map(|v| match v {
        Json::String(s) if !s.is_empty() => Some(s),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    })
    .unwrap_or_else(|| "1".to_string());
    created_at_in_seconds(&mut traits);
    Ok(json!({
        "type": "object",
        "identifiers": { "object_type_id": type_id, "object_id": group_id },
        "action": action,
        "attributes": traits,
        "cio_relationships": [relationship],
    }))
}

/// `createdAt` as `created_at` in Unix seconds, as the person mapping does.
fn created_at_in_seconds(traits: &mut Map<String, Json>) {
    let Some(created) = traits.remove("createdAt") else {
        return;
    };
    let value = unix_seconds(&to_value(&created)).map_or(created, |s| to_json(&Value::Number(s)));
    traits.entry("created_at").or_insert(value);
}

/// The dedupe `id` of an event: the messageId when it is a ULID, else a
/// ULID of the event's time and the first 80 bits of the messageId's
/// SHA-256.
fn event_id(message_id: &str, millis: Option<i64>) -> String {
    if is_ulid(message_id) {
        return message_id.to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(message_id.as_bytes());
    let time = millis.unwrap_or(0).clamp(0, (1 << 48) - 1) as u128;
    let random = digest
        .iter()
        .take(10)
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let ulid = (time << 80) | random;
    (0..26)
        .map(|i| CROCKFORD[((ulid >> (125 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// 26 characters of Crockford's base 32, the first at most `7` (128 bits).
fn is_ulid(id: &str) -> bool {
    id.len() == 26
        && id.bytes().next().is_some_and(|b| (b'0'..=b'7').contains(&b))
        && id
            .bytes()
            .all(|b| CROCKFORD.contains(&b.to_ascii_uppercase()))
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_are_kept_and_other_ids_become_stable_ulids() {
        assert_eq!(
            event_id("01JF8Z3Q4R5S6T7V8W9X0YZABC", None),
            "01JF8Z3Q4R5S6T7V8W9X0YZABC"
        );
        let id = event_id("m-1", Some(1_796_000_100_000));
        assert!(is_ulid(&id), "{id}");
        assert_eq!(id, event_id("m-1", Some(1_796_000_100_000)));
        assert_ne!(id, event_id("m-2", Some(1_796_000_100_000)));
        // The first ten characters are the time in milliseconds.
        assert_eq!(&event_id("m-1", Some(0))[..10], "0000000000");
        assert_eq!(&event_id("m-1", Some(1))[..10], "0000000001");
        assert_eq!(&event_id("m-1", Some(32))[..10], "0000000010");
    }
}
