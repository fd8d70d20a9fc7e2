//! Cloud mode: Meta's Conversions API, as Meta documents it
//! (developers.facebook.com/docs/marketing-api/conversions-api), at
//! `apiHost`.
//!
//! - `POST /{apiVersion}/{pixelId}/events?access_token=…` (with
//!   `appsecret_proof`, the hex HMAC-SHA256 of the token with the app
//!   secret, when one is set), a JSON body `{data, test_event_code?}`: at
//!   most 1,000 events a request. Meta refuses the whole request when one
//!   event is invalid, so events it would refuse are rejected here first.
//! - Each event: `event_name`, `event_time` (Unix seconds; Meta refuses
//!   events older than 7 days), `event_id` (the messageId: the dedupe key,
//!   which Meta matches with the event name against the browser pixel's
//!   `eventID`, the same messageId in the Facebook Pixel's device mapping),
//!   `action_source` (`website` when the event has the user agent and the
//!   page URL Meta requires of website events, else `other`),
//!   `event_source_url` (the context's page URL, or a page's own),
//!   `user_data` and `custom_data`.
//! - Names and `custom_data` are the Facebook Pixel's device mapping
//!   (`facebook_pixel/mapping.rs`), so both send the same event: page is
//!   `PageView`; `Order Completed` → `Purchase` (`value`, `currency`,
//!   `content_ids`, `contents`, `num_items`, and here `order_id`), `Product
//!   Viewed` → `ViewContent`, `Product Added` → `AddToCart`, `Checkout
//!   Started` → `InitiateCheckout`, `Products Searched` → `Search`; an event
//!   named in `standardEvents` becomes that standard event (`Lead` …); any
//!   other keeps its name, as a custom event, with its properties but
//!   personal data. `Signed Up` is also `CompleteRegistration` here, which
//!   the pixel's mapping sends as a custom event unless `standardEvents`
//!   maps it, so map it there to have the two deduplicated.
//! - `user_data`, from the context's traits (else the properties):
//!   `em`, `ph`, `fn`, `ln`, `ge`, `db`, `ct`, `st`, `zp`, `country` and
//!   `external_id` (the userId, else the anonymousId) normalised as Meta
//!   documents, then SHA-256 hex (a value that already is one is sent as
//!   it is); `client_ip_address` (`context.ip`), `client_user_agent`
//!   (`context.userAgent`), `fbc` and `fbp` (properties or context) as they
//!   are. Meta needs at least one of these: an event without is rejected.
//!   Meta requires website events to carry the user agent and page URL,
//!   which server libraries do not collect: such an event goes as `other`
//!   (set `context.userAgent` and `context.page.url` from the browser's
//!   request to have it count as a website event).
//!
//! Left out: app events (`action_source` `app` with `app_data`), Limited
//! Data Use (`data_processing_options`), `opt_out`.

use crate::cloud::{
    Built, Forwarder, Json, Limits, Map, Outcome, Request, Response, Settings, base_url, event_millis,
    hmac_sha256_hex, json, retry_after, setting, settings_value, sha256_hex, standard, text,
    to_json, to_value,
};
use crate::device::{Call, Value};

pub struct Cloud;

const DEFAULT_HOST: &str = "https://graph.facebook.com";
const DEFAULT_VERSION: &str = "v26.0";

/// Events in one request.
const MAX_EVENTS: usize = 1000;
/// Characters of a custom event's name.
const MAX_NAME: usize = 50;

/// Graph API error codes of rate limits and passing trouble, worth a retry:
/// unknown error, service unavailable, app, user and page request limits,
/// and calls per hour.
const RETRIED_CODES: &[i64] = &[1, 2, 4, 17, 32, 613];

enum Refusal {
    Skip(String),
    Reject(String),
}

impl Forwarder for Cloud {
    fn limits(&self, _settings: &Settings) -> Limits {
        Limits::batch(MAX_EVENTS, 2 << 20)
    }

