//! Stand-ins for the vendors' cloud (server-to-server) APIs, which cloud
//! mode delivers to. Each is under `/cloud/{vendor}/`, `{vendor}` the
//! destination's slug: a connection's base URL setting is
//! `http://127.0.0.1:PORT/cloud/{vendor}` and the vendor's own path follows.
//! Each answers as its vendor documents its API: the success body, the
//! auth and validation errors and the limits, in the vendor's error shape.
//!
//! For the tests, every request is recorded (`/cloud/requests`), every
//! event a vendor took is counted by the vendor's dedupe key
//! (`/cloud/keys`), and a switch per vendor makes it fail
//! (`/cloud/control`); `main.rs` describes the API.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::vendor::{decode_data, form_pairs, now_ms};

/// The most a request to a stand-in may carry; each vendor's own, smaller
/// limit is its stand-in's business.
const BODY_LIMIT: usize = 64 << 20;

/// A vendor's stand-in: its answer to one request.
type StandIn = fn(&Incoming, &mut Stored) -> Answer;

/// Every stand-in, by destination slug.
const STAND_INS: &[(&str, StandIn)] = &[
    ("webhook", webhook),
    ("slack", slack),
    ("mixpanel", mixpanel),
    ("amplitude", amplitude),
    ("posthog", posthog),
    ("google_analytics_4", google_analytics_4),
    ("facebook_conversions_api", facebook),
    ("customerio", customerio),
    ("klaviyo", klaviyo),
    ("intercom", intercom),
];

fn stand_in(vendor: &str) -> Option<StandIn> {
    STAND_INS
        .iter()
        .find(|(slug, _)| *slug == vendor)
        .map(|(_, f)| *f)
}

/// The stand-ins' routes, with their own state.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/cloud/requests", get(list).delete(clear))
        .route("/cloud/keys", get(keys))
        .route("/cloud/control", get(switches).post(control))
        .route("/cloud/{vendor}/", any(endpoint))
        .route("/cloud/{vendor}/{*rest}", any(endpoint))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(Cloud::default())
}

#[derive(Clone, Default)]
struct Cloud(Arc<Mutex<Book>>);

#[derive(Default)]
struct Book {
    /// Every request, oldest first, by sequence number.
    requests: Vec<(u64, Value)>,
    next: u64,
    /// Per vendor, how many times each dedupe key was taken.
    keys: BTreeMap<String, BTreeMap<String, u64>>,
    switches: BTreeMap<String, Switch>,
    stored: Stored,
}

/// What the vendors keep between requests.
#[derive(Default)]
struct Stored {
    /// Klaviyo: profile id by identifier (`email:…`, `external_id:…` …).
    klaviyo_profiles: BTreeMap<String, String>,
    intercom_contacts: Vec<Map<String, Value>>,
    intercom_companies: Vec<Map<String, Value>>,
}

/// A vendor's failure switch.
#[derive(Clone, Debug)]
struct Switch {
    mode: Mode,
    retry_after: Option<String>,
    /// How many more requests it answers; `None`: all of them.
    times: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// 503, or the connection closed without an answer.
    Down { drop: bool },
    /// The normal answer, `delay_ms` late.
    Slow { delay_ms: u64 },
    /// This status, in the vendor's error shape.
    Status(StatusCode),
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Down { .. } => "down",
            Mode::Slow { .. } => "slow",
            Mode::Status(_) => "status",
        }
    }
}

impl Switch {
    fn to_json(&self, vendor: &str) -> Value {
        let mut out = json!({
            "vendor": vendor,
            "mode": self.mode.name(),
            "retry_after": self.retry_after,
            "times": self.times,
        });
        match self.mode {
            Mode::Down { drop } => out["drop"] = json!(drop),
            Mode::Slow { delay_ms } => out["delay_ms"] = json!(delay_ms),
            Mode::Status(status) => out["status"] = json!(status.as_u16()),
        }
        out
    }
}

/// A request to a stand-in.
struct Incoming {
    method: Method,
    /// The vendor's own path: what follows `/cloud/{vendor}`.
    endpoint: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    /// The body, gunzipped when it says it is gzip.
    body: Vec<u8>,
}

impl Incoming {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn is_form(&self) -> bool {
        self.header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
    }

    /// A field of a form body.
    fn form(&self, name: &str) -> Option<String> {
        form_pairs(&self.text())
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// HTTP Basic credentials.
    fn basic_auth(&self) -> Option<(String, String)> {
        let encoded = self.header("authorization")?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
        Some((user.to_string(), password.to_string()))
    }

    fn bearer(&self) -> Option<&str> {
        self.header("authorization")?
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// The path's segments, without empty ones.
    fn segments(&self) -> Vec<&str> {
        self.endpoint.split('/').filter(|s| !s.is_empty()).collect()
    }

    fn post(&self) -> bool {
        self.method == Method::POST
    }
}

/// A stand-in's answer.
struct Answer {
    status: StatusCode,
    content_type: Option<&'static str>,
    body: String,
    retry_after: Option<String>,
    /// The dedupe keys of the events the vendor took.
    took: Vec<String>,
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        Answer::with(status, Some("application/json"), body.to_string())
    }

    fn text(status: u16, body: &str) -> Answer {
        Answer::with(status, Some("text/plain; charset=utf-8"), body.to_string())
    }

    fn empty(status: u16) -> Answer {
        Answer::with(status, None, String::new())
    }

    fn with(status: u16, content_type: Option<&'static str>, body: String) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            content_type,
            body,
            retry_after: None,
            took: Vec::new(),
        }
    }

    fn took(mut self, keys: Vec<String>) -> Answer {
        self.took = keys;
        self
    }

    fn into_response(self) -> Response {
        let mut r = (self.status, self.body).into_response();
        let h = r.headers_mut();
        match self.content_type {
            Some(t) => h.insert(header::CONTENT_TYPE, HeaderValue::from_static(t)),
            None => h.remove(header::CONTENT_TYPE),
        };
        if let Some(v) = self
            .retry_after
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// An id as vendors make them: `prefix` and hex, unique in this process.
fn token(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{:012x}{n:08x}", now_ms())
}

fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// The dedupe key at `pointer` in `item`, or, without one, the item's JSON.
fn key_of(item: &Value, pointer: &str) -> String {
    match item.pointer(pointer) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(v) if !v.is_null() && !v.is_string() => v.to_string(),
        _ => item.to_string(),
    }
}

fn text_at<'a>(item: &'a Value, pointer: &str) -> Option<&'a str> {
    item.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn gunzip(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|e| e.contains("gzip"));
    let mut out = Vec::new();
    if gzip
        && flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .is_ok()
    {
        return out;
    }
    body.to_vec()
}

/// A request to `/cloud/{vendor}/...`: recorded, switched, answered.
async fn endpoint(
    State(cloud): State<Cloud>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rest = uri.path().strip_prefix("/cloud/").unwrap_or_default();
    let (vendor, own_path) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(stand_in) = stand_in(vendor) else {
        let known: Vec<&str> = STAND_INS.iter().map(|(slug, _)| *slug).collect();
        return Answer::json(
            404,
            json!({"error": format!("no stand-in for {vendor:?}"), "vendors": known}),
        )
        .into_response();
    };
    let request = Incoming {
        method,
        endpoint: ["/", own_path].concat(),
        query: form_pairs(uri.query().unwrap_or_default()),
        body: gunzip(&headers, &body),
        headers,
    };
    let (seq, switch) = cloud.arrive(vendor, &uri, &request);
    let mode = switch.as_ref().map(|s| s.mode);
    let mut answer = match mode {
        Some(Mode::Down { drop: true }) => {
            cloud.finish(vendor, seq, None, mode);
            drop_connection()
        }
        Some(Mode::Down { drop: false }) => failure(vendor, 503, &request),
        Some(Mode::Status(status)) => failure(vendor, status.as_u16(), &request),
        Some(Mode::Slow { delay_ms }) => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            cloud.answer(stand_in, &request)
        }
        None => cloud.answer(stand_in, &request),
    };
    if let Some(Switch {
        mode: Mode::Down { .. } | Mode::Status(_),
        retry_after: Some(after),
        ..
    }) = &switch
    {
        answer.retry_after = Some(after.clone());
    }
    cloud.finish(vendor, seq, Some(&answer), mode);
    answer.into_response()
}

/// Closes the connection without an answer, as a vendor's load balancer
/// does when it drops one: unwinding the connection's task (without the
/// panic hook) drops its socket; the server goes on serving.
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("connection dropped on purpose"))
}

