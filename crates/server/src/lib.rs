//! The Switchyard server as a library: [`app`] builds the whole HTTP
//! surface from an [`AppState`], so tests drive it with `oneshot` and no
//! socket, and the `switchyard` binary serves it.

pub mod boot;
pub mod cli;
pub mod config;
mod error;
mod extract;
pub mod limits;
pub mod metrics;
mod routes;
pub mod serve;
pub mod service;
mod state;

pub use error::AppError;
pub use state::{AdminToken, AppState};

use axum::Router;

/// The source a request was for, which handlers put on their responses
/// for the request log.
#[derive(Debug, Clone)]
pub struct SourceOf(pub String);

/// One line per request: method, route (the route's pattern, never the
/// path, so no write key is logged), status, latency and the source it
/// was for; never a body. Its level is `RUST_LOG`'s
/// (`switchyard::request=info` by default; `=warn` keeps only failures).
async fn log_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(no route)", |p| p.as_str());
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let source = response
        .extensions()
        .get::<SourceOf>()
        .map_or("-", |s| s.0.as_str());
    if status >= 500 {
        tracing::warn!(target: "switchyard::request", %method, route, status, ms, source, "request");
    } else {
        tracing::info!(target: "switchyard::request", %method, route, status, ms, source, "request");
    }
    response
}

/// Puts the route's pattern on the response, for [`log_request`] outside
/// the router.
async fn mark_route(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Every route, merged in one place.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(routes::tracking::router(state.clone()))
        .merge(routes::bundle::router())
        .nest("/api", routes::admin::router(state.clone()))
        .merge(routes::metrics::router())
        .merge(routes::demo::router())
        .merge(routes::ui::router())
        .fallback(routes::not_found)
        .route_layer(axum::middleware::from_fn(mark_route))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}
