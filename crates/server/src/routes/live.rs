//! `GET /api/sources/{id}/live`: the source's events as they arrive, as
//! server-sent events, each with its routing: which device destinations
//! had it in the browser, which cloud connections the server delivers it
//! to, and which get it not, and why (routing's own reasons).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::{Value, json};
use switchyard_catalog::{Mode, routing};
use tokio::sync::broadcast::error::RecvError;

use crate::{AppError, AppState};

/// What each of the source's connections makes of `event`.
async fn routes(state: &AppState, source_id: &str, event: &Value) -> Vec<Value> {
    let connections = state
        .config
        .connections(source_id)
        .await
        .unwrap_or_default();
    let bundled: Vec<&str> = event
        .pointer("/_metadata/bundled")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    connections
        .iter()
        .filter_map(|c| {
            let def = state.catalog.get(&c.destination)?;
            let (decision, reason) = match routing::active_mode(def, c.mode, c.enabled) {
                None => ("skipped", Some("not enabled".to_string())),
                Some(Mode::Device) if bundled.iter().any(|b| *b == def.name) => ("browser", None),
                Some(Mode::Device) => (
                    "skipped",
                    Some(
                        "not sent by the browser (integrations, consent, or another library)"
                            .into(),
                    ),
                ),
                Some(Mode::Cloud) => match routing::route(def, Mode::Cloud, event) {
                    Ok(()) => ("server", None),
                    Err(skip) => ("skipped", Some(skip.as_str().to_string())),
                },
            };
            Some(json!({
                "connection_id": c.id,
                "destination": def.slug,
                "name": def.name,
                "mode": c.mode,
                "decision": decision,
                "reason": reason,
            }))
        })
        .collect()
}

pub(crate) async fn live(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    state
        .config
        .source(&id)
        .await?
        .ok_or_else(|| AppError::NotFound(["no source ", &id].concat()))?;
    let receiver = state.live.subscribe();
    let stream = futures_util::stream::unfold(
        (state, id, receiver),
        |(state, id, mut receiver)| async move {
            loop {
                match receiver.recv().await {
                    Ok(item) if item.0 == id => {
                        let event: Value = serde_json::from_str(&item.1).unwrap_or(Value::Null);
                        let routes = routes(&state, &id, &event).await;
                        let data = json!({"event": event, "routes": routes}).to_string();
                        let sse = Event::default().event("event").data(data);
                        return Some((Ok(sse), (state, id, receiver)));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        let sse = Event::default().event("lagged").data(n.to_string());
                        return Some((Ok(sse), (state, id, receiver)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
