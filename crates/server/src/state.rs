use std::sync::Arc;

use switchyard_bundler::{Artifacts, BundleError};
use switchyard_catalog::Catalog;
use switchyard_delivery::Engine;
use switchyard_store::{ConfigStore, DeliveryStore, EventLog};

use crate::metrics::Metrics;

/// What every handler can reach. Storage is behind traits, so the same
/// app runs on any backend.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<dyn ConfigStore>,
    pub events: Arc<dyn EventLog>,
    /// Delivery cursors and dead letters, kept with the configuration.
    pub delivery_store: Arc<dyn DeliveryStore>,
    /// Cloud delivery; its workers run only once `serve` starts it.
    pub delivery: Engine,
    /// The server's own counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Whether `/metrics` may be read without the admin token.
    pub metrics_public: bool,
    /// Each accepted event as `(source id, stored JSON)`, for the admin's
    /// live view; sent only while someone watches.
    pub live: tokio::sync::broadcast::Sender<Arc<(String, String)>>,
    pub catalog: Arc<Catalog>,
    /// The built browser library, or why it is not available.
    pub artifacts: Arc<Result<Artifacts, BundleError>>,
    pub admin_token: Arc<str>,
    /// The public origin (`https://events.example.com`) if configured;
    /// otherwise taken from each request's `Host`.
    pub public_url: Option<Arc<str>>,
    /// `max-age` of loader responses, in seconds.
    pub loader_max_age: u32,
}
