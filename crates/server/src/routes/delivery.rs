//! The admin API of cloud delivery, under `/api/connections/{id}/`:
//! the overview (`delivery`), recent `failures`, `dead-letters` (list,
//! `retry`, `discard`), the event tester (`test`) and `replays`.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_delivery::{Failure, Overview, Replay, TestReport};
use switchyard_store::Connection;

use crate::extract::{Json, OptionalJson};
use crate::service::Admin;
use crate::{AppError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/connections/{id}/delivery", get(overview))
        .route("/connections/{id}/failures", get(failures))
        .route("/connections/{id}/dead-letters", get(dead_letters))
        .route("/connections/{id}/dead-letters/retry", post(retry))
        .route("/connections/{id}/dead-letters/discard", post(discard))
        .route("/connections/{id}/test", post(test))
        .route("/connections/{id}/replays", get(replays).post(replay))
}

async fn connection(state: &AppState, id: &str) -> Result<Connection, AppError> {
    Admin::new(state).connection_stored(id).await
}

async fn cloud_connection(state: &AppState, id: &str) -> Result<Connection, AppError> {
    Admin::new(state).cloud_connection(id).await
}

async fn overview(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Overview>, AppError> {
    let c = connection(&state, &id).await?;
    Ok(Json(state.delivery.overview(&c).await?))
}

async fn failures(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Failure>>, AppError> {
    connection(&state, &id).await?;
    Ok(Json(state.delivery.failures(&id).await?))
}

/// `?limit=N`: 1 to 1000, 100 when absent.
fn limit(query: Option<&str>) -> Result<usize, AppError> {
    let bad = || AppError::BadRequest("limit must be a whole number from 1 to 1000".into());
    let mut limit = 100;
    for (key, value) in query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
    {
        if key == "limit" {
            limit = value.parse::<usize>().map_err(|_| bad())?;
            if !(1..=1000).contains(&limit) {
                return Err(bad());
            }
        }
    }
    Ok(limit)
}

async fn dead_letters(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, AppError> {
    let limit = limit(query.as_deref())?;
    connection(&state, &id).await?;
    let count = state.delivery_store.dead_letter_count(&id).await?;
    let letters: Vec<Value> = state
        .delivery_store
        .dead_letters(&id, limit)
        .await?
        .into_iter()
        .map(|d| {
            json!({
                "id": d.id,
                "message_id": d.message_id,
                "event": serde_json::from_str::<Value>(&d.event).unwrap_or(Value::Null),
                "reason": d.reason,
                "request": d.request,
                "response": d.response,
                "attempts": d.attempts,
                "failed_at": d.failed_at,
            })
        })
        .collect();
    Ok(Json(json!({"count": count, "dead_letters": letters})))
}

/// `{ids?: [..]}`: the dead letters to act on; all when absent.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Ids {
    ids: Option<Vec<i64>>,
}

async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<Ids>,
) -> Result<impl IntoResponse, AppError> {
    let c = cloud_connection(&state, &id).await?;
    let ids = body.ids;
    let n = state.delivery.retry_dead_letters(c, ids).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"retrying": n}))))
}

async fn discard(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<Ids>,
) -> Result<Json<Value>, AppError> {
    connection(&state, &id).await?;
    let ids = body.ids;
    let n = state
        .delivery_store
        .remove_dead_letters(&id, ids.as_deref())
        .await?;
    Ok(Json(json!({"discarded": n})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestBody {
    /// A Segment event; a sample `Order Completed` when absent.
    event: Option<Value>,
}

/// A sample event for the tester, in Segment's wire format.
pub(crate) fn sample() -> Value {
    json!({
        "type": "track",
        "event": "Order Completed",
        "userId": "test-user",
        "anonymousId": "test-anonymous-id",
        "properties": {
            "order_id": "test-order",
            "revenue": 42.5,
            "currency": "USD",
            "products": [{"product_id": "p-1", "sku": "SKU-1", "name": "Sample", "price": 42.5, "quantity": 1}]
        },
        "traits": {"email": "test@example.com"},
        "context": {"ip": "203.0.113.7", "userAgent": "Switchyard event tester", "library": {"name": "switchyard-tester", "version": env!("CARGO_PKG_VERSION")}}
    })
}

async fn test(
    State(state): State<AppState>,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<TestBody>,
) -> Result<Json<TestReport>, AppError> {
    let c = cloud_connection(&state, &id).await?;
    let event = body.event.unwrap_or_else(sample);
    let Value::Object(_) = &event else {
        return Err(AppError::unprocessable("event", "event must be an object"));
    };
    // The event as the tracking API would store it: validated and
    // normalised (messageId, timestamps).
    let text = json!({"batch": [event]}).to_string();
    let mut batch = switchyard_spec::parse_batch(text.as_bytes(), chrono::Utc::now())?;
    let normalized = batch
        .events
        .pop()
        .ok_or_else(|| AppError::unprocessable("event", "event is required"))?;
    let event: Value =
        serde_json::from_str(&normalized.json).map_err(|e| AppError::BadRequest(e.to_string()))?;
    Ok(Json(state.delivery.test_event(&c, event).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    from: Option<String>,
    to: Option<String>,
}

async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<ReplayBody>,
) -> Result<impl IntoResponse, AppError> {
    let c = cloud_connection(&state, &id).await?;
    let from = body
        .from
        .ok_or_else(|| AppError::unprocessable("from", "from is required: an RFC 3339 time"))?;
    let to = body
        .to
        .unwrap_or_else(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let started = state
        .delivery
        .replay(c, from, to)
        .await
        .map_err(|e| match e {
            switchyard_delivery::DeliveryError::Invalid(m) => AppError::unprocessable("from", m),
            other => other.into(),
        })?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

async fn replays(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Replay>>, AppError> {
    connection(&state, &id).await?;
    Ok(Json(state.delivery.replays(&id).await?))
}
