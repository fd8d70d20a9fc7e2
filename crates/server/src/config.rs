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
}
