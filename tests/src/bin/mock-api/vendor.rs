//! Stand-ins for the collection APIs of the vendors whose own SDKs the
//! device-mode tests load (Mixpanel, Amplitude, PostHog), and the recorder
//! every vendor request and script load goes into.
//!
//! Each vendor has a prefix (`/mixpanel`, `/amplitude`, `/posthog`) to give
//! its SDK as API host. Every request under it is recorded, preflights
//! included, and answered with what the vendor's SDK takes as success.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};

/// The vendors with a mock collection API, each under `/{vendor}/`.
pub(crate) const VENDORS: [&str; 3] = ["mixpanel", "amplitude", "posthog"];

/// Every recorded request, oldest first.
pub(crate) type Records = Arc<Mutex<Vec<Value>>>;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The body as text: gunzipped when it is gzip (by header, by PostHog's
/// `compression=gzip-js` query, or by its magic bytes), as it arrived
/// otherwise.
fn body_text(headers: &HeaderMap, query: &str, body: &[u8]) -> String {
    let gzip = header_text(headers, header::CONTENT_ENCODING).is_some_and(|e| e.contains("gzip"))
        || query.split('&').any(|p| p == "compression=gzip-js")
        // posthog-js also sends gzip as text/plain with nothing saying so.
        || body.starts_with(&[0x1f, 0x8b]);
    if gzip {
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .is_ok()
        {
            return String::from_utf8_lossy(&out).into_owned();
        }
    }
    String::from_utf8_lossy(body).into_owned()
}

/// `application/x-www-form-urlencoded` pairs, in order.
pub(crate) fn form_pairs(text: &str) -> Vec<(String, String)> {
    match reqwest::Url::parse("http://form.invalid/") {
        Ok(mut url) => {
            url.set_query(Some(text));
            url.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        }
        Err(_) => Vec::new(),
    }
}

/// Mixpanel's `data` field: JSON, or (its default) base64 of JSON.
pub(crate) fn decode_data(data: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str(data) {
        return Some(v);
    }
    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(compact.as_bytes()))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What a request carried, as JSON: the body if it is JSON, else the
/// decoded `data` field of a form body or of the query (Mixpanel).
pub(crate) fn decode(text: &str, form: Option<&Map<String, Value>>, query: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return v;
    }
    let from_form = form
        .and_then(|f| f.get("data"))
        .and_then(Value::as_str)
        .and_then(decode_data);
    from_form
        .or_else(|| {
            form_pairs(query)
                .into_iter()
                .find(|(k, _)| k == "data")
                .and_then(|(_, v)| decode_data(&v))
        })
        .unwrap_or(Value::Null)
}

/// Records one request and returns the record.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    records: &Records,
    vendor: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Value {
    let path = uri.path();
    let endpoint = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(vendor))
        .filter(|rest| VENDORS.contains(&vendor) && rest.starts_with('/'))
        .unwrap_or(path);
    let query = uri.query().unwrap_or_default();
    let content_type = header_text(headers, header::CONTENT_TYPE);
    let text = body_text(headers, query, body);
    let form = content_type
        .as_deref()
        .filter(|t| t.starts_with("application/x-www-form-urlencoded"))
        .map(|_| {
            form_pairs(&text)
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect::<Map<_, _>>()
        });
    let decoded = decode(&text, form.as_ref(), query);
    let entry = json!({
        "vendor": vendor,
        "method": method.as_str(),
        "path": path,
        "endpoint": endpoint,
        "query": uri.query(),
        "contentType": content_type,
        "origin": header_text(headers, header::ORIGIN),
        "body": text,
        "form": form,
        "json": decoded,
        "t": now_ms(),
    });
    records.lock().unwrap().push(entry.clone());
    entry
}

/// CORS for a vendor endpoint: the SDKs send credentials (Mixpanel's
/// `withCredentials`), so the page's origin is echoed rather than `*`, and
/// whatever headers a preflight asks for are allowed. Preflights are not
/// cached, so every request a page makes is preflighted the same way.
fn cors(headers: &HeaderMap, mut r: Response) -> Response {
    let h = r.headers_mut();
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        None => {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    if let Some(asked) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("0"),
    );
    r
}