    fn build(&self, events: &[Json], settings: &Settings) -> Built {
        let mapping_settings = settings_value(settings);
        let mut built = Built::default();
        let mut data = Vec::new();
        let mut indices = Vec::new();
        for (i, event) in events.iter().enumerate() {
            match server_event(event, &mapping_settings) {
                Ok(item) => {
                    data.push(item);
                    indices.push(i);
                }
                Err(Refusal::Skip(why)) => built.skipped.push((i, why)),
                Err(Refusal::Reject(why)) => built.rejected.push((i, why)),
            }
        }
        let url = url(settings);
        let test_code = setting(settings, "testEventCode", "").trim();
        for (items, indices) in data.chunks(MAX_EVENTS).zip(indices.chunks(MAX_EVENTS)) {
            let mut body = Map::new();
            body.insert("data".into(), Json::Array(items.to_vec()));
            if !test_code.is_empty() {
                body.insert("test_event_code".into(), json!(test_code));
            }
            built
                .requests
                .push(Request::post_json(&url, &Json::Object(body), indices.to_vec()));
        }
        built
    }

    /// 200 with `events_received` when Meta took the request. Graph API
    /// errors are `{"error": {"message", "type", "code", "error_subcode",
    /// "is_transient", "fbtrace_id"}}`, mostly with 400: rate limits (codes
    /// 4, 17, 32, 613) and transient errors (1, 2, or `is_transient`) are
    /// retried, any other (100 invalid parameter, 190 invalid token …)
    /// fails; other statuses follow Segment's policy.
    fn outcome(&self, _request: &Request, response: &Response<'_>) -> Outcome {
        if !(200..300).contains(&response.status) {
            let error = response.json().and_then(|b| b.get("error").cloned());
            if let Some(error) = error.filter(Json::is_object) {
                let code = error.get("code").and_then(Json::as_i64).unwrap_or_default();
                let transient = error.get("is_transient").and_then(Json::as_bool) == Some(true);
                if transient || RETRIED_CODES.contains(&code) {
                    let message = error.get("message").and_then(Json::as_str);
                    return Outcome::Retry {
                        after: response.header("Retry-After").and_then(retry_after),
                        reason: format!(
                            "HTTP {}: Graph API error {code}: {}",
                            response.status,
                            message.unwrap_or_default()
                        ),
                    };
                }
            }
        }
        standard(response)
    }
}

fn url(settings: &Settings) -> String {
    let host = base_url(settings, "apiHost", DEFAULT_HOST);
    let version = setting(settings, "apiVersion", DEFAULT_VERSION).trim();
    let version = version.strip_prefix('v').unwrap_or(version);
    let pixel = setting(settings, "pixelId", "").trim();
    let token = setting(settings, "accessToken", "").trim();
    let mut url = format!(
        "{host}/v{version}/{pixel}/events?access_token={}",
        query_escape(token)
    );
    let app_secret = setting(settings, "appSecret", "").trim();
    if !app_secret.is_empty() {
        let proof = hmac_sha256_hex(app_secret, token.as_bytes());
        url.push_str("&appsecret_proof=");
        url.push_str(&proof);
    }
    url
}

/// One Segment event as a Conversions API server event.
fn server_event(event: &Json, mapping_settings: &Value) -> Result<Json, Refusal> {
    let kind = event.get("type").and_then(Json::as_str).unwrap_or_default();
    let calls = crate::facebook_pixel::mapping::map(&to_value(event), mapping_settings);
    let Some(call) = calls.iter().find(|c| c.function == "fbq") else {
        return Err(Refusal::Skip(format!(
            "Meta's Conversions API takes no {kind} calls"
        )));
    };
    let method = arg_text(call, 0);
    let name = match (method, arg_text(call, 1).trim()) {
        ("trackCustom", "Signed Up") => "CompleteRegistration",
        (_, name) => name,
    };
    if name.is_empty() {
        return Err(Refusal::Reject("Meta needs an event name".into()));
    }
    if name.chars().count() > MAX_NAME {
        return Err(Refusal::Reject(format!(
            "Meta refuses event names over {MAX_NAME} characters: {name:?}"
        )));
    }
    let Some(millis) = event_millis(event) else {
        return Err(Refusal::Reject("the event has no valid timestamp".into()));
    };
    let user_data = user_data(event);
    if user_data.is_empty() {
        return Err(Refusal::Reject(
            "Meta needs at least one customer information parameter: the event has no ids, traits, IP or user agent".into(),
        ));
    }
    let mut out = Map::new();
    out.insert("event_name".into(), json!(name));
    out.insert("event_time".into(), json!(millis.div_euclid(1000)));
    let ua = context_text(event, "/context/userAgent").is_some();
    let event_id = match call.args.get(3) {
        Some(options) => options.get("eventID").filter(|id| !id.is_null()),
        None => None,
    };
    if let Some(id) = event_id {
        out.insert("event_id".into(), to_json(id));
    }
    let url = context_text(event, "/context/page/url").or_else(|| {
        if kind == "page" {
            context_text(event, "/properties/url")
        } else {
            None
        }
    });
    // Meta requires the user agent and page URL of a `website` event; one
    // without them (a server library's) is sent as `other`.
    let source = if ua && url.is_some() { "website" } else { "other" };
    out.insert("action_source".into(), json!(source));
    if let Some(url) = url {
        out.insert("event_source_url".into(), json!(url));
    }
    out.insert("user_data".into(), Json::Object(user_data));
    let mut custom = match call.args.get(2).map(to_json) {
        Some(Json::Object(custom)) => custom,
        _ => Map::new(),
    };
    for key in ["fbc", "fbp"] {
        custom.remove(key);
    }
    let order = event.pointer("/properties/order_id").filter(|v| !v.is_null());
    if name == "Purchase"
        && let Some(order) = order
    {
        custom.insert("order_id".into(), order.clone());
    }
    if !custom.is_empty() {
        out.insert("custom_data".into(), Json::Object(custom));
    }
    Ok(Json::Object(out))
}

