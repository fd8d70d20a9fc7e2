//! Opening an instance: the database, the admin token and, on first
//! start, the demo source.

use std::sync::Arc;

use anyhow::Context;
use switchyard_bundler::Artifacts;
use switchyard_catalog::Catalog;
use switchyard_store::{ConfigStore, DeliveryStore, EventLog, PostgresStore, Source, SqliteStore};

use crate::AppState;
use crate::config::{ServeConfig, StoreConfig};

pub const ADMIN_TOKEN_KEY: &str = "admin_token";
pub const DEMO_SOURCE_KEY: &str = "demo_source_id";
const DATABASE_FILE: &str = "switchyard.sqlite";
/// Events the live view keeps for a watcher that fell behind.
pub const LIVE_BUFFER: usize = 1024;

/// Segment's snippet (5.x), loading from `origin` for `write_key`.
pub fn snippet(write_key: &str, origin: &str) -> String {
    include_str!("../../../web/snippet.js")
        .replace("__HOST__", origin)
        .replace("__WRITE_KEY__", write_key)
        .trim_end()
        .to_string()
}

/// What opening the instance did, for the start-up message.
pub struct Opened {
    pub state: AppState,
    pub first_start: bool,
    /// Set when the token was generated now and must be shown once.
    pub new_admin_token: Option<String>,
    pub demo: Option<Source>,
    /// Why the browser library cannot be served, if it cannot.
    pub artifacts_problem: Option<String>,
}

/// An instance's storage, opened.
pub struct Stores {
    pub config: Arc<dyn ConfigStore>,
    pub events: Arc<dyn EventLog>,
    pub delivery: Arc<dyn DeliveryStore>,
}

/// Opens the instance's storage (creating it if new): the SQLite file in
/// the data directory, and Postgres for configuration if a URL is given.
pub async fn open_stores(config: &StoreConfig) -> anyhow::Result<Stores> {
    std::fs::create_dir_all(&config.data)
        .with_context(|| format!("cannot create data directory {}", config.data.display()))?;
    let db = config.data.join(DATABASE_FILE);
    let sqlite =
        Arc::new(SqliteStore::open(&db).with_context(|| format!("cannot open {}", db.display()))?);
    let (config_store, delivery): (Arc<dyn ConfigStore>, Arc<dyn DeliveryStore>) =
        match &config.database_url {
            Some(url) if !url.trim().is_empty() => {
                let pg = Arc::new(
                    PostgresStore::connect(url)
                        .await
                        .context("cannot use the database at SWITCHYARD_DATABASE_URL")?,
                );
                (pg.clone(), pg)
            }
            _ => (sqlite.clone(), sqlite.clone()),
        };
    Ok(Stores {
        config: config_store,
        events: sqlite,
        delivery,
    })
}

/// The delivery engine over an instance's stores (not started).
pub fn delivery(
    stores: &Stores,
    catalog: Arc<Catalog>,
    config: switchyard_delivery::Config,
) -> anyhow::Result<switchyard_delivery::Engine> {
    let deps = switchyard_delivery::Deps {
        config_store: stores.config.clone(),
        store: stores.delivery.clone(),
        log: stores.events.clone(),
        catalog,
    };
    Ok(switchyard_delivery::Engine::new(deps, config)?)
}

/// The destination catalog of this build.
pub fn catalog() -> anyhow::Result<Catalog> {
    switchyard_destinations::catalog().context("destination catalog")
}

/// Opens (creating on first start) the instance `config` describes.
pub async fn open(config: &ServeConfig) -> anyhow::Result<Opened> {
    let stores = open_stores(&config.store).await?;
    let store = &stores.config;

    let first_start = store.meta(DEMO_SOURCE_KEY).await?.is_none();
    let mut new_admin_token = None;
    let admin_token = match &config.admin_token {
        Some(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => match store.meta(ADMIN_TOKEN_KEY).await? {
            Some(t) => t,
            None => {
                let t = switchyard_store::new_secret();
                store.set_meta(ADMIN_TOKEN_KEY, &t).await?;
                new_admin_token = Some(t.clone());
                t
            }
        },
    };
    let demo = if first_start {
        let source = store.create_source("Demo website").await?;
        store.set_meta(DEMO_SOURCE_KEY, &source.id).await?;
        Some(source)
    } else {
        None
    };

    let artifacts = Artifacts::load(&config.bundles);
    let artifacts_problem = artifacts.as_ref().err().map(ToString::to_string);
    let catalog = Arc::new(catalog()?);
    let delivery_config = config
        .delivery
        .engine()
        .map_err(|e| anyhow::anyhow!("delivery settings: {e}"))?;
    let engine = delivery(&stores, catalog.clone(), delivery_config)?;
    let state = AppState {
        config: stores.config,
        events: stores.events,
        delivery_store: stores.delivery,
        delivery: engine,
        metrics: Default::default(),
        metrics_public: config.metrics_public,
        live: tokio::sync::broadcast::channel(LIVE_BUFFER).0,
        catalog,
        artifacts: Arc::new(artifacts),
        admin_token: admin_token.into(),
        public_url: config.public_url.as_deref().map(Into::into),
        loader_max_age: config.loader_max_age,
    };
    Ok(Opened {
        state,
        first_start,
        new_admin_token,
        demo,
        artifacts_problem,
    })
}