fn json_response(body: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A PostHog project's remote config (`/array/{token}/config`), with
/// everything optional off.
fn posthog_config(endpoint: &str) -> Value {
    let token = endpoint.split('/').nth(2).unwrap_or_default();
    json!({
        "token": token,
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": false,
        "sessionRecording": false,
        "surveys": false,
        "heatmaps": false,
        "siteApps": [],
    })
}

/// What each vendor's SDK takes as success for `endpoint`.
fn answer(vendor: &str, endpoint: &str, decoded: &Value, body_len: usize) -> Response {
    match vendor {
        // mixpanel-browser reads `1` as success (`{"status":1}` only in
        // its `verbose` mode); feature flags are off unless asked for.
        "mixpanel" if endpoint.starts_with("/flags") => json_response(json!({"flags": {}})),
        "mixpanel" => ([(header::CONTENT_TYPE, "text/plain")], "1").into_response(),
        // @amplitude/analytics-browser retries for ever unless the body
        // says how many events it took.
        "amplitude" => {
            let events = decoded["events"].as_array().map_or(0, Vec::len);
            json_response(json!({
                "code": 200,
                "events_ingested": events,
                "payload_size_bytes": body_len,
                "server_upload_time": now_ms(),
            }))
        }
        // PostHog's remote config, per project token: as JavaScript (which
        // array.js loads as a script) and as JSON.
        "posthog" if endpoint.starts_with("/array/") && endpoint.ends_with("/config.js") => {
            let config = posthog_config(endpoint);
            (
                [(header::CONTENT_TYPE, "text/javascript")],
                [
                    "(function(){window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};",
                    "window._POSTHOG_REMOTE_CONFIG[",
                    &config["token"].to_string(),
                    "]={config:",
                    &config.to_string(),
                    ",siteApps:[]};})();",
                ]
                .concat(),
            )
                .into_response()
        }
        "posthog" if endpoint.starts_with("/array/") && endpoint.ends_with("/config") => {
            json_response(posthog_config(endpoint))
        }
        "posthog" if endpoint.starts_with("/flags") || endpoint.starts_with("/decide") => {
            json_response(json!({
                "flags": {},
                "featureFlags": {},
                "featureFlagPayloads": {},
                "errorsWhileComputingFlags": false,
            }))
        }
        _ => json_response(json!({"status": 1})),
    }
}

/// A request to a vendor's mock API: recorded, then answered.
pub(crate) async fn endpoint(
    vendor: &'static str,
    state: crate::AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let entry = record(&state.records, vendor, &method, &uri, &headers, &body);
    if method == Method::OPTIONS {
        return cors(&headers, StatusCode::NO_CONTENT.into_response());
    }
    let endpoint = entry["endpoint"].as_str().unwrap_or_default();
    // posthog-js loads its lazy extensions (recorder, surveys) from
    // `{api_host}/static/`, as PostHog's CDN serves the package's `dist/`.
    if let Some(file) = endpoint
        .strip_prefix("/static/")
        .filter(|_| vendor == "posthog")
    {
        let dist = state.vendor_dir.join("node_modules/posthog-js/dist");
        return crate::scripts::file(&dist, file).await;
    }
    cors(
        &headers,
        answer(vendor, endpoint, &entry["json"], body.len()),
    )
}

/// `GET /vendor/requests[?vendor=..]`: what was recorded, oldest first.
pub(crate) async fn list(
    State(records): State<Records>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let wanted = q.get("vendor");
    let list: Vec<Value> = records
        .lock()
        .unwrap()
        .iter()
        .filter(|r| wanted.is_none_or(|v| r["vendor"] == v.as_str()))
        .cloned()
        .collect();
    crate::cors(axum::Json(list).into_response())
}

/// `DELETE /vendor/requests[?vendor=..]`: forgets what was recorded.
pub(crate) async fn clear(
    State(records): State<Records>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let mut records = records.lock().unwrap();
    match q.get("vendor") {
        Some(v) => records.retain(|r| r["vendor"] != v.as_str()),
        None => records.clear(),
    }
    crate::cors(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixpanel_data_decodes_from_base64_and_from_json() {
        // `{"event":"A"}` as mixpanel-browser encodes it, URL-encoded.
        let pairs = form_pairs("data=eyJldmVudCI6IkEifQ%3D%3D");
        assert_eq!(pairs[0].0, "data");
        assert_eq!(decode_data(&pairs[0].1), Some(json!({"event": "A"})));
        assert_eq!(
            decode_data("{\"event\":\"B\"}"),
            Some(json!({"event": "B"}))
        );
        assert_eq!(
            decode_data("eyJldmVudCI6IkEifQ"),
            Some(json!({"event": "A"}))
        );
        assert_eq!(decode_data("not base64!"), None);
    }

    #[test]
    fn decode_prefers_a_json_body_then_form_data_then_query_data() {
        assert_eq!(decode("{\"a\":1}", None, ""), json!({"a": 1}));
        let form: Map<String, Value> = [("data".to_string(), json!("eyJhIjoyfQ=="))]
            .into_iter()
            .collect();
        assert_eq!(decode("data=...", Some(&form), ""), json!({"a": 2}));
        assert_eq!(
            decode("", None, "data=eyJhIjozfQ%3D%3D&ip=1"),
            json!({"a": 3})
        );
        assert_eq!(decode("plain", None, ""), Value::Null);
    }
}
