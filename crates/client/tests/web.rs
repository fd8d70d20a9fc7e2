//! In-browser unit tests of the library (wasm-bindgen-test in headless
//! Chromium): identity storage, the delivery queue and its retries against
//! a local tracking API that fails on purpose (`tests/src/bin/mock-api.rs`,
//! started by `cargo xtask test`, its origin passed at build time as
//! `SWITCHYARD_TEST_API`), consent, middleware and plugin order.

#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Object, Reflect};
use switchyard_client::{Identity, call, start};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn api() -> &'static str {
    match option_env!("SWITCHYARD_TEST_API") {
        Some(origin) => origin,
        None => {
            panic!("SWITCHYARD_TEST_API is not set: run these tests through `cargo xtask test`")
        }
    }
}

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
    for name in ["ajs_anonymous_id", "ajs_user_id", "ajs_group_id"] {
        document()
            .set_cookie(&[name, "=; path=/; max-age=0"].concat())
            .unwrap();
        storage().remove_item(name).unwrap();
    }
    storage().remove_item("ajs_user_traits").unwrap();
}

fn get(v: &JsValue, path: &str) -> JsValue {
    path.split('.').fold(v.clone(), |v, k| {
        if v.is_object() {
            Reflect::get(&v, &k.into()).unwrap()
        } else {
            JsValue::UNDEFINED
        }
    })
}

fn s(v: &JsValue, path: &str) -> String {
    get(v, path)
        .as_string()
        .unwrap_or_else(|| panic!("{path} is not a string in {:?}", js_sys::JSON::stringify(v)))
}

fn obj(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap()
}

fn args(values: &[JsValue]) -> Array {
    values.iter().collect()
}

/// A JS function from source, for plugins and listeners written as a page
/// would write them.
fn js(params: &str, body: &str) -> Function {
    Function::new_with_args(params, body)
}

/// Starts the library for `write_key` against the mock API.
fn boot(write_key: &str, options: &str) {
    let config = obj(&[
        "{\"writeKey\":\"",
        write_key,
        "\",\"apiHost\":\"",
        api(),
        "\"}",
    ]
    .concat());
    boot_with(&config, options);
}

/// The loader's pipeline and helpers for vendors (`var vendor = {...}`).
const VENDOR_JS: &str = include_str!("../../../web/vendor.js");

/// Starts the library with `config` as the loader would: with its pipeline,
/// its helpers for vendor scripts and the module's exports.
fn boot_with(config: &JsValue, options: &str) {
    let vendor = Function::new_no_args(&[VENDOR_JS, "\nreturn vendor;"].concat())
        .call0(&JsValue::UNDEFINED)
        .unwrap();
    // The loader hands the pipeline the module's `call`.
    let module_call = wasm_bindgen::closure::Closure::<dyn Fn(String, Array) -> JsValue>::new(
        |method: String, arguments: Array| call(&method, arguments),
    );
    Reflect::set(&vendor, &"call".into(), &module_call.into_js_value()).unwrap();
    Reflect::set(&vendor, &"facade".into(), &Object::new()).unwrap();
    start(config, &obj(options), vendor, &wasm_bindgen::exports()).unwrap();
}

async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    JsFuture::from(p).await.unwrap();
}

async fn received(write_key: &str) -> Vec<JsValue> {
    let url = [api(), "/log/", write_key].concat();
    // gloo-net here, where size does not matter; the library posts with
    // `fetch` directly (ARCHITECTURE.md: gloo-net adds 2 KB brotli).
    let body = gloo_net::http::Request::get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Array::from(&js_sys::JSON::parse(&body).unwrap())
        .iter()
        .collect()
}

/// Waits until the mock API has `n` requests for `write_key`.
async fn wait_for(write_key: &str, n: usize, within_ms: i32) -> Vec<JsValue> {
    let mut waited = 0;
    loop {
        let got = received(write_key).await;
        if got.len() >= n || waited > within_ms {
            return got;
        }
        sleep(50).await;
        waited += 50;
    }
}

