//! What pages load: the loader per write key, the module, the settings
//! document; and the demo page.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::TestApp;

#[tokio::test]
async fn loader_inlines_the_write_key_and_refers_to_the_hashed_module() {
    let t = TestApp::new().await;
    let key = t.source.write_key.clone();
    let r = t
        .get(&["/analytics.js/v1/", &key, "/analytics.min.js"].concat())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-type"),
        "application/javascript; charset=utf-8"
    );
    assert_eq!(r.header("cache-control"), "public, max-age=60");
    let hash = t
        .state
        .artifacts
        .as_ref()
        .as_ref()
        .unwrap()
        .module()
        .hash
        .clone();
    assert!(
        r.text().contains(&["\"writeKey\":\"", &key, "\""].concat()),
        "{}",
        r.text()
    );
    assert!(r.text().contains(&hash));

    let module = t.get(&["/b/", &hash, ".wasm"].concat()).await;
    assert_eq!(module.status, StatusCode::OK);
    assert_eq!(module.header("content-type"), "application/wasm");
    assert_eq!(
        module.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert!(module.body.starts_with(b"\0asm"));
}

#[tokio::test]
async fn loader_answers_if_none_match_with_304() {
    let t = TestApp::new().await;
    let url = [
        "/analytics.js/v1/",
        &t.source.write_key,
        "/analytics.min.js",
    ]
    .concat();
    let first = t.get(&url).await;
    let etag = first.header("etag").to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let again = t
        .send(
            Request::get(&url)
                .header("if-none-match", &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), etag);
    let stale = t
        .send(
            Request::get(&url)
                .header("if-none-match", "\"other\"")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(stale.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_write_keys_and_modules_are_clear_404s() {
    let t = TestApp::new().await;
    for url in [
        "/analytics.js/v1/nope/analytics.min.js",
        "/v1/projects/nope/settings",
        "/b/0123456789abcdef.wasm",
        "/b/..%2f..%2fetc%2fpasswd",
        "/nothing/here",
    ] {
        let r = t.get(url).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{url}");
        assert!(!r.json()["error"].as_str().unwrap().is_empty(), "{url}");
    }
}

#[tokio::test]
async fn without_a_built_client_the_loader_says_how_to_build_it() {
    let mut t = TestApp::new().await;
    t.state.artifacts = std::sync::Arc::new(switchyard_bundler::Artifacts::load(
        std::path::Path::new("/nonexistent"),
    ));
    let r = t
        .get(
            &[
                "/analytics.js/v1/",
                &t.source.write_key,
                "/analytics.min.js",
            ]
            .concat(),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("cargo xtask build-client")
    );
}

#[tokio::test]
async fn settings_have_analytics_next_shape() {
    let t = TestApp::new().await;
    let r = t
        .send(
            Request::get(["/v1/projects/", &t.source.write_key, "/settings"].concat())
                .header("host", "events.example:8080")
                .header("origin", "https://shop.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("access-control-allow-origin"), "*");
    let s = r.json();
    let io = &s["integrations"]["Segment.io"];
    assert_eq!(io["apiKey"], t.source.write_key.as_str());
    assert_eq!(io["apiHost"], "events.example:8080/v1");
    assert_eq!(io["protocol"], "http");
    assert_eq!(s["metrics"]["sampleRate"], 0);
    assert!(s["remotePlugins"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_hostile_host_header_is_not_echoed() {
    let t = TestApp::new().await;
    let r = t
        .send(
            Request::get(["/v1/projects/", &t.source.write_key, "/settings"].concat())
                .header("host", "evil\"><script>")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        r.json()["integrations"]["Segment.io"]["apiHost"],
        "localhost/v1"
    );
}

#[tokio::test]
async fn demo_page_embeds_the_snippet_of_the_demo_source() {
    let t = TestApp::new().await;
    assert_eq!(t.get("/demo").await.status, StatusCode::NOT_FOUND);
    use switchyard_store::ConfigStore;
    t.store
        .set_meta(switchyard_server::boot::DEMO_SOURCE_KEY, &t.source.id)
        .await
        .unwrap();
    let r = t
        .send(
            Request::get("/demo")
                .header("host", "127.0.0.1:9999")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains(&["analytics.load(\"", &t.source.write_key, "\")"].concat()));
    assert!(html.contains("t.src=\"http://127.0.0.1:9999/analytics.js/v1/\" + key"));
    assert!(html.contains("SNIPPET_VERSION=\"5.2.1\""));
}