impl Cloud {
    /// Records a request as it arrives and takes one turn of the vendor's
    /// switch.
    fn arrive(&self, vendor: &str, uri: &Uri, request: &Incoming) -> (u64, Option<Switch>) {
        let mut headers = Map::new();
        for name in request.headers.keys() {
            let values: Vec<&str> = request
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            headers.insert(name.as_str().to_string(), json!(values.join(", ")));
        }
        let body = request.json().unwrap_or_else(|| json!(request.text()));
        let entry = json!({
            "vendor": vendor,
            "method": request.method.as_str(),
            "path": uri.path(),
            "endpoint": request.endpoint,
            "query": uri.query(),
            "headers": headers,
            "body": body,
            "status": null,
            "switch": null,
            "at_ms": now_ms(),
        });
        let mut book = self.0.lock().unwrap();
        let seq = book.next;
        book.next += 1;
        book.requests.push((seq, entry));
        let switch = book.switches.get_mut(vendor).map(|s| {
            let turn = s.clone();
            if let Some(times) = &mut s.times {
                *times -= 1;
            }
            turn
        });
        if book
            .switches
            .get(vendor)
            .is_some_and(|s| s.times == Some(0))
        {
            book.switches.remove(vendor);
        }
        (seq, switch)
    }

    fn answer(&self, stand_in: StandIn, request: &Incoming) -> Answer {
        stand_in(request, &mut self.0.lock().unwrap().stored)
    }

    /// Completes a request's record with the answer (none: dropped) and
    /// counts the events the vendor took, unless a switch answered for it.
    fn finish(&self, vendor: &str, seq: u64, answer: Option<&Answer>, mode: Option<Mode>) {
        let mut book = self.0.lock().unwrap();
        if let Some((_, entry)) = book.requests.iter_mut().find(|(s, _)| *s == seq) {
            entry["switch"] = json!(mode.map(Mode::name));
            match answer {
                Some(a) => entry["status"] = json!(a.status.as_u16()),
                None => entry["dropped"] = json!(true),
            }
        }
        let normal = matches!(mode, None | Some(Mode::Slow { .. }));
        if let Some(answer) = answer.filter(|_| normal) {
            let keys = book.keys.entry(vendor.to_string()).or_default();
            for key in &answer.took {
                *keys.entry(key.clone()).or_default() += 1;
            }
        }
    }
}

type Params = Query<BTreeMap<String, String>>;

/// `GET /cloud/requests[?vendor=..]`: the recorded requests, oldest first.
async fn list(State(cloud): State<Cloud>, Query(q): Params) -> Json<Vec<Value>> {
    let book = cloud.0.lock().unwrap();
    let wanted = q.get("vendor");
    Json(
        book.requests
            .iter()
            .map(|(_, r)| r)
            .filter(|r| wanted.is_none_or(|v| r["vendor"] == v.as_str()))
            .cloned()
            .collect(),
    )
}

/// `DELETE /cloud/requests[?vendor=..]`: forgets the recorded requests and
/// the counted keys.
async fn clear(State(cloud): State<Cloud>, Query(q): Params) -> StatusCode {
    let mut book = cloud.0.lock().unwrap();
    match q.get("vendor") {
        Some(v) => {
            book.requests.retain(|(_, r)| r["vendor"] != v.as_str());
            book.keys.remove(v);
        }
        None => {
            book.requests.clear();
            book.keys.clear();
        }
    }
    StatusCode::NO_CONTENT
}

/// `GET /cloud/keys?vendor=..`: how many times each dedupe key was taken
/// (every vendor's, by vendor, without the parameter).
async fn keys(State(cloud): State<Cloud>, Query(q): Params) -> Json<Value> {
    let book = cloud.0.lock().unwrap();
    Json(match q.get("vendor") {
        Some(v) => json!(book.keys.get(v).cloned().unwrap_or_default()),
        None => json!(book.keys),
    })
}

/// `GET /cloud/control`: the switches that are on, by vendor.
async fn switches(State(cloud): State<Cloud>) -> Json<Value> {
    let book = cloud.0.lock().unwrap();
    Json(Value::Object(
        book.switches
            .iter()
            .map(|(vendor, s)| (vendor.clone(), s.to_json(vendor)))
            .collect(),
    ))
}

/// `POST /cloud/control`: sets a vendor's switch (`ok` turns it off).
async fn control(State(cloud): State<Cloud>, body: Bytes) -> Response {
    let parsed = serde_json::from_slice::<Value>(&body)
        .map_err(|e| format!("the body is not JSON: {e}"))
        .and_then(|v| parse_switch(&v));
    match parsed {
        Ok((vendor, switch)) => {
            let mut book = cloud.0.lock().unwrap();
            let shown = match switch {
                Some(s) => {
                    let shown = s.to_json(&vendor);
                    book.switches.insert(vendor, s);
                    shown
                }
                None => {
                    book.switches.remove(&vendor);
                    json!({"vendor": vendor, "mode": "ok"})
                }
            };
            Json(shown).into_response()
        }
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response(),
    }
}

/// A vendor and its switch (`None` for `ok`) from `POST /cloud/control`'s
/// body.
fn parse_switch(body: &Value) -> Result<(String, Option<Switch>), String> {
    let vendor = body["vendor"].as_str().unwrap_or_default();
    if stand_in(vendor).is_none() {
        return Err(format!("no stand-in for vendor {vendor:?}"));
    }
    let number = |key: &str| -> Result<Option<u64>, String> {
        match &body[key] {
            Value::Null => Ok(None),
            v => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("{key} must be a whole number")),
        }
    };
    let mode = match body["mode"].as_str().unwrap_or_default() {
        "ok" => return Ok((vendor.to_string(), None)),
        "down" => Mode::Down {
            drop: body["drop"].as_bool().unwrap_or(false),
        },
        "slow" => Mode::Slow {
            delay_ms: number("delay_ms")?.unwrap_or(1000),
        },
        "status" => {
            let status = number("status")?
                .and_then(|s| u16::try_from(s).ok())
                .and_then(|s| StatusCode::from_u16(s).ok())
                .ok_or("mode `status` needs a status between 100 and 999")?;
            Mode::Status(status)
        }
        other => return Err(format!("mode {other:?} is none of ok, down, slow, status")),
    };
    let retry_after = match &body["retry_after"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => return Err("retry_after must be a string or a number".into()),
    };
    let times = number("times")?;
    if times == Some(0) {
        return Err("times must be at least 1 (leave it out for every request)".into());
    }
    let switch = Switch {
        mode,
        retry_after,
        times,
    };
    Ok((vendor.to_string(), Some(switch)))
}

/// What `vendor` answers with `status` when it fails: its 429 as it
/// documents it, other statuses in its error shape.
fn failure(vendor: &str, status: u16, request: &Incoming) -> Answer {
    let text = reason(status);
    let throttled = status == 429;
    match vendor {
        "slack" if throttled => Answer::text(status, "rate_limited"),
        "mixpanel" => {
            let error = if throttled {
                "Project exceeded rate limits. Please retry the request with exponential backoff."
            } else {
                text
            };
            Answer::json(
                status,
                json!({"code": status, "error": error, "status": text}),
            )
        }
        "amplitude" if throttled => {
            let events = request
                .json()
                .and_then(|b| b["events"].as_array().cloned())
                .unwrap_or_default();
            let mut users: BTreeMap<String, u64> = BTreeMap::new();
            let mut devices: BTreeMap<String, u64> = BTreeMap::new();
            for e in &events {
                if let Some(u) = text_at(e, "/user_id") {
                    *users.entry(u.to_string()).or_default() += 1;
                }
                if let Some(d) = text_at(e, "/device_id") {
                    *devices.entry(d.to_string()).or_default() += 1;
                }
            }
            Answer::json(
                status,
                json!({
                    "code": 429,
                    "error": "Too many requests for some devices and users",
                    "eps_threshold": 30,
                    "throttled_devices": devices,
                    "throttled_users": users,
                    "throttled_events": (0..events.len()).collect::<Vec<_>>(),
                }),
            )
        }
        "amplitude" => Answer::json(status, json!({"code": status, "error": text})),
        "posthog" => {
            let (kind, code, detail) = if throttled {
                (
                    "throttled_error",
                    "rate_limit_exceeded",
                    "Rate limit exceeded",
                )
            } else {
                ("server_error", "error", text)
            };
            Answer::json(
                status,
                json!({"type": kind, "code": code, "detail": detail, "attr": null}),
            )
        }
        "facebook_conversions_api" => {
            let (message, code) = if throttled {
                ("(#4) Application request limit reached", 4)
            } else if status >= 500 {
                (
                    "An unexpected error has occurred. Please retry your request later.",
                    2,
                )
            } else {
                ("An unknown error occurred", 1)
            };
            Answer::json(
                status,
                json!({"error": {
                    "message": message,
                    "type": "OAuthException",
                    "is_transient": true,
                    "code": code,
                    "fbtrace_id": token("A"),
                }}),
            )
        }
        "customerio" => Answer::json(status, json!({"meta": {"error": text}})),
        "klaviyo" => {
            let (code, title, detail) = if throttled {
                (
                    "throttled",
                    "Request was throttled.",
                    "Request was throttled. Expected available in 1 second.",
                )
            } else {
                ("error", text, text)
            };
            klaviyo_error(status, code, title, detail, "/data/")
        }
        "intercom" => {
            let (code, message) = if throttled {
                ("rate_limit_exceeded", "Exceeded rate limit")
            } else {
                ("service_unavailable", text)
            };
            intercom_error(status, code, message)
        }
        _ => Answer::text(status, text),
    }
}

