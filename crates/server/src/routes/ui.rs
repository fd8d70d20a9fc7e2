//! The web admin at `/admin`: static files, and the destinations' logos.
//! The page itself needs no token; every API call it makes does.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{AppError, AppState};

const INDEX: &str = include_str!("../../../../web/admin/index.html");
const APP_JS: &str = include_str!("../../../../web/admin/app.js");
const APP_CSS: &str = include_str!("../../../../web/admin/app.css");

/// Scripts and styles only from this origin: a name that slipped into the
/// page as HTML still could not run.
const ADMIN_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin",
            get(|| async { file(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/admin/",
            get(|| async { file(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/admin/app.js",
            get(|| async { file(APP_JS, "application/javascript; charset=utf-8") }),
        )
        .route(
            "/admin/app.css",
            get(|| async { file(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route("/admin/logos/{file}", get(logo))
}

fn headers(content_type: &'static str, csp: &'static str) -> [(HeaderName, HeaderValue); 4] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ]
}

fn file(body: &'static str, content_type: &'static str) -> Response {
    (headers(content_type, ADMIN_CSP), body).into_response()
}

async fn logo(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, AppError> {
    let def = file
        .strip_suffix(".svg")
        .and_then(|slug| state.catalog.get(slug))
        .ok_or_else(|| AppError::NotFound(["no logo ", &file].concat()))?;
    // An SVG can hold script; served with a policy that forbids it.
    Ok((
        headers(
            "image/svg+xml",
            "default-src 'none'; style-src 'unsafe-inline'",
        ),
        def.logo.clone(),
    )
        .into_response())
}
