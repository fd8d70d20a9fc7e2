//! What a page loads: the loader script per write key, the content-hashed
//! WebAssembly module, and analytics-next's settings document.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use switchyard_bundler::{Artifacts, DeviceDestination, SourceBundle};
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

async fn loader(
    State(state): State<AppState>,
    Path(write_key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let source = source(&state, &write_key).await?;
    let bundle = source_bundle(&state, &source).await?;
    let loader = artifacts(&state)?.loader(&bundle);
    let cache = ["public, max-age=", &state.loader_max_age.to_string()].concat();
    let etag =
        HeaderValue::from_str(&loader.etag).map_err(|e| AppError::Unavailable(e.to_string()))?;
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == loader.etag || t.trim() == "*")
        });
    let common = [
        (header::ETAG, etag),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_str(&cache).map_err(|e| AppError::Unavailable(e.to_string()))?,
        ),
    ];
    if fresh {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    Ok((
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/javascript; charset=utf-8"),
        )],
        loader.js,
    )
        .into_response())
}

async fn module(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, AppError> {
    let artifacts = artifacts(&state)?;
    let module = artifacts.module();
    let hash = file.strip_suffix(".wasm");
    if hash != Some(module.hash.as_str()) {
        return Err(AppError::NotFound(["no module ", &file].concat()));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/wasm"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        module.bytes.as_ref().clone(),
    )
        .into_response())
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