// ---------------------------------------------------------------- webhook

/// The site owner's endpoint: takes anything, `200 ok`; whoever receives
/// checks `X-Signature`. Events (the body, or each of an array) count by
/// `messageId`.
fn webhook(request: &Incoming, _: &mut Stored) -> Answer {
    let keys = match request.json() {
        Some(Value::Array(events)) => events.iter().map(|e| key_of(e, "/messageId")).collect(),
        Some(event) => vec![key_of(&event, "/messageId")],
        None => vec![request.text()],
    };
    Answer::text(200, "ok").took(keys)
}

// ------------------------------------------------------------------ slack

/// An incoming webhook, `POST /services/T…/B…/…` of JSON (or a form's
/// `payload`): `ok`; `invalid_payload` and `no_text` as Slack answers them.
/// Slack has no dedupe key: a message counts by its body.
fn slack(request: &Incoming, _: &mut Stored) -> Answer {
    let segments = request.segments();
    if !request.post() || segments.len() != 4 || segments[0] != "services" {
        return Answer::text(404, "no_service");
    }
    let payload = if request.is_form() {
        request.form("payload").unwrap_or_default()
    } else {
        request.text()
    };
    let Ok(Value::Object(message)) = serde_json::from_str::<Value>(&payload) else {
        return Answer::text(400, "invalid_payload");
    };
    let has = |key: &str| match message.get(key) {
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        _ => false,
    };
    if !has("text") && !has("blocks") && !has("attachments") {
        return Answer::text(400, "no_text");
    }
    Answer::text(200, "ok").took(vec![payload])
}

// --------------------------------------------------------------- mixpanel

/// Mixpanel's `/import` takes this many events a request.
const MIXPANEL_IMPORT_RECORDS: usize = 2000;
/// … and this many bytes of uncompressed JSON.
const MIXPANEL_IMPORT_BYTES: usize = 10 << 20;
/// `/engage` and `/groups` take this many updates a request.
const MIXPANEL_ENGAGE_UPDATES: usize = 2000;
const MIXPANEL_GROUP_UPDATES: usize = 200;

/// Mixpanel's ingestion API: `/import` (Basic auth: a service account, an
/// API secret or the project token), `/engage` and `/groups`.
fn mixpanel(request: &Incoming, _: &mut Stored) -> Answer {
    match (request.post(), request.segments().as_slice()) {
        (true, ["import"]) => mixpanel_import(request),
        (true, ["engage"]) => mixpanel_updates(request, false),
        (true, ["groups"]) => mixpanel_updates(request, true),
        _ => Answer::json(404, json!({"error": "unknown endpoint", "status": 0})),
    }
}

fn mixpanel_bad_request(error: &str) -> Answer {
    Answer::json(
        400,
        json!({"code": 400, "error": error, "num_records_imported": 0, "status": "Bad Request"}),
    )
}

/// `/import`: a JSON array (or `application/x-ndjson`) of events, each
/// validated as strict mode does; the valid ones are imported even when
/// others fail. Events dedupe by `$insert_id` with the name, `distinct_id`
/// and time, as Mixpanel does.
fn mixpanel_import(request: &Incoming) -> Answer {
    let credentials = request.basic_auth().filter(|(user, secret)| {
        !user.is_empty() && (request.param("project_id").is_none() || !secret.is_empty())
    });
    if credentials.is_none() {
        return Answer::json(
            401,
            json!({
                "error": "Unauthorized: send a service account (with project_id), the project's \
                    API secret or its token as HTTP Basic auth",
                "status": 0,
            }),
        );
    }
    if request.body.len() > MIXPANEL_IMPORT_BYTES {
        return Answer::json(
            413,
            json!({
                "code": 413,
                "error": "request body too large: the limit is 10 MB uncompressed",
                "status": "Payload Too Large",
            }),
        );
    }
    let ndjson = request
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/x-ndjson"));
    let records: Result<Vec<Value>, String> = if ndjson {
        request
            .text()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| e.to_string()))
            .collect()
    } else {
        match serde_json::from_slice::<Value>(&request.body) {
            Ok(Value::Array(records)) => Ok(records),
            Ok(record @ Value::Object(_)) => Ok(vec![record]),
            Ok(_) => Err("expected an array of events".into()),
            Err(e) => Err(e.to_string()),
        }
    };
    let records = match records {
        Ok(records) => records,
        Err(e) => return mixpanel_bad_request(&format!("unable to parse the request body: {e}")),
    };
    if records.len() > MIXPANEL_IMPORT_RECORDS {
        return mixpanel_bad_request("a request may hold at most 2000 events");
    }
    let mut failed = Vec::new();
    let mut keys = Vec::new();
    for (index, record) in records.iter().enumerate() {
        match mixpanel_problem(record) {
            Some((field, message)) => failed.push(json!({
                "index": index,
                "$insert_id": record.pointer("/properties/$insert_id"),
                "field": field,
                "message": message,
            })),
            None => {
                let p = &record["properties"];
                keys.push(format!(
                    "{}/{}/{}/{}",
                    key_of(record, "/properties/$insert_id"),
                    record["event"].as_str().unwrap_or_default(),
                    key_of(p, "/distinct_id"),
                    mixpanel_millis(&p["time"]).unwrap_or_default() / 1000,
                ));
            }
        }
    }
    let imported = keys.len();
    if failed.is_empty() {
        return Answer::json(
            200,
            json!({"code": 200, "num_records_imported": imported, "status": "OK"}),
        )
        .took(keys);
    }
    Answer::json(
        400,
        json!({
            "code": 400,
            "error": "some data points in the request failed validation",
            "num_records_imported": imported,
            "status": "Bad Request",
            "failed_records": failed,
        }),
    )
    .took(keys)
}

/// Mixpanel's time: seconds or milliseconds since the epoch, in
/// milliseconds.
fn mixpanel_millis(time: &Value) -> Option<i64> {
    let t = time.as_f64()?;
    Some(if t.abs() < 1e11 { t * 1000.0 } else { t } as i64)
}

