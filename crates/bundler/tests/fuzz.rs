//! The loader's template filling under generated settings: whatever a
//! site owner types (quotes, backslashes, control characters, U+2028,
//! `</script>`, any nesting), the loader carries it back exactly, and the
//! loader is still JavaScript (checked by Node, all cases in one file).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};
use switchyard_bundler::{Artifacts, DeviceDestination, Module, SourceBundle};

const HEAD: &str = "(function(){var config = ";
const TAIL: &str = ";\nwindow.__seen = config;})();\n";

fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,24}",
        "[\\x00-\\x1f\\u{2028}\\u{2029}\\u{202e}\\u{feff}\"'`\\\\/<>${}]{0,16}",
        Just("</script><script>alert(1)</script>".to_string()),
        Just("*/ throw 1; /*".to_string()),
    ]
}

fn setting() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        hostile_text().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(hostile_text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn settings() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(hostile_text(), setting(), 0..6)
        .prop_map(|m| m.into_iter().collect())
}

#[test]
fn any_settings_come_back_exactly_and_the_loader_stays_javascript() {
    let template = [HEAD, switchyard_bundler::CONFIG_PLACEHOLDER, TAIL].concat();
    let artifacts = Artifacts::new(&template, b"\0asm\x01\0\0\0".to_vec()).unwrap();
    let module = Module::new(b"\0asm\x01\0\0\0".to_vec());
    let mut runner = TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    });
    let scripts = std::cell::RefCell::new(Vec::new());
    runner
        .run(&(settings(), hostile_text()), |(settings, name)| {
            let bundle = SourceBundle {
                write_key: "wk".into(),
                revision: 3,
                destinations: vec![DeviceDestination {
                    slug: "mixpanel".into(),
                    name: name.clone(),
                    settings: settings.clone(),
                    categories: vec!["Analytics".into()],
                }],
                unbundled: vec![name],
            };
            let loader = artifacts.loader(&bundle, &module);
            prop_assert!(loader.js.starts_with(HEAD) && loader.js.ends_with(TAIL));
            let config = &loader.js[HEAD.len()..loader.js.len() - TAIL.len()];
            let back: Value = serde_json::from_str(config).unwrap();
            prop_assert_eq!(
                &back["destinations"][0]["settings"],
                &Value::Object(settings.clone())
            );
            prop_assert_eq!(&back["destinations"][0]["name"], &back["unbundled"][0]);
            scripts.borrow_mut().push(loader.js.clone());
            Ok(())
        })
        .unwrap();

    // Each loader, as its own function, in one file Node checks.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("loaders.js");
    let scripts = scripts.into_inner();
    assert_eq!(scripts.len(), 128);
    let body: String = scripts
        .iter()
        .enumerate()
        .map(|(i, js)| format!("function loader{i}() {{\n{js}\n}}\n"))
        .collect();
    std::fs::write(&file, body).unwrap();
    let out = std::process::Command::new("node")
        .arg("--check")
        .arg(&file)
        .output()
        .expect("node is needed to check the loaders (the test command installs it)");
    assert!(
        out.status.success(),
        "a loader is not JavaScript: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
