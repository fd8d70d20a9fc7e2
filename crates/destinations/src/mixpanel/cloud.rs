//! Cloud mode: Mixpanel's Ingestion API, as Mixpanel documents it for
//! servers (developer.mixpanel.com/reference/ingestion-api), at `apiHost`.
//!
//! - Events go to `POST /import?strict=1`: a JSON array of at most 2,000
//!   events and 10 MB. Auth is HTTP Basic: a service account
//!   (`username:secret`, with `project_id` in the query) when one is set,
//!   else the project's API secret (`secret:`), else the project token
//!   (`token:`), which `/import` also accepts. Each event carries `token`,
//!   `time` (the event's timestamp, in milliseconds), `distinct_id` (the
//!   userId, else the anonymousId), `$device_id` (the anonymousId) and
//!   `$user_id` (the userId), which Simplified ID Merge links, `ip` (the
//!   context's, or 0: not the server's) and `$insert_id`, the dedupe key:
//!   the messageId when it fits Mixpanel's rule (at most 36 letters, digits
//!   and `-`), else the first 32 hex digits of its SHA-256, so a resend is
//!   always the same event.
//! - Profiles go to `POST /engage` (up to 2,000 updates) and group profiles
//!   to `POST /groups` (up to 200), JSON arrays with `verbose=1` (so the
//!   answer says whether they were taken) and `ip=0`, each update with
//!   `$token`.
//!
//! The calls follow the device mapping (`mapping.rs`): track is the event
//! with its properties; page is `Viewed {category} Page` and `Viewed
//! {category} {name} Page`, and screen likewise `Viewed … Screen`; identify
//! `$set`s the traits renamed to Mixpanel's reserved properties (`email` →
//! `$email` …) on the profile, or, without traits, sends the `$identify`
//! event (`$identified_id`, `$anon_id`) that links the anonymous id in
//! Original ID Merge too; alias is the `$create_alias` event
//! (`distinct_id` the previousId, `alias` the userId), which Mixpanel takes
//! at `/import` and which only projects on Original ID Merge use. Group
//! `$set`s its traits on the group profile of the mapping's group key
//! (`company`); without traits it sets the key on the user's profile, as
//! `mixpanel.set_group` does. Each Segment event goes in exactly one
//! request, so an identify with traits sends no `$identify` (in Simplified
//! ID Merge, Mixpanel's default, any event carrying both ids links them)
//! and a group with traits does not also set the user's profile.

use crate::cloud::{pack, viewed_screen_events, 
    Built, Forwarder, Json, Limits, Map, Outcome, Request, Response, Settings, base_url,
    basic_auth, event_millis, failed, json, setting, settings_value, sha256_hex, standard, text,
    to_json, to_value,
};
use crate::device::{Call, Value};

pub struct Cloud;

const DEFAULT_HOST: &str = "https://api.mixpanel.com";

/// Events in one `/import` request.
const IMPORT_EVENTS: usize = 2000;
/// Updates in one `/engage` request.
const ENGAGE_UPDATES: usize = 2000;
/// Updates in one `/groups` request.
const GROUP_UPDATES: usize = 200;

/// Values Mixpanel refuses as a `distinct_id` or `$insert_id`.
const INVALID_IDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "anon",
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "na",
    "undefined",
    "unknown",
    "<nil>",
    "0",
    "-1",
    "true",
    "false",
    "[]",
    "{}",
];

/// What one Segment event becomes: its part of one request.
enum Part {
    Import(Vec<Json>),
    Engage(Json),
    Groups(Json),
}

enum Refusal {
    Skip(String),
    Reject(String),
}

impl Forwarder for Cloud {
    fn limits(&self, _settings: &Settings) -> Limits {
        // A page call can make two events, so half of `/import`'s 2,000
        // events and 10 MB, with room for the added properties.
        Limits::batch(IMPORT_EVENTS / 2, 4 << 20)
    }

