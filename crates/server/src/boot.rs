//! Opening an instance: the database, the admin token and, on first
//! start, the demo source.

use std::sync::Arc;

use anyhow::Context;
use switchyard_bundler::Artifacts;
use switchyard_catalog::Catalog;
use switchyard_store::{
    ConfigStore, DeliveryStore, EventLog, PostgresStore, SealedConfigStore, SecretKey,
    SecretSettings, Source, SqliteStore,
};

use crate::AppState;
use crate::config::{ServeConfig, StoreConfig};
use crate::state::AdminToken;

/// Where an older instance kept its admin token in plain text; emptied
/// once it is hashed.
pub const ADMIN_TOKEN_KEY: &str = "admin_token";
/// The admin token's SHA-256, hex.
pub const ADMIN_TOKEN_HASH_KEY: &str = "admin_token_sha256";
pub const DEMO_SOURCE_KEY: &str = "demo_source_id";
const DATABASE_FILE: &str = "switchyard.sqlite";
/// The secret key's file in the data directory, when the operator gives
/// none.
pub const SECRET_KEY_FILE: &str = "secret.key";
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
    let key = secret_key(config)?;
    let sealed = SealedConfigStore::open(config_store, key, secret_settings(&catalog()?)).await?;
    Ok(Stores {
        config: Arc::new(sealed),
        events: sqlite,
        delivery,
    })
}

/// Which settings of each destination are sealed at rest.
fn secret_settings(catalog: &Catalog) -> SecretSettings {
    catalog
        .all()
        .iter()
        .map(|def| {
            let keys = def
                .settings
                .iter()
                .filter(|s| s.secret)
                .map(|s| s.key.clone())
                .collect();
            (def.slug.clone(), keys)
        })
        .collect()
}

/// The operator's key, or the data directory's (made now, readable by the
/// owner only, on first start).
fn secret_key(config: &StoreConfig) -> anyhow::Result<SecretKey> {
    let bad = |e: String, from: &str| anyhow::anyhow!("{from}: {e}");
    if let Some(text) = config
        .secret_key
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        return SecretKey::parse(text).map_err(|e| bad(e, "SWITCHYARD_SECRET_KEY"));
    }
    if let Some(path) = &config.secret_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the secret key file {}", path.display()))?;
        return SecretKey::parse(&text).map_err(|e| bad(e, &path.display().to_string()));
    }
    let path = config.data.join(SECRET_KEY_FILE);
    if !path.exists() {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut file) => {
                file.write_all(SecretKey::generate().as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", path.display()));
            }
        }
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    SecretKey::parse(&text).map_err(|e| bad(e, &path.display().to_string()))
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

    let first_start = store.meta(ADMIN_TOKEN_HASH_KEY).await?.is_none()
        && store.meta(ADMIN_TOKEN_KEY).await?.is_none();
    let mut new_admin_token = None;
    let stored = match store.meta(ADMIN_TOKEN_HASH_KEY).await? {
        Some(hex) if !hex.is_empty() => Some(
            AdminToken::from_hash_hex(&hex)
                .context("the stored admin token hash is damaged; set SWITCHYARD_ADMIN_TOKEN")?,
        ),
        _ => None,
    };
    // An older instance's token in plain text: hashed, and the text gone.
    let stored = match (stored, store.meta(ADMIN_TOKEN_KEY).await?) {
        (None, Some(plain)) if !plain.is_empty() => {
            let token = AdminToken::new(&plain);
            store
                .set_meta(ADMIN_TOKEN_HASH_KEY, &token.hash_hex())
                .await?;
            store.set_meta(ADMIN_TOKEN_KEY, "").await?;
            Some(token)
        }
        (stored, Some(plain)) if !plain.is_empty() => {
            store.set_meta(ADMIN_TOKEN_KEY, "").await?;
            stored
        }
        (stored, _) => stored,
    };
    let admin_token = match (&config.admin_token, stored) {
        (Some(t), _) if !t.trim().is_empty() => AdminToken::new(t.trim()),
        (_, Some(token)) => token,
        (_, None) => {
            let t = switchyard_store::new_secret();
            let token = AdminToken::new(&t);
            store
                .set_meta(ADMIN_TOKEN_HASH_KEY, &token.hash_hex())
                .await?;
            new_admin_token = Some(t);
            token
        }
    };
    // The demo source, only when asked for, once.
    let demo = if config.demo && store.meta(DEMO_SOURCE_KEY).await?.is_none() {
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
        admin_token,
        public_url: config.public_url.as_deref().map(Into::into),
        loader_max_age: config.loader_max_age,
        public: Default::default(),
        limits: Arc::new(crate::limits::Limits::new(
            config.rate_limit,
            config.max_in_flight,
            std::time::Duration::from_secs(config.http_timeout.max(1)),
        )),
        trusted_proxies: Arc::new(crate::config::trusted_proxies(&config.trusted_proxies)?),
        demo: config.demo,
    };
    Ok(Opened {
        state,
        first_start,
        new_admin_token,
        demo,
        artifacts_problem,
    })
}

/// Keeps the event log to `days` of events (pruned now and every hour)
/// and to `megabytes` on disk (checked now and every minute); 0 leaves
/// either unbounded.
pub fn start_retention(events: Arc<dyn EventLog>, days: u32, megabytes: u64) {
    if days == 0 && megabytes == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut minute = 0u64;
        loop {
            if days > 0 && minute.is_multiple_of(60) {
                let before = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
                let before = before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                match events.prune_before(&before).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!("retention: removed {n} event(s) older than {days} day(s)")
                    }
                    Err(e) => tracing::warn!("retention: cannot prune the event log: {e}"),
                }
            }
            if megabytes > 0 {
                match events
                    .prune_to_size(megabytes.saturating_mul(1_000_000))
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        "retention: removed the {n} oldest event(s) to keep the log under {megabytes} MB"
                    ),
                    Err(e) => tracing::warn!("retention: cannot prune the event log: {e}"),
                }
            }
            minute += 1;
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        }
    });
}
