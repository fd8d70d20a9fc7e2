use std::sync::Arc;

use switchyard_bundler::{Artifacts, BundleError};
use switchyard_catalog::Catalog;
use switchyard_store::{ConfigStore, EventLog};

/// What every handler can reach. Storage is behind traits, so the same
/// app runs on any backend.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<dyn ConfigStore>,
    pub events: Arc<dyn EventLog>,
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
