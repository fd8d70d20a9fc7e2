pub(crate) mod admin;
pub(crate) mod bundle;
pub(crate) mod delivery;
pub(crate) mod demo;
pub(crate) mod live;
pub(crate) mod metrics;
pub(crate) mod tracking;
pub(crate) mod ui;

use axum::http::{Extensions, HeaderMap, Method, Uri, header};
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

/// The origin pages reach this server at, as the settings document and
/// the demo page name it (what a shared cache may keep). A request from a
/// trusted proxy (`SWITCHYARD_TRUSTED_PROXIES`) says it with
/// `X-Forwarded-Host` and `X-Forwarded-Proto` (else `Host`); any other
/// request gets the configured public URL (`serve` uses the address it
/// listens on when none is given), so a forged `Host` is never echoed
/// into a cached document. Only an app embedded without a public URL
/// falls back to the request's `Host` (a malformed one is not echoed).
pub(crate) fn origin(state: &AppState, headers: &HeaderMap, extensions: &Extensions) -> String {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted = peer.is_some_and(|ip| state.trusted_proxies.iter().any(|n| n.contains(&ip)));
    if !trusted && let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let forwarded = |name: &str| {
        headers
            .get(name)
            .and_then(|h| h.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
    };
    let host = trusted
        .then(|| forwarded("x-forwarded-host"))
        .flatten()
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = match trusted.then(|| forwarded("x-forwarded-proto")).flatten() {
        Some("https") => "https",
        _ => "http",
    };
    [scheme, "://", host].concat()
}
