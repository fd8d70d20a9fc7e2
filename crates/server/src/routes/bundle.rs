//! What a page loads: the loader script per write key, the content-hashed
//! WebAssembly module holding the device adapters the source has enabled
//! (one module per set of adapters, shared by the sources with that set),
//! and analytics-next's settings document. Loader and module are sent
//! compressed (brotli, else gzip) when the request's `Accept-Encoding`
//! allows it; the bundler keeps the compressed bytes, so a repeated
//! request costs no compression.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use switchyard_bundler::{
    Artifacts, DeviceDestination, DeviceSet, Encoding, Loader, Module, SourceBundle,
};
use switchyard_catalog::{Mode, routing};
use switchyard_store::Source;

use crate::extract::Json;
use crate::{AppError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/analytics.js/v1/{write_key}/analytics.min.js", get(loader))
        .route("/b/{file}", get(module))
        .route("/v1/projects/{write_key}/settings", get(settings))
        .layer(super::public_cors())
}

/// What the public bundle routes keep between requests, so what one costs
/// does not depend on what an anonymous caller asks for: each source's
/// loader for its revision (and the module it names), one module rebuild
/// at a time and what it last saw, and a bound on compressions at once.
pub struct PublicCache {
    /// Write keys looked up in the last second (this process forgets
    /// them at each admin change; another process's change shows within
    /// the second).
    keys: Mutex<HashMap<String, (Source, Instant)>>,
    loaders: Mutex<HashMap<String, Arc<CachedLoader>>>,
    rebuild: tokio::sync::Mutex<Option<Rebuilt>>,
    compressing: Arc<tokio::sync::Semaphore>,
}

struct CachedLoader {
    revision: i64,
    write_key: String,
    loader: Loader,
    module: Arc<Module>,
}

/// The sources (and their revisions) the last module rebuild saw, and
/// when it looked.
struct Rebuilt {
    at: Instant,
    sources: Vec<(String, i64)>,
}

/// How often an unknown module hash may make the server look at the
/// sources again; between looks, it is answered from memory.
const REBUILD_AT_MOST_EVERY: Duration = Duration::from_secs(1);
/// How long a write key's lookup is used again.
const KEY_FRESH: Duration = Duration::from_secs(1);
/// Write keys kept at most (each a known source's).
const KEYS_KEPT: usize = 10_000;
/// Brotli-11 and gzip-9 compressions running at once.
const COMPRESSIONS: usize = 2;

impl Default for PublicCache {
    fn default() -> PublicCache {
        PublicCache {
            keys: Mutex::new(HashMap::new()),
            loaders: Mutex::new(HashMap::new()),
            rebuild: tokio::sync::Mutex::new(None),
            compressing: Arc::new(tokio::sync::Semaphore::new(COMPRESSIONS)),
        }
    }
}

impl PublicCache {
    /// The configuration changed: what was looked up is looked up again.
    pub fn forget(&self) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn loaders(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<CachedLoader>>> {
        self.loaders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The loader built for `source` as it is now, if there is one.
    fn loader(&self, source: &Source) -> Option<Arc<CachedLoader>> {
        self.loaders()
            .get(&source.id)
            .filter(|c| c.revision == source.revision && c.write_key == source.write_key)
            .cloned()
    }

    /// A module a current loader names.
    fn module(&self, hash: &str) -> Option<Arc<Module>> {
        self.loaders()
            .values()
            .find(|c| c.module.hash == hash)
            .map(|c| c.module.clone())
    }

    /// Runs `f` (a compression) off the async threads, a bounded number
    /// at a time.
    async fn compress<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let permit = self
            .compressing
            .clone()
            .acquire_owned()
            .await
            .map_err(unavailable)?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(unavailable)
    }
}

async fn source(state: &AppState, write_key: &str) -> Result<Source, AppError> {
    {
        let keys = state.public.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((source, at)) = keys.get(write_key)
            && at.elapsed() < KEY_FRESH
        {
            return Ok(source.clone());
        }
    }
    let source = state
        .config
        .source_by_write_key(write_key)
        .await?
        .ok_or_else(|| AppError::NotFound("unknown write key".into()))?;
    let mut keys = state.public.keys.lock().unwrap_or_else(|e| e.into_inner());
    if keys.len() >= KEYS_KEPT {
        keys.clear();
    }
    keys.insert(write_key.to_string(), (source.clone(), Instant::now()));
    Ok(source)
}

fn artifacts(state: &AppState) -> Result<&Artifacts, AppError> {
    state
        .artifacts
        .as_ref()
        .as_ref()
        .map_err(|e| AppError::Unavailable(e.to_string()))
}

/// What a source's loader carries: its revision, each enabled device-mode
/// destination whose mode is available, with its settings less every
/// secret one, and the names of the enabled cloud-mode destinations whose
/// mode is available (the server delivers to those: `unbundled`).
async fn source_bundle(state: &AppState, source: &Source) -> Result<SourceBundle, AppError> {
    let mut destinations = Vec::new();
    let mut unbundled = Vec::new();
    for c in state.config.connections(&source.id).await? {
        let Some(def) = state.catalog.get(&c.destination) else {
            continue;
        };
        let Some(mode) = routing::active_mode(def, c.mode, c.enabled) else {
            continue;
        };
        if mode == Mode::Cloud {
            unbundled.push(def.name.clone());
            continue;
        }
        let saved: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&c.settings).unwrap_or_default();
        let settings = saved
            .into_iter()
            .filter(|(k, _)| def.settings.iter().any(|s| &s.key == k && !s.secret))
            .collect();
        destinations.push(DeviceDestination {
            slug: def.slug.clone(),
            name: def.name.clone(),
            settings,
            // Its catalog categories, which the page's consent preferences
            // name (`analytics.consent({categoryPreferences: {Advertising:
            // false}})`).
            categories: def
                .categories
                .iter()
                .map(|c| c.name().to_string())
                .collect(),
        });
    }
    unbundled.sort();
    unbundled.dedup();
    Ok(SourceBundle {
        write_key: source.write_key.clone(),
        revision: source.revision,
        destinations,
        unbundled,
    })
}