/// The customer information parameters Meta matches people by.
fn user_data(event: &Json) -> Map<String, Json> {
    let mut out = Map::new();
    let mut hashed = |key: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            let value = if is_sha256(&value) {
                value
            } else {
                sha256_hex(&value)
            };
            out.insert(key.into(), json!([value]));
        }
    };
    // The person's traits, normalised by `f` unless already a SHA-256.
    let field = |paths: &[&str], f: fn(&str) -> Option<String>| {
        let value = person(event, paths)?;
        let lower = value.to_lowercase();
        if is_sha256(&lower) { Some(lower) } else { f(&value) }
    };
    let country = field(&["address.country", "country"], country_code);
    hashed("em", field(&["email"], email));
    hashed("ph", field(&["phone"], phone));
    hashed("fn", field(&["firstName"], name));
    hashed("ln", field(&["lastName"], name));
    hashed("ge", field(&["gender"], gender));
    hashed("db", field(&["birthday"], birthday));
    hashed("ct", field(&["address.city", "city"], letters));
    hashed("st", field(&["address.state", "state"], state));
    let zip_code = person(event, &["address.postalCode", "postalCode", "zip"]);
    let zip_code = match zip_code {
        Some(z) if is_sha256(&z.to_lowercase()) => Some(z.to_lowercase()),
        Some(z) => Some(zip(&z, country.as_deref())),
        None => None,
    };
    hashed("zp", zip_code);
    hashed("country", country);
    let external = text(event, "userId").or_else(|| text(event, "anonymousId"));
    hashed("external_id", external.map(|id| id.trim().to_string()));
    let raw: [(&str, &[&str]); 4] = [
        ("client_ip_address", &["/context/ip"]),
        ("client_user_agent", &["/context/userAgent"]),
        ("fbc", &["/properties/fbc", "/context/fbc"]),
        ("fbp", &["/properties/fbp", "/context/fbp"]),
    ];
    for (key, pointers) in raw {
        if let Some(value) = pointers.iter().find_map(|p| context_text(event, p)) {
            out.insert(key.into(), json!(value));
        }
    }
    out
}

/// A trait of the person, from `context.traits`, else the properties: the
/// first of the dotted `paths` that is set.
fn person(event: &Json, paths: &[&str]) -> Option<String> {
    ["/context/traits", "/properties"].iter().find_map(|root| {
        paths.iter().find_map(|path| {
            let pointer = format!("{root}/{}", path.replace('.', "/"));
            match event.pointer(&pointer)? {
                Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Json::Number(n) => Some(n.to_string()),
                _ => None,
            }
        })
    })
}

