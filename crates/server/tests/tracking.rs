//! The tracking API without a socket: what is accepted is stored once,
//! what is refused gets a 4xx with a JSON reason and stores nothing.

mod common;

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestApp, basic};
use serde_json::{Value, json};

#[tokio::test]
async fn every_call_and_short_form_is_stored() {
    let t = TestApp::new().await;
    let calls = [
        ("track", json!({"event": "E", "userId": "u"})),
        ("t", json!({"event": "E", "anonymousId": "a"})),
        ("identify", json!({"userId": "u"})),
        ("i", json!({"userId": "u"})),
        ("page", json!({"userId": "u"})),
        ("p", json!({"userId": "u"})),
        ("screen", json!({"userId": "u"})),
        ("s", json!({"userId": "u"})),
        ("group", json!({"userId": "u", "groupId": "g"})),
        ("g", json!({"userId": "u", "groupId": "g"})),
        ("alias", json!({"userId": "u", "previousId": "p"})),
        ("a", json!({"userId": "u", "previousId": "p"})),
    ];
    for (call, body) in &calls {
        let r = t.track(&["/v1/", call].concat(), body.to_string()).await;
        assert_eq!(r.status, StatusCode::OK, "{call}: {}", r.text());
        assert_eq!(r.json(), json!({"success": true}));
    }
    let stored = t.stored_events().await;
    assert_eq!(stored.len(), calls.len());
    let mut types: Vec<&str> = stored.iter().map(|e| e["type"].as_str().unwrap()).collect();
    types.sort();
    types.dedup();
    assert_eq!(
        types,
        ["alias", "group", "identify", "page", "screen", "track"]
    );
}