/// The set of device adapters `bundle` needs. A destination whose adapter
/// the built library lacks (built before the adapter landed) is left out
/// of the loader, and logged when `report` (once per adapter and process,
/// not on every page view): the other destinations still load.
fn device_set(artifacts: &Artifacts, bundle: &mut SourceBundle, report: bool) -> DeviceSet {
    static REPORTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let selection = artifacts.select(bundle.destinations.iter().map(|d| d.slug.as_str()));
    if !selection.missing.is_empty() {
        let mut reported = REPORTED.lock().unwrap_or_else(|e| e.into_inner());
        for slug in &selection.missing {
            if report && reported.insert(slug.clone()) {
                tracing::error!(
                    write_key = %bundle.write_key,
                    destination = %slug,
                    "the browser library has no adapter for this enabled device-mode \
                     destination; it is left out of the loader (rebuild the library: \
                     cargo xtask build-client)"
                );
            }
        }
        drop(reported);
        bundle
            .destinations
            .retain(|d| !selection.missing.contains(&d.slug));
    }
    selection.set
}

/// The module of `set`: at hand, or built (pruned and hashed, a few
/// milliseconds) off the async threads. A new module is compressed right
/// away, in the background: the page asks for it as soon as it has the
/// loader, and brotli takes over a hundred milliseconds.
async fn module_of(
    state: &AppState,
    artifacts: &Artifacts,
    set: DeviceSet,
) -> Result<Arc<Module>, AppError> {
    if let Some(module) = artifacts.cached_module(&set) {
        return Ok(module);
    }
    let artifacts = artifacts.clone();
    let module = tokio::task::spawn_blocking(move || artifacts.module(&set))
        .await
        .map_err(unavailable)?
        .map_err(unavailable)?;
    let compressing = module.clone();
    let public = state.public.clone();
    tokio::spawn(async move {
        let _ = public
            .compress(move || {
                compressing.encoded(Some(Encoding::Brotli));
                compressing.encoded(Some(Encoding::Gzip));
            })
            .await;
    });
    Ok(module)
}

/// The source's loader and module for its current revision: kept, or
/// built (and kept) now.
async fn current_loader(
    state: &AppState,
    artifacts: &Artifacts,
    source: &Source,
    report: bool,
) -> Result<Arc<CachedLoader>, AppError> {
    if let Some(cached) = state.public.loader(source) {
        return Ok(cached);
    }
    let mut bundle = source_bundle(state, source).await?;
    let set = device_set(artifacts, &mut bundle, report);
    let module = module_of(state, artifacts, set).await?;
    let loader = artifacts.loader(&bundle, &module);
    let cached = Arc::new(CachedLoader {
        revision: source.revision,
        write_key: source.write_key.clone(),
        loader,
        module,
    });
    state
        .public
        .loaders()
        .insert(source.id.clone(), cached.clone());
    Ok(cached)
}

/// The module of `hash` when this process holds it.
fn known_module(state: &AppState, artifacts: &Artifacts, hash: &str) -> Option<Arc<Module>> {
    artifacts
        .module_by_hash(hash)
        .or_else(|| state.public.module(hash))
}

