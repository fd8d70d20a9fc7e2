//! Per-source modules (each source's loader names the module of its set of
//! device adapters; any built module is served by hash, also after a
//! restart), and the guarantee that no secret setting reaches anything a
//! page or analytics-next can fetch.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Reply, TestApp};
use serde_json::{Map, Value};
use switchyard_bundler::{Artifacts, DEVICE_EXPORT_PREFIX, LOADER_FILE};
use switchyard_catalog::{Catalog, Definition, Mode};
use switchyard_store::{ConfigStore, NewConnection, Source};

/// A secret setting's value: found anywhere served, it has leaked.
fn secret_value(slug: &str, key: &str) -> String {
    ["SECRET-", slug, "-", key, "-7f3a"].concat()
}

/// A setting's value that is not secret: the loader of a device-mode
/// destination carries it.
fn plain_value(slug: &str, key: &str) -> String {
    ["PLAIN-", slug, "-", key, "-7f3a"].concat()
}

/// A device destination's entry (in the loader or the settings document):
/// its catalog name and each of its settings that is not secret, with the
/// distinctive value it was saved with.
fn has_plain_settings(entry: &serde_json::Value, def: &Definition, place: &str) {
    assert_eq!(entry["name"], def.name.as_str(), "{place}");
    for s in def.settings.iter().filter(|s| !s.secret) {
        assert_eq!(
            entry["settings"][&s.key],
            plain_value(&def.slug, &s.key).as_str(),
            "{place}: {} {}",
            def.slug,
            s.key
        );
    }
}

fn leb128(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb128(body.len(), out);
    out.extend_from_slice(body);
}

/// A valid module exporting one empty function under each name.
fn module_exporting(names: &[String]) -> Vec<u8> {
    let n = names.len();
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    // One type, `() -> ()`.
    section(1, &[1, 0x60, 0, 0], &mut wasm);
    let mut funcs = Vec::new();
    leb128(n, &mut funcs);
    funcs.resize(funcs.len() + n, 0);
    section(3, &funcs, &mut wasm);
    let mut exports = Vec::new();
    leb128(n, &mut exports);
    for (index, name) in names.iter().enumerate() {
        leb128(name.len(), &mut exports);
        exports.extend_from_slice(name.as_bytes());
        exports.push(0);
        leb128(index, &mut exports);
    }
    section(7, &exports, &mut wasm);
    let mut code = Vec::new();
    leb128(n, &mut code);
    for _ in 0..n {
        // Two bytes: no locals, `end`.
        code.extend_from_slice(&[2, 0, 0x0b]);
    }
    section(10, &code, &mut wasm);
    wasm
}

/// Small artifacts whose module has a device adapter for each slug.
fn artifacts_with(slugs: &[&str]) -> Artifacts {
    let mut names: Vec<String> = slugs
        .iter()
        .map(|s| [DEVICE_EXPORT_PREFIX, s].concat())
        .collect();
    names.push("start".into());
    Artifacts::new(
        "(function(){var config = __SWITCHYARD_CONFIG__;})();\n",
        module_exporting(&names),
    )
    .unwrap()
}

/// The catalog with every connection mode offered as available, as it
/// will be once every implementation has landed.
fn catalog_all_available() -> Catalog {
    let manifests: Vec<(&str, String, &str)> = switchyard_destinations::REGISTRY
        .iter()
        .map(|(slug, manifest, logo)| {
            let mut rewritten = String::new();
            for line in manifest.lines() {
                if line.trim_start().starts_with("available") {
                    continue;
                }
                rewritten.push_str(line);
                rewritten.push('\n');
                if line.starts_with("mode = ") {
                    rewritten.push_str("available = true\n");
                }
            }
            (*slug, rewritten, *logo)
        })
        .collect();
    let catalog =
        Catalog::from_manifests(manifests.iter().map(|(s, m, l)| (*s, m.as_str(), *l))).unwrap();
    assert!(
        catalog
            .all()
            .iter()
            .all(|d| d.modes.iter().all(|m| m.available))
    );
    catalog
}

