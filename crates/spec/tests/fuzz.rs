//! The tracking parser under generated input: any bytes, any JSON tree in
//! any field, nesting past any sensible depth. It never panics; what it
//! refuses it refuses with a reason; what it accepts is an event with a
//! type, a messageId and the fields it was sent.

use chrono::Utc;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use switchyard_spec::{EventType, parse_batch, parse_single};

fn json_tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        "[\\x00-\\x1f\\u{2028}\\u{202e}\\u{fffd}<>&\"'\\\\]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An event whose known fields are each either well-typed or any tree.
fn event() -> impl Strategy<Value = Value> {
    let field = |good: Value| prop_oneof![3 => Just(good), 1 => json_tree()];
    (
        field(json!("track")),
        field(json!("Order Completed")),
        field(json!("user-1")),
        field(json!({"revenue": 1.5})),
        field(json!("m-1")),
        field(json!("2026-12-01T00:00:00.000Z")),
        prop::collection::btree_map("[a-z]{1,8}", json_tree(), 0..4),
    )
        .prop_map(|(kind, name, user, props, id, ts, extra)| {
            let mut e: Map<String, Value> = extra.into_iter().collect();
            e.insert("type".into(), kind);
            e.insert("event".into(), name);
            e.insert("userId".into(), user);
            e.insert("properties".into(), props);
            e.insert("messageId".into(), id);
            e.insert("timestamp".into(), ts);
            Value::Object(e)
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_bytes_are_parsed_or_refused_with_a_reason(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        match parse_batch(&body, Utc::now()) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        for kind in EventType::ALL {
            if let Err(e) = parse_single(&body, kind, Utc::now()) {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn any_event_is_accepted_whole_or_refused_with_a_reason(events in prop::collection::vec(event(), 1..6)) {
        let body = json!({"batch": events}).to_string();
        match parse_batch(body.as_bytes(), Utc::now()) {
            Ok(batch) => {
                prop_assert_eq!(batch.events.len(), events.len());
                for (sent, got) in events.iter().zip(&batch.events) {
                    let stored: Value = serde_json::from_str(&got.json).unwrap();
                    prop_assert_eq!(&stored["type"], &sent["type"]);
                    prop_assert_eq!(&stored["event"], &sent["event"]);
                    prop_assert_eq!(&stored["properties"], &sent["properties"]);
                    prop_assert!(stored["messageId"].as_str().is_some_and(|m| !m.is_empty()));
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

#[test]
fn nesting_far_past_any_sensible_depth_is_refused_not_a_crash() {
    for depth in [200, 10_000, 100_000] {
        let body = format!(
            "{{\"batch\":[{{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u\",\"properties\":{}{}}}]}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let refused = parse_batch(body.as_bytes(), Utc::now());
        assert!(refused.is_err(), "depth {depth} accepted");
        let single = format!(
            "{{\"event\":\"E\",\"userId\":\"u\",\"properties\":{{\"p\":{}{}}}}}",
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        );
        assert!(parse_single(single.as_bytes(), EventType::Track, Utc::now()).is_err());
    }
}
