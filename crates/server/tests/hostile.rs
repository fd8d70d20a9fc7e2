//! Hostile input against every admin API route that takes a body or an
//! id: oversized bodies, wrong types, deep nesting, control characters
//! and odd unicode, unknown fields and ids. Each answer is a 4xx with a
//! JSON reason, nothing changes, and the server keeps serving.

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use common::{TOKEN, TestApp};
use serde_json::Value;

/// Everything a site owner could see change.
async fn snapshot(t: &TestApp) -> Value {
    let sources = t.admin_get("/api/sources").await.json();
    let connections = t
        .admin_get(&format!("/api/sources/{}/connections", t.source.id))
        .await
        .json();
    serde_json::json!({ "sources": sources, "connections": connections })
}

#[tokio::test]
async fn hostile_bodies_and_ids_are_refused_with_a_reason_and_change_nothing() {
    let t = TestApp::new().await;
    // A connection for the routes that need one.
    let made = t
        .admin_post(
            &format!("/api/sources/{}/connections", t.source.id),
            r#"{"destination": "webhook", "mode": "cloud", "settings": {"url": "https://127.0.0.1:9/h"}}"#,
        )
        .await;
    assert!(made.status.is_success(), "{}", made.text());
    let con = made.json()["id"].as_str().unwrap().to_string();
    let src = t.source.id.clone();
    let before = snapshot(&t).await;

    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let deep = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
    let bodies: Vec<(&str, String)> = vec![
        ("oversized", huge),
        ("deeply nested", deep),
        ("not JSON", "{\"name\": ".into()),
        ("wrong type", "[1, 2, 3]".into()),
        ("null", "null".into()),
        ("unknown field", "{\"nmae\": \"x\", \"settings\": 1}".into()),
        (
            "number for a string",
            "{\"name\": 12, \"destination\": 12, \"from\": 12, \"enabled\": \"yes\"}".into(),
        ),
        (
            "control characters",
            "{\"name\": \"\\u0000\\u0007\\u001b[2J\", \"destination\": \"\\u0000\"}".into(),
        ),
        (
            "bidi and bad surrogates",
            "{\"name\": \"\\u202e\\ud800\", \"destination\": \"\\u202eweb\"}".into(),
        ),
        ("empty", String::new()),
    ];
    let routes: Vec<(Method, String)> = vec![
        (Method::POST, "/api/sources".into()),
        (Method::PATCH, format!("/api/sources/{src}")),
        (Method::POST, format!("/api/sources/{src}/connections")),
        (Method::PATCH, format!("/api/connections/{con}")),
        (
            Method::POST,
            format!("/api/connections/{con}/dead-letters/retry"),
        ),
        (
            Method::POST,
            format!("/api/connections/{con}/dead-letters/discard"),
        ),
        (Method::POST, format!("/api/connections/{con}/test")),
        (Method::POST, format!("/api/connections/{con}/replays")),
    ];
    for (method, path) in &routes {
        for (what, body) in &bodies {
            let r = t
                .send(
                    Request::builder()
                        .method(method.clone())
                        .uri(path)
                        .header("authorization", ["Bearer ", TOKEN].concat())
                        .header("content-type", "application/json")
                        .body(Body::from(body.clone()))
                        .unwrap(),
                )
                .await;
            // The dead-letter routes and the tester take an optional body:
            // none means all (of none), or the sample event.
            if what == &"empty" && (path.contains("dead-letters") || path.ends_with("/test")) {
                assert!(
                    r.status.is_success(),
                    "{method} {path} {what}: {}",
                    r.text()
                );
                continue;
            }
            assert!(
                r.status.is_client_error(),
                "{method} {path} with {what}: {} {}",
                r.status,
                r.text().chars().take(300).collect::<String>()
            );
            let error = r.json()["error"].as_str().unwrap_or_default().to_string();
            assert!(!error.is_empty(), "{method} {path} with {what}: no reason");
            assert!(
                error.len() < 2_000,
                "{method} {path} with {what}: the body echoed back"
            );
        }
    }
    // Ids that are not there, or not ids.
    let odd_ids = [
        "con_nope",
        "%00",
        "..%2F..%2Fetc",
        &"z".repeat(5_000),
        "%E2%80%AE",
    ];
    for id in odd_ids {
        for path in [
            format!("/api/connections/{id}"),
            format!("/api/connections/{id}/delivery"),
            format!("/api/connections/{id}/failures"),
            format!("/api/connections/{id}/dead-letters"),
            format!("/api/connections/{id}/replays"),
            format!("/api/sources/{id}"),
            format!("/api/sources/{id}/connections"),
            format!("/api/catalog/destinations/{id}"),
        ] {
            let r = t.admin_get(&path).await;
            assert!(r.status.is_client_error(), "GET {path}: {}", r.status);
            assert!(
                !r.json()["error"].as_str().unwrap_or_default().is_empty(),
                "GET {path}"
            );
        }
    }
    assert_eq!(
        snapshot(&t).await,
        before,
        "a refused request changed something"
    );
    // Still serving, and still changing what it should.
    let r = t.admin_post("/api/sources", r#"{"name": "After"}"#).await;
    assert!(r.status.is_success(), "{}", r.text());
}
