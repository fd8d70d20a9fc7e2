//! What a page loads: the loader script per write key, the content-hashed
//! WebAssembly module holding the device adapters the source has enabled
//! (one module per set of adapters, shared by the sources with that set),
//! and analytics-next's settings document. Loader and module are sent
//! compressed (brotli, else gzip) when the request's `Accept-Encoding`
//! allows it; the bundler keeps the compressed bytes, so a repeated
//! request costs no compression.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use switchyard_bundler::{Artifacts, DeviceDestination, DeviceSet, Encoding, Module, SourceBundle};
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

async fn source(state: &AppState, write_key: &str) -> Result<Source, AppError> {
    state
        .config
        .source_by_write_key(write_key)
        .await?
        .ok_or_else(|| AppError::NotFound("unknown write key".into()))
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
async fn module_of(artifacts: &Artifacts, set: DeviceSet) -> Result<Arc<Module>, AppError> {
    if let Some(module) = artifacts.cached_module(&set) {
        return Ok(module);
    }
    let artifacts = artifacts.clone();
    let module = tokio::task::spawn_blocking(move || artifacts.module(&set))
        .await
        .map_err(unavailable)?
        .map_err(unavailable)?;
    let compressing = module.clone();
    tokio::task::spawn_blocking(move || {
        compressing.encoded(Some(Encoding::Brotli));
        compressing.encoded(Some(Encoding::Gzip));
    });
    Ok(module)
}

/// Builds the module of every source's current set of device adapters.
/// A page may hold a loader naming a module this process has not built
/// (the loader came from before a restart, or from another instance).
async fn build_current_modules(state: &AppState, artifacts: &Artifacts) -> Result<(), AppError> {
    let mut sets = Vec::new();
    for source in state.config.sources().await? {
        let mut bundle = source_bundle(state, &source).await?;
        let set = device_set(artifacts, &mut bundle, false);
        if artifacts.cached_module(&set).is_none() && !sets.contains(&set) {
            sets.push(set);
        }
    }
    if sets.is_empty() {
        return Ok(());
    }
    let artifacts = artifacts.clone();
    tokio::task::spawn_blocking(move || {
        for set in sets {
            if let Err(e) = artifacts.module(&set) {
                tracing::error!(set = ?set.slugs(), "cannot build a module: {e}");
            }
        }
    })
    .await
    .map_err(unavailable)
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
    let mut bundle = source_bundle(&state, &source).await?;
    let artifacts = artifacts(&state)?;
    let set = device_set(artifacts, &mut bundle, true);
    let module = module_of(artifacts, set).await?;
    let loader = artifacts.loader(&bundle, &module);
    let encoding = negotiate(&headers);
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
    if not_modified(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let content_type = (
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/javascript; charset=utf-8"),
    );
    let Some(encoding) = encoding else {
        return Ok((common, [content_type], loader.js).into_response());
    };
    let bytes = match artifacts.cached_loader(&loader, encoding) {
        Some(bytes) => bytes,
        // Brotli at quality 11 takes milliseconds: off the async threads.
        None => {
            let artifacts = artifacts.clone();
            tokio::task::spawn_blocking(move || artifacts.compressed_loader(&loader, encoding))
                .await
                .map_err(unavailable)?
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
    let module = match artifacts.module_by_hash(hash) {
        Some(module) => module,
        None => {
            build_current_modules(&state, artifacts).await?;
            artifacts.module_by_hash(hash).ok_or_else(not_found)?
        }
    };
    let encoding = negotiate(&headers);
    let bytes = match module.cached(encoding) {
        Some(bytes) => bytes,
        // Compressed once per module and encoding, on first request:
        // brotli at quality 11 takes a few hundred milliseconds.
        None => tokio::task::spawn_blocking(move || module.encoded(encoding))
            .await
            .map_err(unavailable)?,
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
) -> Result<Response, AppError> {
    let source = source(&state, &write_key).await?;
    let bundle = source_bundle(&state, &source).await?;
    let origin = super::origin(&state, &headers);
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
    Ok(([(header::CACHE_CONTROL, cache)], Json(body)).into_response())
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
