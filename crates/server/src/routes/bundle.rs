//! What a page loads: the loader script per write key, the content-hashed
//! WebAssembly module, and analytics-next's settings document. Loader and
//! module are sent compressed (brotli, else gzip) when the request's
//! `Accept-Encoding` allows it; the bundler keeps the compressed bytes, so
//! a repeated request costs no compression.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use switchyard_bundler::{Artifacts, DeviceDestination, Encoding, SourceBundle};
use switchyard_catalog::Mode;
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

/// What a source's loader carries: its revision, and each enabled
/// device-mode destination whose adapter exists, with its settings less
/// every secret one.
async fn source_bundle(state: &AppState, source: &Source) -> Result<SourceBundle, AppError> {
    let mut destinations = Vec::new();
    for c in state.config.connections(&source.id).await? {
        if !c.enabled || c.mode != Mode::Device.as_str() {
            continue;
        }
        let Some(def) = state.catalog.get(&c.destination) else {
            continue;
        };
        if !def.mode(Mode::Device).is_some_and(|m| m.available) {
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
        });
    }
    Ok(SourceBundle {
        write_key: source.write_key.clone(),
        revision: source.revision,
        destinations,
    })
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
    let bundle = source_bundle(&state, &source).await?;
    let artifacts = artifacts(&state)?;
    let loader = artifacts.loader(&bundle);
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
    let module = artifacts.module();
    let hash = file.strip_suffix(".wasm");
    if hash != Some(module.hash.as_str()) {
        return Err(AppError::NotFound(["no module ", &file].concat()));
    }
    let encoding = negotiate(&headers);
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/wasm"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::VARY, "Accept-Encoding"),
        ],
        body(module.encoded(encoding).clone()),
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
/// CDN, so analytics-next itself can load from Switchyard.
async fn settings(
    State(state): State<AppState>,
    Path(write_key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let source = source(&state, &write_key).await?;
    let origin = super::origin(&state, &headers);
    let (protocol, host) = origin.split_once("://").unwrap_or(("https", &origin));
    let api_host = [host, "/v1"].concat();
    let body = json!({
        "integrations": {
            "Segment.io": {
                "apiKey": source.write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": true,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]}
            }
        },
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