fn context_text(event: &Json, pointer: &str) -> Option<String> {
    event
        .pointer(pointer)
        .and_then(Json::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn is_sha256(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Trimmed and lowercase.
fn email(value: &str) -> Option<String> {
    let value = value.trim().to_lowercase();
    value.contains('@').then_some(value)
}

/// Digits only, with the country code, without leading zeros (`+1 (555)
/// 010-4477` → `15550104477`).
fn phone(value: &str) -> Option<String> {
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_start_matches('0');
    (!digits.is_empty()).then(|| digits.to_string())
}

/// Lowercase without punctuation.
fn name(value: &str) -> Option<String> {
    let name: String = value
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    Some(name)
}

/// Lowercase letters only: no spaces, punctuation or digits (`Menlo Park` →
/// `menlopark`).
fn letters(value: &str) -> Option<String> {
    Some(
        value
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphabetic())
            .collect(),
    )
}

/// `f` or `m`.
fn gender(value: &str) -> Option<String> {
    match value.trim().to_lowercase().as_str() {
        "f" | "female" | "woman" => Some("f".into()),
        "m" | "male" | "man" => Some("m".into()),
        _ => None,
    }
}

/// `YYYYMMDD`, from `YYYY-MM-DD` (also with a time after it), `YYYY/MM/DD`
/// or `YYYYMMDD`.
fn birthday(value: &str) -> Option<String> {
    let value = value.trim();
    let date = value.get(..10).unwrap_or(value);
    let digits: String = date.chars().filter(char::is_ascii_digit).collect();
    let separated = date.len() == 10 && matches!(date.get(4..5), Some("-" | "/"));
    if digits.len() != 8 || !(separated || date.len() == 8) {
        return None;
    }
    let month: u32 = digits[4..6].parse().ok()?;
    let day: u32 = digits[6..8].parse().ok()?;
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some(digits)
}

/// The two-letter code in lowercase: a US state's name becomes its code.
fn state(value: &str) -> Option<String> {
    let state = letters(value)?;
    let code = US_STATES.iter().find(|(name, _)| *name == state);
    Some(code.map_or(state, |(_, code)| code.to_string()))
}

/// Lowercase without spaces or dashes; a US zip's first five digits.
fn zip(value: &str, country: Option<&str>) -> String {
    let zip: String = value
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let us_form = zip.len() == 10
        && zip.as_bytes().get(5) == Some(&b'-')
        && zip.bytes().filter(u8::is_ascii_digit).count() == 9;
    if country == Some("us") || (country.is_none() && us_form) {
        let digits: String = zip.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 5 {
            return digits[..5].to_string();
        }
    }
    zip.replace('-', "")
}

/// ISO 3166-1 alpha-2 in lowercase; anything else is left out.
fn country_code(value: &str) -> Option<String> {
    let code: String = value
        .trim()
        .to_lowercase()
        .chars()
        .filter(char::is_ascii_lowercase)
        .collect();
    (code.len() == 2).then_some(code)
}

fn arg_text(call: &Call, at: usize) -> &str {
    call.args
        .get(at)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A query parameter's value, percent-encoded but for unreserved
/// characters.
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// US states (and DC) by name, as [`letters`] leaves them, with their
/// ANSI codes.
const US_STATES: &[(&str, &str)] = &[
    ("alabama", "al"),
    ("alaska", "ak"),
    ("arizona", "az"),
    ("arkansas", "ar"),
    ("california", "ca"),
    ("colorado", "co"),
    ("connecticut", "ct"),
    ("delaware", "de"),
    ("districtofcolumbia", "dc"),
    ("florida", "fl"),
    ("georgia", "ga"),
    ("hawaii", "hi"),
    ("idaho", "id"),
    ("illinois", "il"),
    ("indiana", "in"),
    ("iowa", "ia"),
    ("kansas", "ks"),
    ("kentucky", "ky"),
    ("louisiana", "la"),
    ("maine", "me"),
    ("maryland", "md"),
    ("massachusetts", "ma"),
    ("michigan", "mi"),
    ("minnesota", "mn"),
    ("mississippi", "ms"),
    ("missouri", "mo"),
    ("montana", "mt"),
    ("nebraska", "ne"),
    ("nevada", "nv"),
    ("newhampshire", "nh"),
    ("newjersey", "nj"),
    ("newmexico", "nm"),
    ("newyork", "ny"),
    ("northcarolina", "nc"),
    ("northdakota", "nd"),
    ("ohio", "oh"),
    ("oklahoma", "ok"),
    ("oregon", "or"),
    ("pennsylvania", "pa"),
    ("rhodeisland", "ri"),
    ("southcarolina", "sc"),
    ("southdakota", "sd"),
    ("tennessee", "tn"),
    ("texas", "tx"),
    ("utah", "ut"),
    ("vermont", "vt"),
    ("virginia", "va"),
    ("washington", "wa"),
    ("westvirginia", "wv"),
    ("wisconsin", "wi"),
    ("wyoming", "wy"),
];
