//! The delivery admin API without a socket: what it answers to good and to
//! malformed, missing, oversized and hostile input, and that a refusal
//! changes nothing.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TOKEN, TestApp};
use serde_json::{Value, json};
use switchyard_store::{DeliveryStore, NewDeadLetter};

async fn call(t: &TestApp, method: &str, uri: &str, body: Option<&str>) -> common::Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", ["Bearer ", TOKEN].concat());
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
    t.send(req.body(body).unwrap()).await
}

async fn connection(t: &TestApp, destination: &str, mode: &str, settings: Value) -> String {
    let r = call(
        t,
        "POST",
        &["/api/sources/", &t.source.id, "/connections"].concat(),
        Some(&json!({"destination": destination, "mode": mode, "settings": settings, "enabled": true}).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

async fn webhook(t: &TestApp) -> String {
    connection(
        t,
        "webhook",
        "cloud",
        json!({"url": "https://hooks.example.com/in"}),
    )
    .await
}

fn letter(connection_id: &str, seq: i64) -> NewDeadLetter {
    NewDeadLetter {
        connection_id: connection_id.into(),
        seq,
        message_id: format!("m{seq}"),
        event:
            json!({"type": "track", "event": "A", "messageId": format!("m{seq}"), "userId": "u"})
                .to_string(),
        reason: "HTTP 400: bad".into(),
        request: Some("POST https://hooks.example.com/in".into()),
        response: Some("HTTP 400\n\nbad".into()),
        attempts: 1,
    }
}

#[tokio::test]
async fn a_new_cloud_connection_has_an_overview_from_the_head_of_the_log() {
    let t = TestApp::new().await;
    t.track("/v1/track", r#"{"userId":"u","event":"Before"}"#)
        .await;
    let id = webhook(&t).await;
    let r = t
        .admin_get(&["/api/connections/", &id, "/delivery"].concat())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let o = r.json();
    assert_eq!(o["connection_id"], json!(id));
    // The event from before the connection is not its to deliver.
    assert_eq!(o["lag"], 0);
    assert_eq!(o["dead_letters"], 0);
    assert_eq!(o["last_hour"]["received"], 0);
    assert_eq!(o["chart"].as_array().unwrap().len(), 60);
    t.track("/v1/track", r#"{"userId":"u","event":"After"}"#)
        .await;
    let o = t
        .admin_get(&["/api/connections/", &id, "/delivery"].concat())
        .await
        .json();
    assert_eq!(o["lag"], 1, "{o}");
}

#[tokio::test]
async fn dead_letters_are_listed_and_discarded_one_or_all() {
    let t = TestApp::new().await;
    let id = webhook(&t).await;
    let other = webhook(&t).await;
    t.store
        .add_dead_letters(vec![
            letter(&id, 1),
            letter(&id, 2),
            letter(&id, 3),
            letter(&other, 4),
        ])
        .await
        .unwrap();
    let list = t
        .admin_get(&["/api/connections/", &id, "/dead-letters?limit=2"].concat())
        .await
        .json();
    assert_eq!(list["count"], 3);
    let letters = list["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!(letters[0]["message_id"], "m1");
    assert_eq!(letters[0]["event"]["event"], "A");
    assert_eq!(letters[0]["response"], "HTTP 400\n\nbad");
    let first = letters[0]["id"].as_i64().unwrap();

    let r = call(
        &t,
        "POST",
        &["/api/connections/", &id, "/dead-letters/discard"].concat(),
        Some(&json!({"ids": [first]}).to_string()),
    )
    .await;
    assert_eq!(r.json(), json!({"discarded": 1}));
    // Another connection's dead letter is not this one's to discard.
    let r = call(
        &t,
        "POST",
        &["/api/connections/", &other, "/dead-letters/discard"].concat(),
        Some(&json!({"ids": [first + 1]}).to_string()),
    )
    .await;
    assert_eq!(r.json(), json!({"discarded": 0}));
    let r = call(
        &t,
        "POST",
        &["/api/connections/", &id, "/dead-letters/discard"].concat(),
        None,
    )
    .await;
    assert_eq!(r.json(), json!({"discarded": 2}));
    assert_eq!(t.store.dead_letter_count(&id).await.unwrap(), 0);
    assert_eq!(t.store.dead_letter_count(&other).await.unwrap(), 1);
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_changes_nothing() {
    let t = TestApp::new().await;
    let id = webhook(&t).await;
    let device = connection(
        &t,
        "mixpanel",
        "device",
        json!({"token": "0123456789abcdef0123456789abcdef"}),
    )
    .await;
    t.store
        .add_dead_letters(vec![letter(&id, 1)])
        .await
        .unwrap();
    let base = ["/api/connections/", &id].concat();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let huge =
        json!({"event": {"type": "track", "event": "x".repeat(40_000), "userId": "u"}}).to_string();
    let cases: Vec<(&str, String, Option<String>, StatusCode, &str)> = vec![
        (
            "POST",
            format!("{base}/dead-letters/discard"),
            Some("{not json".into()),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "POST",
            format!("{base}/dead-letters/discard"),
            Some(r#"{"ids": "all"}"#.into()),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "POST",
            format!("{base}/dead-letters/discard"),
            Some(r#"{"ids": [1], "extra": true}"#.into()),
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            "POST",
            format!("{base}/dead-letters/discard"),
            Some(deep.clone()),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "POST",
            format!("{base}/dead-letters/retry"),
            Some("[]".into()),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "POST",
            format!("{base}/test"),
            Some(r#"{"event": 5}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "must be an object",
        ),
        (
            "POST",
            format!("{base}/test"),
            Some(r#"{"event": {"type": "track", "event": "A"}}"#.into()),
            StatusCode::BAD_REQUEST,
            "userId",
        ),
        (
            "POST",
            format!("{base}/test"),
            Some(r#"{"event": {"type": "nope", "userId": "u"}}"#.into()),
            StatusCode::BAD_REQUEST,
            "type",
        ),
        (
            "POST",
            format!("{base}/test"),
            Some(huge),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit",
        ),
        (
            "POST",
            format!("{base}/replays"),
            Some("{}".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "from is required",
        ),
        (
            "POST",
            format!("{base}/replays"),
            Some(r#"{"from": "yesterday"}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "RFC 3339",
        ),
        (
            "POST",
            format!("{base}/replays"),
            Some(r#"{"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "after",
        ),
        (
            "POST",
            format!("{base}/replays"),
            Some("\u{0}\u{1}".into()),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            "POST",
            format!("/api/connections/{device}/test"),
            Some("{}".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cloud-mode",
        ),
        (
            "POST",
            format!("/api/connections/{device}/replays"),
            Some(r#"{"from": "2026-12-01T00:00:00Z"}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cloud-mode",
        ),
        (
            "POST",
            format!("/api/connections/{device}/dead-letters/retry"),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "cloud-mode",
        ),
        (
            "GET",
            "/api/connections/con_nope/delivery".into(),
            None,
            StatusCode::NOT_FOUND,
            "no connection",
        ),
        (
            "GET",
            "/api/connections/con_nope/dead-letters".into(),
            None,
            StatusCode::NOT_FOUND,
            "no connection",
        ),
        (
            "POST",
            "/api/connections/con_nope/test".into(),
            None,
            StatusCode::NOT_FOUND,
            "no connection",
        ),
        (
            "POST",
            "/api/connections/%E2%80%AE%00/replays".into(),
            Some("{}".into()),
            StatusCode::NOT_FOUND,
            "no connection",
        ),
        (
            "GET",
            format!("{base}/dead-letters?limit=-1"),
            None,
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            "GET",
            format!("{base}/dead-letters?limit=abc"),
            None,
            StatusCode::BAD_REQUEST,
            "",
        ),
    ];
    for (method, uri, body, status, says) in cases {
        let r = call(&t, method, &uri, body.as_deref()).await;
        assert_eq!(r.status, status, "{method} {uri}: {}", r.text());
        let error = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(
            error.contains(says),
            "{method} {uri}: {error:?} does not say {says:?}"
        );
    }
    // Nothing changed: the dead letter is still there, nothing replays.
    assert_eq!(t.store.dead_letter_count(&id).await.unwrap(), 1);
    let replays = t
        .admin_get(&[base.as_str(), "/replays"].concat())
        .await
        .json();
    assert_eq!(replays, json!([]));
    // And without the admin token, nothing of it is readable.
    let r = t.get(&[base.as_str(), "/dead-letters"].concat()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = t.get("/metrics").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metrics_count_accepted_and_refused_tracking_requests() {
    let t = TestApp::new().await;
    t.track("/v1/batch", r#"{"batch":[{"type":"track","userId":"u","event":"A","messageId":"m1"},{"type":"track","userId":"u","event":"B","messageId":"m2"}]}"#).await;
    t.track(
        "/v1/track",
        r#"{"userId":"u","event":"A","messageId":"m1"}"#,
    )
    .await;
    t.track("/v1/track", r#"{"event":"no identity"}"#).await;
    t.track("/v1/track", "{broken").await;
    let r = t.admin_get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.header("content-type")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text();
    for line in [
        "switchyard_events_accepted_total 3",
        "switchyard_events_stored_total 2",
        "switchyard_requests_refused_total{reason=\"invalid\"} 2",
        "# TYPE switchyard_delivery_latency_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
}

#[tokio::test]
async fn the_live_view_streams_each_event_with_its_routing() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let t = TestApp::new().await;
    let hook = webhook(&t).await;
    let device = connection(
        &t,
        "mixpanel",
        "device",
        json!({"token": "0123456789abcdef0123456789abcdef"}),
    )
    .await;
    let other = t.source_named("Other").await;

    let request = Request::get(["/api/sources/", &t.source.id, "/live"].concat())
        .header("authorization", ["Bearer ", TOKEN].concat())
        .body(Body::empty())
        .unwrap();
    let response = t.app().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();

    // Another source's event is not this view's; then two of this one's.
    let r = t
        .send(
            Request::post("/v1/track")
                .header("authorization", common::basic(&other.write_key))
                .header("content-type", "application/json")
                .body(Body::from(r#"{"userId":"u","event":"Elsewhere"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    t.track(
        "/v1/track",
        r#"{"userId":"u","event":"Bundled","_metadata":{"bundled":["Mixpanel"]}}"#,
    )
    .await;
    t.track(
        "/v1/track",
        r#"{"userId":"u","event":"Not for the webhook","integrations":{"Webhook":false}}"#,
    )
    .await;

    let mut text = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while text.matches("event: event").count() < 2 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let frame = tokio::time::timeout(left, body.frame())
            .await
            .expect("the live view sent nothing in time")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    assert_eq!(events[0]["event"]["event"], "Bundled");
    let route = |e: &Value, id: &str| {
        e["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["connection_id"] == json!(id))
            .cloned()
            .unwrap()
    };
    assert_eq!(route(&events[0], &device)["decision"], "browser");
    assert_eq!(route(&events[0], &hook)["decision"], "server");
    assert_eq!(events[1]["event"]["event"], "Not for the webhook");
    assert_eq!(route(&events[1], &hook)["decision"], "skipped");
    assert_eq!(route(&events[1], &hook)["reason"], "integrations_off");
    assert_eq!(route(&events[1], &device)["decision"], "skipped");

    let r = t.admin_get("/api/sources/src_nope/live").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"].as_str().unwrap().contains("no source"));
}
