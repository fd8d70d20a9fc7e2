pub(crate) mod admin;
pub(crate) mod bundle;
pub(crate) mod delivery;
pub(crate) mod demo;
pub(crate) mod live;
pub(crate) mod metrics;
pub(crate) mod tracking;
pub(crate) mod ui;

use axum::http::{HeaderMap, Method, Uri, header};
use tower_http::cors::{Any, CorsLayer};

use crate::{AppError, AppState};

pub(crate) async fn not_found(method: Method, uri: Uri) -> AppError {
    AppError::NotFound(["no route for ", method.as_str(), " ", uri.path()].concat())
}

/// CORS for everything a page on another origin calls: any origin, the
/// headers Segment's libraries send, preflights cached for a day.
pub(crate) fn public_cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::HeaderName::from_static("x-retry-count"),
        ])
        // The browser library reads it to time its next attempt.
        .expose_headers([header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(86_400))
}

/// The origin pages reach this server at: the configured public URL, or
/// the request's `Host` (a malformed one is not echoed back).
pub(crate) fn origin(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    [scheme, "://", host].concat()
}
