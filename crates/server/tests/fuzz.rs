//! Generated hostile input against the running app: any body to the
//! tracking API and any settings to the admin API. Never a 5xx; every
//! refusal is JSON with a reason; a refused change changes nothing; the
//! server keeps serving.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::{TestApp, basic};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[\\x00-\\x1f\\u{2028}\"\\\\<>]{0,6}|.{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(".{0,10}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn any_tracking_body_is_stored_or_refused_with_a_reason() {
    let rt = runtime();
    let t = rt.block_on(TestApp::new());
    let paths = ["/v1/batch", "/v1/track", "/v1/identify", "/v1/p", "/v1/g"];
    let bodies = prop_oneof![
        tree().prop_map(|v| v.to_string().into_bytes()),
        tree().prop_map(|v| json!({"batch": [v]}).to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..512),
    ];
    let mut runner = TestRunner::new(config(192));
    runner
        .run(&(0..paths.len(), bodies), |(path, body)| {
            let r = rt.block_on(
                t.send(
                    Request::post(paths[path])
                        .header("authorization", basic(&t.source.write_key))
                        .body(Body::from(body))
                        .unwrap(),
                ),
            );
            prop_assert!(!r.status.is_server_error(), "{}: {}", r.status, r.text());
            if !r.status.is_success() {
                let error = r.json()["error"].as_str().unwrap_or_default().to_string();
                prop_assert!(!error.is_empty(), "{}", r.text());
            }
            Ok(())
        })
        .unwrap();
    // Still serving.
    let ok = rt.block_on(t.track("/v1/track", r#"{"event":"E","userId":"u"}"#));
    assert!(ok.status.is_success());
}

#[test]
fn any_settings_are_saved_valid_or_refused_naming_the_field() {
    let rt = runtime();
    let t = rt.block_on(TestApp::new());
    let slugs: Vec<String> = t
        .state
        .catalog
        .all()
        .iter()
        .map(|d| d.slug.clone())
        .collect();
    let known_keys: Vec<String> = t
        .state
        .catalog
        .all()
        .iter()
        .flat_map(|d| d.settings.iter().map(|s| s.key.clone()))
        .collect();
    let key = prop_oneof![prop::sample::select(known_keys), ".{0,12}",];
    let settings = prop::collection::btree_map(key, tree(), 0..5);
    let mode = prop_oneof![
        Just(Value::from("device")),
        Just(Value::from("cloud")),
        tree()
    ];
    let url = format!("/api/sources/{}/connections", t.source.id);
    let mut runner = TestRunner::new(config(160));
    runner
        .run(
            &(prop::sample::select(slugs), mode, settings, any::<bool>()),
            |(slug, mode, settings, enabled)| {
                let before = rt.block_on(t.admin_get(&url)).json();
                let body = json!({"destination": slug, "mode": mode, "settings": settings, "enabled": enabled});
                let r = rt.block_on(t.admin_post(&url, &body.to_string()));
                prop_assert!(!r.status.is_server_error(), "{}: {}", r.status, r.text());
                let after = rt.block_on(t.admin_get(&url)).json();
                if r.status.is_success() {
                    let made = r.json();
                    prop_assert_eq!(&made["destination"], &Value::from(slug));
                    prop_assert_eq!(after.as_array().map(Vec::len), before.as_array().map(|b| b.len() + 1));
                    // Cleaned up, so each case starts alike.
                    let id = made["id"].as_str().unwrap_or_default().to_string();
                    rt.block_on(t.send(
                        Request::delete(format!("/api/connections/{id}"))
                            .header("authorization", ["Bearer ", common::TOKEN].concat())
                            .body(Body::empty())
                            .unwrap(),
                    ));
                } else {
                    let error = r.json()["error"].as_str().unwrap_or_default().to_string();
                    prop_assert!(!error.is_empty(), "{}", r.text());
                    prop_assert_eq!(&after, &before, "a refused change changed something");
                }
                Ok(())
            },
        )
        .unwrap();
}
