//! The admin API under `/api`: every call needs `Authorization: Bearer
//! <admin token>`; a write key never authorises one.

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_catalog::Definition;
use switchyard_store::Source;

use crate::extract::Json;
use crate::{AppError, AppState};

pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/sources", get(list_sources).post(create_source))
        .route("/sources/{id}", get(get_source))
        .route("/events", get(events))
        .route("/catalog/destinations", get(catalog))
        .fallback(super::not_found)
        .layer(middleware::from_fn_with_state(state, require_admin))
}

/// Compares in time independent of where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AppError::Unauthorized(
            "admin token required: send `Authorization: Bearer <admin token>`",
        ))?;
    if !same(token.trim().as_bytes(), state.admin_token.as_bytes()) {
        return Err(AppError::Unauthorized("the admin token is not valid"));
    }
    Ok(next.run(request).await)
}

fn source_json(s: &Source) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "write_key": s.write_key,
        "revision": s.revision,
        "created_at": s.created_at,
    })
}

async fn list_sources(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let sources = state.config.sources().await?;
    Ok(Json(Value::Array(
        sources.iter().map(source_json).collect(),
    )))
}

#[derive(Deserialize)]
struct NewSource {
    name: Option<String>,
}

/// The longest source name accepted.
const MAX_NAME: usize = 200;

async fn create_source(
    State(state): State<AppState>,
    Json(body): Json<NewSource>,
) -> Result<Response, AppError> {
    let name = body.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(AppError::Invalid(switchyard_spec::SpecError::Missing {
            field: "name".into(),
            hint: ": the source's name",
        }));
    }
    if name.chars().count() > MAX_NAME {
        return Err(AppError::Invalid(switchyard_spec::SpecError::Invalid {
            field: "name".into(),
            reason: "must be at most 200 characters".into(),
        }));
    }
    let source = state.config.create_source(name).await?;
    Ok((axum::http::StatusCode::CREATED, Json(source_json(&source))).into_response())
}

async fn get_source(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let source = state
        .config
        .source(&id)
        .await?
        .ok_or_else(|| AppError::NotFound(["no source ", &id].concat()))?;
    Ok(Json(source_json(&source)))
}

#[derive(Deserialize)]
struct EventsQuery {
    source: Option<String>,
    limit: Option<String>,
}

const DEFAULT_EVENTS: usize = 100;
const MAX_EVENTS: usize = 1000;

/// Recent events as received, newest first: the debugger view.
async fn events(
    State(state): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, AppError> {
    let limit = match q.limit.as_deref() {
        None | Some("") => DEFAULT_EVENTS,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_EVENTS).contains(n))
            .ok_or_else(|| {
                AppError::BadRequest("`limit` must be a number from 1 to 1000".into())
            })?,
    };
    if let Some(id) = &q.source
        && state.config.source(id).await?.is_none()
    {
        return Err(AppError::NotFound(["no source ", id].concat()));
    }
    let events = state.events.recent(q.source.as_deref(), limit).await?;
    // Stored events are already JSON: join them rather than re-encode.
    let mut body =
        String::with_capacity(events.iter().map(|e| e.json.len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&e.json);
    }
    body.push(']');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Deserialize)]
struct CatalogQuery {
    q: Option<String>,
    category: Option<String>,
}

fn definition_json(d: &Definition) -> Value {
    let methods = |mode| {
        d.mode(mode)
            .map(|m| json!(m.methods))
            .unwrap_or_else(|| json!([]))
    };
    json!({
        "slug": d.slug,
        "name": d.name,
        "description": d.description,
        "categories": d.categories,
        "website": d.website,
        "modes": d.modes,
        "methods": {
            "device": methods(switchyard_catalog::Mode::Device),
            "cloud": methods(switchyard_catalog::Mode::Cloud),
        },
        "settings": d.settings,
    })
}

async fn catalog(
    State(state): State<AppState>,
    Query(q): Query<CatalogQuery>,
) -> Result<Json<Value>, AppError> {
    let found = state.catalog.search(q.q.as_deref(), q.category.as_deref());
    Ok(Json(Value::Array(
        found.into_iter().map(definition_json).collect(),
    )))
}