    fn build(&self, events: &[Json], settings: &Settings) -> Built {
        let base = base_url(settings, "apiHost", DEFAULT_HOST);
        let mapping_settings = settings_value(settings);
        let mut built = Built::default();
        let (mut import, mut engage, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        for (i, event) in events.iter().enumerate() {
            match part(event, settings, &mapping_settings) {
                Ok(Part::Import(items)) => import.push((i, items)),
                Ok(Part::Engage(update)) => engage.push((i, vec![update])),
                Ok(Part::Groups(update)) => groups.push((i, vec![update])),
                Err(Refusal::Skip(why)) => built.skipped.push((i, why)),
                Err(Refusal::Reject(why)) => built.rejected.push((i, why)),
            }
        }
        let (auth, project) = import_auth(settings);
        let import_url = match project {
            Some(id) => format!("{base}/import?strict=1&project_id={id}"),
            None => format!("{base}/import?strict=1"),
        };
        for (indices, items) in pack(import, IMPORT_EVENTS) {
            let request = Request::post_json(&import_url, &Json::Array(items), indices)
                .header("Authorization", auth.clone());
            built.requests.push(request);
        }
        for (path, parts, size) in [
            ("engage", engage, ENGAGE_UPDATES),
            ("groups", groups, GROUP_UPDATES),
        ] {
            let url = format!("{base}/{path}?verbose=1&ip=0");
            for (indices, items) in pack(parts, size) {
                built
                    .requests
                    .push(Request::post_json(&url, &Json::Array(items), indices));
            }
        }
        built
    }

    /// `/import` answers 200 when every event was taken and 400 listing the
    /// ones that failed validation; `/engage` and `/groups` answer 200 even
    /// to updates they refuse, with `{"status": 0, "error": …}` (or `0`
    /// without `verbose`).
    fn outcome(&self, _request: &Request, response: &Response<'_>) -> Outcome {
        if (200..300).contains(&response.status) {
            let refused = match response.json() {
                Some(Json::Number(n)) => n.as_i64() == Some(0),
                Some(Json::Object(body)) => body.get("status").and_then(Json::as_i64) == Some(0),
                _ => false,
            };
            if refused {
                return failed(response, "Mixpanel refused the updates");
            }
        }
        standard(response)
    }
}

/// The `Authorization` of `/import`, and the project id a service account
/// needs in the query.
fn import_auth(settings: &Settings) -> (String, Option<String>) {
    let user = setting(settings, "serviceAccountUsername", "");
    let secret = setting(settings, "serviceAccountSecret", "");
    if !user.is_empty() && !secret.is_empty() {
        let project = setting(settings, "projectId", "");
        let project = (!project.is_empty()).then(|| project.to_string());
        return (basic_auth(user, secret), project);
    }
    match setting(settings, "apiSecret", "") {
        "" => (basic_auth(setting(settings, "token", ""), ""), None),
        api_secret => (basic_auth(api_secret, ""), None),
    }
}

fn part(event: &Json, settings: &Settings, mapping_settings: &Value) -> Result<Part, Refusal> {
    let kind = event.get("type").and_then(Json::as_str).unwrap_or_default();
    let user_id = text(event, "userId");
    let anonymous_id = text(event, "anonymousId");
    let Some(distinct_id) = user_id.clone().or_else(|| anonymous_id.clone()) else {
        return Err(Refusal::Reject(
            "Mixpanel needs a distinct_id: the event has neither userId nor anonymousId".into(),
        ));
    };
    if INVALID_IDS.contains(&distinct_id.to_ascii_lowercase().as_str()) {
        return Err(Refusal::Reject(format!(
            "Mixpanel refuses {distinct_id:?} as a distinct_id"
        )));
    }
    let Some(millis) = event_millis(event) else {
        return Err(Refusal::Reject("the event has no valid timestamp".into()));
    };
    if kind == "track" && text(event, "event").is_none() {
        return Err(Refusal::Reject("Mixpanel needs an event name".into()));
    }
    let token = setting(settings, "token", "");
    let calls = super::mapping::map(&to_value(event), mapping_settings);
    let ids = Ids {
        token,
        millis,
        distinct_id: &distinct_id,
        user_id: user_id.as_deref(),
        anonymous_id: anonymous_id.as_deref(),
        insert_id: insert_id(event),
        ip: event
            .pointer("/context/ip")
            .and_then(Json::as_str)
            .filter(|ip| !ip.is_empty()),
    };
    match kind {
        "track" | "page" => {
            let items: Vec<Json> = calls
                .iter()
                .filter(|c| c.function == "mixpanel.track")
                .filter_map(|c| Some((arg(c, 0).as_str()?.to_string(), arg(c, 1))))
                .map(|(name, properties)| ids.event(&name, event, properties))
                .collect();
            if items.is_empty() {
                return Err(Refusal::Skip(
                    "a page without a name or category makes no Mixpanel event, as in device mode"
                        .into(),
                ));
            }
            Ok(Part::Import(items))
        }
        "screen" => {
            let names = viewed_screen_events(event);
            if names.is_empty() {
                return Err(Refusal::Skip(
                    "a screen without a name or category makes no Mixpanel event".into(),
                ));
            }
            let properties = event.get("properties").cloned().unwrap_or(json!({}));
            let items = names
                .iter()
                .map(|name| ids.event(name, event, properties.clone()))
                .collect();
            Ok(Part::Import(items))
        }
        "identify" => {
            let traits = calls
                .iter()
                .find(|c| c.function == "mixpanel.people.set")
                .map(|c| arg(c, 0));
            if let Some(traits) = traits {
                return Ok(Part::Engage(ids.profile(json!({ "$set": traits }))));
            }
            match (user_id.as_deref(), anonymous_id.as_deref()) {
                (Some(user), Some(anonymous)) if user != anonymous => {
                    let mut properties = Map::new();
                    properties.insert("$identified_id".into(), json!(user));
                    properties.insert("$anon_id".into(), json!(anonymous));
                    Ok(Part::Import(vec![ids.event(
                        "$identify",
                        event,
                        Json::Object(properties),
                    )]))
                }
                _ => Err(Refusal::Skip(
                    "an identify without traits or an anonymousId to link has nothing for Mixpanel"
                        .into(),
                )),
            }
        }
        "group" => {
            let Some(call) = calls.iter().find(|c| c.function == "mixpanel.set_group") else {
                return Err(Refusal::Reject("a group call needs a groupId".into()));
            };
            let (key, group) = (arg(call, 0), arg(call, 1));
            match event.get("traits") {
                Some(Json::Object(traits)) if !traits.is_empty() => {
                    let mut update = Map::new();
                    update.insert("$token".into(), json!(token));
                    update.insert("$group_key".into(), key);
                    update.insert("$group_id".into(), group);
                    update.insert("$set".into(), Json::Object(traits.clone()));
                    update.insert("$time".into(), json!(millis as f64 / 1000.0));
                    Ok(Part::Groups(Json::Object(update)))
                }
                _ => {
                    let mut set = Map::new();
                    if let Some(key) = key.as_str() {
                        set.insert(key.into(), json!([group]));
                    }
                    Ok(Part::Engage(ids.profile(json!({ "$set": set }))))
                }
            }
        }
        "alias" => {
            let Some(call) = calls.iter().find(|c| c.function == "mixpanel.alias") else {
                return match (user_id, text(event, "previousId")) {
                    (Some(_), Some(_)) => Err(Refusal::Skip(
                        "the alias is the id itself: Mixpanel refuses that".into(),
                    )),
                    _ => Err(Refusal::Reject("an alias needs a userId".into())),
                };
            };
            let alias = arg(call, 0);
            let original = match call.args.get(1) {
                Some(from) => to_json(from),
                None => match anonymous_id.as_deref() {
                    Some(anonymous) if Some(anonymous) != alias.as_str() => json!(anonymous),
                    _ => {
                        return Err(Refusal::Reject(
                            "an alias needs a previousId or an anonymousId".into(),
                        ));
                    }
                },
            };
            let mut properties = Map::new();
            properties.insert("distinct_id".into(), original);
            properties.insert("alias".into(), alias);
            properties.insert("token".into(), json!(token));
            properties.insert("time".into(), json!(millis));
            properties.insert("$insert_id".into(), json!(ids.insert_id));
            properties.insert("ip".into(), ids.ip.map_or(json!(0), |ip| json!(ip)));
            Ok(Part::Import(vec![json!({
                "event": "$create_alias",
                "properties": properties,
            })]))
        }
        other => Err(Refusal::Skip(format!(
            "Mixpanel's cloud mode takes no {other} calls"
        ))),
    }
}

/// What every event and update of one Segment event carries.
struct Ids<'a> {
    token: &'a str,
    millis: i64,
    distinct_id: &'a str,
    user_id: Option<&'a str>,
    anonymous_id: Option<&'a str>,
    insert_id: String,
    ip: Option<&'a str>,
}