/// A module hash this process does not hold: a page may hold a loader from
/// before a restart, or from another instance, so every source's current
/// module is built, once for all the requests waiting, and only when the
/// sources changed since the last look (looking at most once a second):
/// an unknown hash otherwise costs a lookup in memory.
async fn rebuild_for(
    state: &AppState,
    artifacts: &Artifacts,
    hash: &str,
) -> Result<Option<Arc<Module>>, AppError> {
    let mut last = state.public.rebuild.lock().await;
    if let Some(module) = known_module(state, artifacts, hash) {
        return Ok(Some(module));
    }
    if last
        .as_ref()
        .is_some_and(|l| l.at.elapsed() < REBUILD_AT_MOST_EVERY)
    {
        return Ok(None);
    }
    let sources = state.config.sources().await?;
    let seen: Vec<(String, i64)> = sources.iter().map(|s| (s.id.clone(), s.revision)).collect();
    if last.as_ref().is_some_and(|l| l.sources == seen) {
        *last = Some(Rebuilt {
            at: Instant::now(),
            sources: seen,
        });
        return Ok(None);
    }
    for source in &sources {
        if let Err(e) = current_loader(state, artifacts, source, false).await {
            tracing::error!(source = %source.id, "cannot build a module: {e}");
        }
    }
    *last = Some(Rebuilt {
        at: Instant::now(),
        sources: seen,
    });
    Ok(known_module(state, artifacts, hash))
}

/// Whether `hash` has the shape of a module's content hash (32 lowercase
/// hex digits): anything else is a 404 without looking further.
fn is_content_hash(hash: &str) -> bool {
    hash.len() == 32
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The encoding to send, from the request's `Accept-Encoding`: brotli,
/// else gzip, whichever has the higher q-value (brotli on a tie); `None`
/// (identity) when neither is acceptable or the header is absent.
fn negotiate(headers: &HeaderMap) -> Option<Encoding> {
    let (mut br, mut gzip, mut any) = (None, None, None);
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut params = item.split(';');
            let coding = params.next().unwrap_or_default().trim();
            let mut q = Some(1000);
            for param in params {
                if let Some((name, value)) = param.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    q = qvalue(value.trim());
                }
            }
            // A malformed q-value: the item is ignored.
            let Some(q) = q else { continue };
            if coding.eq_ignore_ascii_case("br") {
                br = Some(q);
            } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(q);
            } else if coding == "*" {
                any = Some(q);
            }
        }
    }
    let br = br.or(any).unwrap_or(0);
    let gzip = gzip.or(any).unwrap_or(0);
    if br > 0 && br >= gzip {
        Some(Encoding::Brotli)
    } else if gzip > 0 {
        Some(Encoding::Gzip)
    } else {
        None
    }
}

/// An RFC 9110 q-value (`0`, `1`, `0.5`, `1.000`) in thousandths.
fn qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = [frac, &"000"[frac.len()..]].concat();
    let q = match int {
        "0" => frac.parse::<u16>().ok()?,
        "1" if frac == "000" => 1000,
        _ => return None,
    };
    Some(q)
}

/// The ETag of one representation: each encoding's bytes differ, so each
/// has its own strong validator (`"hash"`, `"hash-br"`, `"hash-gzip"`).
fn representation_etag(etag: &str, encoding: Option<Encoding>) -> String {
    match (encoding, etag.strip_suffix('"')) {
        (Some(encoding), Some(open)) => [open, "-", encoding.name(), "\""].concat(),
        _ => etag.to_string(),
    }
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110
/// asks for this header) or is `*`.
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// Shared bytes as a response body, without copying them.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn body(bytes: Arc<Vec<u8>>) -> Body {
    Body::from(Bytes::from_owner(Shared(bytes)))
}

fn unavailable(e: impl ToString) -> AppError {
    AppError::Unavailable(e.to_string())
}