/// Why strict mode refuses an event: the field and the message.
fn mixpanel_problem(record: &Value) -> Option<(&'static str, String)> {
    if record["event"].as_str().is_none_or(str::is_empty) {
        return Some(("event", "'event' must be a non-empty string".into()));
    }
    let Some(properties) = record["properties"].as_object() else {
        return Some(("properties", "'properties' must be an object".into()));
    };
    match mixpanel_millis(&properties.get("time").cloned().unwrap_or_default()) {
        None => {
            return Some((
                "properties.time",
                "'properties.time' must be specified as seconds or milliseconds since epoch".into(),
            ));
        }
        Some(ms) if ms > now_ms() as i64 + 3_600_000 => {
            return Some((
                "properties.time",
                "'properties.time' must not be more than 1 hour in the future".into(),
            ));
        }
        Some(_) => {}
    }
    if !properties.get("distinct_id").is_some_and(Value::is_string) {
        return Some((
            "properties.distinct_id",
            "'properties.distinct_id' must be specified as a string".into(),
        ));
    }
    let insert_id = properties.get("$insert_id").and_then(Value::as_str);
    let valid_insert_id = insert_id.is_some_and(|id| {
        !id.is_empty()
            && id.len() <= 36
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !valid_insert_id {
        return Some((
            "properties.$insert_id",
            "'properties.$insert_id' must be a string of 1 to 36 alphanumeric characters or '-'"
                .into(),
        ));
    }
    if properties.len() > 255 {
        return Some((
            "properties",
            "an event may have at most 255 properties".into(),
        ));
    }
    None
}

/// `/engage` and `/groups`: profile updates, a JSON array (or a form's
/// `data`, JSON or base64 JSON). `1` when all are taken, `0` when any is
/// not; with `verbose=1`, `{"status", "error"}`. An update counts by its
/// JSON (Mixpanel has no dedupe key for them).
fn mixpanel_updates(request: &Incoming, groups: bool) -> Answer {
    let verbose = request.param("verbose") == Some("1");
    let answer = |error: Option<String>, keys: Vec<String>| {
        let ok = error.is_none();
        let answer = if verbose {
            Answer::json(
                200,
                json!({"status": if ok { 1 } else { 0 }, "error": error}),
            )
        } else {
            Answer::text(200, if ok { "1" } else { "0" })
        };
        if ok { answer.took(keys) } else { answer }
    };
    let data = if request.is_form() {
        request.form("data").and_then(|d| decode_data(&d))
    } else {
        request.json()
    };
    let updates = match data {
        Some(Value::Array(updates)) => updates,
        Some(update @ Value::Object(_)) => vec![update],
        _ => {
            return answer(
                Some("data, could not parse the request body".into()),
                vec![],
            );
        }
    };
    let limit = if groups {
        MIXPANEL_GROUP_UPDATES
    } else {
        MIXPANEL_ENGAGE_UPDATES
    };
    if updates.len() > limit {
        return answer(
            Some(format!("a request may hold at most {limit} updates")),
            vec![],
        );
    }
    let operations: &[&str] = if groups {
        &[
            "$set",
            "$set_once",
            "$union",
            "$remove",
            "$unset",
            "$delete",
        ]
    } else {
        &[
            "$set",
            "$set_once",
            "$add",
            "$union",
            "$append",
            "$remove",
            "$unset",
            "$delete",
        ]
    };
    for update in &updates {
        let problem = if text_at(update, "/$token").is_none() {
            Some("missing or empty '$token' property")
        } else if !groups && update.get("$distinct_id").is_none() {
            Some("missing '$distinct_id' property")
        } else if groups
            && (text_at(update, "/$group_key").is_none() || update.get("$group_id").is_none())
        {
            Some("missing '$group_key' or '$group_id' property")
        } else if !operations.iter().any(|op| update.get(*op).is_some()) {
            Some("the update has no operation")
        } else {
            None
        };
        if let Some(problem) = problem {
            return answer(Some(problem.into()), vec![]);
        }
    }
    answer(None, updates.iter().map(Value::to_string).collect())
}

// -------------------------------------------------------------- amplitude

/// Amplitude takes this many events a request …
const AMPLITUDE_EVENTS: usize = 2000;
/// … and this many bytes.
const AMPLITUDE_BYTES: usize = 1 << 20;

/// Amplitude's HTTP V2 API (`/2/httpapi`, and the Batch API's `/batch`, which
/// takes the same body): `{api_key, events, options?}`. Events dedupe by
/// `insert_id`.
fn amplitude(request: &Incoming, _: &mut Stored) -> Answer {
    if !request.post() || !matches!(request.segments().as_slice(), ["2", "httpapi"] | ["batch"]) {
        return Answer::json(404, json!({"code": 404, "error": "Not found"}));
    }
    let too_large = || Answer::json(413, json!({"code": 413, "error": "Payload too large"}));
    if request.body.len() > AMPLITUDE_BYTES {
        return too_large();
    }
    let Some(Value::Object(body)) = request.json() else {
        return Answer::json(
            400,
            json!({"code": 400, "error": "Invalid JSON request body"}),
        );
    };
    let missing = |field: &str| {
        Answer::json(
            400,
            json!({"code": 400, "error": "Request missing required field", "missing_field": field}),
        )
    };
    if body
        .get("api_key")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return missing("api_key");
    }
    let Some(events) = body.get("events").and_then(Value::as_array) else {
        return missing("events");
    };
    if events.len() > AMPLITUDE_EVENTS {
        return too_large();
    }
    let min_id_length = body
        .get("options")
        .and_then(|o| o.get("min_id_length"))
        .and_then(Value::as_u64)
        .unwrap_or(5) as usize;
    let mut missing_fields: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut invalid_fields: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut short_ids: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, event) in events.iter().enumerate() {
        if text_at(event, "/event_type").is_none() {
            missing_fields.entry("event_type").or_default().push(i);
        }
        let user = text_at(event, "/user_id");
        let device = text_at(event, "/device_id");
        if user.is_none() && device.is_none() {
            missing_fields.entry("user_id").or_default().push(i);
            missing_fields.entry("device_id").or_default().push(i);
        }
        for (field, id) in [("user_id", user), ("device_id", device)] {
            if id.is_some_and(|id| id.chars().count() < min_id_length) {
                short_ids.entry(field).or_default().push(i);
            }
        }
        if device == Some("00000000-0000-0000-0000-000000000000") {
            invalid_fields.entry("device_id").or_default().push(i);
        }
        if event
            .get("time")
            .is_some_and(|t| !t.is_i64() && !t.is_u64())
        {
            invalid_fields.entry("time").or_default().push(i);
        }
    }
    if !missing_fields.is_empty() || !invalid_fields.is_empty() || !short_ids.is_empty() {
        let error = if !missing_fields.is_empty() {
            "Request missing required field"
        } else if !short_ids.is_empty() {
            "Invalid id length for user_id or device_id"
        } else {
            "Invalid field values on some events"
        };
        let mut out = json!({"code": 400, "error": error});
        for (key, map) in [
            ("events_with_missing_fields", missing_fields),
            ("events_with_invalid_fields", invalid_fields),
            ("events_with_invalid_id_lengths", short_ids),
        ] {
            if !map.is_empty() {
                out[key] = json!(map);
            }
        }
        return Answer::json(400, out);
    }
    Answer::json(
        200,
        json!({
            "code": 200,
            "events_ingested": events.len(),
            "payload_size_bytes": request.body.len(),
            "server_upload_time": now_ms(),
        }),
    )
    .took(events.iter().map(|e| key_of(e, "/insert_id")).collect())
}

// ---------------------------------------------------------------- posthog

/// PostHog takes this many bytes a request.
const POSTHOG_BYTES: usize = 20 << 20;

/// PostHog's capture API: `/batch/` with `{api_key, batch}`, `/capture/`
/// (and `/e/`) with one event or a batch. Events dedupe by `uuid`.
fn posthog(request: &Incoming, _: &mut Stored) -> Answer {
    let error = |status: u16, kind: &str, code: &str, detail: &str| {
        Answer::json(
            status,
            json!({"type": kind, "code": code, "detail": detail, "attr": null}),
        )
    };
    if !request.post()
        || !matches!(
            request.segments().as_slice(),
            ["batch"] | ["capture"] | ["e"]
        )
    {
        return error(404, "invalid_request", "not_found", "Not found.");
    }
    if request.body.len() > POSTHOG_BYTES {
        return error(
            413,
            "invalid_request",
            "payload_too_large",
            "Payload too large: the limit is 20 MB.",
        );
    }
    let Some(Value::Object(body)) = request.json() else {
        return error(
            400,
            "validation_error",
            "invalid_payload",
            "Malformed request data: the body is not a JSON object.",
        );
    };
    let key = ["api_key", "token"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .filter(|k| !k.is_empty());
    if key.is_none() {
        return error(
            401,
            "authentication_error",
            "invalid_api_key",
            "Project API key invalid. You can find your project API key in your PostHog \
             project settings.",
        );
    }
    let events = match body.get("batch") {
        Some(Value::Array(batch)) => batch.clone(),
        Some(_) => {
            return error(
                400,
                "validation_error",
                "invalid_payload",
                "Invalid payload: 'batch' must be an array.",
            );
        }
        None => vec![Value::Object(body.clone())],
    };
    for event in &events {
        if text_at(event, "/event").is_none() {
            return error(
                400,
                "validation_error",
                "invalid_event",
                "Invalid payload: All events must have the event name field 'event'!",
            );
        }
        let distinct_id = ["/distinct_id", "/properties/distinct_id", "/$distinct_id"]
            .iter()
            .any(|p| event.pointer(p).is_some_and(|v| !v.is_null() && v != ""));
        if !distinct_id {
            return error(
                400,
                "validation_error",
                "invalid_event",
                "Invalid payload: All events must have the event field 'distinct_id'!",
            );
        }
    }
    Answer::json(200, json!({"status": 1}))
        .took(events.iter().map(|e| key_of(e, "/uuid")).collect())
}

// ----------------------------------------------------- google_analytics_4

const GA4_EVENTS: usize = 25;
const GA4_PARAMS: usize = 25;
const GA4_ITEMS: usize = 200;
const GA4_NAME: usize = 40;
const GA4_VALUE: usize = 100;

/// Event names GA4 reserves.
const GA4_RESERVED_EVENTS: &[&str] = &[
    "ad_activeview",
    "ad_click",
    "ad_exposure",
    "ad_impression",
    "ad_query",
    "ad_reward",
    "adunit_exposure",
    "app_background",
    "app_clear_data",
    "app_exception",
    "app_remove",
    "app_store_refund",
    "app_store_subscription_cancel",
    "app_store_subscription_convert",
    "app_store_subscription_renew",
    "app_update",
    "app_upgrade",
    "dynamic_link_app_open",
    "dynamic_link_app_update",
    "dynamic_link_first_open",
    "error",
    "first_open",
    "first_visit",
    "in_app_purchase",
    "notification_dismiss",
    "notification_foreground",
    "notification_open",
    "notification_receive",
    "os_update",
    "session_start",
    "session_start_with_rollout",
    "user_engagement",
];

/// Prefixes no event or parameter name may have.
const GA4_RESERVED_PREFIXES: &[&str] = &["_", "firebase_", "ga_", "google_", "gtag."];

/// The page parameters, allowed longer values.
const GA4_LONG_VALUES: &[(&str, usize)] = &[
    ("page_location", 1000),
    ("page_referrer", 420),
    ("page_title", 300),
];

/// The Measurement Protocol: `/mp/collect` answers 204 whatever it is sent
/// (it drops what is invalid, silently), `/debug/mp/collect` lists what is
/// wrong and collects nothing. It has no dedupe key: an event counts as
/// `{client_id}/{name}/{timestamp_micros, else its index}`, when GA4 would
/// keep it.
fn google_analytics_4(request: &Incoming, _: &mut Stored) -> Answer {
    match (request.post(), request.segments().as_slice()) {
        (true, ["mp", "collect"]) => {
            let check = ga4_check(request);
            let keys = if check.request_ok {
                check.kept
            } else {
                Vec::new()
            };
            Answer::empty(204).took(keys)
        }
        (true, ["debug", "mp", "collect"]) => Answer::json(
            200,
            json!({"validationMessages": ga4_check(request).messages}),
        ),
        _ => Answer::empty(404),
    }
}

struct Ga4Check {
    messages: Vec<Value>,
    /// Whether GA4 takes the request at all.
    request_ok: bool,
    /// The keys of the events it keeps.
    kept: Vec<String>,
}

fn ga4_name_problem(name: &str, what: &str, reserved: &[&str]) -> Option<(&'static str, String)> {
    if name.is_empty() || name.chars().count() > GA4_NAME {
        return Some((
            "NAME_INVALID",
            format!("{what} [{name}] must be 1 to 40 characters long."),
        ));
    }
    if GA4_RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) || reserved.contains(&name) {
        return Some(("NAME_RESERVED", format!("{what} [{name}] is reserved.")));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Some((
            "NAME_INVALID",
            format!("{what} [{name}] must start with an alphabetic character."),
        ));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some((
            "NAME_INVALID",
            format!("{what} [{name}] may only contain alphanumeric characters and underscores."),
        ));
    }
    None
}

