//! The tracking API's limits, as a client meets them: a rate per write
//! key (429 with `Retry-After`), a bound on requests in flight (503 with
//! `Retry-After`), a deadline (408), and bodies in gzip, br or deflate.
//! Each refusal is JSON, loses nothing already accepted, and the server
//! keeps serving.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestApp, basic};
use serde_json::{Value, json};
use switchyard_server::limits::Limits;

fn batch(n: usize, prefix: &str) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"type": "track", "event": "Limited", "userId": "u", "messageId": format!("{prefix}-{i}")}))
        .collect();
    json!({ "batch": events })
}

#[tokio::test]
async fn a_write_key_over_its_rate_is_told_when_to_retry_and_others_go_on() {
    let mut t = TestApp::new().await;
    t.state.limits = Arc::new(Limits::new(10, 64, Duration::from_secs(30)));
    // A burst of twice the rate is taken at once.
    let r = t.track("/v1/batch", batch(15, "a").to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = t.track("/v1/batch", batch(10, "b").to_string()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    let wait: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("too many events")
    );
    assert_eq!(
        t.stored().await,
        15,
        "what was accepted is kept, nothing more"
    );

    // Another source has its own allowance.
    let other = t.source_named("Other").await;
    let r = t
        .send(
            Request::post("/v1/batch")
                .header("authorization", basic(&other.write_key))
                .body(Body::from(batch(15, "c").to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // After the wait it says, the refused batch goes.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let r = t.track("/v1/batch", batch(10, "b").to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(t.stored().await, 40);
}

/// A request body that sends `first` and then nothing until `rest` is
/// sent (or dropped).
fn stalled_body(first: &str) -> (Body, tokio::sync::mpsc::Sender<String>) {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
    let first = first.to_string();
    let stream = futures_util::stream::unfold((Some(first), rx), |(first, mut rx)| async move {
        match first {
            Some(f) => Some((Ok::<_, std::io::Error>(f), (None, rx))),
            None => rx.recv().await.map(|next| (Ok(next), (None, rx))),
        }
    });
    (Body::from_stream(stream), tx)
}

#[tokio::test]
async fn beyond_the_requests_in_flight_the_server_says_it_is_busy() {
    let mut t = TestApp::new().await;
    t.state.limits = Arc::new(Limits::new(0, 1, Duration::from_secs(30)));
    let app = t.app();
    let text = batch(3, "slow").to_string();
    let (head, tail) = text.split_at(10);
    let (body, rest) = stalled_body(head);
    let key = t.source.write_key.clone();
    let slow = tokio::spawn({
        let app = app.clone();
        async move {
            use tower::ServiceExt;
            let request = Request::post("/v1/batch")
                .header("authorization", basic(&key))
                .body(body)
                .unwrap();
            app.oneshot(request).await.unwrap().status()
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = t.track("/v1/batch", batch(1, "busy").to_string()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.header("retry-after"), "1");
    assert!(r.json()["error"].as_str().unwrap().contains("busy"));
    // The one in flight finishes and is kept; then there is room again.
    rest.send(tail.to_string()).await.unwrap();
    drop(rest);
    assert_eq!(slow.await.unwrap(), StatusCode::OK);
    let r = t.track("/v1/batch", batch(1, "after").to_string()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.stored().await, 4);
}

#[tokio::test]
async fn a_request_that_stalls_is_cut_off_and_the_server_goes_on() {
    let mut t = TestApp::new().await;
    t.state.limits = Arc::new(Limits::new(0, 8, Duration::from_millis(300)));
    let (body, _held) = stalled_body("{\"batch\": [");
    let started = Instant::now();
    let r = t
        .send(
            Request::post("/v1/batch")
                .header("authorization", basic(&t.source.write_key))
                .body(body)
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("too long"));
    assert!(started.elapsed() < Duration::from_secs(3));
    let r = t.track("/v1/batch", batch(2, "next").to_string()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.stored().await, 2);
}

#[tokio::test]
async fn bodies_in_brotli_and_deflate_are_read_like_gzip() {
    let t = TestApp::new().await;
    let sent = batch(2, "br");
    let text = sent.to_string();
    let mut br = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
        w.write_all(text.as_bytes()).unwrap();
    }
    let deflated = {
        let sent = batch(1, "deflate").to_string();
        let mut w = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        w.write_all(sent.as_bytes()).unwrap();
        w.finish().unwrap()
    };
    for (encoding, body) in [("br", br), ("deflate", deflated)] {
        let r = t
            .send(
                Request::post("/v1/batch")
                    .header("authorization", basic(&t.source.write_key))
                    .header("content-encoding", encoding)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{encoding}: {}", r.text());
    }
    let stored = t.stored_events().await;
    let mut ids: Vec<&str> = stored
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["br-0", "br-1", "deflate-0"]);
    let first = stored.iter().find(|e| e["messageId"] == "br-0").unwrap();
    assert_eq!(first["event"], sent["batch"][0]["event"]);
    assert_eq!(first["userId"], sent["batch"][0]["userId"]);
}
