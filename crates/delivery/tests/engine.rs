//! The delivery engine against a local receiver that answers as a vendor
//! would (webhook destination), on a real SQLite store: delivery, routing
//! skips, retries with Retry-After, dead letters and their retry, split
//! batches, isolation of connections, stopping, the outbound policy and
//! redaction. Every wait has a deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use switchyard_delivery::{Config, Deps, Engine, outbound::Allow};
use switchyard_store::{
    ConfigStore, Connection, ConnectionUpdate, DeliveryStore, EventLog, NewConnection, NewEvent,
    SqliteStore,
};

/// What the receiver answers on a path: a status for the next `times`
/// requests (then 200), a delay, or 400 for bodies containing a word.
#[derive(Clone, Default)]
struct Rule {
    status: u16,
    times: u32,
    retry_after: Option<&'static str>,
    delay: Duration,
    refuse_word: Option<&'static str>,
    /// Bodies containing it are answered 500, every time.
    fail_word: Option<&'static str>,
    /// Every request is answered 503.
    down: bool,
}

/// A request as it arrived: when, its headers, its body.
type Arrival = (Instant, HeaderMap, Value);

#[derive(Clone, Default)]
struct Receiver {
    /// Per path, each request.
    got: Arc<Mutex<HashMap<String, Vec<Arrival>>>>,
    /// Per path, the bodies answered 2xx.
    accepted: Arc<Mutex<HashMap<String, Vec<Value>>>>,
    rules: Arc<Mutex<HashMap<String, Rule>>>,
}

async fn receive(
    State(r): State<Receiver>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let rule = r
        .rules
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .unwrap_or_default();
    r.got
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default()
        .push((Instant::now(), headers, value.clone()));
    if !rule.delay.is_zero() {
        tokio::time::sleep(rule.delay).await;
    }
    if let Some(word) = rule.refuse_word
        && String::from_utf8_lossy(&body).contains(word)
    {
        return (StatusCode::BAD_REQUEST, "refused: bad event").into_response();
    }
    let fails = rule
        .fail_word
        .is_some_and(|word| String::from_utf8_lossy(&body).contains(word));
    if fails || rule.down {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "{\"error\":\"internal\"}",
        )
            .into_response();
    }
    if rule.times > 0 {
        if let Some(rule) = r.rules.lock().unwrap().get_mut(&path) {
            rule.times -= 1;
        }
        let status = StatusCode::from_u16(rule.status).unwrap();
        let mut response = (status, "{\"error\":\"failing on purpose\"}").into_response();
        if let Some(after) = rule.retry_after {
            response
                .headers_mut()
                .insert("Retry-After", after.parse().unwrap());
        }
        return response;
    }
    r.accepted
        .lock()
        .unwrap()
        .entry(path)
        .or_default()
        .push(value);
    (StatusCode::OK, "ok").into_response()
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let app = Router::new()
            .route("/{path}", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, origin)
    }

    fn rule(&self, path: &str, rule: Rule) {
        self.rules.lock().unwrap().insert(path.into(), rule);
    }

    fn requests(&self, path: &str) -> Vec<Arrival> {
        self.got
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// The events answered 2xx on `path`, in order.
    fn accepted(&self, path: &str) -> Vec<Value> {
        let accepted = self.accepted.lock().unwrap();
        accepted
            .get(path)
            .into_iter()
            .flatten()
            .flat_map(|body| match body {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            })
            .collect()
    }

    /// The events that arrived on `path` (bodies that are events or arrays
    /// of events), in order.
    fn events(&self, path: &str) -> Vec<Value> {
        self.requests(path)
            .into_iter()
            .flat_map(|(_, _, body)| match body {
                Value::Array(items) => items,
                other => vec![other],
            })
            .collect()
    }
}

struct World {
    store: SqliteStore,
    engine: Engine,
    config: Config,
    receiver: Receiver,
    origin: String,
    source: String,
    _dir: tempfile::TempDir,
}

fn fast() -> Config {
    Config {
        retry_window: Duration::from_secs(30),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        request_timeout: Duration::from_secs(5),
        poll: Duration::from_millis(100),
        allow: Allow::parse("127.0.0.1").unwrap(),
    }
}

