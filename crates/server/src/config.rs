//! Settings of the `switchyard` commands: each a flag and an environment
//! variable.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where an instance keeps its state; shared by `serve` and the admin
/// commands.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreConfig {
    /// Directory for the SQLite database (config unless a database URL is
    /// given, and the event log).
    #[arg(long, env = "SWITCHYARD_DATA", default_value = "./data", global = true)]
    pub data: PathBuf,
    /// Postgres URL (`postgres://user:pass@host/db`) for the configuration
    /// (sources, connections); by default the SQLite file holds it.
    #[arg(
        long,
        env = "SWITCHYARD_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<String>,
    /// The key secret settings are sealed with at rest (64 hex digits or
    /// base64 of 32 bytes). Without it (or a key file), the key is
    /// `secret.key` in the data directory, made on first start. Replicas
    /// sharing a Postgres configuration need the same key.
    #[arg(
        long,
        env = "SWITCHYARD_SECRET_KEY",
        hide_env_values = true,
        global = true
    )]
    pub secret_key: Option<String>,
    /// A file holding the key, instead of `--secret-key`.
    #[arg(long, env = "SWITCHYARD_SECRET_KEY_FILE", global = true)]
    pub secret_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "SWITCHYARD_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub store: StoreConfig,
    /// Admin token; generated, stored and printed on first start if unset.
    #[arg(long, env = "SWITCHYARD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Where the built browser library is (`cargo xtask build-client`).
    #[arg(long, env = "SWITCHYARD_BUNDLES", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bundles"))]
    pub bundles: PathBuf,
    /// Public origin pages reach this server at (`https://events.example.com`);
    /// by default each request's Host.
    #[arg(long, env = "SWITCHYARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// max-age of loader and settings responses, in seconds.
    #[arg(long, env = "SWITCHYARD_LOADER_MAX_AGE", default_value_t = 60)]
    pub loader_max_age: u32,
    #[command(flatten)]
    pub delivery: DeliveryConfig,
    /// Serve `/metrics` without the admin token (for a Prometheus that
    /// cannot send one).
    #[arg(long, env = "SWITCHYARD_METRICS_PUBLIC", default_value_t = false)]
    pub metrics_public: bool,
    /// Events a write key may send per second (bursts of twice that); 0
    /// for no limit. Beyond it: 429 with `Retry-After`.
    #[arg(long, env = "SWITCHYARD_RATE_LIMIT", default_value_t = crate::limits::DEFAULT_RATE)]
    pub rate_limit: u32,
    /// Tracking requests handled at once; beyond it: 503 with
    /// `Retry-After`.
    #[arg(long, env = "SWITCHYARD_MAX_IN_FLIGHT", default_value_t = crate::limits::DEFAULT_IN_FLIGHT)]
    pub max_in_flight: usize,
    /// Seconds a tracking request may take, body included; beyond it: 408.
    #[arg(long, env = "SWITCHYARD_HTTP_TIMEOUT", default_value_t = 30)]
    pub http_timeout: u64,
    /// Proxies (CIDRs or addresses, comma-separated) whose
    /// `X-Forwarded-Host` and `X-Forwarded-Proto` name the public origin;
    /// none by default: the public URL does.
    #[arg(long, env = "SWITCHYARD_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// A demo source and its page at `/demo` (`cargo xtask run` asks for
    /// them); none by default.
    #[arg(long, env = "SWITCHYARD_DEMO", default_value_t = false)]
    pub demo: bool,
    /// Days the event log keeps an event (checked hourly); 0 keeps every
    /// event.
    #[arg(long, env = "SWITCHYARD_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,
    /// Megabytes the event log may take on disk (checked every minute):
    /// beyond it the oldest events go; 0 for no bound.
    #[arg(long, env = "SWITCHYARD_RETENTION_MB", default_value_t = 0)]
    pub retention_mb: u64,
}

/// `--trusted-proxies`, read: each item a CIDR or a single address.
pub fn trusted_proxies(text: &str) -> anyhow::Result<Vec<ipnet::IpNet>> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<ipnet::IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "SWITCHYARD_TRUSTED_PROXIES: `{t}` is not an address or a CIDR (10.0.0.0/8)"
                    )
                })
        })
        .collect()
}

/// How cloud delivery retries, and where it may connect.
#[derive(Debug, Clone, clap::Args)]
pub struct DeliveryConfig {
    /// How long a failing event is retried before it is dead-lettered, in
    /// seconds.
    #[arg(long, env = "SWITCHYARD_RETRY_WINDOW", default_value_t = 4 * 3600)]
    pub retry_window: u64,
    /// The first retry's backoff, in milliseconds; each retry doubles it
    /// (with jitter) up to the maximum.
    #[arg(long, env = "SWITCHYARD_BACKOFF_MIN_MS", default_value_t = 1000)]
    pub backoff_min_ms: u64,
    /// The longest backoff between two retries, in milliseconds.
    #[arg(long, env = "SWITCHYARD_BACKOFF_MAX_MS", default_value_t = 600_000)]
    pub backoff_max_ms: u64,
    /// A vendor's request taking longer than this is retried, in seconds.
    #[arg(long, env = "SWITCHYARD_DELIVERY_TIMEOUT", default_value_t = 15)]
    pub request_timeout: u64,
    /// Loopback, private or link-local addresses (CIDRs or host names,
    /// comma-separated) that delivery may reach; none by default.
    #[arg(long, env = "SWITCHYARD_OUTBOUND_ALLOW", default_value = "")]
    pub outbound_allow: String,
}

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            retry_window: 4 * 3600,
            backoff_min_ms: 1000,
            backoff_max_ms: 600_000,
            request_timeout: 15,
            outbound_allow: String::new(),
        }
    }
}

impl DeliveryConfig {
    /// The engine's configuration, or what is wrong with these settings.
    pub fn engine(&self) -> Result<switchyard_delivery::Config, String> {
        use std::time::Duration;
        if self.backoff_min_ms == 0 || self.backoff_max_ms < self.backoff_min_ms {
            return Err(
                "SWITCHYARD_BACKOFF_MIN_MS must be at least 1 and at most SWITCHYARD_BACKOFF_MAX_MS"
                    .into(),
            );
        }
        if self.request_timeout == 0 {
            return Err("SWITCHYARD_DELIVERY_TIMEOUT must be at least 1 second".into());
        }
        Ok(switchyard_delivery::Config {
            retry_window: Duration::from_secs(self.retry_window),
            backoff_min: Duration::from_millis(self.backoff_min_ms),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
            request_timeout: Duration::from_secs(self.request_timeout),
            allow: switchyard_delivery::outbound::Allow::parse(&self.outbound_allow)?,
            ..switchyard_delivery::Config::default()
        })
    }
}
