//! Device-mode mappings checked against their cases: every destination
//! with a mapping has `src/<slug>/testdata/*.json`, each file
//!
//! ```json
//! { "settings": {…}, "init": [calls], "script_url": "…",
//!   "cases": [{ "name": "…", "settings": {…}?, "event": {…}, "calls": [calls] }] }
//! ```
//!
//! with a call as `{"function": "mixpanel.track", "args": [...]}`. A case's
//! `settings` replace the file's; `script_url`, where given, is the URL of
//! the adapter's script tag. The destinations come from the registry
//! (`ADAPTERS`).

use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value as Json, json};
use switchyard_destinations::device::{Call, Value};
use switchyard_destinations::*;

/// Our `Value`, deserialized straight from the case file, so objects keep
/// their keys in file order.
struct Ordered(Value);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Ordered, E> {
        Ok(Ordered(Value::Null))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Ordered, E> {
        Ok(Ordered(Value::Bool(b)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Ordered, E> {
        Ok(Ordered(Value::Number(n as f64)))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Ordered, E> {
        Ok(Ordered(Value::Number(n as f64)))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Ordered, E> {
        Ok(Ordered(Value::Number(n)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Ordered, E> {
        Ok(Ordered(Value::String(s.to_owned())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut items = Vec::new();
        while let Some(Ordered(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Ordered(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut members = Vec::new();
        while let Some((k, Ordered(v))) = map.next_entry::<String, Ordered>()? {
            members.push((k, v));
        }
        Ok(Ordered(Value::Object(members)))
    }
}

/// For messages only: serde_json's `Value` prints; ours has no `Debug`.
fn json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => json!(n),
        Value::String(s) => Json::String(s.clone()),
        Value::Array(items) => Json::Array(items.iter().map(json).collect()),
        Value::Object(members) => {
            Json::Object(members.iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
    }
}

/// Calls as our `Value`, to compare with a case's `calls`.
fn calls_value(calls: &[Call]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|c| {
                Value::object(vec![
                    ("function", Value::str(c.function)),
                    ("args", Value::Array(c.args.clone())),
                ])
            })
            .collect(),
    )
}

/// Expected and actual calls compared exactly, object keys in order too.
fn check(what: &str, expected: Option<&Value>, actual: &[Call]) {
    let expected = expected.unwrap_or_else(|| panic!("{what}: no calls"));
    let actual = calls_value(actual);
    assert!(
        *expected == actual,
        "{what}\nexpected: {}\n  actual: {}",
        serde_json::to_string(&json(expected)).unwrap(),
        serde_json::to_string(&json(&actual)).unwrap()
    );
}

/// The least number of cases each destination's mapping has.
const MIN_CASES: usize = 5;

#[test]
fn every_mapping_matches_its_cases() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut too_few = Vec::new();
    for adapter in ADAPTERS {
        let mut cases = 0;
        let (slug, init, map) = (adapter.slug, adapter.init, adapter.map);
        let dir = src.join(slug).join("testdata");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{slug}: no testdata: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{slug}: no testdata/*.json");
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&file).unwrap();
            let Ordered(data) =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{slug}/{name}: {e}"));
            let settings = data.get("settings").cloned().unwrap_or(Value::empty());
            if let Some(expected) = data.get("init") {
                check(
                    &format!("{slug}/{name}: init"),
                    Some(expected),
                    &init(&settings),
                );
            }
            if let Some(expected) = data.get("script_url").and_then(Value::as_str) {
                assert_eq!(
                    (adapter.setup)(&settings).script.url,
                    expected,
                    "{slug}/{name}"
                );
            }
            for case in data.get("cases").map(Value::as_array).unwrap_or_default() {
                let case_name = case.get("name").and_then(Value::as_str).unwrap();
                let settings = case.get("settings").unwrap_or(&settings);
                let event = case.get("event").unwrap();
                let actual = map(event, settings);
                check(
                    &format!("{slug}/{name}: {case_name}"),
                    case.get("calls"),
                    &actual,
                );
                cases += 1;
            }
        }
        if cases < MIN_CASES {
            too_few.push(format!("{slug}: {cases}"));
        }
    }
    assert!(
        too_few.is_empty(),
        "fewer than {MIN_CASES} cases: {}",
        too_few.join(", ")
    );
}

/// Every folder with a `mapping.rs` has its adapter in the registry's
/// [`ADAPTERS`], so its cases run.
#[test]
fn every_mapping_is_checked() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut with_mapping: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("mapping.rs").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    with_mapping.sort();
    let listed: Vec<_> = ADAPTERS.iter().map(|a| a.slug.to_owned()).collect();
    assert_eq!(with_mapping, listed);
}
