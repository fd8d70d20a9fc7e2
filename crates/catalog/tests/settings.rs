//! Settings validation against a destination's schema.

use serde_json::{Map, Value, json};
use switchyard_catalog::{Catalog, Mode, validate_settings};

const MANIFEST: &str = r#"
name = "Example"
description = "An example."
categories = ["Analytics"]
website = "https://example.com"

[[modes]]
mode = "cloud"
methods = ["track"]

[[modes]]
mode = "device"
methods = ["track", "page"]

[[settings]]
key = "apiKey"
label = "API key"
help = "32 hexadecimal characters."
type = "string"
required = true
pattern = "[0-9a-f]{32}"

[[settings]]
key = "secret"
label = "Secret"
type = "password"
secret = true
required = true
modes = ["cloud"]

[[settings]]
key = "region"
label = "Region"
type = "select"
choices = ["us", "eu"]
default = "us"

[[settings]]
key = "events"
label = "Events"
type = "list"
"#;

const LOGO: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\"/>";

fn check(mode: Mode, settings: Value) -> Result<Map<String, Value>, (String, String)> {
    let catalog = Catalog::from_manifests([("example", MANIFEST, LOGO)]).unwrap();
    let def = catalog.get("example").unwrap();
    validate_settings(def, mode, settings.as_object().unwrap()).map_err(|e| (e.field, e.reason))
}

const KEY: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn valid_settings_get_defaults() {
    let out = check(Mode::Device, json!({"apiKey": KEY})).unwrap();
    assert_eq!(Value::Object(out), json!({"apiKey": KEY, "region": "us"}));
}

#[test]
fn each_invalid_setting_is_named() {
    for (mode, settings, field, reason) in [
        (Mode::Device, json!({}), "apiKey", "is required"),
        (
            Mode::Device,
            json!({"apiKey": "  "}),
            "apiKey",
            "is required",
        ),
        (
            Mode::Device,
            json!({"apiKey": "xyz"}),
            "apiKey",
            "is not in the expected format: 32 hexadecimal characters.",
        ),
        (Mode::Device, json!({"apiKey": 5}), "apiKey", "must be text"),
        (Mode::Cloud, json!({"apiKey": KEY}), "secret", "is required"),
        (
            Mode::Device,
            json!({"apiKey": KEY, "region": "mars"}),
            "region",
            "must be one of: us, eu",
        ),
        (
            Mode::Device,
            json!({"apiKey": KEY, "events": "a"}),
            "events",
            "must be a list of text values",
        ),
        (
            Mode::Device,
            json!({"apiKey": KEY, "typo": 1}),
            "typo",
            "is not a setting of Example",
        ),
    ] {
        assert_eq!(
            check(mode, settings.clone()),
            Err((field.to_string(), reason.to_string())),
            "{settings}"
        );
    }
}

#[test]
fn a_setting_of_another_mode_is_not_required() {
    assert!(check(Mode::Device, json!({"apiKey": KEY})).is_ok());
}

#[test]
fn broken_manifests_are_refused_with_the_slug() {
    for (manifest, logo, want) in [
        ("name = 1", LOGO, "manifest of `bad`"),
        (MANIFEST, "<png>", "logo is not an SVG"),
        (
            &MANIFEST.replace("categories = [\"Analytics\"]", "categories = []"),
            LOGO,
            "no category",
        ),
        (
            &MANIFEST.replace("categories = [\"Analytics\"]", "categories = [\"Games\"]"),
            LOGO,
            "manifest of `bad`",
        ),
    ] {
        let err = Catalog::from_manifests([("bad", manifest, logo)]).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
    }
    let dup = Catalog::from_manifests([("a", MANIFEST, LOGO), ("a", MANIFEST, LOGO)]).unwrap_err();
    assert!(dup.to_string().contains("share the slug"));
}
