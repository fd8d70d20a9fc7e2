//! The admin API: auth on every call, sources, events, catalog.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TOKEN, TestApp, basic};
use serde_json::{Value, json};

#[tokio::test]
async fn every_api_call_needs_the_admin_token() {
    let t = TestApp::new().await;
    let key = t.source.write_key.clone();
    for uri in [
        "/api/sources",
        "/api/events",
        "/api/catalog/destinations",
        "/api/nothing",
    ] {
        for auth in [
            None,
            Some("Bearer wrong".to_string()),
            Some(["Bearer ", &key].concat()),
            Some(basic(&key)),
            Some(basic(TOKEN)),
            Some(["Bearer ", TOKEN, "x"].concat()),
        ] {
            let mut req = Request::get(uri);
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            let r = t.send(req.body(Body::empty()).unwrap()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri} with {auth:?}");
            assert!(r.json()["error"].as_str().unwrap().contains("admin token"));
        }
    }
    let denied = t
        .send(
            Request::post("/api/sources")
                .body(Body::from("{\"name\":\"x\"}"))
                .unwrap(),
        )
        .await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.admin_get("/api/sources")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn sources_are_created_listed_and_fetched() {
    let t = TestApp::new().await;
    let r = t
        .admin_post("/api/sources", r#"{"name": "  Blog  "}"#)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let created = r.json();
    assert_eq!(created["name"], "Blog");
    assert_eq!(created["write_key"].as_str().unwrap().len(), 32);
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        t.admin_get(&["/api/sources/", id].concat()).await.json(),
        created
    );
    let list = t.admin_get("/api/sources").await.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(
        t.admin_get("/api/sources/src_nope").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_source_bodies_are_refused() {
    let t = TestApp::new().await;
    let long = json!({"name": "n".repeat(201)}).to_string();
    for (body, status, error) in [
        ("{", StatusCode::BAD_REQUEST, "JSON"),
        ("[]", StatusCode::BAD_REQUEST, "JSON"),
        ("{}", StatusCode::UNPROCESSABLE_ENTITY, "name is required"),
        (
            r#"{"name": "   "}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "name is required",
        ),
        (r#"{"name": 5}"#, StatusCode::BAD_REQUEST, "JSON"),
        (
            long.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "at most 200 characters",
        ),
    ] {
        let r = t.admin_post("/api/sources", body).await;
        assert_eq!(r.status, status, "{body}");
        assert!(
            r.json()["error"].as_str().unwrap().contains(error),
            "{body}: {}",
            r.text()
        );
    }
    let no_type = t
        .send(
            Request::post("/api/sources")
                .header("authorization", ["Bearer ", TOKEN].concat())
                .body(Body::from(r#"{"name": "x"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(no_type.status, StatusCode::BAD_REQUEST);
    assert!(
        no_type.json()["error"]
            .as_str()
            .unwrap()
            .contains("Content-Type")
    );
    assert_eq!(
        t.admin_get("/api/sources")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn events_are_listed_newest_first_per_source_with_a_limit() {
    let t = TestApp::new().await;
    let other = t.source_named("Other").await;
    for i in 0..3 {
        let name = ["E", &i.to_string()].concat();
        let body = json!({"event": name, "userId": "u"});
        assert_eq!(
            t.track("/v1/track", body.to_string()).await.status,
            StatusCode::OK
        );
    }
    let r = t
        .send(
            Request::post("/v1/track")
                .header("authorization", basic(&other.write_key))
                .body(Body::from(
                    json!({"event": "Other", "userId": "u"}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let all = t.admin_get("/api/events").await.json();
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Other", "E2", "E1", "E0"]);
    let mine = t
        .admin_get(&["/api/events?source=", &t.source.id, "&limit=2"].concat())
        .await
        .json();
    let names: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["E2", "E1"]);
    for e in mine.as_array().unwrap() {
        for field in ["type", "messageId", "receivedAt", "timestamp", "userId"] {
            assert!(
                e.get(field).is_some_and(|v| !v.is_null()),
                "{field} missing in {e}"
            );
        }
    }
    for bad in ["limit=0", "limit=1001", "limit=abc", "limit=-1"] {
        let r = t.admin_get(&["/api/events?", bad].concat()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(
        t.admin_get("/api/events?source=src_nope").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn catalog_search_by_query_and_category() {
    let t = TestApp::new().await;
    let all = t.admin_get("/api/catalog/destinations").await.json();
    assert!(all.as_array().unwrap().len() >= 2);
    let mixpanel = t
        .admin_get("/api/catalog/destinations?q=mixpanel")
        .await
        .json();
    let m = &mixpanel[0];
    assert_eq!(m["slug"], "mixpanel");
    assert_eq!(m["categories"], json!(["Analytics"]));
    assert!(
        m["methods"]["device"]
            .as_array()
            .unwrap()
            .contains(&Value::from("track"))
    );
    let token = m["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "token")
        .unwrap();
    assert_eq!(token["required"], true);
    let raw = t
        .admin_get("/api/catalog/destinations?category=Raw%20Data")
        .await
        .json();
    let slugs: Vec<&str> = raw
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["slack", "webhook"]);
}