async fn done(p: JsValue) -> JsValue {
    JsFuture::from(js_sys::Promise::from(p)).await.unwrap()
}

#[wasm_bindgen_test]
fn anonymous_id_is_a_uuid_kept_in_cookie_and_local_storage() {
    clear_identity();
    let id = Identity::load().anonymous_id().to_string();
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
    storage()
        .set_item("ajs_user_traits", "{\"plan\":\"pro\"}")
        .unwrap();
    let identity = Identity::load();
    assert_eq!(identity.anonymous_id(), "seg-anon-1");
    assert_eq!(identity.user_id(), Some("seg-user-1"));
    assert_eq!(
        get(identity.traits(), "plan").as_string().as_deref(),
        Some("pro")
    );
    clear_identity();
}

#[wasm_bindgen_test]
async fn events_have_segment_shape_and_identity_persists() {
    clear_identity();
    boot("ok-shape", "{}");
    done(call(
        "identify",
        args(&["u-1".into(), obj(r#"{"email":"a@b.c"}"#)]),
    ))
    .await;
    done(call(
        "track",
        args(&["Order Completed".into(), obj(r#"{"revenue":12.5}"#)]),
    ))
    .await;
    done(call(
        "page",
        args(&["Docs".into(), "Intro".into(), obj(r#"{"a":1}"#)]),
    ))
    .await;
    done(call(
        "group",
        args(&["g-1".into(), obj(r#"{"plan":"pro"}"#)]),
    ))
    .await;
    done(call("alias", args(&["u-2".into()]))).await;
    done(call("screen", args(&["Home".into()]))).await;
    let got = wait_for("ok-shape", 6, 5000).await;
    assert_eq!(got.len(), 6);
    let body = |path: &str| {
        got.iter()
            .find(|r| s(r, "path") == path)
            .map(|r| get(r, "body"))
            .unwrap_or_else(|| panic!("nothing sent to {path}"))
    };
    let identify = body("/v1/i");
    assert_eq!(s(&identify, "userId"), "u-1");
    assert_eq!(s(&identify, "traits.email"), "a@b.c");
    let track = body("/v1/t");
    assert_eq!(s(&track, "type"), "track");
    assert_eq!(s(&track, "event"), "Order Completed");
    assert_eq!(get(&track, "properties.revenue").as_f64(), Some(12.5));
    assert_eq!(s(&track, "userId"), "u-1");
    assert_eq!(s(&track, "writeKey"), "ok-shape");
    assert!(s(&track, "sentAt").ends_with('Z'));
    assert_eq!(s(&track, "context.library.name"), "switchyard.js");
    assert!(s(&track, "context.userAgent").contains("Chrome"));
    assert!(!s(&track, "context.timezone").is_empty());
    assert!(get(&track, "context.screen.width").as_f64().is_some());
    let page = body("/v1/p");
    assert_eq!(s(&page, "category"), "Docs");
    assert_eq!(s(&page, "properties.name"), "Intro");
    assert_eq!(s(&page, "properties.url"), s(&page, "context.page.url"));
    let group = body("/v1/g");
    assert_eq!(s(&group, "groupId"), "g-1");
    assert_eq!(s(&group, "traits.plan"), "pro");
    let alias = body("/v1/a");
    assert_eq!(s(&alias, "userId"), "u-2");
    assert_eq!(s(&alias, "previousId"), "u-1");
    assert_eq!(s(&body("/v1/s"), "name"), "Home");
    assert_eq!(Identity::load().user_id(), Some("u-1"));

    // reset forgets the user and starts a new anonymous id.
    let before = call("_anonymousId", Array::new()).as_string().unwrap();
    call("reset", Array::new());
    assert_ne!(
        call("_anonymousId", Array::new()).as_string().unwrap(),
        before
    );
    assert!(call("_userId", Array::new()).is_null());
    clear_identity();
}

#[wasm_bindgen_test]
async fn options_set_integrations_timestamp_context_and_anonymous_id() {
    boot("ok-options", "{}");
    let options = obj(
        r#"{"integrations":{"All":false,"Mixpanel":true,"Segment.io":true},"timestamp":"2026-01-02T03:04:05.000Z","anonymousId":"anon-x","context":{"ip":"1.2.3.4"},"traits":{"plan":"pro"}}"#,
    );
    done(call("track", args(&["E".into(), obj("{}"), options]))).await;
    let got = wait_for("ok-options", 1, 5000).await;
    let e = get(&got[0], "body");
    assert_eq!(get(&e, "integrations.All").as_bool(), Some(false));
    assert_eq!(get(&e, "integrations.Mixpanel").as_bool(), Some(true));
    assert_eq!(s(&e, "timestamp"), "2026-01-02T03:04:05.000Z");
    assert_eq!(s(&e, "anonymousId"), "anon-x");
    assert_eq!(s(&e, "context.ip"), "1.2.3.4");
    assert_eq!(s(&e, "context.traits.plan"), "pro");
}

#[wasm_bindgen_test]
async fn server_errors_are_retried_with_the_same_message_id_and_a_retry_count() {
    boot("e500-retry", "{}");
    done(call("track", args(&["Retried".into()]))).await;
    // Between attempts the event waits in localStorage.
    wait_for("e500-retry", 1, 5000).await;
    sleep(50).await;
    let queued = || {
        (0..storage().length().unwrap())
            .filter_map(|i| storage().key(i).unwrap())
            .filter(|k| k.starts_with("sy.e500-retry.q."))
            .count()
    };
    assert_eq!(
        queued(),
        1,
        "the event was not persisted while waiting to be retried"
    );
    let got = wait_for("e500-retry", 3, 8000).await;
    assert_eq!(got.len(), 3, "two 500s then a 200");
    let ids: Vec<String> = got.iter().map(|r| s(r, "body.messageId")).collect();
    assert!(ids.iter().all(|id| id == &ids[0]));
    let retries: Vec<JsValue> = got.iter().map(|r| get(r, "retry")).collect();
    assert!(retries[0].is_null());
    assert_eq!(retries[1].as_string().as_deref(), Some("1"));
    assert_eq!(retries[2].as_string().as_deref(), Some("2"));
    let t: Vec<f64> = got.iter().map(|r| get(r, "t").as_f64().unwrap()).collect();
    assert!(t[2] - t[1] >= t[1] - t[0] - 50.0, "backoff grows: {t:?}");
    sleep(300).await;
    // Delivered: no longer queued in localStorage.
    assert_eq!(queued(), 0);
}

#[wasm_bindgen_test]
async fn too_many_requests_waits_for_retry_after() {
    boot("r429-wait", "{}");
    done(call("track", args(&["Throttled".into()]))).await;
    let got = wait_for("r429-wait", 2, 6000).await;
    assert_eq!(got.len(), 2);
    let t: Vec<f64> = got.iter().map(|r| get(r, "t").as_f64().unwrap()).collect();
    assert!(
        t[1] - t[0] >= 950.0,
        "Retry-After: 1 was not honoured: {t:?}"
    );
}

#[wasm_bindgen_test]
async fn a_bad_request_is_dropped_and_reported() {
    boot("b400-drop", "{}");
    let errors = Array::new();
    let listener = js("errors", "return function (e) { errors.push(e.message); }")
        .call1(&JsValue::UNDEFINED, &errors)
        .unwrap();
    call("on", args(&["error".into(), listener]));
    done(call("track", args(&["Refused".into()]))).await;
    let got = wait_for("b400-drop", 1, 5000).await;
    assert_eq!(got.len(), 1);
    sleep(1500).await;
    assert_eq!(received("b400-drop").await.len(), 1, "a 400 was retried");
    let messages: Vec<String> = errors.iter().filter_map(|m| m.as_string()).collect();
    assert!(messages.iter().any(|m| m.contains("400")), "{messages:?}");
}

#[wasm_bindgen_test]
async fn batching_sends_one_request_for_several_events() {
    boot(
        "ok-batch",
        r#"{"integrations":{"Segment.io":{"deliveryStrategy":{"strategy":"batching","config":{"size":3,"timeout":500}}}}}"#,
    );
    for i in 0..4 {
        done(call(
            "track",
            args(&[["B", &i.to_string()].concat().into()]),
        ))
        .await;
    }
    let got = wait_for("ok-batch", 2, 4000).await;
    assert_eq!(got.len(), 2, "3 by size, then 1 by timeout");
    assert_eq!(s(&got[0], "path"), "/v1/b");
    assert_eq!(Array::from(&get(&got[0], "body.batch")).length(), 3);
    assert_eq!(s(&got[0], "body.writeKey"), "ok-batch");
    assert_eq!(Array::from(&get(&got[1], "body.batch")).length(), 1);
}

#[wasm_bindgen_test]
async fn middleware_and_plugins_run_in_order() {
    boot("ok-order", "{}");
    let order = Array::new();
    let make = js(
        "order, name, type",
        "var p = {name: name, type: type, version: '1', isLoaded: function () { return true; }, load: function () { return Promise.resolve(); }};
         p.track = function (ctx) { order.push(name); return ctx; };
         return p;",
    );
    let plugin = |name: &str, kind: &str| {
        make.call3(&JsValue::UNDEFINED, &order, &name.into(), &kind.into())
            .unwrap()
    };
    // Registered out of order on purpose.
    done(call(
        "register",
        args(&[
            plugin("after-1", "after"),
            plugin("dest-1", "destination"),
            plugin("enrich-1", "enrichment"),
            plugin("before-1", "before"),
        ]),
    ))
    .await;
    let source_mw = js("order", "return function (a) { order.push('source-mw'); a.payload.obj.properties.seen = true; a.next(a.payload); };")
        .call1(&JsValue::UNDEFINED, &order)
        .unwrap();
    let dest_mw = js(
        "order",
        "return function (a) { order.push('dest-mw'); a.next(a.payload); };",
    )
    .call1(&JsValue::UNDEFINED, &order)
    .unwrap();
    call("addSourceMiddleware", args(&[source_mw]));
    call(
        "addDestinationMiddleware",
        args(&["dest-1".into(), dest_mw]),
    );
    done(call("track", args(&["Ordered".into(), obj("{}")]))).await;
    let got: Vec<String> = order.iter().filter_map(|v| v.as_string()).collect();
    assert_eq!(
        got,
        [
            "source-mw",
            "before-1",
            "enrich-1",
            "dest-mw",
            "dest-1",
            "after-1"
        ]
    );
    let sent = wait_for("ok-order", 1, 5000).await;
    assert_eq!(get(&sent[0], "body.properties.seen").as_bool(), Some(true));

    // A source middleware passing null drops the event.
    let drop = js("", "return function (a) { a.next(null); };")
        .call0(&JsValue::UNDEFINED)
        .unwrap();
    call("addSourceMiddleware", args(&[drop]));
    done(call("track", args(&["Dropped".into()]))).await;
    sleep(500).await;
    assert_eq!(received("ok-order").await.len(), 1);
}

#[wasm_bindgen_test]
async fn a_failing_destination_does_not_hold_back_ready_or_the_others() {
    boot("ok-isolation", "{}");
    let calls = Array::new();
    let broken = obj(r#"{"name":"Broken","type":"destination","version":"1"}"#);
    Reflect::set(
        &broken,
        &"load".into(),
        &js("", "return Promise.reject(new Error('no script'));"),
    )
    .unwrap();
    let throwing = obj(r#"{"name":"Thrower","type":"destination","version":"1"}"#);
    Reflect::set(
        &throwing,
        &"track".into(),
        &js("", "throw new Error('boom');"),
    )
    .unwrap();
    let fine = js("calls", "return {name: 'Fine', type: 'destination', version: '1', load: function () {}, track: function (ctx) { calls.push(ctx.event.event); }};")
        .call1(&JsValue::UNDEFINED, &calls)
        .unwrap();
    done(call("register", args(&[broken, throwing, fine]))).await;
    let ready = call("ready", Array::new());
    done(ready).await;
    let ctx = done(call("track", args(&["Isolated".into()]))).await;
    assert_eq!(s(&ctx, "event.event"), "Isolated");
    assert_eq!(calls.length(), 1);
    assert_eq!(wait_for("ok-isolation", 1, 5000).await.len(), 1);
}

#[wasm_bindgen_test]
async fn consent_decides_which_destinations_load_and_receive() {
    boot(
        "ok-consent",
        r#"{"consent":{"categoryPreferences":{"Advertising":false,"Analytics":true}}}"#,
    );
    let loads = Array::new();
    let calls = Array::new();
    let ads = js(
        "loads, calls",
        "return {name: 'Ads', type: 'destination', version: '1', consentCategories: ['Advertising'],
                 load: function () { loads.push('Ads'); }, track: function (ctx) { calls.push(ctx.event.event); }};",
    )
    .call2(&JsValue::UNDEFINED, &loads, &calls)
    .unwrap();
    call("register", args(&[ads]));
    done(call("track", args(&["Before consent".into()]))).await;
    assert_eq!(loads.length(), 0, "loaded without consent");
    assert_eq!(calls.length(), 0);
    let sent = wait_for("ok-consent", 1, 5000).await;
    assert_eq!(
        get(
            &sent[0],
            "body.context.consent.categoryPreferences.Advertising"
        )
        .as_bool(),
        Some(false)
    );

    call(
        "consent",
        args(&[obj(
            r#"{"categoryPreferences":{"Advertising":true,"Analytics":true}}"#,
        )]),
    );
    done(call("ready", Array::new())).await;
    assert_eq!(loads.length(), 1);
    done(call("track", args(&["After consent".into()]))).await;
    assert_eq!(
        calls
            .iter()
            .filter_map(|c| c.as_string())
            .collect::<Vec<_>>(),
        ["After consent"]
    );
}

#[wasm_bindgen_test]
async fn a_canonical_link_names_the_page() {
    boot("ok-canonical", "{}");
    let link = js(
        "href",
        "var l = document.createElement('link'); l.rel = 'canonical'; l.href = href; document.head.appendChild(l); return l;",
    )
    .call1(&JsValue::UNDEFINED, &"https://shop.example/products/1".into())
    .unwrap();
    done(call("page", args(&[]))).await;
    js("l", "l.remove();")
        .call1(&JsValue::UNDEFINED, &link)
        .unwrap();
    done(call("track", args(&["After".into()]))).await;
    let got = wait_for("ok-canonical", 2, 5000).await;
    let page = got
        .iter()
        .find(|r| s(r, "path") == "/v1/p")
        .map(|r| get(r, "body"))
        .unwrap();
    assert_eq!(
        s(&page, "context.page.canonical"),
        "https://shop.example/products/1"
    );
    assert_eq!(
        s(&page, "context.page.url"),
        "https://shop.example/products/1"
    );
    let track = got
        .iter()
        .find(|r| s(r, "path") == "/v1/t")
        .map(|r| get(r, "body"))
        .unwrap();
    assert!(
        get(&track, "context.page.canonical").is_undefined(),
        "no canonical link, no key"
    );
}

/// The entries of `window.dataLayer` gtag pushed as `arguments` objects,
/// each as an array, whose first item is `command`.
fn gtag_entries(command: &str) -> Vec<Array> {
    let layer = js("", "return window.dataLayer || []")
        .call0(&JsValue::UNDEFINED)
        .unwrap();
    let is_arguments = js(
        "a",
        "return Object.prototype.toString.call(a) === '[object Arguments]'",
    );
    Array::from(&layer)
        .iter()
        .filter(|e| {
            is_arguments
                .call1(&JsValue::UNDEFINED, e)
                .unwrap()
                .is_truthy()
        })
        .map(|e| Array::from(&e))
        .filter(|a| a.get(0).as_string().as_deref() == Some(command))
        .collect()
}

#[wasm_bindgen_test]
async fn a_device_destination_loads_its_vendor_and_gets_mapped_calls() {
    // gtag.js stands in as a script that marks itself loaded, as gtag.js
    // defines google_tag_manager; the adapter appends `?id=...`, commented out.
    let config = obj(&[
        r#"{"writeKey":"ok-device","apiHost":""#,
        api(),
        r#"","unbundled":["Webhook"],"destinations":[{"slug":"google_analytics_4","name":"Google Analytics 4","settings":{"measurementId":"G-DEVICE1","scriptUrl":"data:text/javascript,window.google_tag_manager={}//"}}]}"#,
    ]
    .concat());
    boot_with(&config, "{}");
    let errors = Array::new();
    let record = js("errors", "return function (e) { errors.push(e); }")
        .call1(&JsValue::UNDEFINED, &errors)
        .unwrap();
    call("on", args(&["error".into(), record]));
    done(call("ready", Array::new())).await;

    let revenue = obj(r#"{"order_id":"o-1","revenue":12.5,"currency":"EUR"}"#);
    done(call("track", args(&["Order Completed".into(), revenue]))).await;
    let skipped = obj(r#"{"integrations":{"Google Analytics 4":false}}"#);
    done(call(
        "track",
        args(&["Not For GA".into(), Object::new().into(), skipped]),
    ))
    .await;

    assert_eq!(errors.length(), 0, "{:?}", js_sys::JSON::stringify(&errors));
    // The snippet's calls, as arguments objects gtag.js reads.
    let config = gtag_entries("config");
    assert_eq!(config.len(), 1);
    assert_eq!(config[0].get(1).as_string().as_deref(), Some("G-DEVICE1"));
    assert_eq!(gtag_entries("js").len(), 1);
    // Order Completed is GA4's purchase; the other event never reached it.
    let events: Vec<String> = gtag_entries("event")
        .iter()
        .filter_map(|a| a.get(1).as_string())
        .collect();
    assert_eq!(events, ["purchase"]);
    let purchase = &gtag_entries("event")[0];
    assert_eq!(s(&purchase.get(2), "transaction_id"), "o-1");

    // The server hears of both, told who had each in the browser.
    let got = wait_for("ok-device", 2, 5000).await;
    assert_eq!(got.len(), 2);
    let bundled = |i: usize| -> Vec<String> {
        let b = get(&get(&get(&got[i], "body"), "_metadata"), "bundled");
        Array::from(&b)
            .iter()
            .filter_map(|v| v.as_string())
            .collect()
    };
    assert_eq!(bundled(0), ["Segment.io", "Google Analytics 4"]);
    assert_eq!(bundled(1), ["Segment.io"]);
    let unbundled = get(&get(&get(&got[0], "body"), "_metadata"), "unbundled");
    assert_eq!(
        Array::from(&unbundled).get(0).as_string().as_deref(),
        Some("Webhook")
    );
}

#[wasm_bindgen_test]
async fn a_vendor_script_that_fails_is_reported_and_holds_nothing_back() {
    // Nothing listens on port 9: the script fails to load.
    let config = obj(&[
        r#"{"writeKey":"ok-device-fail","apiHost":""#,
        api(),
        r#"","destinations":[{"slug":"mixpanel","name":"Mixpanel","settings":{"token":"t","scriptUrl":"http://127.0.0.1:9/mixpanel.js"}},{"slug":"posthog","name":"PostHog","settings":{"apiKey":"k","scriptUrl":"data:text/javascript,throw new Error('vendor broke')"}}]}"#,
    ]
    .concat());
    boot_with(&config, "{}");
    let errors = Array::new();
    let record = js(
        "errors",
        "return function (e) { errors.push(String(e && (e.message || e))); }",
    )
    .call1(&JsValue::UNDEFINED, &errors)
    .unwrap();
    call("on", args(&["error".into(), record]));
    done(call("ready", Array::new())).await;
    done(call("track", args(&["Still Sent".into()]))).await;

    let errors: Vec<String> = errors.iter().filter_map(|e| e.as_string()).collect();
    assert!(
        errors.iter().any(|e| e.contains("Mixpanel")),
        "no error for Mixpanel in {errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("PostHog")),
        "no error for PostHog in {errors:?}"
    );
    let got = wait_for("ok-device-fail", 1, 5000).await;
    assert_eq!(got.len(), 1);
    assert_eq!(s(&get(&got[0], "body"), "event"), "Still Sent");
}

#[wasm_bindgen_test]
async fn device_destinations_wait_for_consent_and_pass_through_their_middleware() {
    // The Pixel's stand-in takes over the fbq stub as fbevents.js does.
    let fbevents = "data:text/javascript,window.fbCalls=[];\
fbq.callMethod=function(){fbCalls.push([].slice.call(arguments))};\
fbq.queue.forEach(function(a){fbCalls.push([].slice.call(a))})";
    let config = js(
        "api, fbevents",
        "return {writeKey: 'ok-device-consent', apiHost: api, destinations: [
        {slug: 'google_tag_manager', name: 'Google Tag Manager', categories: ['Analytics'],
         settings: {containerId: 'GTM-C1', scriptUrl: 'data:text/javascript,window.gtmLoaded=1//'}},
        {slug: 'facebook_pixel', name: 'Facebook Pixel', categories: ['Advertising'],
         settings: {pixelId: '42', scriptUrl: fbevents}}]}",
    )
    .call2(&JsValue::UNDEFINED, &api().into(), &fbevents.into())
    .unwrap();
    boot_with(
        &config,
        r#"{"consent":{"categoryPreferences":{"Analytics":true,"Advertising":false}}}"#,
    );
    // Tag Manager's copy of each event is renamed on its way.
    let rename = js(
        "",
        "return function (m) { m.payload.obj.event = 'Renamed ' + m.payload.obj.event; m.next(m.payload); };",
    )
    .call0(&JsValue::UNDEFINED)
    .unwrap();
    call(
        "addDestinationMiddleware",
        args(&["Google Tag Manager".into(), rename]),
    );
    done(call("ready", Array::new())).await;
    done(call("track", args(&["First".into()]))).await;

    let layer_events = || -> Vec<String> {
        let layer = js("", "return window.dataLayer")
            .call0(&JsValue::UNDEFINED)
            .unwrap();
        Array::from(&layer)
            .iter()
            .filter_map(|e| get(&e, "event").as_string())
            .collect()
    };
    assert!(
        layer_events().contains(&"Renamed First".to_string()),
        "{:?}",
        layer_events()
    );
    let fb_loaded = || {
        js("", "return !!window.fbCalls")
            .call0(&JsValue::UNDEFINED)
            .unwrap()
            .is_truthy()
    };
    assert!(!fb_loaded(), "the Pixel loaded without consent");
    let sent = wait_for("ok-device-consent", 1, 5000).await;
    let bundled = get(&get(&sent[0], "body"), "_metadata.bundled");
    assert_eq!(
        Array::from(&bundled)
            .iter()
            .filter_map(|v| v.as_string())
            .collect::<Vec<_>>(),
        ["Segment.io", "Google Tag Manager"]
    );

    call(
        "consent",
        args(&[obj(
            r#"{"categoryPreferences":{"Analytics":true,"Advertising":true}}"#,
        )]),
    );
    done(call("ready", Array::new())).await;
    done(call("track", args(&["Second".into()]))).await;
    assert!(fb_loaded(), "the Pixel did not load once consented");
    let calls = js("", "return JSON.stringify(window.fbCalls)")
        .call0(&JsValue::UNDEFINED)
        .unwrap()
        .as_string()
        .unwrap();
    assert!(calls.contains(r#"["init","42"]"#), "{calls}");
    assert!(calls.contains(r#"["trackCustom","Second""#), "{calls}");
    assert!(!calls.contains("First"), "{calls}");
}