impl Ids<'_> {
    /// An `/import` event: Mixpanel's properties from the context, the
    /// call's properties over them, and the ids over both.
    fn event(&self, name: &str, event: &Json, properties: Json) -> Json {
        let mut out = context_properties(event);
        if let Json::Object(properties) = properties {
            out.extend(properties);
        }
        out.insert("token".into(), json!(self.token));
        out.insert("time".into(), json!(self.millis));
        out.insert("distinct_id".into(), json!(self.distinct_id));
        out.insert("$insert_id".into(), json!(self.insert_id));
        if let Some(anonymous) = self.anonymous_id {
            out.insert("$device_id".into(), json!(anonymous));
        }
        if let Some(user) = self.user_id {
            out.insert("$user_id".into(), json!(user));
        }
        out.insert("ip".into(), self.ip.map_or(json!(0), |ip| json!(ip)));
        json!({ "event": name, "properties": out })
    }

    /// An `/engage` update of the profile, `operation` its `$set`.
    fn profile(&self, operation: Json) -> Json {
        let mut update = match operation {
            Json::Object(operation) => operation,
            _ => Map::new(),
        };
        update.insert("$token".into(), json!(self.token));
        update.insert("$distinct_id".into(), json!(self.distinct_id));
        update.insert("$time".into(), json!(self.millis as f64 / 1000.0));
        if let Some(ip) = self.ip {
            update.insert("$ip".into(), json!(ip));
        }
        Json::Object(update)
    }
}