impl World {
    async fn new(config: Config) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        let catalog = Arc::new(switchyard_destinations::catalog().unwrap());
        let deps = Deps {
            config_store: Arc::new(store.clone()),
            store: Arc::new(store.clone()),
            log: Arc::new(store.clone()),
            catalog,
        };
        let engine = Engine::new(deps, config.clone()).unwrap();
        engine.start();
        let (receiver, origin) = Receiver::start().await;
        let source = store.create_source("Shop").await.unwrap().id;
        World {
            store,
            engine,
            config,
            receiver,
            origin,
            source,
            _dir: dir,
        }
    }

    /// Another engine over the same store, not started: what a restarted
    /// server, or the CLI, reads.
    fn restarted(&self) -> Engine {
        let deps = Deps {
            config_store: Arc::new(self.store.clone()),
            store: Arc::new(self.store.clone()),
            log: Arc::new(self.store.clone()),
            catalog: Arc::new(switchyard_destinations::catalog().unwrap()),
        };
        Engine::new(deps, self.config.clone()).unwrap()
    }

    async fn totals(&self, c: &Connection) -> switchyard_delivery::Totals {
        self.engine.overview(c).await.unwrap().last_hour
    }

    async fn webhook(&self, path: &str, extra: Value) -> Connection {
        let mut settings = json!({"url": format!("{}/{path}", self.origin), "method": "POST"});
        for (k, v) in extra.as_object().unwrap() {
            settings[k] = v.clone();
        }
        let c = self
            .store
            .create_connection(NewConnection {
                source_id: self.source.clone(),
                destination: "webhook".into(),
                mode: switchyard_store::Mode::Cloud,
                enabled: true,
                settings: settings.to_string(),
            })
            .await
            .unwrap();
        self.engine.config_changed();
        // Started: its cursor is at the head.
        wait_for("the worker to start", || async {
            self.store.cursor(&c.id).await.unwrap().is_some()
        })
        .await;
        c
    }

    async fn send(&self, events: &[Value]) {
        let new = events
            .iter()
            .map(|e| NewEvent {
                source_id: self.source.clone(),
                message_id: e["messageId"].as_str().unwrap().into(),
                kind: "track",
                received_at: e["receivedAt"].as_str().unwrap().into(),
                json: e.to_string(),
            })
            .collect();
        self.store.append(new).await.unwrap();
        self.engine.appended();
    }
}