fn ga4_check(request: &Incoming) -> Ga4Check {
    let mut messages = Vec::new();
    let mut message = |field: &str, code: &str, description: String| {
        messages
            .push(json!({"fieldPath": field, "description": description, "validationCode": code}));
    };
    let mut request_ok = true;
    for param in ["measurement_id", "api_secret"] {
        if request.param(param).is_none_or(str::is_empty) {
            if param == "measurement_id" && request.param("firebase_app_id").is_some() {
                continue;
            }
            message(
                param,
                "VALUE_REQUIRED",
                format!("{param} is required in the query."),
            );
            request_ok = false;
        }
    }
    let Some(Value::Object(body)) = request.json() else {
        message(
            "",
            "VALUE_INVALID",
            "Unable to parse Measurement Protocol JSON payload.".into(),
        );
        return Ga4Check {
            messages,
            request_ok: false,
            kept: Vec::new(),
        };
    };
    let body = Value::Object(body);
    let app = request.param("firebase_app_id").is_some();
    let id_field = if app { "app_instance_id" } else { "client_id" };
    let client = text_at(&body, &["/", id_field].concat())
        .unwrap_or_default()
        .to_string();
    if client.is_empty() {
        message(
            id_field,
            "VALUE_REQUIRED",
            format!("{id_field} is required."),
        );
        request_ok = false;
    }
    let events = body["events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        message(
            "events",
            "VALUE_REQUIRED",
            "events is required and may not be empty.".into(),
        );
        request_ok = false;
    }
    if events.len() > GA4_EVENTS {
        message(
            "events",
            "EXCEEDED_MAX_ENTITIES",
            format!(
                "A request may have at most {GA4_EVENTS} events; it has {}.",
                events.len()
            ),
        );
        request_ok = false;
    }
    let mut kept = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let name = event["name"].as_str().unwrap_or_default();
        let field = format!("events[{i}]");
        let mut ok = true;
        if let Some((code, description)) = ga4_name_problem(
            name,
            &format!("Event at index [{i}] has name"),
            GA4_RESERVED_EVENTS,
        ) {
            message(&[&field, ".name"].concat(), code, description);
            ok = false;
        }
        let params = event["params"].as_object().cloned().unwrap_or_default();
        if params.len() > GA4_PARAMS {
            message(
                &[&field, ".params"].concat(),
                "EXCEEDED_MAX_ENTITIES",
                format!("Event at index [{i}] has more than {GA4_PARAMS} parameters."),
            );
            ok = false;
        }
        for (key, value) in &params {
            let path = format!("{field}.params.{key}");
            if let Some((code, description)) = ga4_name_problem(
                key,
                &format!("Event at index [{i}] has parameter"),
                &["firebase_conversion"],
            ) {
                message(&path, code, description);
                ok = false;
            }
            let limit = GA4_LONG_VALUES
                .iter()
                .find(|(k, _)| k == key)
                .map_or(GA4_VALUE, |(_, n)| *n);
            if value.as_str().is_some_and(|s| s.chars().count() > limit) {
                message(
                    &path,
                    "VALUE_OUT_OF_BOUNDS",
                    format!(
                        "Event at index [{i}] has parameter [{key}] longer than {limit} characters."
                    ),
                );
                ok = false;
            }
            if key == "items" {
                if value
                    .as_array()
                    .is_some_and(|items| items.len() > GA4_ITEMS)
                {
                    message(
                        &path,
                        "EXCEEDED_MAX_ENTITIES",
                        format!("Event at index [{i}] has more than {GA4_ITEMS} items."),
                    );
                    ok = false;
                }
            } else if value.is_object() || value.is_array() {
                message(
                    &path,
                    "VALUE_INVALID",
                    format!("Event at index [{i}] has parameter [{key}] with a nested value."),
                );
                ok = false;
            }
        }
        if ok {
            let when = match event.get("timestamp_micros") {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(s)) => s.clone(),
                _ => i.to_string(),
            };
            kept.push(format!("{client}/{name}/{when}"));
        }
    }
    Ga4Check {
        messages,
        request_ok,
        kept,
    }
}

// ------------------------------------------------ facebook_conversions_api

/// Meta takes this many events a request.
const FACEBOOK_EVENTS: usize = 1000;
/// Events older than this many seconds are refused.
const FACEBOOK_MAX_AGE: i64 = 7 * 24 * 3600;

const FACEBOOK_ACTION_SOURCES: &[&str] = &[
    "email",
    "website",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
];

/// The customer information parameters, one of which an event needs.
const FACEBOOK_USER_DATA: &[&str] = &[
    "em",
    "ph",
    "fn",
    "ln",
    "ge",
    "db",
    "ct",
    "st",
    "zp",
    "country",
    "external_id",
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "subscription_id",
    "fb_login_id",
    "lead_id",
    "anon_id",
    "madid",
    "page_id",
    "page_scoped_user_id",
    "ctwa_clid",
    "ig_account_id",
    "ig_sid",
];

fn graph_error(message: &str, code: u32, title: Option<&str>, detail: Option<&str>) -> Answer {
    let mut error = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "is_transient": false,
        "fbtrace_id": token("A"),
    });
    if let (Some(title), Some(detail)) = (title, detail) {
        error["error_user_title"] = json!(title);
        error["error_user_msg"] = json!(detail);
    }
    Answer::json(400, json!({ "error": error }))
}