/// Mixpanel's default properties that Segment's context carries.
fn context_properties(event: &Json) -> Map<String, Json> {
    const FROM_CONTEXT: &[(&str, &str)] = &[
        ("$current_url", "/context/page/url"),
        ("$referrer", "/context/page/referrer"),
        ("$os", "/context/os/name"),
        ("$os_version", "/context/os/version"),
        ("$manufacturer", "/context/device/manufacturer"),
        ("$model", "/context/device/model"),
        ("$app_version_string", "/context/app/version"),
        ("utm_source", "/context/campaign/source"),
        ("utm_medium", "/context/campaign/medium"),
        ("utm_campaign", "/context/campaign/name"),
        ("utm_term", "/context/campaign/term"),
        ("utm_content", "/context/campaign/content"),
    ];
    FROM_CONTEXT
        .iter()
        .filter_map(|(key, pointer)| {
            let value = event.pointer(pointer)?.as_str().filter(|s| !s.is_empty())?;
            Some((key.to_string(), json!(value)))
        })
        .collect()
}

/// The messageId as `$insert_id` when Mixpanel takes it as it is, else the
/// first 32 hex digits of its SHA-256 (of the whole event when it has no
/// messageId), so the same event always has the same key.
fn insert_id(event: &Json) -> String {
    match text(event, "messageId") {
        Some(id)
            if id.len() <= 36
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !INVALID_IDS.contains(&id.to_ascii_lowercase().as_str()) =>
        {
            id
        }
        Some(id) => sha256_hex(&id)[..32].to_string(),
        None => sha256_hex(&event.to_string())[..32].to_string(),
    }
}


/// A call's argument as JSON, `null` when absent.
fn arg(call: &Call, at: usize) -> Json {
    call.args.get(at).map(to_json).unwrap_or(Json::Null)
}
