//! What pages load: the loader per write key, the module, the settings
//! document; and the demo page.

mod common;

use std::io::Read;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Reply, TestApp};
use switchyard_bundler::{DeviceSet, Encoding, SourceBundle};

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
        .module(&DeviceSet::default())
        .unwrap()
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

fn loader_url(t: &TestApp) -> String {
    [
        "/analytics.js/v1/",
        &t.source.write_key,
        "/analytics.min.js",
    ]
    .concat()
}

fn module_url(t: &TestApp) -> String {
    // The module of a source with no device-mode destination.
    let artifacts = t.state.artifacts.as_ref().as_ref().unwrap();
    let hash = &artifacts.module(&DeviceSet::default()).unwrap().hash;
    ["/b/", hash, ".wasm"].concat()
}

async fn get_with(t: &TestApp, url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    t.send(request.body(Body::empty()).unwrap()).await
}

/// The body as sent, decoded by its `Content-Encoding`.
fn decoded(r: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    match r.header("content-encoding") {
        "br" => brotli::Decompressor::new(r.body.as_slice(), 4096)
            .read_to_end(&mut out)
            .unwrap(),
        "gzip" => flate2::read::GzDecoder::new(r.body.as_slice())
            .read_to_end(&mut out)
            .unwrap(),
        other => panic!("unexpected content-encoding {other:?}"),
    };
    out
}

#[tokio::test]
async fn loader_and_module_are_sent_compressed_as_accepted() {
    let t = TestApp::new().await;
    for url in [loader_url(&t), module_url(&t)] {
        let identity = t.get(&url).await;
        assert_eq!(identity.status, StatusCode::OK, "{url}");
        assert_eq!(identity.header("content-encoding"), "", "{url}");
        assert_eq!(identity.header("vary"), "Accept-Encoding", "{url}");
        for (accept, encoding) in [
            ("gzip, deflate, br, zstd", "br"),
            ("br", "br"),
            ("gzip", "gzip"),
            ("x-gzip", "gzip"),
            ("gzip;q=1.0, br;q=0.5", "gzip"),
            ("br;q=0, gzip", "gzip"),
            ("*", "br"),
            ("deflate, *;q=0.1, br;q=0", "gzip"),
            ("identity", ""),
            ("br;q=0, gzip;q=0", ""),
            ("compress, deflate", ""),
        ] {
            let r = get_with(&t, &url, &[("accept-encoding", accept)]).await;
            assert_eq!(r.status, StatusCode::OK, "{url} {accept}");
            assert_eq!(r.header("content-encoding"), encoding, "{url} {accept}");
            assert_eq!(r.header("vary"), "Accept-Encoding", "{url} {accept}");
            assert_eq!(
                r.header("content-type"),
                identity.header("content-type"),
                "{url} {accept}"
            );
            assert_eq!(
                r.header("cache-control"),
                identity.header("cache-control"),
                "{url} {accept}"
            );
            if encoding.is_empty() {
                assert_eq!(r.body, identity.body, "{url} {accept}");
            } else {
                assert_ne!(r.body, identity.body, "{url} {accept}");
                assert_eq!(decoded(&r), identity.body, "{url} {accept}");
            }
        }
    }
}

#[tokio::test]
async fn each_encoding_of_the_loader_has_its_own_etag_and_answers_304() {
    let t = TestApp::new().await;
    let url = loader_url(&t);
    let mut etags = Vec::new();
    for accept in ["", "br", "gzip"] {
        let headers: &[(&str, &str)] = if accept.is_empty() {
            &[]
        } else {
            &[("accept-encoding", accept)]
        };
        let first = get_with(&t, &url, headers).await;
        let etag = first.header("etag").to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        let again = get_with(
            &t,
            &url,
            &[headers, &[("if-none-match", etag.as_str())]].concat(),
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{accept}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), etag);
        assert_eq!(again.header("vary"), "Accept-Encoding");
        assert_eq!(again.header("cache-control"), "public, max-age=60");
        // A proxy that weakened the validator still gets a 304.
        let weak = ["W/", &etag].concat();
        let again = get_with(
            &t,
            &url,
            &[headers, &[("if-none-match", weak.as_str())]].concat(),
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{accept}");
        etags.push(etag);
    }
    // Each representation has its own validator, derived from the loader's.
    let identity = etags[0].trim_end_matches('"');
    assert_eq!(etags[1], [identity, "-br\""].concat());
    assert_eq!(etags[2], [identity, "-gzip\""].concat());
    // A validator of another representation is not this one's: the body
    // is sent.
    let other = get_with(
        &t,
        &url,
        &[("accept-encoding", "br"), ("if-none-match", &etags[2])],
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.header("content-encoding"), "br");
    assert_eq!(other.header("etag"), etags[1]);
}