/// The Conversions API: `POST /{version}/{pixel id}/events?access_token=`
/// with `{data: [...]}` (or a form whose `data` is that JSON). Meta refuses
/// the whole request when one event is invalid. Events dedupe by
/// `event_id`.
fn facebook(request: &Incoming, _: &mut Stored) -> Answer {
    let segments = request.segments();
    let path_ok = match segments.as_slice() {
        [version, pixel, "events"] => {
            version
                .strip_prefix('v')
                .and_then(|v| v.split_once('.'))
                .is_some_and(|(a, b)| {
                    [a, b]
                        .iter()
                        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                })
                && !pixel.is_empty()
                && pixel.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    };
    if !path_ok {
        return graph_error(
            &format!("Unknown path components: {}", request.endpoint),
            2500,
            None,
            None,
        );
    }
    if !request.post() {
        return graph_error(
            &format!("Unsupported {} request.", request.method),
            100,
            None,
            None,
        );
    }
    let body = if request.is_form() {
        None
    } else {
        request.json()
    };
    let field = |name: &str| -> Option<Value> {
        match &body {
            Some(b) => b.get(name).cloned(),
            None => request.form(name).map(Value::String),
        }
    };
    let access_token = request
        .param("access_token")
        .map(str::to_string)
        .or_else(|| field("access_token").and_then(|t| t.as_str().map(str::to_string)))
        .unwrap_or_default();
    if access_token.trim().is_empty() {
        return Answer::json(
            400,
            json!({"error": {
                "message": "Invalid OAuth access token.",
                "type": "OAuthException",
                "code": 190,
                "fbtrace_id": token("A"),
            }}),
        );
    }
    let data = match field("data") {
        Some(Value::String(s)) => Some(serde_json::from_str(&s).unwrap_or(Value::String(s))),
        other => other,
    };
    let events = match data {
        None | Some(Value::Null) => {
            return graph_error("(#100) The parameter data is required", 100, None, None);
        }
        Some(Value::Array(events)) => events,
        Some(_) => return graph_error("(#100) param data must be an array.", 100, None, None),
    };
    if events.len() > FACEBOOK_EVENTS {
        return graph_error(
            &format!("(#100) param data must be an array of at most {FACEBOOK_EVENTS} elements"),
            100,
            None,
            None,
        );
    }
    for (i, event) in events.iter().enumerate() {
        if let Some((title, detail)) = facebook_problem(event) {
            return graph_error(
                "Invalid parameter",
                100,
                Some(title),
                Some(&format!("Event at index {i}: {detail}")),
            );
        }
    }
    Answer::json(
        200,
        json!({"events_received": events.len(), "messages": [], "fbtrace_id": token("A")}),
    )
    .took(events.iter().map(|e| key_of(e, "/event_id")).collect())
}

/// Why Meta refuses a server event: a title and a message.
fn facebook_problem(event: &Value) -> Option<(&'static str, String)> {
    if text_at(event, "/event_name").is_none() {
        return Some((
            "Missing Event Name",
            "The parameter event_name is required.".into(),
        ));
    }
    let Some(time) = event["event_time"].as_i64() else {
        return Some((
            "Missing Event Time",
            "The parameter event_time is required, in seconds since the epoch.".into(),
        ));
    };
    let now = (now_ms() / 1000) as i64;
    if time < now - FACEBOOK_MAX_AGE {
        return Some((
            "Event Timestamp Too Old",
            "event_time is more than 7 days in the past.".into(),
        ));
    }
    if time > now + 3600 {
        return Some((
            "Event Timestamp In The Future",
            "event_time is in the future: it is in seconds, not milliseconds.".into(),
        ));
    }
    let source = event["action_source"].as_str().unwrap_or_default();
    if !FACEBOOK_ACTION_SOURCES.contains(&source) {
        return Some((
            "Invalid Action Source",
            format!("action_source must be one of {FACEBOOK_ACTION_SOURCES:?}."),
        ));
    }
    let Some(user_data) = event["user_data"].as_object() else {
        return Some((
            "Missing User Data",
            "The parameter user_data is required.".into(),
        ));
    };
    if !FACEBOOK_USER_DATA
        .iter()
        .any(|k| user_data.get(*k).is_some_and(|v| !v.is_null()))
    {
        return Some((
            "Missing Customer Information",
            "user_data needs at least one customer information parameter.".into(),
        ));
    }
    if source == "website" {
        if text_at(event, "/user_data/client_user_agent").is_none() {
            return Some((
                "Missing User Agent",
                "client_user_agent is required for website events.".into(),
            ));
        }
        if text_at(event, "/event_source_url").is_none() {
            return Some((
                "Missing Event Source URL",
                "event_source_url is required for website events.".into(),
            ));
        }
    }
    None
}

// ------------------------------------------------------------- customerio

/// Customer.io takes this many bytes a request.
const CUSTOMERIO_BYTES: usize = 500 * 1024;
/// … and this many bytes an item of a batch.
const CUSTOMERIO_ITEM_BYTES: usize = 32 * 1024;

/// Customer.io's Track API, HTTP Basic with the site ID and API key:
/// `/api/v2/batch` (and `/api/v2/entity`, one item), and v1's
/// `PUT /api/v1/customers/{id}`, `POST /api/v1/customers/{id}/events`,
/// `POST /api/v1/events` (anonymous) and `POST /api/v1/merge_customers`.
/// Each answers `{}`. Events dedupe by their `id`; an item without one
/// counts by its JSON.
fn customerio(request: &Incoming, _: &mut Stored) -> Answer {
    let v1_error =
        |status: u16, error: &str| Answer::json(status, json!({"meta": {"error": error}}));
    let authorized = request
        .basic_auth()
        .is_some_and(|(site, key)| !site.is_empty() && !key.is_empty());
    if !authorized {
        return v1_error(401, "Unauthorized request");
    }
    if request.body.len() > CUSTOMERIO_BYTES {
        return v1_error(400, "request body too large: the limit is 500 KB");
    }
    let body = if request.body.is_empty() {
        Some(json!({}))
    } else {
        request.json()
    };
    let Some(body) = body.filter(Value::is_object) else {
        return v1_error(400, "the body is not a JSON object");
    };
    let method = &request.method;
    let v2_errors = |errors: Vec<Value>| Answer::json(400, json!({ "errors": errors }));
    match request.segments().as_slice() {
        ["api", "v2", "batch"] if request.post() => {
            let Some(items) = body["batch"].as_array() else {
                return v2_errors(vec![
                    json!({"reason": "required", "field": "batch", "message": "batch is required"}),
                ]);
            };
            let errors: Vec<Value> = items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let (field, message) = customerio_item_problem(item)?;
                    Some(json!({
                        "batch_index": i, "reason": "invalid", "field": field, "message": message,
                    }))
                })
                .collect();
            if !errors.is_empty() {
                return v2_errors(errors);
            }
            Answer::json(200, json!({})).took(items.iter().map(|i| key_of(i, "/id")).collect())
        }
        ["api", "v2", "entity"] if request.post() => match customerio_item_problem(&body) {
            Some((field, message)) => v2_errors(vec![
                json!({"reason": "invalid", "field": field, "message": message}),
            ]),
            None => Answer::json(200, json!({})).took(vec![key_of(&body, "/id")]),
        },
        ["api", "v1", "customers", id] if method == Method::PUT => {
            let keyed = json!({"customer": id, "attributes": body});
            Answer::json(200, json!({})).took(vec![keyed.to_string()])
        }
        ["api", "v1", "customers", id, "events"] if request.post() => {
            if text_at(&body, "/name").is_none() {
                return v1_error(400, "missing event name");
            }
            let key = match text_at(&body, "/id") {
                Some(dedupe) => dedupe.to_string(),
                None => json!({"customer": id, "event": body}).to_string(),
            };
            Answer::json(200, json!({})).took(vec![key])
        }
        ["api", "v1", "events"] if request.post() => {
            if text_at(&body, "/name").is_none() {
                return v1_error(400, "missing event name");
            }
            Answer::json(200, json!({})).took(vec![key_of(&body, "/id")])
        }
        ["api", "v1", "merge_customers"] if request.post() => {
            let person = |side: &str| {
                ["id", "email", "cio_id"].iter().any(|k| {
                    body[side]
                        .get(*k)
                        .is_some_and(|v| v.is_string() || v.is_number())
                })
            };
            if !person("primary") || !person("secondary") {
                return v1_error(
                    400,
                    "primary and secondary each need an id, email or cio_id",
                );
            }
            Answer::json(200, json!({})).took(vec![body.to_string()])
        }
        _ => v1_error(404, "Not Found"),
    }
}

/// Why Customer.io refuses an item of a v2 batch: the field and the message.
fn customerio_item_problem(item: &Value) -> Option<(&'static str, String)> {
    if item.to_string().len() > CUSTOMERIO_ITEM_BYTES {
        return Some(("", "an item may be at most 32 KB".into()));
    }
    let kind = item["type"].as_str().unwrap_or_default();
    if !["person", "object", "delivery"].contains(&kind) {
        return Some(("type", "type must be person, object or delivery".into()));
    }
    let action = item["action"].as_str().unwrap_or_default();
    if action.is_empty() {
        return Some(("action", "action is required".into()));
    }
    let identified = |ids: &Value| {
        ["id", "email", "cio_id", "object_id", "object_type_id"]
            .iter()
            .any(|k| ids.get(*k).is_some_and(|v| v.is_string() || v.is_number()))
    };
    if action == "merge" {
        if !identified(&item["primary"]) || !identified(&item["secondary"]) {
            return Some((
                "primary",
                "merge needs primary and secondary identifiers".into(),
            ));
        }
    } else if !identified(&item["identifiers"]) {
        return Some((
            "identifiers",
            "identifiers needs an id, email or cio_id".into(),
        ));
    }
    if ["event", "page", "screen"].contains(&action) && text_at(item, "/name").is_none() {
        return Some(("name", format!("a {action} needs a name")));
    }
    None
}

