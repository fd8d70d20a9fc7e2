//! In-browser unit tests of the library (wasm-bindgen-test in headless
//! Chromium): identity storage, argument shapes, event payloads.

#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Object, Reflect};
use switchyard_client::{Analytics, Identity};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn document() -> web_sys::HtmlDocument {
    web_sys::window()
        .unwrap()
        .document()
        .unwrap()
        .unchecked_into()
}

fn storage() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

fn clear_identity() {
    for name in ["ajs_anonymous_id", "ajs_user_id"] {
        document()
            .set_cookie(&[name, "=; path=/; max-age=0"].concat())
            .unwrap();
        storage().remove_item(name).unwrap();
    }
}

fn get(v: &JsValue, path: &str) -> JsValue {
    path.split('.')
        .fold(v.clone(), |v, k| Reflect::get(&v, &k.into()).unwrap())
}

fn s(v: &JsValue, path: &str) -> String {
    get(v, path)
        .as_string()
        .unwrap_or_else(|| panic!("{path} is not a string"))
}

fn args(values: &[JsValue]) -> Array {
    values.iter().collect()
}

fn obj(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap()
}

fn build(a: &mut Analytics, method: &str, values: &[JsValue]) -> (&'static str, Object) {
    a.build(method, &args(values))
        .unwrap_or_else(|| panic!("{method} built nothing"))
}

#[wasm_bindgen_test]
fn anonymous_id_is_a_uuid_kept_in_cookie_and_local_storage() {
    clear_identity();
    let first = Identity::load();
    let id = first.anonymous_id().to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");
    assert!(
        document()
            .cookie()
            .unwrap()
            .contains(&["ajs_anonymous_id=", &id].concat())
    );
    assert_eq!(
        storage().get_item("ajs_anonymous_id").unwrap(),
        Some(["\"", &id, "\""].concat())
    );
    assert_eq!(Identity::load().anonymous_id(), id);

    // Either store alone restores it.
    document()
        .set_cookie("ajs_anonymous_id=; path=/; max-age=0")
        .unwrap();
    assert_eq!(Identity::load().anonymous_id(), id);
    storage().remove_item("ajs_anonymous_id").unwrap();
    assert_eq!(Identity::load().anonymous_id(), id);
    clear_identity();
    assert_ne!(Identity::load().anonymous_id(), id);
}

#[wasm_bindgen_test]
fn ids_stored_by_segment_libraries_are_kept() {
    clear_identity();
    // analytics.js classic wrote JSON-encoded, URI-encoded cookies.
    document()
        .set_cookie("ajs_anonymous_id=%22seg-anon-1%22; path=/")
        .unwrap();
    document()
        .set_cookie("ajs_user_id=%22seg-user-1%22; path=/")
        .unwrap();
    let identity = Identity::load();
    assert_eq!(identity.anonymous_id(), "seg-anon-1");
    assert_eq!(identity.user_id(), Some("seg-user-1"));
    clear_identity();
}

