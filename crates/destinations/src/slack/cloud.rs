//! Cloud mode: a Slack incoming webhook (api.slack.com/messaging/webhooks).
//!
//! - `POST` of JSON `{text, channel?, username?, icon_emoji?}` to the
//!   webhook URL, which is the secret (no other auth): one event a request,
//!   at most one a second (Slack's rate limit for a webhook). Slack answers
//!   `ok`; 400 `invalid_payload` or `no_text`, 403 `action_prohibited`, 404
//!   `no_service` or `channel_not_found`, 410 `channel_is_archived` fail;
//!   429 (with `Retry-After`) and 5xx are retried, as Segment's policy has
//!   it. Slack has no dedupe key: a message resent after a lost answer is
//!   posted twice.
//! - A track event is posted when its name is in `events` (every track
//!   event when that is empty), else skipped; identify is posted when it
//!   has traits. The text is the event's template in `templates`, else
//!   `template` (identify: `identifyTemplate`), as Segment's Slack
//!   destination defaults them: `{{name}} did {{event}}.` and `Identified
//!   {{name}}.` with the traits.
//! - A template's `{{path}}` is a dotted path into the event
//!   (`{{properties.plan}}`, `{{traits.email}}`, also the context's traits
//!   on a track event, `{{context.page.url}}`, `{{properties.products.0.name}}`);
//!   `{{name}}` is the person, as Segment finds it (the traits' name, first
//!   and last name, username or email, else `User {userId}` or `Anonymous
//!   user {anonymousId}`). An object is its members as `key: value`, a
//!   missing field nothing. Values are escaped for Slack's mrkdwn (`&`, `<`,
//!   `>`), so an event cannot add mentions or links; the template's own
//!   formatting stays.

use std::time::Duration;

use crate::cloud::{Built, Forwarder, Json, Limits, Map, Request, Settings, json, setting, text};

pub struct Cloud;

const TRACK_TEMPLATE: &str = "{{name}} did {{event}}.";
const IDENTIFY_TEMPLATE: &str = "Identified {{name}}. {{traits}}";

impl Forwarder for Cloud {
    fn limits(&self, _settings: &Settings) -> Limits {
        Limits {
            max_events: 1,
            max_bytes: 4 << 20,
            min_interval: Duration::from_secs(1),
        }
    }

    fn build(&self, events: &[Json], settings: &Settings) -> Built {
        let mut built = Built::default();
        let url = setting(settings, "webhookUrl", "").trim();
        for (i, event) in events.iter().enumerate() {
            let template = match template(event, settings) {
                Ok(template) => template,
                Err(why) => {
                    built.skipped.push((i, why));
                    continue;
                }
            };
            let text = render(template, event);
            if text.is_empty() {
                built
                    .rejected
                    .push((i, "the template makes an empty message".into()));
                continue;
            }
            let mut body = Map::new();
            body.insert("text".into(), json!(text));
            for (key, field) in [
                ("channel", "channel"),
                ("username", "username"),
                ("iconEmoji", "icon_emoji"),
            ] {
                let value = setting(settings, key, "").trim();
                if !value.is_empty() {
                    body.insert(field.into(), json!(value));
                }
            }
            built
                .requests
                .push(Request::post_json(url, &Json::Object(body), vec![i]));
        }
        built
    }
}

/// The template of an event, or why it is not posted.
fn template<'a>(event: &Json, settings: &'a Settings) -> Result<&'a str, String> {
    match event.get("type").and_then(Json::as_str).unwrap_or_default() {
        "track" => {
            let name = event.get("event").and_then(Json::as_str).unwrap_or_default();
            let selected = match settings.get("events") {
                Some(Json::Array(names)) if !names.is_empty() => {
                    names.iter().any(|n| n.as_str().map(str::trim) == Some(name))
                }
                _ => true,
            };
            if !selected {
                return Err("not selected".into());
            }
            let own = settings
                .get("templates")
                .and_then(|t| t.get(name))
                .and_then(Json::as_str)
                .filter(|t| !t.trim().is_empty());
            Ok(own.unwrap_or_else(|| setting(settings, "template", TRACK_TEMPLATE)))
        }
        "identify" => match event.get("traits") {
            Some(Json::Object(traits)) if !traits.is_empty() => {
                Ok(setting(settings, "identifyTemplate", IDENTIFY_TEMPLATE))
            }
            _ => Err("an identify without traits".into()),
        },
        other => Err(format!("Slack's cloud mode posts no {other} calls")),
    }
}

/// The template with each `{{path}}` replaced by the event's value there,
/// escaped; an unclosed `{{` stays as it is.
fn render(template: &str, event: &Json) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let path = rest[start + 2..start + 2 + len].trim();
        out.push_str(&escape(&field(event, path)));
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    out.trim().to_string()
}

/// The text of the event's field at a dotted path, `name` the person's.
fn field(event: &Json, path: &str) -> String {
    if path == "name" {
        return person(event);
    }
    let found = lookup(event, path).or_else(|| {
        // A track event's traits are its context's.
        let traits = path.strip_prefix("traits")?;
        if event.get("traits").is_some() || !(traits.is_empty() || traits.starts_with('.')) {
            return None;
        }
        lookup(event, &format!("context.traits{traits}"))
    });
    found.map(show).unwrap_or_default()
}

fn lookup<'a>(event: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(event, |value, key| match value {
        Json::Object(map) => map.get(key),
        Json::Array(items) => items.get(key.parse::<usize>().ok()?),
        _ => None,
    })
}

/// The person an event is about, as Segment's Slack destination names them.
fn person(event: &Json) -> String {
    let trait_text = |key: &str| {
        ["traits", "context.traits"].iter().find_map(|root| {
            lookup(event, &format!("{root}.{key}"))
                .and_then(Json::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
    };
    if let Some(name) = trait_text("name") {
        return name;
    }
    match (trait_text("firstName"), trait_text("lastName")) {
        (Some(first), Some(last)) => return format!("{first} {last}"),
        (Some(first), None) => return first,
        _ => {}
    }
    let email = lookup(event, "properties.email")
        .and_then(Json::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().to_string());
    if let Some(name) = trait_text("username")
        .or(email)
        .or_else(|| trait_text("email"))
    {
        return name;
    }
    match (text(event, "userId"), text(event, "anonymousId")) {
        (Some(user), _) => format!("User {user}"),
        (None, Some(anonymous)) => format!("Anonymous user {anonymous}"),
        _ => String::new(),
    }
}

/// A value as text: an object as `key: value, …`, an array as its items.
fn show(value: &Json) -> String {
    match value {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        Json::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}: {}", nested(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Json::Array(items) => items.iter().map(nested).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A value inside an object or array: text as it is, anything else as JSON.
fn nested(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Slack's mrkdwn escapes: `&`, `<` and `>`, so `<!channel>`, `<@U…>` and
/// `<url|text>` in a value stay text.
fn escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
