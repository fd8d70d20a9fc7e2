//! Sources and connections through the admin API: every validation path,
//! secrets kept write-only, warnings, revisions.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TOKEN, TestApp};
use serde_json::{Value, json};

const TOKEN_HEX: &str = "0123456789abcdef0123456789abcdef";

impl TestApp {
    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> common::Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", ["Bearer ", TOKEN].concat());
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    async fn connect(&self, body: Value) -> common::Reply {
        self.call(
            "POST",
            &["/api/sources/", &self.source.id, "/connections"].concat(),
            Some(body),
        )
        .await
    }
}

#[tokio::test]
async fn sources_are_renamed_rotated_and_deleted() {
    let t = TestApp::new().await;
    let id = t.source.id.clone();
    let renamed = t
        .call(
            "PATCH",
            &["/api/sources/", &id].concat(),
            Some(json!({"name": "Store"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text());
    assert_eq!(renamed.json()["name"], "Store");
    assert_eq!(renamed.json()["revision"], 2);

    let rotated = t
        .call(
            "POST",
            &["/api/sources/", &id, "/rotate-key"].concat(),
            None,
        )
        .await
        .json();
    assert_ne!(rotated["write_key"], t.source.write_key.as_str());
    let old = t
        .track(
            "/v1/track",
            json!({"event": "E", "userId": "u"}).to_string(),
        )
        .await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "the old write key still works"
    );
    let loader = t
        .get(
            &[
                "/analytics.js/v1/",
                &t.source.write_key,
                "/analytics.min.js",
            ]
            .concat(),
        )
        .await;
    assert_eq!(loader.status, StatusCode::NOT_FOUND);

    assert_eq!(
        t.call("DELETE", &["/api/sources/", &id].concat(), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.call("GET", &["/api/sources/", &id].concat(), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.call("DELETE", &["/api/sources/", &id].concat(), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = t
        .call("PATCH", "/api/sources/src_nope", Some(json!({"name": "x"})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_source_name_is_validated() {
    let t = TestApp::new().await;
    let uri = ["/api/sources/", &t.source.id].concat();
    for (body, field_error) in [
        (json!({}), "name is required"),
        (json!({"name": ""}), "name is required"),
        (json!({"name": "a\u{0}b"}), "control characters"),
        (json!({"name": "n".repeat(201)}), "at most 200"),
    ] {
        let r = t.call("PATCH", &uri, Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(r.json()["field"], "name");
        assert!(
            r.json()["error"].as_str().unwrap().contains(field_error),
            "{}",
            r.text()
        );
    }
    let r = t
        .call("PATCH", &uri, Some(json!({"name": "x", "extra": 1})))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `extra`")
    );
}

#[tokio::test]
async fn a_connection_is_added_enabled_edited_and_removed_raising_the_revision() {
    let t = TestApp::new().await;
    let r = t
        .connect(json!({"destination": "mixpanel", "mode": "cloud", "settings": {"token": TOKEN_HEX, "apiSecret": "s3cr3t-value"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let c = r.json();
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["enabled"], false);
    assert_eq!(c["mode"], "cloud");
    assert_eq!(c["destination_name"], "Mixpanel");
    assert_eq!(c["settings"]["token"], TOKEN_HEX);
    assert_eq!(
        c["settings"]["apiHost"], "https://api.mixpanel.com",
        "defaults filled in"
    );
    assert_eq!(
        c["settings"]["apiSecret"], "••••••••",
        "a secret is returned masked"
    );
    assert!(!r.text().contains("s3cr3t-value"));

    let settings_url = ["/v1/projects/", &t.source.write_key, "/settings"].concat();
    let before = t.get(&settings_url).await.json()["revision"]
        .as_i64()
        .unwrap();
    let loader_before = t
        .get(
            &[
                "/analytics.js/v1/",
                &t.source.write_key,
                "/analytics.min.js",
            ]
            .concat(),
        )
        .await;

    let uri = ["/api/connections/", &id].concat();
    let on = t.call("PATCH", &uri, Some(json!({"enabled": true}))).await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text());
    assert_eq!(on.json()["enabled"], true);
    assert_eq!(
        t.get(&settings_url).await.json()["revision"]
            .as_i64()
            .unwrap(),
        before + 1
    );
    let loader_after = t
        .get(
            &[
                "/analytics.js/v1/",
                &t.source.write_key,
                "/analytics.min.js",
            ]
            .concat(),
        )
        .await;
    assert_ne!(
        loader_before.header("etag"),
        loader_after.header("etag"),
        "the next bundle reflects the change"
    );

    // Editing keeps the secret when it is sent back masked or left out.
    let edit = t
        .call("PATCH", &uri, Some(json!({"settings": {"apiSecret": "••••••••", "apiHost": "https://api-eu.mixpanel.com"}})))
        .await;
    assert_eq!(edit.status, StatusCode::OK, "{}", edit.text());
    assert_eq!(
        edit.json()["settings"]["apiHost"],
        "https://api-eu.mixpanel.com"
    );
    let stored = t.state.config.connection(&id).await.unwrap().unwrap();
    assert!(
        stored.settings.contains("s3cr3t-value"),
        "{}",
        stored.settings
    );

    // Moving to device mode drops the cloud-only secret.
    let moved = t.call("PATCH", &uri, Some(json!({"mode": "device"}))).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text());
    assert!(moved.json()["settings"].get("apiSecret").is_none());
    assert_eq!(
        moved.json()["settings"]["scriptUrl"],
        "https://cdn.mxpnl.com/libs/mixpanel-2-latest.min.js"
    );

    let listed = t
        .call(
            "GET",
            &["/api/sources/", &t.source.id, "/connections"].concat(),
            None,
        )
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        t.call("DELETE", &uri, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        t.call("GET", &uri, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.call("DELETE", &uri, None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn connection_validation_names_the_field() {
    let t = TestApp::new().await;
    for (body, status, field, error) in [
        (json!({}), 422, "destination", "destination is required"),
        (
            json!({"destination": "nope"}),
            422,
            "destination",
            "no destination `nope`",
        ),
        (
            json!({"destination": "mixpanel", "settings": {"token": TOKEN_HEX}}),
            422,
            "mode",
            "mode is required",
        ),
        (
            json!({"destination": "mixpanel", "mode": "edge", "settings": {"token": TOKEN_HEX}}),
            422,
            "mode",
            "unknown mode `edge`",
        ),
        (
            json!({"destination": "crisp", "mode": "cloud"}),
            422,
            "mode",
            "Crisp has no cloud mode",
        ),
        (
            json!({"destination": "mixpanel", "mode": "device"}),
            422,
            "settings.token",
            "Project token is required",
        ),
        (
            json!({"destination": "mixpanel", "mode": "device", "settings": {"token": "short"}}),
            422,
            "settings.token",
            "not in the expected format",
        ),
        (
            json!({"destination": "mixpanel", "mode": "device", "settings": {"token": 5}}),
            422,
            "settings.token",
            "must be text",
        ),
        (
            json!({"destination": "mixpanel", "mode": "device", "settings": {"token": TOKEN_HEX, "bogus": 1}}),
            422,
            "settings.bogus",
            "is not a setting of Mixpanel",
        ),
        (
            json!({"destination": "postgres", "settings": {"host": "db", "port": "5432"}}),
            422,
            "settings.port",
            "must be a number",
        ),
        (
            json!({"destination": "mixpanel", "mode": "device", "settings": "token"}),
            400,
            "",
            "invalid type",
        ),
        (
            json!({"destination": "mixpanel", "enabled": "yes"}),
            400,
            "",
            "invalid type",
        ),
        (
            json!({"destination": "mixpanel", "surprise": true}),
            400,
            "",
            "unknown field",
        ),
    ] {
        let r = t.connect(body.clone()).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.text());
        let got = r.json();
        assert!(
            got["error"].as_str().unwrap().contains(error),
            "{body}: {got}"
        );
        if !field.is_empty() {
            assert_eq!(got["field"], field, "{body}");
        }
    }
    let r = t
        .call(
            "POST",
            "/api/sources/src_nope/connections",
            Some(json!({"destination": "webhook"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        t.state
            .config
            .connections(&t.source.id)
            .await
            .unwrap()
            .is_empty(),
        "a refused connection was stored"
    );

    // Editing validates too, and a refused edit changes nothing.
    let c = t
        .connect(json!({"destination": "webhook", "settings": {"url": "https://hooks.example/in"}}))
        .await
        .json();
    assert_eq!(
        c["mode"], "cloud",
        "the only mode is chosen when none is given"
    );
    let uri = ["/api/connections/", c["id"].as_str().unwrap()].concat();
    let r = t
        .call(
            "PATCH",
            &uri,
            Some(json!({"settings": {"url": "ftp:/nope"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "settings.url");
    let r = t
        .call("PATCH", &uri, Some(json!({"settings": {"url": null}})))
        .await;
    assert_eq!(r.json()["field"], "settings.url");
    let r = t.call("PATCH", &uri, Some(json!({"mode": "device"}))).await;
    assert_eq!(r.json()["field"], "mode");
    let r = t.call("PATCH", &uri, Some(json!({"enabled": "on"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let now = t.call("GET", &uri, None).await.json();
    assert_eq!(now["settings"]["url"], "https://hooks.example/in");
    assert_eq!(now["enabled"], false);
}

#[tokio::test]
async fn warnings_name_unsupported_methods_unavailable_modes_and_duplicates() {
    let t = TestApp::new().await;
    // The source sends track and screen.
    t.track(
        "/v1/track",
        json!({"event": "E", "userId": "u"}).to_string(),
    )
    .await;
    t.track(
        "/v1/screen",
        json!({"userId": "u", "name": "Home"}).to_string(),
    )
    .await;
    let source = t
        .call("GET", &["/api/sources/", &t.source.id].concat(), None)
        .await
        .json();
    assert_eq!(source["methods"], json!(["screen", "track"]));

    // Crisp takes no screen calls in device mode.
    let crisp = t.connect(json!({"destination": "crisp", "settings": {"websiteId": "8d2a1f4e-3b6c-4d7e-9f0a-1b2c3d4e5f60"}})).await;
    assert_eq!(crisp.status, StatusCode::CREATED, "{}", crisp.text());
    let codes = |c: &Value| -> Vec<String> {
        c["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["code"].as_str().unwrap().to_string())
            .collect()
    };
    let crisp = crisp.json();
    assert_eq!(codes(&crisp), ["unsupported_methods"]);
    let message = crisp["warnings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("Crisp does not accept screen calls in device mode"),
        "{message}"
    );
    // Postgres's cloud mode is not available yet.
    let postgres = t
        .connect(json!({"destination": "postgres", "mode": "cloud", "settings": {"host": "db.example", "database": "analytics", "user": "switchyard", "password": "pw"}}))
        .await;
    assert_eq!(postgres.status, StatusCode::CREATED, "{}", postgres.text());
    let postgres = postgres.json();
    assert_eq!(codes(&postgres), ["mode_unavailable"]);
    let message = postgres["warnings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("Cloud mode of Postgres is not available yet"),
        "{message}"
    );

    t.connect(json!({"destination": "webhook", "settings": {"url": "https://a.example/"}}))
        .await;
    let second = t
        .connect(json!({"destination": "webhook", "settings": {"url": "https://b.example/"}}))
        .await
        .json();
    assert!(
        codes(&second).contains(&"duplicate".to_string()),
        "{second}"
    );
    assert!(
        !codes(&second).contains(&"unsupported_methods".to_string()),
        "webhook takes every call"
    );
    let listed = t
        .call(
            "GET",
            &["/api/sources/", &t.source.id, "/connections"].concat(),
            None,
        )
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn catalog_entries_and_logos() {
    let t = TestApp::new().await;
    let all = t
        .call("GET", "/api/catalog/destinations", None)
        .await
        .json();
    assert!(all.as_array().unwrap().len() >= 15);
    let one = t
        .call("GET", "/api/catalog/destinations/intercom", None)
        .await
        .json();
    assert_eq!(one["name"], "Intercom");
    assert_eq!(one["recommended"], true);
    // Device mode has its adapter, cloud mode its forwarder.
    let available: Vec<(&str, bool)> = one["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["mode"].as_str().unwrap(), m["available"] == true))
        .collect();
    assert_eq!(available, [("device", true), ("cloud", true)]);
    assert_eq!(
        t.call("GET", "/api/catalog/destinations/nope", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = t
        .call("GET", "/api/catalog/destinations?category=Games", None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("Email Marketing")
    );
    let logo = t.get(one["logo"].as_str().unwrap()).await;
    assert_eq!(logo.status, StatusCode::OK);
    assert_eq!(logo.header("content-type"), "image/svg+xml");
    assert!(
        logo.header("content-security-policy")
            .contains("default-src 'none'")
    );
    assert_eq!(
        t.get("/admin/logos/nope.svg").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn every_documented_operation_exists() {
    let t = TestApp::new().await;
    let doc = t.call("GET", "/api/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let uri = ["/api", &path.replace("{id}", "x").replace("{slug}", "x")].concat();
            let body = (method != "get" && method != "delete").then(|| json!({}));
            let r = t.call(&method.to_uppercase(), &uri, body).await;
            let error = r
                .json()
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            assert!(!error.starts_with("no route"), "{method} {path}: {error}");
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            checked += 1;
        }
    }
    assert!(checked >= 14, "{checked}");
    assert_eq!(
        t.get("/api/openapi.json").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_admin_page_is_served_with_a_strict_policy() {
    let t = TestApp::new().await;
    for (uri, kind) in [
        ("/admin", "text/html"),
        ("/admin/app.js", "application/javascript"),
        ("/admin/app.css", "text/css"),
    ] {
        let r = t.get(uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert!(r.header("content-type").starts_with(kind), "{uri}");
        assert!(
            r.header("content-security-policy")
                .contains("script-src 'self'"),
            "{uri}"
        );
    }
}
