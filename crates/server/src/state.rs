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
    pub admin_token: AdminToken,
    /// Whether `/demo` serves the demo page (`--demo`).
    pub demo: bool,
    /// Proxies whose `X-Forwarded-Host` and `-Proto` are believed.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// The tracking API's rate per write key, requests in flight, deadline.
    pub limits: Arc<crate::limits::Limits>,
    /// What the public bundle routes keep between requests.
    pub public: Arc<crate::routes::bundle::PublicCache>,
    /// The public origin (`https://events.example.com`) if configured;
    /// otherwise taken from each request's `Host`.
    pub public_url: Option<Arc<str>>,
    /// `max-age` of loader responses, in seconds.
    pub loader_max_age: u32,
}

/// The admin token, as the server keeps it: its SHA-256 only.
#[derive(Clone)]
pub struct AdminToken(Arc<[u8; 32]>);

fn sha256(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

impl AdminToken {
    pub fn new(plain: &str) -> AdminToken {
        AdminToken(Arc::new(sha256(plain)))
    }

    /// A token kept as [`AdminToken::hash_hex`] wrote it.
    pub fn from_hash_hex(hex: &str) -> Option<AdminToken> {
        if hex.len() != 64 {
            return None;
        }
        let mut hash = [0u8; 32];
        for (i, byte) in hash.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(AdminToken(Arc::new(hash)))
    }

    pub fn hash_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `presented` is the token, in time independent of where it
    /// differs. An empty one never is.
    pub fn verify(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        !presented.is_empty() && bool::from(sha256(presented).ct_eq(&*self.0))
    }
}

impl From<&str> for AdminToken {
    fn from(plain: &str) -> AdminToken {
        AdminToken::new(plain)
    }
}