async fn loader(
    State(state): State<AppState>,
    Path(write_key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let source = source(&state, &write_key).await?;
    let mut response = loader_response(&state, &source, &headers).await?;
    response.extensions_mut().insert(crate::SourceOf(source.id));
    Ok(response)
}

/// The loader, a 304 for what the caller has, or compressed as it asks.
async fn loader_response(
    state: &AppState,
    source: &Source,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let artifacts = artifacts(state)?;
    let cached = current_loader(state, artifacts, source, true).await?;
    let loader = &cached.loader;
    let encoding = negotiate(headers);
    let etag = representation_etag(&loader.etag, encoding);
    let cache = ["public, max-age=", &state.loader_max_age.to_string()].concat();
    let common = [
        (
            header::ETAG,
            HeaderValue::from_str(&etag).map_err(unavailable)?,
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_str(&cache).map_err(unavailable)?,
        ),
        (header::VARY, HeaderValue::from_static("Accept-Encoding")),
    ];
    if not_modified(headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let content_type = (
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript; charset=utf-8"),
    );
    let Some(encoding) = encoding else {
        return Ok((common, [content_type], loader.js.clone()).into_response());
    };
    let bytes = match artifacts.cached_loader(loader, encoding) {
        Some(bytes) => bytes,
        // Brotli at quality 11 takes milliseconds: off the async threads.
        None => {
            let artifacts = artifacts.clone();
            let cached = cached.clone();
            state
                .public
                .compress(move || artifacts.compressed_loader(&cached.loader, encoding))
                .await?
        }
    };
    Ok((
        common,
        [
            content_type,
            (
                header::CONTENT_ENCODING,
                HeaderValue::from_static(encoding.name()),
            ),
        ],
        body(bytes),
    )
        .into_response())
}

async fn module(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let artifacts = artifacts(&state)?;
    let not_found = || AppError::NotFound(["no module ", &file].concat());
    let hash = file
        .strip_suffix(".wasm")
        .filter(|h| is_content_hash(h))
        .ok_or_else(not_found)?;
    let module = match known_module(&state, artifacts, hash) {
        Some(module) => module,
        None => rebuild_for(&state, artifacts, hash)
            .await?
            .ok_or_else(not_found)?,
    };
    let encoding = negotiate(&headers);
    let bytes = match module.cached(encoding) {
        Some(bytes) => bytes,
        // Compressed once per module and encoding, on first request:
        // brotli at quality 11 takes a few hundred milliseconds.
        None => {
            state
                .public
                .compress(move || module.encoded(encoding))
                .await?
        }
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/wasm"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::VARY, "Accept-Encoding"),
        ],
        body(bytes),
    )
        .into_response();
    if let Some(encoding) = encoding {
        response.headers_mut().insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(encoding.name()),
        );
    }
    Ok(response)
}

/// The settings document in the shape analytics-next reads from Segment's
/// CDN, so analytics-next itself can load from Switchyard. It reflects
/// what the loader carries (`source_bundle`): see `integrations`.
async fn settings(
    State(state): State<AppState>,
    Path(write_key): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Result<Response, AppError> {
    let source = source(&state, &write_key).await?;
    let bundle = source_bundle(&state, &source).await?;
    let origin = super::origin(&state, &headers, &extensions);
    let (protocol, host) = origin.split_once("://").unwrap_or(("https", &origin));
    let api_host = [host, "/v1"].concat();
    let segment_io = json!({
        "apiKey": source.write_key,
        "apiHost": api_host,
        "protocol": protocol,
        // The destinations the server delivers to, which analytics-next
        // puts in each event's `_metadata.unbundled`.
        "unbundledIntegrations": bundle.unbundled,
        "addBundledMetadata": true,
        "maybeBundledConfigIds": {},
        "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]}
    });
    let body = json!({
        "integrations": {"Segment.io": segment_io},
        "destinations": destinations(&bundle),
        "plan": {
            "track": {"__default": {"enabled": true, "integrations": {}}},
            "identify": {"__default": {"enabled": true}},
            "group": {"__default": {"enabled": true}}
        },
        "edgeFunction": {},
        "analyticsNextEnabled": true,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        // analytics-next reports its own metrics unless told not to.
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": false,
        "remotePlugins": [],
        // Raised by every change to the source or its connections.
        "revision": source.revision
    });
    let cache = ["public, max-age=", &state.loader_max_age.to_string()].concat();
    let cache = HeaderValue::from_str(&cache).map_err(|e| AppError::Unavailable(e.to_string()))?;
    let mut response = ([(header::CACHE_CONTROL, cache)], Json(body)).into_response();
    response.extensions_mut().insert(crate::SourceOf(source.id));
    Ok(response)
}

/// The source's destinations in the settings document, as a list beside
/// `integrations` rather than in it: each device-mode one under its catalog
/// name with its settings less the secret ones, each cloud-mode one by name.
///
/// analytics-next 1.x treats any `integrations` entry beside `Segment.io`
/// as something to install: it loads two chunks of its own build
/// (`ajs-destination`, which would find nothing to install, then
/// `schemaFilter`) from wherever its settings came from. The standalone
/// build pointed at Switchyard would fail on those chunks and send nothing.
/// Device-mode destinations run only in Switchyard's own library, and
/// `Segment.io`'s `unbundledIntegrations` already tells analytics-next
/// which destinations the server delivers to (its `_metadata.unbundled`),
/// so `integrations` holds `Segment.io` alone.
fn destinations(bundle: &SourceBundle) -> serde_json::Value {
    let device = bundle
        .destinations
        .iter()
        .map(|d| json!({"name": d.name, "slug": d.slug, "mode": "device", "settings": d.settings}));
    let cloud = bundle
        .unbundled
        .iter()
        .map(|name| json!({"name": name, "mode": "cloud"}));
    serde_json::Value::Array(device.chain(cloud).collect())
}
