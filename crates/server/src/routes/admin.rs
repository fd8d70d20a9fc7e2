//! The admin API under `/api`: every call needs `Authorization: Bearer
//! <admin token>`; a write key never authorises one.

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_catalog::{Category, Definition};

use crate::extract::Json;
use crate::service::{AddConnection, Admin, ConnectionView, SourceView, UpdateConnection};
use crate::{AppError, AppState};

pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/sources", get(list_sources).post(create_source))
        .route(
            "/sources/{id}",
            get(get_source).patch(rename_source).delete(delete_source),
        )
        .route("/sources/{id}/rotate-key", post(rotate_key))
        .route("/sources/{id}/live", get(super::live::live))
        .route(
            "/sources/{id}/connections",
            get(list_connections).post(add_connection),
        )
        .route(
            "/connections/{id}",
            get(get_connection)
                .patch(update_connection)
                .delete(remove_connection),
        )
        .merge(super::delivery::router())
        .route("/events", get(events))
        .route("/catalog/destinations", get(catalog))
        .route("/catalog/destinations/{slug}", get(destination))
        .route("/openapi.json", get(openapi))
        .fallback(super::not_found)
        .layer(middleware::from_fn_with_state(state, require_admin))
}

/// Checks `Authorization: Bearer <admin token>`.
pub(crate) fn check_token(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<(), AppError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AppError::Unauthorized(
            "admin token required: send `Authorization: Bearer <admin token>`",
        ))?;
    if !state.admin_token.verify(token.trim()) {
        return Err(AppError::Unauthorized("the admin token is not valid"));
    }
    Ok(())
}

async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    check_token(&state, request.headers())?;
    Ok(next.run(request).await)
}

async fn list_sources(State(state): State<AppState>) -> Result<Json<Vec<SourceView>>, AppError> {
    Ok(Json(Admin::new(&state).sources().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: Option<String>,
}

async fn create_source(
    State(state): State<AppState>,
    Json(body): Json<NameBody>,
) -> Result<Response, AppError> {
    let source = Admin::new(&state)
        .create_source(body.name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(source)).into_response())
}

async fn get_source(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SourceView>, AppError> {
    Ok(Json(Admin::new(&state).source(&id).await?))
}

async fn rename_source(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<NameBody>,
) -> Result<Json<SourceView>, AppError> {
    Ok(Json(
        Admin::new(&state)
            .rename_source(&id, body.name.as_deref())
            .await?,
    ))
}

async fn delete_source(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    Admin::new(&state).delete_source(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SourceView>, AppError> {
    Ok(Json(Admin::new(&state).rotate_write_key(&id).await?))
}

async fn list_connections(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<ConnectionView>>, AppError> {
    Ok(Json(Admin::new(&state).connections(&id).await?))
}

async fn add_connection(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<AddConnection>,
) -> Result<Response, AppError> {
    let created = Admin::new(&state).add_connection(&id, body).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn get_connection(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, AppError> {
    Ok(Json(Admin::new(&state).connection(&id).await?))
}

async fn update_connection(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<UpdateConnection>,
) -> Result<Json<ConnectionView>, AppError> {
    Ok(Json(Admin::new(&state).update_connection(&id, body).await?))
}

async fn remove_connection(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    Admin::new(&state).remove_connection(&id).await?;
    Ok(StatusCode::NO_CONTENT)
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
    let logo = ["/admin/logos/", &d.slug, ".svg"].concat();
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
        "recommended": d.recommended,
        "logo": logo,
    })
}

async fn catalog(
    State(state): State<AppState>,
    Query(q): Query<CatalogQuery>,
) -> Result<Json<Value>, AppError> {
    let category = q.category.as_deref().filter(|c| !c.is_empty());
    if let Some(c) = category
        && !Category::ALL
            .iter()
            .any(|k| k.name().eq_ignore_ascii_case(c))
    {
        let names: Vec<&str> = Category::ALL.iter().map(|k| k.name()).collect();
        return Err(AppError::BadRequest(
            ["unknown category `", c, "`: use one of ", &names.join(", ")].concat(),
        ));
    }
    let found = state.catalog.search(q.q.as_deref(), category);
    Ok(Json(Value::Array(
        found.into_iter().map(definition_json).collect(),
    )))
}

async fn destination(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<Value>, AppError> {
    let def = state.catalog.get(&slug).ok_or_else(|| {
        AppError::NotFound(["no destination `", &slug, "` in the catalog"].concat())
    })?;
    Ok(Json(definition_json(def)))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}
