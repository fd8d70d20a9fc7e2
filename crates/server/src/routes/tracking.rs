//! The tracking API: `POST /v1/{identify,track,page,screen,group,alias,batch}`
//! and the browser's short forms `/v1/{i,t,p,s,g,a,b}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::routing::post;
use base64::Engine;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Value, json};
use switchyard_spec::{EventType, MAX_BATCH_BYTES, MAX_EVENT_BYTES, Normalized};
use switchyard_store::NewEvent;
use tower_http::decompression::RequestDecompressionLayer;

use crate::extract::Json;
use crate::{AppError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/{call}", post(ingest))
        // Gzip bodies are inflated before the size limit is applied, so
        // the limit holds for what is parsed, not what was sent.
        .layer(RequestDecompressionLayer::new())
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
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        AppError::Unauthorized(
            "the Authorization header is not HTTP Basic with the write key as user name",
        )
    };
    let value = value.to_str().map_err(|_| bad())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(bad());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let user = decoded.split_once(':').map_or(decoded.as_str(), |(u, _)| u);
    Ok((!user.is_empty()).then(|| user.to_string()))
}

async fn ingest(
    State(state): State<AppState>,
    Path(call): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, AppError> {
    let result = accept(&state, call, headers, body).await;
    match &result {
        Ok(()) => {
            // Delivery workers waiting for events wake up.
            state.delivery.appended();
        }
        Err(e) => state.metrics.refused(refusal(e)),
    }
    result.map(|()| Json(json!({ "success": true })))
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
    }
}

async fn accept(
    state: &AppState,
    call: String,
    headers: HeaderMap,
    body: Body,
) -> Result<(), AppError> {
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
    Ok(())
}
