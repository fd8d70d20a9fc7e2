//! A stand-in tracking API for the browser library's in-browser unit tests:
//! it records every request and answers by write key, so a test can make
//! delivery fail the way real servers do.
//!
//! - `ok-*`: 200.
//! - `e500-*`: 500 twice per message, then 200.
//! - `r429-*`: 429 with `Retry-After: 1` once per message, then 200.
//! - `b400-*`: 400, always.
//!
//! `GET /log/{writeKey}` returns what arrived for a write key.
//!
//! For the device-mode tests it also serves the vendors' scripts and
//! stands in for their collection APIs (`vendor.rs`, `scripts.rs`):
//!
//! - `GET /vendor/npm/{package path}`: a file of the vendor SDKs pinned in
//!   `tests/vendor/package.json`, e.g. `/vendor/npm/posthog-js/dist/array.js`.
//! - `GET /vendor/standin/{name}.js`: a stand-in from
//!   `tests/vendor/standins/` for a vendor script not on npm (`gtag`, `gtm`,
//!   `fbevents`, `intercom`, `hotjar`, `customerio`, `klaviyo`); it records
//!   every call into `window.__standin`.
//! - `GET /vendor/hostile/{missing,hang,throws}.js`: 404, no answer for ten
//!   minutes (or `?ms=`), a script that throws.
//! - `/mixpanel/*`, `/amplitude/*`, `/posthog/*`: the vendors' APIs,
//!   answering as each SDK expects, preflights included.
//! - `GET /vendor/requests[?vendor=mixpanel|amplitude|posthog|script]`:
//!   every request recorded there, oldest first; `DELETE` forgets them.
//!
//! For cloud mode it stands in for the vendors' server-to-server APIs
//! (`cloud.rs`), each under `/cloud/{vendor}/` (`{vendor}` the destination
//! slug: `webhook`, `slack`, `mixpanel`, `amplitude`, `posthog`,
//! `google_analytics_4`, `facebook_conversions_api`, `customerio`,
//! `klaviyo`, `intercom`), so a connection's base URL is
//! `{origin}/cloud/{vendor}` and the vendor's own path follows; each answers
//! as its vendor documents (success bodies, auth and validation errors,
//! limits).
//!
//! - `GET /cloud/requests[?vendor=..]`: every request, oldest first, as
//!   `{vendor, method, path, endpoint (the vendor's own path), query,
//!   headers (lowercase names), body (JSON when it parses, else text),
//!   status, switch, at_ms}` (`status` null while it is answered, `dropped`
//!   when a switch closed the connection); `DELETE` forgets them, and
//!   their counted keys.
//! - `GET /cloud/keys[?vendor=..]`: `{"<dedupe key>": count}`, each event
//!   the vendor took counted by its dedupe key (Mixpanel `$insert_id` with
//!   name, distinct_id and second, Amplitude `insert_id`, PostHog `uuid`,
//!   Meta `event_id`, Customer.io `id`, Klaviyo `unique_id`, the webhook
//!   `messageId`, GA4 `client_id/name/timestamp_micros or index`, Intercom
//!   `event_name/created_at/user`; an item without one by its JSON, Slack's
//!   by its body), to check that every event arrived exactly once.
//! - `POST /cloud/control` `{"vendor", "mode": "ok" | "down" | "slow" |
//!   "status", "status", "retry_after", "delay_ms", "times", "drop"}`:
//!   `down` answers 503 (closes the connection with `"drop": true`), `slow`
//!   answers normally `delay_ms` late, `status` answers that status in the
//!   vendor's shape (a 429 as the vendor documents it), `Retry-After` when
//!   given, for the next `times` requests (all when left out); `ok` resets.
//!   What a switch answers is recorded but not counted in the keys.
//!   `GET /cloud/control` shows the switches that are on.
//!
//! Prints its origin on the first line of stdout and serves until killed.

mod cloud;
mod scripts;
mod vendor;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

#[derive(Default)]
struct Log {
    records: HashMap<String, Vec<Value>>,
    attempts: HashMap<String, u32>,
}

type Shared = Arc<Mutex<Log>>;

#[derive(Clone)]
struct AppState {
    log: Shared,
    records: vendor::Records,
    /// `tests/vendor`: the installed vendor packages and the stand-ins.
    vendor_dir: PathBuf,
}

impl FromRef<AppState> for Shared {
    fn from_ref(state: &AppState) -> Shared {
        state.log.clone()
    }
}

impl FromRef<AppState> for vendor::Records {
    fn from_ref(state: &AppState) -> vendor::Records {
        state.records.clone()
    }
}

fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, x-retry-count, authorization"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after"),
    );
    r
}

async fn track(
    State(log): State<Shared>,
    Path(call): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    if method == Method::OPTIONS {
        return cors(StatusCode::NO_CONTENT.into_response());
    }
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let key = value["writeKey"].as_str().unwrap_or_default().to_string();
    let events: Vec<Value> = match value["batch"].as_array() {
        Some(b) => b.clone(),
        None => vec![value.clone()],
    };
    let ms = vendor::now_ms();
    let retry = headers
        .get("x-retry-count")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut log = log.lock().unwrap();
    let message = events
        .first()
        .and_then(|e| e["messageId"].as_str())
        .unwrap_or_default()
        .to_string();
    let n = {
        let a = log.attempts.entry(message).or_insert(0);
        *a += 1;
        *a
    };
    let path = ["/v1/", &call].concat();
    log.records.entry(key.clone()).or_default().push(json!({
        "path": path, "retry": retry, "t": ms, "body": value, "attempt": n,
    }));
    let (status, retry_after) = if key.starts_with("e500") && n <= 2 {
        (StatusCode::INTERNAL_SERVER_ERROR, None)
    } else if key.starts_with("r429") && n <= 1 {
        (StatusCode::TOO_MANY_REQUESTS, Some("1"))
    } else if key.starts_with("b400") {
        (StatusCode::BAD_REQUEST, None)
    } else {
        (StatusCode::OK, None)
    };
    let mut r = (status, "{}").into_response();
    if let Some(s) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(s));
    }
    cors(r)
}

async fn read(State(log): State<Shared>, Path(key): Path<String>) -> Response {
    let records = log
        .lock()
        .unwrap()
        .records
        .get(&key)
        .cloned()
        .unwrap_or_default();
    cors(axum::Json(records).into_response())
}

fn app(vendor_dir: PathBuf) -> Router {
    let state = AppState {
        log: Arc::default(),
        records: Arc::default(),
        vendor_dir,
    };
    let mut app = Router::new()
        .route("/v1/{call}", post(track).options(track))
        .route("/log/{key}", get(read))
        .route("/vendor/requests", get(vendor::list).delete(vendor::clear))
        .route("/vendor/npm/{*path}", get(scripts::npm))
        .route("/vendor/standin/{*path}", get(scripts::standin))
        .route("/vendor/hostile/{*path}", get(scripts::hostile))
        .merge(cloud::router());
    for name in vendor::VENDORS {
        let state = state.clone();
        app = app.route(
            &["/", name, "/{*rest}"].concat(),
            any(move |method, uri, headers, body| {
                vendor::endpoint(name, state, method, uri, headers, body)
            }),
        );
    }
    app.with_state(state)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let vendor_dir = std::env::var_os("SWITCHYARD_VENDOR_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vendor"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("http://{}", listener.local_addr().expect("address"));
    axum::serve(listener, app(vendor_dir)).await.expect("serve");
}
