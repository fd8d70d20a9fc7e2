//! `switchyard serve` settings: each a flag and an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "SWITCHYARD_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Directory for the SQLite database and built bundles.
    #[arg(long, env = "SWITCHYARD_DATA", default_value = "./data")]
    pub data: PathBuf,
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
    /// max-age of loader responses, in seconds.
    #[arg(long, env = "SWITCHYARD_LOADER_MAX_AGE", default_value_t = 60)]
    pub loader_max_age: u32,
}