// ---------------------------------------------------------------- klaviyo

/// A UUID-shaped id, unique in this process.
fn uuid() -> String {
    let hex = format!("{:0>32}", token(""));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn klaviyo_error(status: u16, code: &str, title: &str, detail: &str, pointer: &str) -> Answer {
    let id = uuid();
    Answer::json(
        status,
        json!({"errors": [{
            "id": id,
            "status": status,
            "code": code,
            "title": title,
            "detail": detail,
            "source": {"pointer": pointer},
        }]}),
    )
}

fn klaviyo_invalid(detail: &str, pointer: &str) -> Answer {
    klaviyo_error(400, "invalid", "Invalid input.", detail, pointer)
}

/// Profile identifiers Klaviyo matches a profile by.
const KLAVIYO_IDENTIFIERS: &[&str] = &["email", "phone_number", "external_id", "anonymous_id"];

/// Klaviyo's API, JSON:API bodies with `Authorization: Klaviyo-API-Key …`
/// and a `revision` header: `POST /api/events` (202, nothing), deduped by
/// `unique_id`; `POST /api/profile-import` (201 with the profile when it is
/// new, 200 when it was updated), counted by its JSON.
fn klaviyo(request: &Incoming, stored: &mut Stored) -> Answer {
    let kind = match (request.post(), request.segments().as_slice()) {
        (true, ["api", "events"]) => "event",
        (true, ["api", "profile-import"]) => "profile",
        _ => return klaviyo_error(404, "not_found", "Not found.", "Not found.", "/data/"),
    };
    let key = request
        .header("authorization")
        .and_then(|a| a.strip_prefix("Klaviyo-API-Key "))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    if key.is_none() {
        return klaviyo_error(
            401,
            "not_authenticated",
            "Authentication credentials were not provided.",
            "Missing or invalid private key.",
            "/data/",
        );
    }
    if request
        .header("revision")
        .is_none_or(|r| r.trim().is_empty())
    {
        return klaviyo_invalid("The `revision` header is required.", "/data/");
    }
    let Some(body) = request.json() else {
        return klaviyo_error(
            400,
            "parse_error",
            "Invalid JSON.",
            "The body is not JSON.",
            "/data/",
        );
    };
    if body.pointer("/data/type").and_then(Value::as_str) != Some(kind) {
        return klaviyo_invalid(
            &format!("The body must be a JSON:API document whose data.type is `{kind}`."),
            "/data/type",
        );
    }
    let Some(attributes) = body.pointer("/data/attributes").filter(|a| a.is_object()) else {
        return klaviyo_invalid("data.attributes is required.", "/data/attributes");
    };
    let identified = |profile: &Value| {
        KLAVIYO_IDENTIFIERS
            .iter()
            .any(|k| text_at(profile, &["/", k].concat()).is_some())
    };
    if let Some(email) = attributes.get("email").and_then(Value::as_str).or_else(|| {
        attributes
            .pointer("/profile/data/attributes/email")
            .and_then(Value::as_str)
    }) && !email.contains('@')
    {
        return klaviyo_invalid(
            &format!("Invalid email address: {email}"),
            "/data/attributes/email",
        );
    }
    if kind == "event" {
        if !attributes["properties"].is_object() {
            return klaviyo_invalid("properties is required.", "/data/attributes/properties");
        }
        let metric = attributes.pointer("/metric/data");
        if metric.and_then(|m| m["type"].as_str()) != Some("metric")
            || metric
                .and_then(|m| text_at(m, "/attributes/name"))
                .is_none()
        {
            return klaviyo_invalid(
                "A metric with a name is required.",
                "/data/attributes/metric/data/attributes/name",
            );
        }
        let profile = attributes.pointer("/profile/data");
        let profile_ok = profile.is_some_and(|p| {
            p["type"] == "profile" && (text_at(p, "/id").is_some() || identified(&p["attributes"]))
        });
        if !profile_ok {
            return klaviyo_invalid(
                "The profile needs an id or one of email, phone_number, external_id, anonymous_id.",
                "/data/attributes/profile",
            );
        }
        return Answer::empty(202).took(vec![key_of(attributes, "/unique_id")]);
    }
    let known_id = body.pointer("/data/id").and_then(Value::as_str);
    if known_id.is_none() && !identified(attributes) {
        return klaviyo_invalid(
            "One of email, phone_number, external_id, anonymous_id is required.",
            "/data/attributes",
        );
    }
    let identifiers: Vec<String> = KLAVIYO_IDENTIFIERS
        .iter()
        .filter_map(|k| Some(format!("{k}:{}", text_at(attributes, &["/", k].concat())?)))
        .collect();
    let found = known_id.map(str::to_string).or_else(|| {
        identifiers
            .iter()
            .find_map(|i| stored.klaviyo_profiles.get(i).cloned())
    });
    let (status, id) = match found {
        Some(id) => (200, id),
        None => (201, token("01")),
    };
    for identifier in identifiers {
        stored.klaviyo_profiles.insert(identifier, id.clone());
    }
    let mut shown = attributes.clone();
    let now = now_ms().to_string();
    shown["updated"] = json!(now);
    Answer::json(
        status,
        json!({"data": {
            "type": "profile",
            "id": id,
            "attributes": shown,
            "links": {"self": format!("https://a.klaviyo.com/api/profiles/{id}/")},
        }}),
    )
    .took(vec![body["data"].to_string()])
}

// --------------------------------------------------------------- intercom

fn intercom_error(status: u16, code: &str, message: &str) -> Answer {
    Answer::json(
        status,
        json!({
            "type": "error.list",
            "request_id": token(""),
            "errors": [{"code": code, "message": message}],
        }),
    )
}

/// Contact attributes Intercom takes on create and update.
const INTERCOM_CONTACT_FIELDS: &[&str] = &[
    "role",
    "external_id",
    "email",
    "phone",
    "name",
    "avatar",
    "signed_up_at",
    "last_seen_at",
    "owner_id",
    "unsubscribed_from_emails",
    "custom_attributes",
];

/// Intercom's REST API with `Authorization: Bearer …`: `POST /events` (202,
/// nothing), contacts (`POST /contacts`, 409 when one with that
/// external_id or email exists; `PUT /contacts/{id}`; `POST
/// /contacts/search`; `POST /contacts/{id}/companies` to attach one),
/// `POST /companies` (created or updated by `company_id`). An event
/// dedupes, as Intercom does, by `event_name/created_at/user` (the
/// user_id, else the contact's id, else the email); others count by their
/// JSON.
fn intercom(request: &Incoming, stored: &mut Stored) -> Answer {
    if request.bearer().is_none() {
        return intercom_error(401, "unauthorized", "Access Token Invalid");
    }
    let body = match request.json() {
        Some(Value::Object(body)) => body,
        _ if request.body.is_empty() => Map::new(),
        _ => return intercom_error(400, "parameter_invalid", "The body is not a JSON object"),
    };
    let method = &request.method;
    match request.segments().as_slice() {
        ["events"] if request.post() => intercom_event(&body),
        ["contacts"] if request.post() => intercom_create_contact(&body, stored),
        ["contacts", "search"] if request.post() => intercom_search(&body, stored),
        ["contacts", id] if method == Method::PUT => {
            let Some(contact) = stored
                .intercom_contacts
                .iter_mut()
                .find(|c| c.get("id").is_some_and(|v| v == *id))
            else {
                return intercom_error(404, "not_found", "User Not Found");
            };
            for (k, v) in &body {
                if INTERCOM_CONTACT_FIELDS.contains(&k.as_str()) {
                    contact.insert(k.clone(), v.clone());
                }
            }
            contact.insert("updated_at".into(), json!(now_ms() / 1000));
            let shown = Value::Object(contact.clone());
            Answer::json(200, shown).took(vec![json!({"contact": id, "update": body}).to_string()])
        }
        ["contacts", id, "companies"] if request.post() => {
            if !stored
                .intercom_contacts
                .iter()
                .any(|c| c.get("id").is_some_and(|v| v == *id))
            {
                return intercom_error(404, "not_found", "User Not Found");
            }
            let wanted = body.get("id").filter(|v| !v.is_null());
            let Some(company) = stored
                .intercom_companies
                .iter_mut()
                .find(|c| wanted.is_some_and(|w| c.get("id") == Some(w)))
            else {
                return intercom_error(404, "company_not_found", "Company Not Found");
            };
            let count = company
                .get("user_count")
                .and_then(Value::as_u64)
                .unwrap_or_default()
                + 1;
            company.insert("user_count".into(), json!(count));
            let shown = Value::Object(company.clone());
            let contact = stored
                .intercom_contacts
                .iter_mut()
                .find(|c| c.get("id").is_some_and(|v| v == *id));
            if let Some(companies) = contact.and_then(|c| c.get_mut("companies")) {
                let url = format!("/companies/{}", shown["id"].as_str().unwrap_or_default());
                let link = json!({"type": "company", "id": shown["id"], "url": url});
                if let Some(data) = companies["data"].as_array_mut() {
                    data.push(link);
                    let n = data.len();
                    companies["total_count"] = json!(n);
                }
            }
            Answer::json(200, shown).took(vec![json!({"contact": id, "company": body}).to_string()])
        }
        ["companies"] if request.post() => intercom_company(&body, stored),
        _ => intercom_error(404, "not_found", "Resource Not Found"),
    }
}

fn intercom_event(body: &Map<String, Value>) -> Answer {
    let body = Value::Object(body.clone());
    if text_at(&body, "/event_name").is_none() {
        return intercom_error(
            400,
            "parameter_not_found",
            "Missing required parameter: event_name",
        );
    }
    if !body["created_at"].is_u64() {
        return intercom_error(
            400,
            "parameter_invalid",
            "created_at is required, in seconds since the epoch",
        );
    }
    let user = ["/user_id", "/id", "/email"]
        .iter()
        .find_map(|p| text_at(&body, p));
    let Some(user) = user else {
        return intercom_error(400, "parameter_not_found", "Missing user_id, id or email");
    };
    let key = format!(
        "{}/{}/{user}",
        body["event_name"].as_str().unwrap_or_default(),
        body["created_at"]
    );
    Answer::empty(202).took(vec![key])
}

fn intercom_create_contact(body: &Map<String, Value>, stored: &mut Stored) -> Answer {
    let given = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if given("external_id").is_none() && given("email").is_none() && given("role").is_none() {
        return intercom_error(
            400,
            "parameter_not_found",
            "A contact needs at least one of email, external_id or role",
        );
    }
    let role = given("role").unwrap_or("user");
    if role != "user" && role != "lead" {
        return intercom_error(400, "parameter_invalid", "role must be user or lead");
    }
    let existing = stored.intercom_contacts.iter().find(|c| {
        let same = |k: &str| given(k).is_some_and(|v| c.get(k).is_some_and(|x| x == v));
        same("external_id") || (c.get("role").is_some_and(|r| r == role) && same("email"))
    });
    if let Some(c) = existing {
        return intercom_error(
            409,
            "conflict",
            &format!(
                "A contact matching those details already exists with id={}",
                c.get("id").and_then(Value::as_str).unwrap_or_default()
            ),
        );
    }
    let id = token("");
    let now = now_ms() / 1000;
    let mut contact = Map::new();
    for (k, v) in body {
        if INTERCOM_CONTACT_FIELDS.contains(&k.as_str()) {
            contact.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in [
        ("type", json!("contact")),
        ("id", json!(id)),
        ("workspace_id", json!("mockapp")),
        ("role", json!(role)),
        ("created_at", json!(now)),
        ("updated_at", json!(now)),
        (
            "companies",
            json!({
                "type": "list", "data": [], "url": format!("/contacts/{id}/companies"),
                "total_count": 0, "has_more": false,
            }),
        ),
    ] {
        contact.insert(k.into(), v);
    }
    for k in [
        "external_id",
        "email",
        "phone",
        "name",
        "signed_up_at",
        "last_seen_at",
    ] {
        contact.entry(k).or_insert(Value::Null);
    }
    contact
        .entry("custom_attributes")
        .or_insert_with(|| json!({}));
    stored.intercom_contacts.push(contact.clone());
    Answer::json(200, Value::Object(contact)).took(vec![Value::Object(body.clone()).to_string()])
}

/// `POST /contacts/search`: a `{field, operator, value}` query (`=` or
/// `!=`), or `AND`/`OR` of them.
fn intercom_search(body: &Map<String, Value>, stored: &Stored) -> Answer {
    fn matches(query: &Value, contact: &Map<String, Value>) -> bool {
        match (query["operator"].as_str(), &query["value"]) {
            (Some("AND"), Value::Array(qs)) => qs.iter().all(|q| matches(q, contact)),
            (Some("OR"), Value::Array(qs)) => qs.iter().any(|q| matches(q, contact)),
            (Some(op), value) => {
                let field = query["field"].as_str().unwrap_or_default();
                let same = contact.get(field) == Some(value);
                if op == "!=" { !same } else { same }
            }
            _ => false,
        }
    }
    let Some(query) = body.get("query").filter(|q| q.is_object()) else {
        return intercom_error(
            400,
            "parameter_not_found",
            "Missing required parameter: query",
        );
    };
    let data: Vec<Value> = stored
        .intercom_contacts
        .iter()
        .filter(|c| matches(query, c))
        .map(|c| Value::Object(c.clone()))
        .collect();
    Answer::json(
        200,
        json!({
            "type": "list",
            "data": data,
            "total_count": data.len(),
            "pages": {"type": "pages", "page": 1, "per_page": 50, "total_pages": 1},
        }),
    )
}

fn intercom_company(body: &Map<String, Value>, stored: &mut Stored) -> Answer {
    let company_id = body
        .get("company_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    if company_id.is_none() && name.is_none() {
        return intercom_error(400, "parameter_not_found", "Missing company_id or name");
    }
    let now = now_ms() / 1000;
    let existing = company_id.and_then(|id| {
        stored
            .intercom_companies
            .iter_mut()
            .find(|c| c.get("company_id").is_some_and(|v| v == id))
    });
    let company = match existing {
        Some(company) => company,
        None => {
            let id = token("");
            let mut company = Map::new();
            for (k, v) in [
                ("type", json!("company")),
                ("id", json!(id)),
                (
                    "company_id",
                    json!(company_id.map_or_else(|| token(""), str::to_string)),
                ),
                ("app_id", json!("mockapp")),
                ("created_at", json!(now)),
                ("user_count", json!(0)),
                ("session_count", json!(0)),
                ("custom_attributes", json!({})),
                ("tags", json!({"type": "tag.list", "tags": []})),
                ("segments", json!({"type": "segment.list", "segments": []})),
            ] {
                company.insert(k.into(), v);
            }
            stored.intercom_companies.push(company);
            stored.intercom_companies.last_mut().expect("just pushed")
        }
    };
    for (k, v) in body {
        if k != "company_id" {
            company.insert(k.clone(), v.clone());
        }
    }
    company.insert("updated_at".into(), json!(now));
    Answer::json(200, Value::Object(company.clone()))
        .took(vec![Value::Object(body.clone()).to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dedupe_key_is_the_field_or_else_the_item() {
        assert_eq!(key_of(&json!({"messageId": "m1"}), "/messageId"), "m1");
        assert_eq!(key_of(&json!({"id": 7}), "/id"), "7");
        assert_eq!(key_of(&json!({"a": 1}), "/messageId"), "{\"a\":1}");
        assert_eq!(key_of(&json!({"id": ""}), "/id"), "{\"id\":\"\"}");
    }

    #[test]
    fn a_switch_is_read_from_its_json_and_checked() {
        let (vendor, switch) = parse_switch(&json!({
            "vendor": "mixpanel", "mode": "status", "status": 429, "retry_after": 2, "times": 3,
        }))
        .unwrap();
        let switch = switch.unwrap();
        assert_eq!(vendor, "mixpanel");
        assert!(matches!(switch.mode, Mode::Status(s) if s == 429));
        assert_eq!(switch.retry_after.as_deref(), Some("2"));
        assert_eq!(switch.times, Some(3));
        assert!(
            parse_switch(&json!({"vendor": "mixpanel", "mode": "ok"}))
                .unwrap()
                .1
                .is_none()
        );
        for bad in [
            json!({"vendor": "nobody", "mode": "down"}),
            json!({"vendor": "slack", "mode": "sideways"}),
            json!({"vendor": "slack", "mode": "status"}),
            json!({"vendor": "slack", "mode": "down", "times": 0}),
        ] {
            assert!(parse_switch(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ga4_names_follow_its_rules() {
        assert!(ga4_name_problem("purchase", "e", GA4_RESERVED_EVENTS).is_none());
        for bad in [
            "1st",
            "has space",
            "session_start",
            "ga_thing",
            "_x",
            &"a".repeat(41),
        ] {
            assert!(
                ga4_name_problem(bad, "e", GA4_RESERVED_EVENTS).is_some(),
                "{bad}"
            );
        }
    }
}
