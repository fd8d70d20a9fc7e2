//! The event model, tested as data: `testdata/cases.json` holds request
//! bodies and what must come of them; `testdata/wire/` holds requests real
//! Segment libraries sent, which must all be accepted.

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchyard_spec::{EventType, Normalized, SpecError, parse_batch, parse_single};

fn now() -> DateTime<Utc> {
    "2026-11-28T12:00:00.000Z".parse().unwrap()
}

fn parse(call: &str, body: &[u8]) -> Result<Vec<Normalized>, SpecError> {
    match call {
        "batch" | "b" => parse_batch(body, now()).map(|b| b.events),
        _ => parse_single(body, EventType::from_path(call).unwrap(), now()).map(|e| vec![e]),
    }
}

#[test]
fn cases() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("../testdata/cases.json")).unwrap();
    assert!(cases.len() > 30);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let call = case["call"].as_str().unwrap();
        let body = match &case["raw"] {
            Value::String(raw) => raw.clone().into_bytes(),
            _ => serde_json::to_vec(&case["body"]).unwrap(),
        };
        let result = parse(call, &body);
        if case["ok"] == true {
            let events = result.unwrap_or_else(|e| panic!("{name}: refused: {e}"));
            if let Some(n) = case["events"].as_u64() {
                assert_eq!(events.len() as u64, n, "{name}");
            }
            for e in events {
                let v: Value = serde_json::from_str(&e.json).unwrap();
                assert_eq!(v["messageId"], e.message_id.as_str(), "{name}");
                assert_eq!(v["type"], e.kind.as_str(), "{name}");
                assert_eq!(v["receivedAt"], "2026-11-28T12:00:00.000Z", "{name}");
                assert!(v.get("writeKey").is_none(), "{name}: write key kept");
                assert!(v.get("properties") != Some(&Value::Null), "{name}");
            }
        } else {
            let want = case["error"].as_str().unwrap();
            let err = match result {
                Ok(_) => panic!("{name}: accepted, expected `{want}`"),
                Err(e) => e,
            };
            assert!(
                err.to_string().contains(want),
                "{name}: got `{err}`, expected `{want}`"
            );
            assert_eq!(
                err.field(),
                case["field"].as_str(),
                "{name}: field of `{err}`"
            );
        }
    }
}

fn one(call: &str, body: Value) -> Value {
    let events = parse(call, &serde_json::to_vec(&body).unwrap()).unwrap();
    serde_json::from_str(&events[0].json).unwrap()
}

#[test]
fn timestamp_is_corrected_for_client_clock_skew() {
    // The client's clock is 1 hour fast; the event happened 2 s before it was sent.
    let e = one(
        "track",
        serde_json::json!({"event": "E", "userId": "u", "timestamp": "2026-11-28T13:00:00.000Z", "sentAt": "2026-11-28T13:00:02.000Z"}),
    );
    assert_eq!(e["timestamp"], "2026-11-28T11:59:58.000Z");
    assert_eq!(e["originalTimestamp"], "2026-11-28T13:00:00.000Z");
    assert_eq!(e["sentAt"], "2026-11-28T13:00:02.000Z");
}

#[test]
fn timestamp_without_sent_at_is_kept_and_defaults_to_received_at() {
    let e = one(
        "t",
        serde_json::json!({"event": "E", "userId": "u", "timestamp": "2026-01-01T00:00:00+02:00"}),
    );
    assert_eq!(e["timestamp"], "2025-12-31T22:00:00.000Z");
    let e = one("t", serde_json::json!({"event": "E", "userId": "u"}));
    assert_eq!(e["timestamp"], "2026-11-28T12:00:00.000Z");
    assert!(e.get("originalTimestamp").is_none());
}

#[test]
fn path_decides_the_type_and_message_ids_are_kept_or_made() {
    let e = one(
        "identify",
        serde_json::json!({"type": "track", "userId": "u", "messageId": "m-1"}),
    );
    assert_eq!(e["type"], "identify");
    assert_eq!(e["messageId"], "m-1");
    let a = one("identify", serde_json::json!({"userId": "u"}));
    let b = one("identify", serde_json::json!({"userId": "u"}));
    assert_ne!(a["messageId"], b["messageId"]);
    assert_eq!(a["messageId"].as_str().unwrap().len(), 36);
}

#[test]
fn batch_level_fields_apply_to_each_event_that_lacks_them() {
    let body = serde_json::json!({
        "writeKey": "WK",
        "sentAt": "2026-11-28T12:00:01.000Z",
        "context": {"library": {"name": "lib"}, "ip": "1.2.3.4"},
        "integrations": {"All": false},
        "batch": [
            {"type": "track", "event": "E", "userId": "u", "timestamp": "2026-11-28T12:00:00.000Z", "context": {"ip": "5.6.7.8"}},
            {"type": "page", "userId": "u", "integrations": {"Mixpanel": true}}
        ]
    });
    let batch = parse_batch(&serde_json::to_vec(&body).unwrap(), now()).unwrap();
    assert_eq!(batch.write_key.as_deref(), Some("WK"));
    let first: Value = serde_json::from_str(&batch.events[0].json).unwrap();
    let second: Value = serde_json::from_str(&batch.events[1].json).unwrap();
    assert_eq!(first["context"]["ip"], "5.6.7.8");
    assert_eq!(first["context"]["library"]["name"], "lib");
    assert_eq!(first["integrations"]["All"], false);
    assert_eq!(first["timestamp"], "2026-11-28T11:59:59.000Z");
    assert_eq!(
        second["integrations"],
        serde_json::json!({"Mixpanel": true})
    );
}

#[test]
fn size_limits() {
    let big = "x".repeat(33 * 1024);
    let body = serde_json::to_vec(
        &serde_json::json!({"event": "E", "userId": "u", "properties": {"big": big}}),
    )
    .unwrap();
    let err = parse_single(&body, EventType::Track, now()).unwrap_err();
    assert!(
        matches!(err, SpecError::TooLarge { limit: 32768, .. }),
        "{err}"
    );

    let item = serde_json::json!({"type": "track", "event": "E", "userId": "u", "properties": {"big": big}});
    let body = serde_json::to_vec(&serde_json::json!({"batch": [item]})).unwrap();
    let err = parse_batch(&body, now()).unwrap_err();
    assert_eq!(
        err.to_string().split(" is ").next(),
        Some("batch[0]"),
        "{err}"
    );

    let small = serde_json::json!({"type": "track", "event": "E", "userId": "u", "properties": {"p": "y".repeat(20_000)}});
    let body = serde_json::to_vec(&serde_json::json!({"batch": vec![small; 30]})).unwrap();
    let err = parse_batch(&body, now()).unwrap_err();
    assert!(
        matches!(err, SpecError::TooLarge { limit: 512000, .. }),
        "{err}"
    );
}

/// Every request real Segment libraries sent to `/v1/...` is accepted.
#[test]
fn real_client_requests_are_accepted() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/wire");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let requests = match value {
            Value::Array(items) => items,
            single => vec![single],
        };
        for r in requests {
            let Some(call) = r["path"].as_str().and_then(|p| p.strip_prefix("/v1/")) else {
                continue;
            };
            if r["method"] != "POST" || call.contains('/') {
                continue;
            }
            let body = serde_json::to_vec(&r["body_json"]).unwrap();
            let events =
                parse(call, &body).unwrap_or_else(|e| panic!("{}: {call}: {e}", path.display()));
            assert!(!events.is_empty());
            checked += events.len();
        }
    }
    assert!(checked >= 20, "only {checked} events checked");
}