/// The built browser library in the workspace's `bundles/`.
fn built_artifacts() -> Artifacts {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bundles");
    Artifacts::load(&dir).unwrap_or_else(|e| panic!("{e}"))
}

async fn connect(t: &TestApp, source: &Source, slug: &str, mode: Mode, settings: Value) {
    t.store
        .create_connection(NewConnection {
            source_id: source.id.clone(),
            destination: slug.into(),
            mode,
            enabled: true,
            settings: settings.to_string(),
        })
        .await
        .unwrap();
}

fn loader_url(source: &Source) -> String {
    ["/analytics.js/v1/", &source.write_key, "/analytics.min.js"].concat()
}

async fn get_with(t: &TestApp, url: &str, accept_encoding: Option<&str>) -> Reply {
    let mut request = Request::get(url);
    if let Some(accept) = accept_encoding {
        request = request.header("accept-encoding", accept);
    }
    t.send(request.body(Body::empty()).unwrap()).await
}

/// The body as sent, decoded by its `Content-Encoding`.
fn decoded(r: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    match r.header("content-encoding") {
        "" => out.clone_from(&r.body),
        "br" => {
            brotli::Decompressor::new(r.body.as_slice(), 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "gzip" => {
            flate2::read::GzDecoder::new(r.body.as_slice())
                .read_to_end(&mut out)
                .unwrap();
        }
        other => panic!("unexpected content-encoding {other:?}"),
    }
    out
}

/// The loader's inlined config.
fn loader_config(js: &str) -> Value {
    let mut de = serde_json::Deserializer::from_str(&js[js.find("{\"writeKey\"").unwrap()..]);
    serde::Deserialize::deserialize(&mut de).unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Everything a page or analytics-next can fetch for `source`: the loader
/// and the module it names, each as sent in every encoding (decoded) and
/// with its headers, and the settings document.
async fn everything_served(t: &TestApp, source: &Source) -> (Value, Value, Vec<(String, Vec<u8>)>) {
    let mut served = Vec::new();
    let mut record = |what: String, r: &Reply| {
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text());
        let mut bytes = decoded(r);
        for (name, value) in &r.headers {
            bytes.extend_from_slice(name.as_str().as_bytes());
            bytes.extend_from_slice(value.as_bytes());
        }
        served.push((what, bytes));
    };
    let url = loader_url(source);
    let loader = get_with(t, &url, None).await;
    record(url.clone(), &loader);
    let config = loader_config(&loader.text());
    let module = ["/b/", config["wasm"].as_str().unwrap(), ".wasm"].concat();
    for accept in [None, Some("gzip"), Some("br")] {
        for url in [&url, &module] {
            let r = get_with(t, url, accept).await;
            assert_eq!(r.header("content-encoding"), accept.unwrap_or(""), "{url}");
            record([url, " ", accept.unwrap_or("identity")].concat(), &r);
        }
    }
    let settings_url = ["/v1/projects/", &source.write_key, "/settings"].concat();
    let settings = get_with(t, &settings_url, None).await;
    record(settings_url, &settings);
    (config, settings.json(), served)
}

/// Connects every destination in `catalog` to a new source (device mode
/// where it has one, cloud otherwise), every setting given a distinctive
/// value, and checks what is served: no secret value anywhere, each
/// available device-mode destination with all of its other settings in
/// the loader, each available cloud-mode destination named as unbundled.
/// Returns how many destinations the loader carried and how many were
/// unbundled.
async fn no_secret_is_served(catalog: Catalog, artifacts: Artifacts) -> (usize, usize) {
    let mut t = TestApp::new().await;
    t.state.catalog = Arc::new(catalog);
    t.state.artifacts = Arc::new(Ok(artifacts));
    let source = t.source_named("Everything").await;
    let catalog = t.state.catalog.clone();
    let mut secrets = Vec::new();
    let (mut device, mut cloud): (Vec<&Definition>, Vec<&Definition>) = (vec![], vec![]);
    for def in catalog.all() {
        let mode = if def.mode(Mode::Device).is_some() {
            Mode::Device
        } else {
            Mode::Cloud
        };
        let mut settings = Map::new();
        for s in &def.settings {
            let value = if s.secret {
                secrets.push(secret_value(&def.slug, &s.key));
                secret_value(&def.slug, &s.key)
            } else {
                plain_value(&def.slug, &s.key)
            };
            settings.insert(s.key.clone(), value.into());
        }
        connect(&t, &source, &def.slug, mode, settings.into()).await;
        if def.mode(mode).is_some_and(|m| m.available) {
            match mode {
                Mode::Device => device.push(def),
                Mode::Cloud => cloud.push(def),
            }
        }
    }
    assert!(!secrets.is_empty(), "the catalog has secret settings");

    let (config, settings, served) = everything_served(&t, &source).await;
    for (what, bytes) in &served {
        assert!(!contains(bytes, "SECRET-"), "a secret in {what}");
        for secret in &secrets {
            assert!(!contains(bytes, secret), "{secret} in {what}");
        }
    }

    let artifacts = t.state.artifacts.as_ref().as_ref().unwrap();
    let inlined = config["destinations"].as_array().unwrap();
    for def in &device {
        assert!(
            artifacts.adapters().contains(&def.slug),
            "the device mode of {} is available but the built library has no adapter \
             `device:{}`: rebuild it (cargo xtask build-client)",
            def.slug,
            def.slug
        );
        let entry = inlined
            .iter()
            .find(|d| d["slug"] == def.slug.as_str())
            .unwrap_or_else(|| panic!("{} is not in the loader: {config}", def.slug));
        has_plain_settings(entry, def, "loader");
    }
    assert_eq!(inlined.len(), device.len(), "{config}");

    // The settings document lists the same destinations beside
    // `integrations` (which holds Segment.io alone, so analytics-next
    // installs nothing): device mode with the same settings, cloud mode by
    // name.
    assert_eq!(
        settings["integrations"].as_object().unwrap().len(),
        1,
        "{settings}"
    );
    let listed = settings["destinations"].as_array().unwrap();
    for def in &device {
        let entry = listed
            .iter()
            .find(|e| e["slug"] == def.slug.as_str() && e["mode"] == "device")
            .unwrap_or_else(|| panic!("{} not listed in {settings}", def.slug));
        has_plain_settings(entry, def, "settings document");
    }
    for def in &cloud {
        assert!(
            listed
                .iter()
                .any(|e| e["name"] == def.name.as_str() && e["mode"] == "cloud"),
            "{} not listed in {settings}",
            def.name
        );
    }
    assert_eq!(listed.len(), device.len() + cloud.len(), "{settings}");

    let mut names: Vec<&str> = cloud.iter().map(|d| d.name.as_str()).collect();
    names.sort();
    assert_eq!(config["unbundled"], serde_json::json!(names));
    assert_eq!(
        settings["integrations"]["Segment.io"]["unbundledIntegrations"],
        serde_json::json!(names)
    );
    (device.len(), cloud.len())
}

#[tokio::test]
async fn no_secret_reaches_the_loader_the_module_or_the_settings() {
    // The catalog and the library as they are: each device mode offered
    // as available has its adapter in the built library, and the loader.
    let catalog = switchyard_destinations::catalog().unwrap();
    no_secret_is_served(catalog, built_artifacts()).await;
}

#[tokio::test]
async fn no_secret_is_served_with_every_mode_available() {
    // As it will be: every mode available, an adapter for each device
    // mode (in a small module, the real loader template).
    let catalog = catalog_all_available();
    let slugs: Vec<String> = catalog
        .all()
        .iter()
        .filter(|d| d.mode(Mode::Device).is_some())
        .map(|d| d.slug.clone())
        .collect();
    let mut names: Vec<String> = slugs
        .iter()
        .map(|s| [DEVICE_EXPORT_PREFIX, s].concat())
        .collect();
    names.push("start".into());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bundles");
    let template = std::fs::read_to_string(dir.join(LOADER_FILE))
        .unwrap_or_else(|e| panic!("{e}: run `cargo xtask build-client`"));
    let artifacts = Artifacts::new(&template, module_exporting(&names)).unwrap();
    let (device, cloud) = no_secret_is_served(catalog, artifacts).await;
    assert_eq!(device, slugs.len());
    assert!(device > 0 && cloud > 0, "{device} {cloud}");
}

#[tokio::test]
async fn a_destination_in_both_modes_is_listed_in_each_and_the_server_delivers_it() {
    let mut t = TestApp::new().await;
    t.state.catalog = Arc::new(catalog_all_available());
    let source = t.source.clone();
    let settings = serde_json::json!({"token": "0123456789abcdef0123456789abcdef"});
    connect(&t, &source, "mixpanel", Mode::Device, settings.clone()).await;
    connect(&t, &source, "mixpanel", Mode::Cloud, settings).await;
    let r = t
        .get(&["/v1/projects/", &source.write_key, "/settings"].concat())
        .await;
    let s = r.json();
    assert_eq!(
        s["destinations"],
        serde_json::json!([
            {
                "name": "Mixpanel",
                "slug": "mixpanel",
                "mode": "device",
                "settings": {"token": "0123456789abcdef0123456789abcdef"},
            },
            {"name": "Mixpanel", "mode": "cloud"},
        ])
    );
    assert_eq!(
        s["integrations"]["Segment.io"]["unbundledIntegrations"],
        serde_json::json!(["Mixpanel"])
    );
}

fn wasm_of(r: &Reply) -> String {
    loader_config(&r.text())["wasm"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn each_source_loads_the_module_of_its_set_of_adapters() {
    let mut t = TestApp::new().await;
    t.state.catalog = Arc::new(catalog_all_available());
    t.state.artifacts = Arc::new(Ok(artifacts_with(&["mixpanel", "posthog", "hotjar"])));
    let artifacts = t.state.artifacts.as_ref().as_ref().unwrap().clone();
    let token = serde_json::json!({"token": "0123456789abcdef0123456789abcdef"});
    let a = t.source_named("A").await;
    let b = t.source_named("B").await;
    let c = t.source_named("C").await;
    // A and B: the same set, added in another order; C: another.
    connect(&t, &a, "mixpanel", Mode::Device, token.clone()).await;
    connect(&t, &a, "posthog", Mode::Device, serde_json::json!({})).await;
    connect(&t, &b, "posthog", Mode::Device, serde_json::json!({})).await;
    connect(&t, &b, "mixpanel", Mode::Device, token.clone()).await;
    connect(&t, &c, "mixpanel", Mode::Device, token.clone()).await;
    // Cloud mode needs no adapter.
    connect(&t, &c, "slack", Mode::Cloud, serde_json::json!({})).await;

    let wasm_a = wasm_of(&t.get(&loader_url(&a)).await);
    let wasm_b = wasm_of(&t.get(&loader_url(&b)).await);
    let wasm_c = wasm_of(&t.get(&loader_url(&c)).await);
    let wasm_none = wasm_of(&t.get(&loader_url(&t.source)).await);
    assert_eq!(wasm_a, wasm_b);
    assert_ne!(wasm_a, wasm_c);
    assert_ne!(wasm_c, wasm_none);
    assert_ne!(wasm_a, wasm_none);

    let exports = |hash: &str| {
        let module = artifacts.module_by_hash(hash).unwrap();
        let text = String::from_utf8_lossy(&module.bytes).into_owned();
        ["mixpanel", "posthog", "hotjar"]
            .into_iter()
            .filter(|s| text.contains(&[DEVICE_EXPORT_PREFIX, s].concat()))
            .collect::<Vec<_>>()
    };
    assert_eq!(exports(&wasm_a), ["mixpanel", "posthog"]);
    assert_eq!(exports(&wasm_c), ["mixpanel"]);
    assert!(exports(&wasm_none).is_empty());
    for hash in [&wasm_a, &wasm_c, &wasm_none] {
        let r = t.get(&["/b/", hash, ".wasm"].concat()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.header("cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(r.header("content-type"), "application/wasm");
        assert_eq!(
            switchyard_bundler::content_hash(&r.body),
            *hash,
            "the name is the content's hash"
        );
    }

    // Switching an adapter off in the admin changes the next loader's
    // module.
    let posthog = t.store.connections(&a.id).await.unwrap()[1].id.clone();
    let r = t
        .send(
            axum::http::Request::patch(["/api/connections/", &posthog].concat())
                .header("authorization", ["Bearer ", common::TOKEN].concat())
                .header("content-type", "application/json")
                .body(axum::body::Body::from(r#"{"enabled": false}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(wasm_of(&t.get(&loader_url(&a)).await), wasm_c);
    // Changed by another process (the CLI), it shows within a second.
    t.store
        .update_connection(
            &posthog,
            switchyard_store::ConnectionUpdate {
                enabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(wasm_of(&t.get(&loader_url(&a)).await), wasm_a);
}

#[tokio::test]
async fn a_destination_without_an_adapter_in_the_library_is_left_out_alone() {
    let mut t = TestApp::new().await;
    t.state.catalog = Arc::new(catalog_all_available());
    t.state.artifacts = Arc::new(Ok(artifacts_with(&["posthog"])));
    let token = serde_json::json!({"token": "0123456789abcdef0123456789abcdef"});
    connect(&t, &t.source, "mixpanel", Mode::Device, token).await;
    connect(
        &t,
        &t.source,
        "posthog",
        Mode::Device,
        serde_json::json!({}),
    )
    .await;
    let r = t.get(&loader_url(&t.source)).await;
    assert_eq!(r.status, StatusCode::OK);
    let config = loader_config(&r.text());
    let slugs: Vec<&str> = config["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["posthog"]);
    let module = t
        .get(&["/b/", config["wasm"].as_str().unwrap(), ".wasm"].concat())
        .await;
    assert_eq!(module.status, StatusCode::OK);
}

#[tokio::test]
async fn after_a_restart_a_module_named_by_an_older_loader_is_built_on_request() {
    let mut t = TestApp::new().await;
    t.state.catalog = Arc::new(catalog_all_available());
    t.state.artifacts = Arc::new(Ok(artifacts_with(&["mixpanel", "posthog"])));
    let other = t.source_named("Other").await;
    connect(
        &t,
        &t.source,
        "posthog",
        Mode::Device,
        serde_json::json!({}),
    )
    .await;
    let token = serde_json::json!({"token": "0123456789abcdef0123456789abcdef"});
    connect(&t, &other, "mixpanel", Mode::Device, token).await;
    let hash = wasm_of(&t.get(&loader_url(&t.source)).await);
    let other_hash = wasm_of(&t.get(&loader_url(&other)).await);
    let before = t.get(&["/b/", &hash, ".wasm"].concat()).await;

    // A new process: the same store and library, nothing built or kept
    // yet.
    t.state.artifacts = Arc::new(Ok(artifacts_with(&["mixpanel", "posthog"])));
    t.state.public = Default::default();
    let fresh = t.state.artifacts.as_ref().as_ref().unwrap().clone();
    assert!(fresh.module_by_hash(&hash).is_none());
    let after = t.get(&["/b/", &hash, ".wasm"].concat()).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body, before.body);
    // Every source's current set was built on the way.
    assert!(fresh.module_by_hash(&other_hash).is_some());

    // A hash no current set has: still a 404.
    let r = t.get("/b/0123456789abcdef0123456789abcdef.wasm").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.json()["error"].as_str().unwrap().is_empty());
}
