//! Device adapters against the catalog: every destination whose device
//! mode is available has an adapter here, loads the vendor's real script by
//! default, and loads the `scriptUrl` setting's instead when it is set.

use switchyard_catalog::Mode;
use switchyard_destinations::device::{Adapter, Value};
use switchyard_destinations::*;

/// The destination's required settings, each with a plausible value.
fn required(slug: &str) -> Value {
    let catalog = catalog().unwrap();
    let def = catalog.get(slug).unwrap();
    let mut settings = Value::empty();
    for s in def.settings.iter().filter(|s| s.required) {
        settings.set(&s.key, Value::str("123"));
    }
    settings
}

#[test]
fn every_available_device_mode_has_an_adapter_and_no_other() {
    let catalog = catalog().unwrap();
    let mut available: Vec<&str> = catalog
        .all()
        .iter()
        .filter(|d| d.mode(Mode::Device).is_some_and(|m| m.available))
        .map(|d| d.slug.as_str())
        .collect();
    available.sort();
    let adapters: Vec<&str> = ADAPTERS.iter().map(|a| a.slug).collect();
    assert_eq!(available, adapters);
}

#[test]
fn the_vendor_script_is_the_catalog_url_by_default_and_the_setting_when_set() {
    let catalog = catalog().unwrap();
    for adapter in ADAPTERS {
        let (slug, setup) = (&adapter.slug, adapter.setup);
        let def = catalog.get(slug).unwrap();
        let vendor = def.script_url.as_deref().unwrap();
        let url = setup(&required(slug)).script.url;
        assert!(url.starts_with(vendor), "{slug}: {url} is not {vendor}");

        let mut settings = required(slug);
        settings.set("scriptUrl", Value::str("http://127.0.0.1:9/vendor.js"));
        let url = setup(&settings).script.url;
        assert!(
            url.starts_with("http://127.0.0.1:9/vendor.js"),
            "{slug}: {url} ignores the scriptUrl setting"
        );
    }
}

#[test]
fn snippet_globals_carry_the_settings() {
    let mut settings = required("hotjar");
    settings.set("siteId", Value::str("3141592"));
    let setup = hotjar::device::Device::setup(&settings);
    let (name, value) = &setup.globals[0];
    assert_eq!(*name, "_hjSettings");
    assert!(value.get("hjid") == Some(&Value::Number(3141592.0)));

    let mut settings = required("crisp");
    settings.set(
        "websiteId",
        Value::str("6d2b0a4e-1c3f-4b5a-9e8d-7f6a5b4c3d2e"),
    );
    let setup = crisp::device::Device::setup(&settings);
    assert!(setup.globals[0].0 == "$crisp" && setup.globals[0].1 == Value::Array(Vec::new()));
    assert!(
        setup.globals[1]
            == (
                "CRISP_WEBSITE_ID",
                Value::str("6d2b0a4e-1c3f-4b5a-9e8d-7f6a5b4c3d2e")
            )
    );

    let mut settings = required("customerio");
    settings.set("siteId", Value::str("site-9"));
    settings.set("region", Value::str("eu"));
    let script = customerio::device::Device::setup(&settings).script;
    assert!(script.url.ends_with("/track-eu.js"), "{}", script.url);
    assert!(
        script
            .attributes
            .contains(&("data-site-id", "site-9".into()))
    );
    assert!(script.attributes.contains(&("id", "cio-tracker".into())));
}
