//! The Switchyard server as a library: [`app`] builds the whole HTTP
//! surface from an [`AppState`], so tests drive it with `oneshot` and no
//! socket, and the `switchyard` binary serves it.

pub mod boot;
pub mod cli;
pub mod config;
mod error;
mod extract;
pub mod metrics;
mod routes;
pub mod service;
mod state;

pub use error::AppError;
pub use state::AppState;

use axum::Router;

/// Every route, merged in one place.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(routes::tracking::router())
        .merge(routes::bundle::router())
        .nest("/api", routes::admin::router(state.clone()))
        .merge(routes::metrics::router())
        .merge(routes::demo::router())
        .merge(routes::ui::router())
        .fallback(routes::not_found)
        .with_state(state)
}
