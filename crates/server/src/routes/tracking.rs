//! The tracking API: `POST /v1/{identify,track,page,screen,group,alias,batch}`
//! and the browser's short forms `/v1/{i,t,p,s,g,a,b}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::routing::post;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use switchyard_spec::{EventType, MAX_BATCH_BYTES, MAX_EVENT_BYTES, Normalized};
use switchyard_store::NewEvent;
use tower_http::decompression::RequestDecompressionLayer;

use crate::extract::Json;
use crate::{AppError, AppState};

pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/{call}", post(ingest))
        // Compressed bodies (gzip, br, deflate) are inflated before the
        // size limit is applied, so the limit holds for what is parsed,
        // not what was sent; other encodings are refused first.
        .layer(RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn(crate::limits::encodings))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::limits::guard,
        ))
        .layer(super::public_cors())
}

/// Reads at most `limit` bytes of body.
async fn read_body(body: Body, what: &'static str, limit: usize) -> Result<Vec<u8>, AppError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.is::<LengthLimitError>() => Err(AppError::TooLarge { what, limit }),
        Err(e) => Err(AppError::BadRequest(
            ["cannot read the body: ", &e.to_string()].concat(),
        )),
    }
}

/// The write key sent as the HTTP Basic user name, if any.
fn basic_user(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    if !headers.contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    let bad = || {
        AppError::Unauthorized(
            "the Authorization header is not HTTP Basic with the write key as user name",
        )
    };
    use headers::HeaderMapExt;
    use headers::authorization::{Authorization, Basic};
    let basic = headers
        .typed_try_get::<Authorization<Basic>>()
        .ok()
        .flatten()
        .ok_or_else(bad)?;
    let user = basic.username();
    Ok((!user.is_empty()).then(|| user.to_string()))
}

async fn ingest(
    State(state): State<AppState>,
    Path(call): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let result = accept(&state, call, headers, body).await;
    match &result {
        Ok(_) => {
            // Delivery workers waiting for events wake up.
            state.delivery.appended();
        }
        Err(e) => state.metrics.refused(refusal(e)),
    }
    let source = result?;
    let mut response = Json(json!({ "success": true })).into_response();
    response.extensions_mut().insert(crate::SourceOf(source));
    Ok(response)
}

/// A refusal's reason, as `/metrics` counts it.
fn refusal(e: &AppError) -> &'static str {
    match e {
        AppError::Invalid(switchyard_spec::SpecError::TooLarge { .. })
        | AppError::TooLarge { .. } => "too_large",
        AppError::Invalid(_) | AppError::BadRequest(_) | AppError::Unprocessable { .. } => {
            "invalid"
        }
        AppError::Unauthorized(_) => "unauthorized",
        AppError::NotFound(_) => "not_found",
        AppError::Unavailable(_) | AppError::Store(_) => "unavailable",
        AppError::RateLimited { .. } => "rate_limited",
        AppError::Busy { .. } => "busy",
        AppError::Timeout => "timeout",
        AppError::UnsupportedEncoding(_) => "unsupported_encoding",
    }
}

async fn accept(
    state: &AppState,
    call: String,
    headers: HeaderMap,
    body: Body,
) -> Result<String, AppError> {
    let batch = matches!(call.as_str(), "batch" | "b");
    let single = if batch {
        None
    } else {
        Some(EventType::from_path(&call).ok_or_else(|| {
            AppError::NotFound(
                [
                    "no tracking call `",
                    &call,
                    "`: use identify, track, page, screen, group, alias or batch",
                ]
                .concat(),
            )
        })?)
    };
    let body = match single {
        Some(_) => read_body(body, "event", MAX_EVENT_BYTES).await?,
        None => read_body(body, "batch", MAX_BATCH_BYTES).await?,
    };
    let auth_key = basic_user(&headers)?;
    let received_at = chrono::Utc::now();
    let (body_key, events): (Option<String>, Vec<Normalized>) = match single {
        Some(kind) => {
            let event = switchyard_spec::parse_single(&body, kind, received_at)?;
            (event.write_key.clone(), vec![event])
        }
        None => {
            let batch = switchyard_spec::parse_batch(&body, received_at)?;
            let key = batch
                .write_key
                .or_else(|| batch.events.iter().find_map(|e| e.write_key.clone()));
            (key, batch.events)
        }
    };
    let write_key = auth_key.or(body_key).ok_or(AppError::Unauthorized(
        "no write key: send it as the HTTP Basic user name or as `writeKey` in the body",
    ))?;
    let source = state
        .config
        .source_by_write_key(&write_key)
        .await?
        .ok_or(AppError::Unauthorized("unknown write key"))?;
    if let Err(wait) = state.limits.take(&source.id, events.len()) {
        return Err(AppError::RateLimited {
            retry_after: crate::limits::retry_after(wait),
        });
    }
    let received = received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let events: Vec<NewEvent> = events
        .into_iter()
        .map(|e| NewEvent {
            source_id: source.id.clone(),
            message_id: e.message_id,
            kind: e.kind.as_str(),
            received_at: received.clone(),
            json: e.json,
        })
        .collect();
    let count = events.len() as u64;
    let watched: Vec<_> = if state.live.receiver_count() > 0 {
        events
            .iter()
            .map(|e| Arc::new((e.source_id.clone(), e.json.clone())))
            .collect()
    } else {
        Vec::new()
    };
    let new = state.events.append(events).await?;
    for event in watched {
        let _ = state.live.send(event);
    }
    state.metrics.accepted(count, new as u64);
    Ok(source.id)
}