#[tokio::test]
async fn a_repeated_compressed_loader_is_not_compressed_again() {
    let t = TestApp::new().await;
    let artifacts = t.state.artifacts.as_ref().as_ref().unwrap();
    let loader = artifacts.loader(
        &SourceBundle {
            write_key: t.source.write_key.clone(),
            revision: t.source.revision,
            destinations: vec![],
            unbundled: vec![],
        },
        &artifacts.module(&DeviceSet::default()).unwrap(),
    );
    assert!(artifacts.cached_loader(&loader, Encoding::Brotli).is_none());
    let url = loader_url(&t);
    let first = get_with(&t, &url, &[("accept-encoding", "br")]).await;
    let kept = artifacts.cached_loader(&loader, Encoding::Brotli).unwrap();
    assert_eq!(first.body, kept.as_slice());
    let again = get_with(&t, &url, &[("accept-encoding", "br")]).await;
    assert_eq!(again.body, first.body);
    assert!(std::sync::Arc::ptr_eq(
        &kept,
        &artifacts.cached_loader(&loader, Encoding::Brotli).unwrap()
    ));
    assert!(artifacts.cached_loader(&loader, Encoding::Gzip).is_none());
}

#[tokio::test]
async fn unknown_write_keys_and_modules_are_clear_404s() {
    let t = TestApp::new().await;
    for url in [
        "/analytics.js/v1/nope/analytics.min.js",
        "/v1/projects/nope/settings",
        // Not the shape of a module's hash: refused before any lookup.
        "/b/0123456789abcdef.wasm",
        // The shape, but no source's module: looked for, built for every
        // source's current set, and still not found.
        "/b/0123456789abcdef0123456789abcdef.wasm",
        "/b/..%2f..%2fetc%2fpasswd",
        "/nothing/here",
    ] {
        let r = t.get(url).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{url}");
        assert!(!r.json()["error"].as_str().unwrap().is_empty(), "{url}");
    }
}

/// The module hash a loader names (`"wasm":"<hash>"` in its config).
fn named_module(loader: &Reply) -> String {
    let text = loader.text();
    let at = text
        .find("\"wasm\":\"")
        .unwrap_or_else(|| panic!("the loader names no module: {text}"))
        + "\"wasm\":\"".len();
    text[at..].chars().take_while(|c| *c != '"').collect()
}

#[tokio::test]
async fn after_a_restart_the_module_an_older_loader_names_is_rebuilt() {
    let mut t = TestApp::new().await;
    let loader = t.get(&loader_url(&t)).await;
    assert_eq!(loader.status, StatusCode::OK);
    let hash = named_module(&loader);
    assert!(
        hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hash}"
    );
    let before = t.get(&["/b/", &hash, ".wasm"].concat()).await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(before.body.starts_with(b"\0asm"));

    // A new process with the same store and library: nothing built or
    // kept, and the page still holds the loader from before.
    t.state.artifacts = std::sync::Arc::new(Ok(common::artifacts()));
    t.state.public = Default::default();
    let fresh = t.state.artifacts.as_ref().as_ref().unwrap().clone();
    assert!(fresh.module_by_hash(&hash).is_none());
    let after = t.get(&["/b/", &hash, ".wasm"].concat()).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text());
    assert_eq!(after.header("content-type"), "application/wasm");
    assert_eq!(after.body, before.body, "rebuilt, the module differs");
    assert!(fresh.module_by_hash(&hash).is_some());
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
async fn settings_list_enabled_device_destinations_without_their_secrets() {
    use switchyard_store::{ConfigStore, NewConnection};
    let t = TestApp::new().await;
    let connect = |destination: &str, mode: &str, enabled: bool, settings: &str| NewConnection {
        source_id: t.source.id.clone(),
        destination: destination.into(),
        mode: switchyard_store::Mode::from_name(mode).unwrap(),
        enabled,
        settings: settings.into(),
    };
    for c in [
        connect(
            "mixpanel",
            "device",
            true,
            r#"{"token":"0123456789abcdef0123456789abcdef","apiSecret":"SECRET-mixpanel"}"#,
        ),
        connect(
            "google_analytics_4",
            "device",
            false,
            r#"{"measurementId":"G-ABC123"}"#,
        ),
        // Postgres's cloud mode is not available yet: nothing delivers to it.
        connect(
            "postgres",
            "cloud",
            true,
            r#"{"host":"db.example","database":"analytics","user":"switchyard","password":"SECRET-postgres"}"#,
        ),
    ] {
        t.store.create_connection(c).await.unwrap();
    }
    let r = t
        .get(&["/v1/projects/", &t.source.write_key, "/settings"].concat())
        .await;
    assert!(!r.text().contains("SECRET-"), "{}", r.text());
    // analytics-next reads `integrations`: Segment.io alone, so it installs
    // nothing and loads none of its chunks.
    let integrations = r.json()["integrations"].clone();
    let names: Vec<&String> = integrations.as_object().unwrap().keys().collect();
    assert_eq!(names, ["Segment.io"], "{integrations}");
    assert_eq!(
        integrations["Segment.io"]["unbundledIntegrations"],
        serde_json::json!([])
    );
    // The source's destinations, beside it: the enabled device-mode one
    // whose mode is available, with its settings less the secret.
    assert_eq!(
        r.json()["destinations"],
        serde_json::json!([{
            "name": "Mixpanel",
            "slug": "mixpanel",
            "mode": "device",
            "settings": {"token": "0123456789abcdef0123456789abcdef"},
        }])
    );
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