fn event(id: &str) -> Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "type": "track", "event": "Order Completed", "messageId": id, "userId": "u-1",
        "properties": {"revenue": 42.5, "order_id": id},
        "timestamp": now, "receivedAt": now,
    })
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["messageId"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn events_arrive_as_sent_in_order_and_the_cursor_follows() {
    let w = World::new(fast()).await;
    let c = w.webhook("a", json!({})).await;
    let sent: Vec<Value> = (0..25).map(|i| event(&format!("m{i}"))).collect();
    w.send(&sent).await;
    wait_for("25 events", || async { w.receiver.events("a").len() >= 25 }).await;
    let got = w.receiver.events("a");
    assert_eq!(got, sent, "what arrived differs from what was sent");
    assert_eq!(
        w.store.cursor(&c.id).await.unwrap(),
        Some(w.store.head().await.unwrap())
    );
    let totals = w.totals(&c).await;
    assert_eq!((totals.received, totals.delivered), (25, 25));
    assert!(totals.latency_p99_ms.is_some());
}

#[tokio::test]
async fn a_new_connection_starts_at_the_head_of_the_log() {
    let w = World::new(fast()).await;
    w.send(&[event("before")]).await;
    w.webhook("a", json!({})).await;
    w.send(&[event("after")]).await;
    wait_for("the new event", || async {
        !w.receiver.events("a").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ids(&w.receiver.events("a")), ["after"]);
}

#[tokio::test]
async fn routing_skips_are_counted_and_not_sent() {
    let w = World::new(fast()).await;
    let c = w.webhook("a", json!({})).await;
    let mut off = event("off");
    off["integrations"] = json!({"Webhook": false});
    let mut all_off = event("all-off");
    all_off["integrations"] = json!({"All": false});
    let mut bundled = event("bundled");
    bundled["_metadata"] = json!({"bundled": ["Webhook"]});
    let mut explicit = event("explicit");
    explicit["integrations"] = json!({"All": false, "Webhook": true});
    w.send(&[off, all_off, bundled, explicit, event("plain")])
        .await;
    wait_for("two events", || async { w.receiver.events("a").len() >= 2 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ids(&w.receiver.events("a")), ["explicit", "plain"]);
    let totals = w.totals(&c).await;
    assert_eq!(totals.filtered.get("integrations_off"), Some(&2));
    assert_eq!(totals.filtered.get("bundled"), Some(&1));
    assert_eq!(totals.received, 5);
}

#[tokio::test]
async fn retry_after_is_honoured_and_the_event_arrives_once() {
    let w = World::new(fast()).await;
    w.receiver.rule(
        "a",
        Rule {
            status: 429,
            times: 1,
            retry_after: Some("2"),
            ..Rule::default()
        },
    );
    let c = w.webhook("a", json!({})).await;
    w.send(&[event("m1")]).await;
    wait_for("two attempts", || async {
        w.receiver.requests("a").len() >= 2
    })
    .await;
    let requests = w.receiver.requests("a");
    let gap = requests[1].0 - requests[0].0;
    assert!(gap >= Duration::from_secs(2), "retried after {gap:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.receiver.requests("a").len(), 2);
    let failures = w.engine.failures(&c.id).await.unwrap();
    assert_eq!(failures[0].outcome, "retry");
    assert!(failures[0].response.as_deref().unwrap().contains("429"));
}

#[tokio::test]
async fn server_errors_back_off_and_succeed_later() {
    let w = World::new(fast()).await;
    w.receiver.rule(
        "a",
        Rule {
            status: 503,
            times: 3,
            ..Rule::default()
        },
    );
    let c = w.webhook("a", json!({})).await;
    w.send(&[event("m1")]).await;
    wait_for("the fourth attempt", || async {
        w.receiver.requests("a").len() >= 4
    })
    .await;
    let times: Vec<Instant> = w.receiver.requests("a").iter().map(|r| r.0).collect();
    // Backoff grows: each wait at least half the doubled minimum.
    assert!(
        times[2] - times[1] >= Duration::from_millis(50),
        "{:?}",
        times[2] - times[1]
    );
    wait_for("the delivered count", || async {
        w.totals(&c).await.delivered == 1
    })
    .await;
    assert_eq!(w.store.dead_letter_count(&c.id).await.unwrap(), 0);
}

#[tokio::test]
async fn a_refused_event_is_dead_lettered_with_the_response_and_retried_after_a_fix() {
    let w = World::new(fast()).await;
    w.receiver.rule(
        "bad",
        Rule {
            status: 400,
            times: u32::MAX,
            ..Rule::default()
        },
    );
    let c = w
        .webhook("bad", json!({"sharedSecret": "s3cret-value"}))
        .await;
    w.send(&[event("m1"), event("m2")]).await;
    wait_for("two dead letters", || async {
        w.store.dead_letter_count(&c.id).await.unwrap() == 2
    })
    .await;
    let dead = w.store.dead_letters(&c.id, 10).await.unwrap();
    assert_eq!(dead[0].message_id, "m1");
    assert_eq!(serde_json::from_str::<Value>(&dead[0].event).unwrap(), {
        let mut e = event("m1");
        e["timestamp"] =
            serde_json::from_str::<Value>(&dead[0].event).unwrap()["timestamp"].clone();
        e["receivedAt"] = e["timestamp"].clone();
        e
    });
    assert!(dead[0].reason.contains("HTTP 400"), "{}", dead[0].reason);
    assert!(
        dead[0]
            .response
            .as_deref()
            .unwrap()
            .contains("failing on purpose")
    );
    let request = dead[0].request.as_deref().unwrap();
    assert!(request.starts_with("POST http://127.0.0.1"), "{request}");
    assert!(
        !request.contains("s3cret-value"),
        "a secret in a dead letter: {request}"
    );
    // Refused at once: one attempt per event.
    assert_eq!(w.receiver.requests("bad").len(), 2);

    // The site owner fixes the URL, then retries the dead letters.
    let fixed = w
        .store
        .update_connection(
            &c.id,
            ConnectionUpdate {
                settings: Some(
                    json!({"url": format!("{}/good", w.origin), "method": "POST"}).to_string(),
                ),
                ..ConnectionUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(w.engine.retry_dead_letters(fixed, None).await.unwrap(), 2);
    wait_for("the retried events", || async {
        w.receiver.events("good").len() == 2
    })
    .await;
    assert_eq!(ids(&w.receiver.events("good")), ["m1", "m2"]);
    wait_for("the dead letters to go", || async {
        w.store.dead_letter_count(&c.id).await.unwrap() == 0
    })
    .await;
}

#[tokio::test]
async fn one_bad_event_in_a_batch_does_not_take_the_others_with_it() {
    let w = World::new(fast()).await;
    w.receiver.rule(
        "a",
        Rule {
            refuse_word: Some("poison"),
            ..Rule::default()
        },
    );
    let c = w
        .webhook("a", json!({"batch": true, "batchSize": 10}))
        .await;
    w.send(&[event("m1"), event("poison"), event("m3")]).await;
    wait_for("a dead letter", || async {
        w.store.dead_letter_count(&c.id).await.unwrap() == 1
    })
    .await;
    wait_for("the others", || async { w.totals(&c).await.delivered == 2 }).await;
    let accepted: Vec<String> = w
        .receiver
        .requests("a")
        .iter()
        .filter(|(_, _, body)| !body.to_string().contains("poison"))
        .flat_map(|(_, _, body)| ids(body.as_array().unwrap()))
        .collect();
    assert_eq!(accepted, ["m1", "m3"]);
    assert_eq!(
        w.store.dead_letters(&c.id, 1).await.unwrap()[0].message_id,
        "poison"
    );
}

#[tokio::test]
async fn after_the_retry_window_an_event_is_dead_lettered_and_the_next_goes() {
    let mut config = fast();
    config.retry_window = Duration::from_millis(600);
    let w = World::new(config).await;
    w.receiver.rule(
        "a",
        Rule {
            status: 500,
            times: 1_000,
            ..Rule::default()
        },
    );
    let c = w.webhook("a", json!({})).await;
    w.send(&[event("m1")]).await;
    wait_for("the dead letter", || async {
        w.store.dead_letter_count(&c.id).await.unwrap() == 1
    })
    .await;
    let dead = w.store.dead_letters(&c.id, 1).await.unwrap();
    assert!(
        dead[0].reason.contains("retry window"),
        "{}",
        dead[0].reason
    );
    assert!(dead[0].attempts >= 2);
    w.receiver.rule("a", Rule::default());
    w.send(&[event("m2")]).await;
    wait_for("the next event", || async {
        w.totals(&c).await.delivered == 1
    })
    .await;
}

#[tokio::test]
async fn a_slow_destination_does_not_slow_another() {
    let w = World::new(fast()).await;
    w.receiver.rule(
        "slow",
        Rule {
            delay: Duration::from_secs(3),
            ..Rule::default()
        },
    );
    w.webhook("slow", json!({})).await;
    let fast_one = w.webhook("quick", json!({})).await;
    let started = Instant::now();
    w.send(&[event("m1"), event("m2"), event("m3")]).await;
    wait_for("the quick destination", || async {
        w.receiver.events("quick").len() == 3
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(w.receiver.events("slow").len() <= 1);
    assert_eq!(w.totals(&fast_one).await.delivered, 3);
}

#[tokio::test]
async fn a_disabled_connection_stops_within_a_second() {
    let w = World::new(fast()).await;
    let c = w.webhook("a", json!({})).await;
    w.send(&[event("m1")]).await;
    wait_for("the first event", || async {
        w.receiver.events("a").len() == 1
    })
    .await;
    w.store
        .update_connection(
            &c.id,
            ConnectionUpdate {
                enabled: Some(false),
                ..ConnectionUpdate::default()
            },
        )
        .await
        .unwrap();
    // No notice given: the supervisor's own look must find it.
    let deadline = Instant::now() + Duration::from_secs(1);
    while w.engine.is_running(&c.id) {
        assert!(Instant::now() < deadline, "still running after a second");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.send(&[event("m2")]).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(ids(&w.receiver.events("a")), ["m1"]);
}

#[tokio::test]
async fn loopback_is_refused_unless_the_operator_allows_it() {
    let mut config = fast();
    config.allow = Allow::default();
    let w = World::new(config).await;
    let c = w.webhook("a", json!({})).await;
    w.send(&[event("m1")]).await;
    wait_for("the dead letter", || async {
        w.store.dead_letter_count(&c.id).await.unwrap() == 1
    })
    .await;
    let dead = w.store.dead_letters(&c.id, 1).await.unwrap();
    assert!(
        dead[0].reason.contains("SWITCHYARD_OUTBOUND_ALLOW"),
        "{}",
        dead[0].reason
    );
    assert!(
        w.receiver.requests("a").is_empty(),
        "a request reached loopback"
    );
}

#[tokio::test]
async fn the_tester_sends_one_event_and_shows_the_exchange_without_secrets() {
    let w = World::new(fast()).await;
    let c = w
        .webhook(
            "a",
            json!({"sharedSecret": "s3cret-value", "headers": {"Authorization": "Bearer tok-123"}}),
        )
        .await;
    let report = w.engine.test_event(&c, event("sample")).await.unwrap();
    assert_eq!(report.skipped, None);
    assert_eq!(report.exchanges.len(), 1);
    let x = &report.exchanges[0];
    assert_eq!(x.status, Some(200));
    assert_eq!(x.outcome, "delivered");
    assert!(
        x.request.contains("\"messageId\":\"sample\""),
        "{}",
        x.request
    );
    assert!(
        !x.request.contains("s3cret-value") && !x.request.contains("tok-123"),
        "{}",
        x.request
    );
    assert_eq!(ids(&w.receiver.events("a")), ["sample"]);
    // The signature the receiver got is the HMAC of the body it got.
    let (_, headers, _) = &w.receiver.requests("a")[0];
    assert_eq!(headers["x-signature"].len(), 64);
}

#[tokio::test]
async fn a_replay_resends_a_time_range() {
    let w = World::new(fast()).await;
    let c = w.webhook("a", json!({})).await;
    let mut old = event("old");
    old["receivedAt"] = json!("2026-01-01T00:00:00.000Z");
    let mut inside = event("inside");
    inside["receivedAt"] = json!("2026-01-02T00:00:00.000Z");
    w.send(&[old, inside]).await;
    wait_for("live delivery", || async {
        w.receiver.events("a").len() == 2
    })
    .await;
    let replay = w
        .engine
        .replay(
            c.clone(),
            "2026-01-01T12:00:00Z".into(),
            "2026-01-03T00:00:00Z".into(),
        )
        .await
        .unwrap();
    wait_for("the replay", || async {
        w.engine
            .replay_status(&replay.id)
            .await
            .unwrap()
            .unwrap()
            .done
    })
    .await;
    let done = w.engine.replay_status(&replay.id).await.unwrap().unwrap();
    assert_eq!((done.read, done.delivered, done.error), (1, 1, None));
    assert_eq!(ids(&w.receiver.events("a")), ["old", "inside", "inside"]);
    assert!(
        w.engine
            .replay(c.clone(), "yesterday".into(), "today".into())
            .await
            .is_err()
    );
    assert!(
        w.engine
            .replay(
                c,
                "2026-01-03T00:00:00Z".into(),
                "2026-01-01T00:00:00Z".into()
            )
            .await
            .is_err()
    );
    // Its progress is stored: an engine started afresh over the same
    // store reads it.
    let again = w.restarted();
    let stored = again.replay_status(&replay.id).await.unwrap().unwrap();
    assert_eq!((stored.read, stored.delivered, stored.done), (1, 1, true));
    assert_eq!(again.replays(&done.connection_id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_set_aside_and_the_ones_behind_it_go() {
    let w = World::new(fast()).await;
    w.receiver.rule(
        "a",
        Rule {
            fail_word: Some("stuck"),
            ..Rule::default()
        },
    );
    let c = w
        .webhook("a", json!({"batch": true, "batchSize": 10}))
        .await;
    w.send(&[event("m1"), event("stuck"), event("m3")]).await;
    wait_for("the events around it", || async {
        ids(&w.receiver.accepted("a")) == ["m1", "m3"]
    })
    .await;
    // The ones behind it are not held either.
    w.send(&[event("m4"), event("m5")]).await;
    wait_for("the later events", || async {
        w.receiver.accepted("a").len() == 4
    })
    .await;
    let head = w.store.head().await.unwrap();
    wait_for("the cursor at the head", || async {
        w.store.cursor(&c.id).await.unwrap() == Some(head)
    })
    .await;
    let overview = w.engine.overview(&c).await.unwrap();
    assert_eq!(overview.set_aside, 1, "{overview:?}");
    assert!(overview.retrying >= 1);
    assert_eq!(overview.dead_letters, 0);
    let failures = w.engine.failures(&c.id).await.unwrap();
    assert!(
        failures
            .iter()
            .any(|f| f.outcome == "retry_later" && f.message_ids == ["stuck"]),
        "{failures:?}"
    );
    // Set aside, it is still retried on its own, and arrives once when the
    // vendor takes it.
    let tries = w.receiver.requests("a").len();
    wait_for("another try of the set-aside event", || async {
        w.receiver.requests("a").len() > tries
    })
    .await;
    w.receiver.rule("a", Rule::default());
    wait_for("the set-aside event", || async {
        ids(&w.receiver.accepted("a")).contains(&"stuck".to_string())
    })
    .await;
    wait_for("nothing set aside", || async {
        w.engine.overview(&c).await.unwrap().set_aside == 0
    })
    .await;
    let accepted = ids(&w.receiver.accepted("a"));
    assert_eq!(accepted, ["m1", "m3", "m4", "m5", "stuck"]);
    assert_eq!(w.totals(&c).await.delivered, 5);
}

#[tokio::test]
async fn a_destination_that_is_down_holds_its_events_rather_than_setting_them_all_aside() {
    let w = World::new(fast()).await;
    w.receiver.rule(
        "a",
        Rule {
            down: true,
            ..Rule::default()
        },
    );
    let c = w
        .webhook("a", json!({"batch": true, "batchSize": 10}))
        .await;
    let sent: Vec<Value> = (0..40).map(|i| event(&format!("m{i}"))).collect();
    w.send(&sent).await;
    // Long enough to halve the batch down to single events and set the
    // allowance aside, several times over with this backoff.
    wait_for("many attempts", || async {
        w.receiver.requests("a").len() >= 40
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let failures = w.engine.failures(&c.id).await.unwrap();
    let aside = failures
        .iter()
        .filter(|f| f.outcome == "retry_later")
        .count();
    assert!(
        (1..=5).contains(&aside),
        "set aside during an outage: {aside}"
    );
    assert!(
        failures.iter().filter(|f| f.outcome == "retry").count() >= 20,
        "the rest wait in place"
    );
    assert!(w.store.cursor(&c.id).await.unwrap() < Some(w.store.head().await.unwrap()));
    w.receiver.rule("a", Rule::default());
    wait_for("every event", || async {
        w.receiver.accepted("a").len() >= 40
    })
    .await;
    wait_for("nothing set aside", || async {
        w.engine.overview(&c).await.unwrap().set_aside == 0
    })
    .await;
    let mut got = ids(&w.receiver.accepted("a"));
    got.sort();
    let mut want = ids(&sent);
    want.sort();
    assert_eq!(got, want, "each event accepted exactly once");
}

#[tokio::test]
async fn counts_and_failures_are_stored_and_read_after_a_restart() {
    let w = World::new(fast()).await;
    w.receiver.rule(
        "a",
        Rule {
            status: 503,
            times: 1,
            ..Rule::default()
        },
    );
    let c = w.webhook("a", json!({})).await;
    let mut off = event("off");
    off["integrations"] = json!({"Webhook": false});
    w.send(&[event("m1"), event("m2"), off]).await;
    wait_for("two delivered", || async {
        w.receiver.accepted("a").len() == 2
    })
    .await;
    let live = w.engine.overview(&c).await.unwrap();
    // Not flushed by anyone: the stored figures come from the flusher.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let again = w.restarted();
    let stored = again.overview(&c).await.unwrap();
    assert_eq!(stored.last_hour, live.last_hour);
    assert_eq!(
        (stored.last_hour.received, stored.last_hour.delivered),
        (3, 2)
    );
    assert_eq!(stored.last_hour.filtered.get("integrations_off"), Some(&1));
    assert_eq!(stored.last_hour.failed_attempts, 1);
    assert!(stored.last_hour.latency_p99_ms.is_some());
    assert_eq!(stored.last_day.delivered, 2);
    assert_eq!(stored.chart.iter().map(|p| p.delivered).sum::<u64>(), 2);
    let failures = again.failures(&c.id).await.unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].message_ids, ["m1"]);
    assert!(failures[0].response.as_deref().unwrap().contains("503"));
}