#[wasm_bindgen_test]
fn track_payload() {
    clear_identity();
    let mut a = Analytics::new("WK".into(), "http://127.0.0.1:1".into());
    let props = obj(r#"{"revenue": 12.5}"#);
    let (path, ev) = build(&mut a, "track", &["Order Completed".into(), props.clone()]);
    let ev: JsValue = ev.into();
    assert_eq!(path, "t");
    assert_eq!(s(&ev, "type"), "track");
    assert_eq!(s(&ev, "event"), "Order Completed");
    assert_eq!(get(&ev, "properties.revenue").as_f64(), Some(12.5));
    assert_eq!(s(&ev, "anonymousId"), a.identity().anonymous_id());
    assert!(get(&ev, "userId").is_null());
    assert_eq!(s(&ev, "messageId").len(), 36);
    assert!(s(&ev, "timestamp").ends_with('Z'));
    assert_eq!(s(&ev, "context.library.name"), "switchyard.js");
    assert!(s(&ev, "context.userAgent").contains("Chrome"));
    assert_eq!(
        s(&ev, "context.page.url"),
        web_sys::window()
            .unwrap()
            .location()
            .href()
            .unwrap()
            .split('#')
            .next()
            .unwrap()
    );
    // The caller's object is copied, not kept.
    Reflect::set(&props, &"revenue".into(), &1.into()).unwrap();
    assert_eq!(get(&ev, "properties.revenue").as_f64(), Some(12.5));
}

#[wasm_bindgen_test]
fn track_without_a_name_sends_nothing() {
    let mut a = Analytics::new("WK".into(), String::new());
    assert!(a.build("track", &args(&[])).is_none());
    assert!(a.build("track", &args(&[JsValue::from(5)])).is_none());
    assert!(a.build("nonsense", &args(&["x".into()])).is_none());
}

#[wasm_bindgen_test]
fn options_integrations_are_carried() {
    let mut a = Analytics::new("WK".into(), String::new());
    let (_, ev) = build(
        &mut a,
        "track",
        &[
            "E".into(),
            obj("{}"),
            obj(r#"{"integrations": {"All": false, "Mixpanel": true}}"#),
        ],
    );
    assert_eq!(get(&ev, "integrations.All").as_bool(), Some(false));
    assert_eq!(get(&ev, "integrations.Mixpanel").as_bool(), Some(true));
}

#[wasm_bindgen_test]
fn snippet_buffered_page_context_wins_over_the_live_page() {
    let mut a = Analytics::new("WK".into(), String::new());
    let bpc = obj(
        r#"{"__t": "bpc", "p": "/then", "u": "https://shop.example/then?x=1#top", "s": "?x=1", "t": "Then", "r": "https://ref.example/"}"#,
    );
    let callback = js_sys::Function::new_no_args("");
    let (_, ev) = build(&mut a, "track", &["E".into(), callback.into(), bpc]);
    assert_eq!(s(&ev, "context.page.path"), "/then");
    assert_eq!(s(&ev, "context.page.url"), "https://shop.example/then?x=1");
    assert_eq!(s(&ev, "context.page.search"), "?x=1");
    assert_eq!(s(&ev, "context.page.title"), "Then");
    assert_eq!(s(&ev, "context.page.referrer"), "https://ref.example/");
    assert!(get(&ev, "properties").is_object());
}

#[wasm_bindgen_test]
fn page_argument_shapes() {
    let mut a = Analytics::new("WK".into(), String::new());
    let (path, ev) = build(
        &mut a,
        "page",
        &["Docs".into(), "Intro".into(), obj(r#"{"a": 1}"#)],
    );
    assert_eq!(path, "p");
    assert_eq!(s(&ev, "category"), "Docs");
    assert_eq!(s(&ev, "name"), "Intro");
    assert_eq!(s(&ev, "properties.name"), "Intro");
    assert_eq!(get(&ev, "properties.a").as_f64(), Some(1.0));
    assert_eq!(s(&ev, "properties.url"), s(&ev, "context.page.url"));

    let (_, ev) = build(&mut a, "page", &["Pricing".into()]);
    assert_eq!(s(&ev, "name"), "Pricing");
    assert!(get(&ev, "category").is_undefined());

    let (_, ev) = build(&mut a, "page", &[obj(r#"{"title": "Mine"}"#)]);
    assert!(get(&ev, "name").is_undefined());
    assert_eq!(s(&ev, "properties.title"), "Mine");
}

#[wasm_bindgen_test]
fn identify_argument_shapes_and_user_id_persistence() {
    clear_identity();
    let mut a = Analytics::new("WK".into(), String::new());
    let (path, ev) = build(&mut a, "identify", &[obj(r#"{"email": "a@b.c"}"#)]);
    assert_eq!(path, "i");
    assert_eq!(s(&ev, "traits.email"), "a@b.c");
    assert!(get(&ev, "userId").is_null());

    let (_, ev) = build(
        &mut a,
        "identify",
        &[JsValue::from(42), obj(r#"{"plan": "pro"}"#)],
    );
    assert_eq!(s(&ev, "userId"), "42");
    assert_eq!(s(&ev, "traits.plan"), "pro");
    assert_eq!(a.identity().user_id(), Some("42"));
    assert!(document().cookie().unwrap().contains("ajs_user_id=42"));

    // Later events, and a reloaded identity, carry the user id.
    let (_, ev) = build(&mut a, "track", &["E".into()]);
    assert_eq!(s(&ev, "userId"), "42");
    assert_eq!(Identity::load().user_id(), Some("42"));
    clear_identity();
}