#[tokio::test]
async fn write_key_in_the_body_and_text_plain_as_browsers_send() {
    let t = TestApp::new().await;
    let body = json!({"event": "E", "anonymousId": "a", "writeKey": t.source.write_key});
    let r = t
        .send(
            Request::post("/v1/t")
                .header("content-type", "text/plain")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let stored = t.stored_events().await;
    assert!(
        stored[0].get("writeKey").is_none(),
        "the write key is not stored with the event"
    );
}

#[tokio::test]
async fn batches_with_write_key_in_body_and_gzip() {
    let t = TestApp::new().await;
    let body = json!({
        "writeKey": t.source.write_key,
        "batch": [
            {"type": "track", "event": "A", "userId": "u", "messageId": "m1"},
            {"type": "identify", "userId": "u", "messageId": "m2"}
        ]
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.to_string().as_bytes()).unwrap();
    let r = t
        .send(
            Request::post("/v1/batch")
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(Body::from(gz.finish().unwrap()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(t.stored().await, 2);
}

#[tokio::test]
async fn a_retried_message_is_stored_once() {
    let t = TestApp::new().await;
    let body = json!({"event": "E", "userId": "u", "messageId": "same"}).to_string();
    assert_eq!(
        t.track("/v1/track", body.clone()).await.status,
        StatusCode::OK
    );
    assert_eq!(t.track("/v1/track", body).await.status, StatusCode::OK);
    assert_eq!(t.stored().await, 1);
}

#[tokio::test]
async fn preflight_allows_the_headers_segment_libraries_send() {
    let t = TestApp::new().await;
    let r = t
        .send(
            Request::options("/v1/t")
                .header("origin", "https://shop.example")
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization,content-type,x-retry-count",
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.status);
    assert_eq!(r.header("access-control-allow-origin"), "*");
    let allowed = r.header("access-control-allow-headers").to_lowercase();
    for h in ["authorization", "content-type", "x-retry-count"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    let post = t
        .send(
            Request::post("/v1/t")
                .header("origin", "https://shop.example")
                .header("authorization", basic(&t.source.write_key))
                .body(Body::from(json!({"event": "E", "userId": "u"}).to_string()))
                .unwrap(),
        )
        .await;
    assert!(
        post.header("access-control-expose-headers")
            .to_lowercase()
            .contains("retry-after")
    );
}

/// Bad input: each case is a 4xx with a JSON `error`, nothing is stored,
/// and the server keeps serving.
#[tokio::test]
async fn bad_input_is_refused_with_a_reason_and_stores_nothing() {
    let t = TestApp::new().await;
    let key = t.source.write_key.clone();
    let big = "x".repeat(40 * 1024);
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(
        json!({"batch": [{"type": "track", "event": "E", "userId": "u", "properties": {"p": "y".repeat(2_000_000)}}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 500 * 1024);

    struct Case {
        name: &'static str,
        path: &'static str,
        auth: Option<String>,
        encoding: Option<&'static str>,
        body: Vec<u8>,
        status: StatusCode,
        error: &'static str,
    }
    let case = |name, path, auth: Option<String>, body: Vec<u8>, status, error| Case {
        name,
        path,
        auth,
        encoding: None,
        body,
        status,
        error,
    };
    let ok_track = json!({"event": "E", "userId": "u"})
        .to_string()
        .into_bytes();
    let cases = vec![
        case("malformed JSON", "/v1/track", Some(basic(&key)), b"{\"event\": \"E\",".to_vec(), StatusCode::BAD_REQUEST, "not valid JSON"),
        case("no write key", "/v1/track", None, ok_track.clone(), StatusCode::UNAUTHORIZED, "no write key"),
        case("unknown write key", "/v1/track", Some(basic("nope")), ok_track.clone(), StatusCode::UNAUTHORIZED, "unknown write key"),
        case("unknown write key in body", "/v1/t", None, json!({"event": "E", "userId": "u", "writeKey": "nope"}).to_string().into_bytes(), StatusCode::UNAUTHORIZED, "unknown write key"),
        case("not Basic auth", "/v1/track", Some("Bearer abc".into()), ok_track.clone(), StatusCode::UNAUTHORIZED, "HTTP Basic"),
        case("garbage Basic auth", "/v1/track", Some("Basic !!!".into()), ok_track.clone(), StatusCode::UNAUTHORIZED, "HTTP Basic"),
        case("no userId or anonymousId", "/v1/track", Some(basic(&key)), json!({"event": "E"}).to_string().into_bytes(), StatusCode::BAD_REQUEST, "`userId` is required (or `anonymousId`)"),
        case("event over 32 KB", "/v1/track", Some(basic(&key)), json!({"event": "E", "userId": "u", "properties": {"big": big}}).to_string().into_bytes(), StatusCode::PAYLOAD_TOO_LARGE, "over the limit of 32768 bytes"),
        case("batch over 500 KB", "/v1/batch", Some(basic(&key)), vec![b' '; 600 * 1024], StatusCode::PAYLOAD_TOO_LARGE, "over the limit of 512000 bytes"),
        case("one bad event spoils the batch", "/v1/batch", Some(basic(&key)), json!({"batch": [{"type": "track", "event": "E", "userId": "u"}, {"type": "track", "userId": "u"}]}).to_string().into_bytes(), StatusCode::BAD_REQUEST, "`batch[1].event` is required"),
        case("unknown call", "/v1/click", Some(basic(&key)), ok_track.clone(), StatusCode::NOT_FOUND, "no tracking call `click`"),
        case("binary garbage", "/v1/track", Some(basic(&key)), vec![0xff, 0xfe, 0x00, 0x01], StatusCode::BAD_REQUEST, "not valid JSON"),
        Case { encoding: Some("gzip"), ..case("gzip bomb", "/v1/batch", Some(basic(&key)), bomb, StatusCode::PAYLOAD_TOO_LARGE, "over the limit") },
        Case { encoding: Some("gzip"), ..case("not really gzip", "/v1/track", Some(basic(&key)), b"plain text".to_vec(), StatusCode::BAD_REQUEST, "cannot read the body") },
        Case { encoding: Some("br"), ..case("not really brotli", "/v1/track", Some(basic(&key)), b"plain text".to_vec(), StatusCode::BAD_REQUEST, "cannot read the body") },
        Case { encoding: Some("deflate"), ..case("not really deflate", "/v1/track", Some(basic(&key)), b"plain text".to_vec(), StatusCode::BAD_REQUEST, "cannot read the body") },
        Case { encoding: Some("zstd"), ..case("an encoding the server does not read", "/v1/track", Some(basic(&key)), ok_track.clone(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "`zstd` cannot be read") },
        Case { encoding: Some("gzip, compress"), ..case("one unknown encoding of two", "/v1/track", Some(basic(&key)), ok_track.clone(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "`compress` cannot be read") },
    ];
    for c in cases {
        let mut req = Request::post(c.path).header("content-type", "application/json");
        if let Some(auth) = &c.auth {
            req = req.header("authorization", auth);
        }
        if let Some(enc) = c.encoding {
            req = req.header("content-encoding", enc);
        }
        let r = t.send(req.body(Body::from(c.body)).unwrap()).await;
        assert_eq!(r.status, c.status, "{}: {}", c.name, r.text());
        let error = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(
            error.contains(c.error),
            "{}: error `{error}` lacks `{}`",
            c.name,
            c.error
        );
    }
    assert_eq!(t.stored().await, 0, "a refused request stored something");
    // Still serving, and still storing.
    let r = t.track("/v1/track", ok_track).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.stored().await, 1);
}

#[tokio::test]
async fn the_field_at_fault_is_named() {
    let t = TestApp::new().await;
    let r = t
        .track("/v1/group", json!({"userId": "u"}).to_string())
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["field"], Value::from("groupId"));
}
