//! Device mode end to end, in headless Chromium: destinations enabled
//! through the admin API load their vendor's script in the page, and the
//! library calls it.
//!
//! - Real vendor SDKs from npm (mixpanel-browser, @amplitude/analytics-browser,
//!   posthog-js), served by mock-api and pointed at its mock collection
//!   APIs through each connection's settings.
//! - Local stand-ins, also from mock-api, for the vendors whose script has
//!   no copy here (gtag.js, gtm.js, fbevents.js, Intercom, Hotjar, Klaviyo,
//!   Customer.io, Crisp): each records every call made to the vendor's global.
//! - Toggling a destination changes the next bundle, down to the wasm.
//! - A vendor script that 404s, hangs or throws holds nothing else back.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use switchyard_tests::{Browser, MockApi, Server, Site, WATCH_ERRORS, html};

/// Connects `slug` in device mode to the demo source, enabled; returns the
/// connection's id.
async fn connect(server: &Server, slug: &str, settings: Value) -> Result<String> {
    let c = server
        .api_post(
            &["/sources/", &server.demo_source_id, "/connections"].concat(),
            json!({"destination": slug, "mode": "device", "settings": settings, "enabled": true}),
        )
        .await?;
    c["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no connection id in {c}"))
}

/// Records what the library reports through `on('error')`, and when
/// `ready()` resolved.
const WATCH_LIBRARY: &str = "window.libraryErrors = [];
analytics.on('error', function (e) {
  libraryErrors.push(String(e && e.message) + ': ' + String(e && e.detail && (e.detail.message || e.detail)));
});
analytics.ready(function () { window.libraryReady = true; });";

/// A page on the site: the error watch, the demo source's snippet with
/// `load_options`, the library watch, then `calls`.
fn device_page(
    site: &Site,
    server: &Server,
    name: &str,
    load_options: &str,
    calls: &str,
) -> String {
    let key = &server.demo_write_key;
    let snippet = server.snippet(key).replacen(
        &["analytics.load(\"", key, "\");"].concat(),
        &["analytics.load(\"", key, "\", ", load_options, ");"].concat(),
        1,
    );
    // The snippet's own first page call would reach every destination;
    // each test makes its own calls.
    let snippet = snippet.replacen("analytics.page();", "", 1);
    site.page(
        name,
        &html(
            name,
            &[
                WATCH_ERRORS,
                "\n",
                &snippet,
                "\n",
                WATCH_LIBRARY,
                "\n",
                calls,
            ]
            .concat(),
        ),
    )
}

/// What the page recorded of the stand-ins: `window.__standin`.
async fn recorded(browser: &Browser) -> Result<Value> {
    browser.eval("return window.__standin || {};").await
}

/// Whether `list` (an array of calls, each an array) has a call whose
/// first items are `head` and which, as text, contains each of `parts`.
fn has_call(list: &Value, head: &[Value], parts: &[&str]) -> bool {
    list.as_array().into_iter().flatten().any(|call| {
        let items = call.as_array().map(Vec::as_slice).unwrap_or_default();
        let text = call.to_string();
        items.len() >= head.len()
            && items.iter().zip(head).all(|(a, b)| a == b)
            && parts.iter().all(|p| text.contains(p))
    })
}

/// The website id Crisp's stand-in is given.
const CRISP_WEBSITE_ID: &str = "6d2b0a4e-1c3f-4b5a-9e8d-7f6a5b4c3d2e";

/// The calls every device test page makes: an identified user who buys,
/// reads a page and joins a company.
const CALLS: &str =
    "analytics.identify('user-42', {email: 'ada@example.com', firstName: 'Ada', plan: 'pro'});
analytics.track('Order Completed', {order_id: 'o-42', revenue: 30, currency: 'EUR',
  products: [{product_id: 'p-1', name: 'Pen', price: 10, quantity: 3}]});
analytics.page('Docs', 'Intro');
analytics.group('acme', {name: 'Acme'});";

/// The server has the page's events, each told which destinations had it
/// in the browser.
async fn events_reached_the_server(server: &Server, bundled: &[&str]) -> Result<()> {
    let order = server
        .wait_for_event(|e| e["event"] == "Order Completed")
        .await?;
    let got: Vec<&str> = order["_metadata"]["bundled"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for name in bundled {
        ensure!(got.contains(name), "_metadata.bundled {got:?} lacks {name}");
    }
    server.wait_for_event(|e| e["type"] == "identify").await?;
    server.wait_for_event(|e| e["type"] == "page").await?;
    server.wait_for_event(|e| e["type"] == "group").await?;
    Ok(())
}

async fn no_page_errors(browser: &Browser) -> Result<()> {
    let errors = browser.eval("return window.pageErrors;").await?;
    ensure!(errors == json!([]), "the page saw errors: {errors}");
    Ok(())
}

#[tokio::test]
async fn stand_ins_get_each_vendors_calls_as_its_documentation_defines() -> Result<()> {
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let server = Server::start().await?;
    let standin = |path: &str| mock.url(&["/vendor/standin/", path].concat());
    connect(
        &server,
        "google_analytics_4",
        json!({"measurementId": "G-E2E1", "scriptUrl": standin("gtag/js")}),
    )
    .await?;
    connect(
        &server,
        "google_tag_manager",
        json!({"containerId": "GTM-E2E1", "scriptUrl": standin("gtm.js")}),
    )
    .await?;
    connect(
        &server,
        "facebook_pixel",
        json!({"pixelId": "1234567890", "scriptUrl": standin("fbevents.js")}),
    )
    .await?;
    connect(
        &server,
        "intercom",
        json!({"appId": "abc123de", "scriptUrl": standin("intercom/")}),
    )
    .await?;
    connect(
        &server,
        "hotjar",
        json!({"siteId": "3141592", "scriptUrl": standin("hotjar-")}),
    )
    .await?;
    connect(
        &server,
        "klaviyo",
        json!({"publicApiKey": "PK1234", "scriptUrl": standin("klaviyo.js")}),
    )
    .await?;
    connect(
        &server,
        "customerio",
        json!({"siteId": "cio-site-1", "scriptUrl": standin("customerio.js")}),
    )
    .await?;
    connect(
        &server,
        "crisp",
        json!({"websiteId": CRISP_WEBSITE_ID, "scriptUrl": standin("l.js")}),
    )
    .await?;

    let site = Site::start().await?;
    let url = device_page(&site, &server, "standins", "{}", CALLS);
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    browser.wait_until("window.libraryReady === true").await?;
    events_reached_the_server(
        &server,
        &[
            "Google Analytics 4",
            "Google Tag Manager",
            "Facebook Pixel",
            "Intercom",
            "Hotjar",
            "Klaviyo",
            "Customer.io",
            "Crisp",
        ],
    )
    .await?;
    // The vendor calls are made once each destination has the event (and
    // Crisp's chatbox has booted, a moment after its loader).
    browser
        .wait_until(
            "window.__standin && __standin.cio && __standin.cio.some(function (c) { return c[0] === 'track'; }) \
             && __standin.crisp && __standin.crisp.some(function (c) { return c[1] === 'session:event'; })",
        )
        .await?;
    let s = recorded(&browser).await?;

    // gtag.js: the snippet's js and config, the user id, Order Completed as
    // GA4's purchase with its items, the page as page_view.
    let gtag = &s["gtag"];
    ensure!(has_call(gtag, &[json!("js")], &[]), "no gtag js: {gtag}");
    ensure!(
        has_call(gtag, &[json!("config"), json!("G-E2E1")], &[]),
        "no gtag config: {gtag}"
    );
    ensure!(
        has_call(gtag, &[json!("set")], &["\"user_id\":\"user-42\""]),
        "no user id set: {gtag}"
    );
    ensure!(
        has_call(
            gtag,
            &[json!("event"), json!("purchase")],
            &[
                "\"transaction_id\":\"o-42\"",
                "\"value\":30",
                "\"currency\":\"EUR\"",
                "\"item_id\":\"p-1\""
            ]
        ),
        "no purchase: {gtag}"
    );
    ensure!(
        s["gtagIds"] == json!(["G-E2E1"]),
        "gtag.js loaded as {}",
        s["gtagIds"]
    );

    // gtm.js: the container start, then each event pushed with its name.
    let gtm = s["gtm"].to_string();
    ensure!(
        s["gtmIds"] == json!(["GTM-E2E1"]),
        "gtm.js loaded as {}",
        s["gtmIds"]
    );
    for part in [
        "\"event\":\"gtm.js\"",
        "\"event\":\"Order Completed\"",
        "\"order_id\":\"o-42\"",
    ] {
        ensure!(gtm.contains(part), "no {part} in the data layer: {gtm}");
    }

    // fbevents.js: init with the pixel, Purchase with value and contents,
    // PageView.
    let fbq = &s["fbq"];
    ensure!(
        has_call(fbq, &[json!("init"), json!("1234567890")], &[]),
        "{fbq}"
    );
    ensure!(
        has_call(
            fbq,
            &[json!("track"), json!("Purchase")],
            &[
                "\"value\":30",
                "\"currency\":\"EUR\"",
                "\"content_ids\":[\"p-1\"]"
            ]
        ),
        "no Purchase: {fbq}"
    );
    ensure!(
        has_call(fbq, &[json!("track"), json!("PageView")], &[]),
        "{fbq}"
    );

    // Intercom: booted with the app id, the user updated, the order tracked
    // with its price in cents, the company set.
    let intercom = &s["intercom"];
    ensure!(
        has_call(intercom, &[json!("boot")], &["\"app_id\":\"abc123de\""]),
        "no boot: {intercom}"
    );
    ensure!(
        has_call(
            intercom,
            &[json!("update")],
            &["\"user_id\":\"user-42\"", "\"email\":\"ada@example.com\""]
        ),
        "no user: {intercom}"
    );
    ensure!(
        has_call(
            intercom,
            &[json!("trackEvent"), json!("Order Completed")],
            &["\"amount\":3000"]
        ),
        "no order: {intercom}"
    );
    ensure!(
        has_call(intercom, &[json!("update")], &["\"company_id\":\"acme\""]),
        "no company: {intercom}"
    );

    // Hotjar: its settings, the identified user, the event by name.
    ensure!(
        s["hotjarSettings"].to_string().contains("\"hjid\":3141592"),
        "hotjar settings: {}",
        s["hotjarSettings"]
    );
    let hj = &s["hj"];
    ensure!(
        has_call(
            hj,
            &[json!("identify"), json!("user-42")],
            &["ada@example.com"]
        ),
        "{hj}"
    );
    ensure!(
        has_call(hj, &[json!("event"), json!("Order Completed")], &[]),
        "{hj}"
    );

    // Klaviyo: the profile with Klaviyo's special properties, the order with
    // $value and $event_id.
    ensure!(
        s["klaviyoCompanyId"] == json!(["PK1234"]) || s["klaviyoCompanyId"] == json!("PK1234"),
        "klaviyo.js loaded as {}",
        s["klaviyoCompanyId"]
    );
    let klaviyo = &s["klaviyo"];
    ensure!(
        has_call(
            klaviyo,
            &[json!("identify")],
            &["\"$email\":\"ada@example.com\"", "\"$id\":\"user-42\""]
        ),
        "{klaviyo}"
    );
    ensure!(
        has_call(
            klaviyo,
            &[json!("track"), json!("Order Completed")],
            &["\"$value\":30", "\"$event_id\":\"o-42\""]
        ),
        "{klaviyo}"
    );

    // Customer.io: the site id from the script tag, the person, the order.
    ensure!(
        s["cioSiteId"].to_string().contains("cio-site-1"),
        "track.js saw site id {}",
        s["cioSiteId"]
    );
    let cio = &s["cio"];
    ensure!(
        has_call(
            cio,
            &[json!("identify")],
            &["\"id\":\"user-42\"", "\"email\":\"ada@example.com\""]
        ),
        "{cio}"
    );
    ensure!(
        has_call(
            cio,
            &[json!("track"), json!("Order Completed")],
            &["\"order_id\":\"o-42\""]
        ),
        "{cio}"
    );

    // Crisp: the website id before its loader, the user's fields and flat
    // traits as session data, the order as a session event with its flat
    // properties; page and group are not Crisp's.
    ensure!(
        s["crispWebsiteId"] == CRISP_WEBSITE_ID,
        "l.js saw website id {}",
        s["crispWebsiteId"]
    );
    let crisp = &s["crisp"];
    let set = |key: &str, value: Value| json!(["set", key, [value]]);
    let commands = crisp.as_array().context("no Crisp commands")?;
    for expected in [
        set("user:email", json!("ada@example.com")),
        set("user:nickname", json!("Ada")),
        set(
            "session:data",
            json!([["user_id", "user-42"], ["plan", "pro"]]),
        ),
        set(
            "session:event",
            json!([["Order Completed", {"order_id": "o-42", "revenue": 30, "currency": "EUR"}]]),
        ),
    ] {
        ensure!(commands.contains(&expected), "no {expected} in {crisp}");
    }
    ensure!(commands.len() == 4, "other Crisp commands: {crisp}");

    let errors = browser.eval("return window.libraryErrors;").await?;
    ensure!(errors == json!([]), "the library reported {errors}");
    no_page_errors(&browser).await?;
    browser.close().await
}

#[tokio::test]
async fn a_vendor_script_that_404s_hangs_or_throws_holds_nothing_else_back() -> Result<()> {
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let server = Server::start().await?;
    let hostile = |path: &str| mock.url(&["/vendor/hostile/", path].concat());
    // Three destinations whose scripts fail, each in its own way, and one
    // that works.
    connect(
        &server,
        "mixpanel",
        json!({"token": "0123456789abcdef0123456789abcdef", "scriptUrl": hostile("missing.js")}),
    )
    .await?;
    connect(
        &server,
        "posthog",
        json!({"apiKey": "phc_hang", "scriptUrl": hostile("hang.js?ms=30000")}),
    )
    .await?;
    connect(
        &server,
        "amplitude",
        json!({"apiKey": "fedcba9876543210fedcba9876543210", "scriptUrl": hostile("throws.js")}),
    )
    .await?;
    connect(
        &server,
        "facebook_pixel",
        json!({"pixelId": "1234567890", "scriptUrl": mock.url("/vendor/standin/fbevents.js")}),
    )
    .await?;

    let site = Site::start().await?;
    // A short wait for scripts, so the hanging one is given up on quickly.
    let url = device_page(
        &site,
        &server,
        "hostile",
        "{destinationTimeout: 3000}",
        CALLS,
    );
    let browser = Browser::start().await?;
    let started = Instant::now();
    browser.client.goto(&url).await?;
    browser.wait_until("window.libraryReady === true").await?;
    // The working destination got its calls.
    browser
        .wait_until(
            "window.__standin && __standin.fbq && __standin.fbq.some(function (c) { return c[1] === 'Purchase'; })",
        )
        .await?;
    // The server got every event, told only the working destination had it.
    events_reached_the_server(&server, &["Facebook Pixel"]).await?;
    let order = server
        .wait_for_event(|e| e["event"] == "Order Completed")
        .await?;
    // Whether the failed ones are listed depends on whether they had failed
    // when the event was built; those that had are not.
    ensure!(
        started.elapsed() < Duration::from_secs(30),
        "the page waited for the hanging script"
    );

    // Each failure was reported, naming the destination and why.
    browser
        .wait_until("window.libraryErrors.length >= 3")
        .await?;
    let errors = browser.eval("return window.libraryErrors;").await?;
    let text = errors.to_string();
    for (name, why) in [
        ("Mixpanel", "could not load"),
        ("PostHog", "did not load in time"),
        ("Amplitude", "did not define window.amplitude.init"),
    ] {
        ensure!(
            errors
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|e| e.contains(name) && e.contains(why)),
            "no report that {name} failed ({why}) in {text}"
        );
    }
    // The page itself saw only the throwing script's own error: the
    // vendor's, not the library's (cross-origin, the browser hides its
    // message as "Script error.").
    let page = browser.eval("return window.pageErrors;").await?;
    ensure!(
        page.as_array().into_iter().flatten().all(|e| e
            .as_str()
            .is_some_and(|e| e.contains("hostile vendor script") || e.contains("Script error"))),
        "the page saw {page}"
    );
    // And the page still works: a later call is delivered.
    browser
        .eval("analytics.track('After Failures'); return true;")
        .await?;
    server
        .wait_for_event(|e| e["event"] == "After Failures")
        .await?;
    let _ = order;
    browser.close().await
}

/// Chromium as a visitor's desktop browser: PostHog drops events from
/// browsers that call themselves headless or say they are automated
/// (`navigator.webdriver`), as bots; the site's visitors do neither.
const DESKTOP_CHROME: &[&str] = &[
    "--user-agent=Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 \
(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "--disable-blink-features=AutomationControlled",
];

const MIXPANEL_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const AMPLITUDE_KEY: &str = "fedcba9876543210fedcba9876543210";

/// The vendor's SDK from npm, as mock-api serves it.
fn npm(mock: &MockApi, path: &str) -> String {
    mock.url(&["/vendor/npm/", path].concat())
}

async fn connect_mixpanel(server: &Server, mock: &MockApi) -> Result<String> {
    connect(
        server,
        "mixpanel",
        json!({
            "token": MIXPANEL_TOKEN,
            "apiHost": mock.url("/mixpanel"),
            "scriptUrl": npm(mock, "mixpanel-browser/dist/mixpanel.min.js"),
        }),
    )
    .await
}

/// The decoded JSON bodies of `vendor`'s requests to `endpoint`, each
/// event on its own (batches flattened).
fn bodies(requests: &[Value], endpoint: &str) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| {
            r["method"] == "POST" && r["path"].as_str().is_some_and(|p| p.contains(endpoint))
        })
        .flat_map(|r| match &r["json"] {
            Value::Array(items) => items.clone(),
            Value::Object(o) => match o.get("batch").or(o.get("events")) {
                Some(Value::Array(items)) => items.clone(),
                _ => vec![r["json"].clone()],
            },
            _ => Vec::new(),
        })
        .collect()
}

fn find<'a>(items: &'a [Value], what: &str, matches: impl Fn(&Value) -> bool) -> Result<&'a Value> {
    items
        .iter()
        .find(|v| matches(v))
        .with_context(|| format!("no {what} in {}", Value::Array(items.to_vec())))
}

#[tokio::test]
async fn real_vendor_sdks_send_their_own_requests_with_the_mapped_fields() -> Result<()> {
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let server = Server::start().await?;
    connect_mixpanel(&server, &mock).await?;
    connect(
        &server,
        "amplitude",
        json!({
            "apiKey": AMPLITUDE_KEY,
            "serverUrl": mock.url("/amplitude/2/httpapi"),
            "scriptUrl": npm(&mock, "@amplitude/analytics-browser/lib/scripts/amplitude-min.js"),
        }),
    )
    .await?;
    connect(
        &server,
        "posthog",
        json!({
            "apiKey": "phc_e2eTestKey",
            "apiHost": mock.url("/posthog"),
            "scriptUrl": npm(&mock, "posthog-js/dist/array.js"),
        }),
    )
    .await?;

    let site = Site::start().await?;
    let url = device_page(&site, &server, "sdks", "{}", CALLS);
    let browser = Browser::start_with(DESKTOP_CHROME).await?;
    browser.client.goto(&url).await?;
    browser.wait_until("window.libraryReady === true").await?;
    events_reached_the_server(&server, &["Mixpanel", "Amplitude", "PostHog"]).await?;

    // Mixpanel: the profile with Mixpanel's reserved properties, the order
    // by the identified user, the page as Viewed ... Page, the group.
    let requests = mock
        .wait_for(
            "mixpanel",
            &[
                "Order Completed",
                "$email",
                "Viewed Docs Intro Page",
                "acme",
            ],
        )
        .await?;
    let tracked = bodies(&requests, "/track");
    let order = find(&tracked, "Order Completed track", |e| {
        e["event"] == "Order Completed"
    })?;
    ensure!(order["properties"]["token"] == MIXPANEL_TOKEN, "{order}");
    ensure!(order["properties"]["distinct_id"] == "user-42", "{order}");
    ensure!(order["properties"]["revenue"] == 30, "{order}");
    ensure!(order["properties"]["order_id"] == "o-42", "{order}");
    find(&tracked, "page view", |e| {
        e["event"] == "Viewed Docs Intro Page"
    })?;
    let engaged = bodies(&requests, "/engage");
    let profile = find(&engaged, "profile $set", |e| {
        e["$set"]["$email"] == "ada@example.com"
    })?;
    ensure!(profile["$set"]["$first_name"] == "Ada", "{profile}");
    ensure!(profile["$distinct_id"] == "user-42", "{profile}");
    find(&engaged, "group", |e| {
        e["$set"]["company"] == json!(["acme"])
    })?;

    // Amplitude: the user id on every event, traits as user properties, the
    // order with its revenue, the group.
    let requests = mock
        .wait_for(
            "amplitude",
            &[
                "Order Completed",
                "Viewed Docs Intro Page",
                "ada@example.com",
                "acme",
            ],
        )
        .await?;
    let events = bodies(&requests, "/2/httpapi");
    let order = find(&events, "Order Completed", |e| {
        e["event_type"] == "Order Completed"
    })?;
    ensure!(order["user_id"] == "user-42", "{order}");
    ensure!(order["event_properties"]["order_id"] == "o-42", "{order}");
    ensure!(order["revenue"] == 30, "{order}");
    let identify = find(&events, "$identify with traits", |e| {
        e["event_type"] == "$identify" && e["user_properties"]["$set"]["email"] == "ada@example.com"
    })?;
    ensure!(
        identify["user_properties"]["$set"]["plan"] == "pro",
        "{identify}"
    );
    find(&events, "page", |e| {
        e["event_type"] == "Viewed Docs Intro Page"
    })?;
    ensure!(
        requests
            .iter()
            .any(|r| r["json"]["api_key"] == AMPLITUDE_KEY),
        "no request with the API key"
    );

    // PostHog: $identify with the traits, the order captured for the user,
    // the page as $pageview, the company group.
    let requests = mock
        .wait_for(
            "posthog",
            &[
                "Order Completed",
                "$identify",
                "$pageview",
                "$groupidentify",
            ],
        )
        .await?;
    let events = bodies(&requests, "/e");
    let identify = find(&events, "$identify", |e| e["event"] == "$identify")?;
    ensure!(
        identify["properties"]["distinct_id"] == "user-42",
        "{identify}"
    );
    ensure!(
        identify["$set"]["email"] == "ada@example.com"
            || identify["properties"]["$set"]["email"] == "ada@example.com",
        "{identify}"
    );
    let order = find(&events, "Order Completed", |e| {
        e["event"] == "Order Completed"
    })?;
    ensure!(order["properties"]["distinct_id"] == "user-42", "{order}");
    ensure!(order["properties"]["revenue"] == 30, "{order}");
    let group = find(&events, "$groupidentify", |e| {
        e["event"] == "$groupidentify"
    })?;
    ensure!(group["properties"]["$group_key"] == "acme", "{group}");
    ensure!(
        requests
            .iter()
            .any(|r| r["json"]["api_key"] == "phc_e2eTestKey"),
        "no request with the project key"
    );

    let errors = browser.eval("return window.libraryErrors;").await?;
    ensure!(errors == json!([]), "the library reported {errors}");
    no_page_errors(&browser).await?;
    browser.close().await
}

/// The names a module exports.
fn exports(wasm: &[u8]) -> Result<Vec<String>> {
    let module = walrus::Module::from_buffer(wasm)?;
    Ok(module.exports.iter().map(|e| e.name.clone()).collect())
}

/// The loader the snippet gets for the demo source, and the module it names.
async fn bundle(server: &Server) -> Result<(String, Vec<u8>)> {
    let http = reqwest::Client::new();
    let loader = http
        .get(
            [
                &server.origin,
                "/analytics.js/v1/",
                &server.demo_write_key,
                "/analytics.min.js",
            ]
            .concat(),
        )
        .send()
        .await?
        .text()
        .await?;
    let hash: String = loader
        .split_once("\"wasm\":\"")
        .map(|(_, rest)| rest.chars().take_while(char::is_ascii_hexdigit).collect())
        .filter(|h: &String| !h.is_empty())
        .with_context(|| format!("no module named in the loader: {loader}"))?;
    let wasm = http
        .get([&server.origin, "/b/", &hash, ".wasm"].concat())
        .send()
        .await?
        .bytes()
        .await?;
    Ok((loader, wasm.to_vec()))
}

#[tokio::test]
async fn switching_mixpanel_on_and_off_changes_the_next_bundle_down_to_the_wasm() -> Result<()> {
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let server = Server::start().await?;
    let site = Site::start().await?;
    let browser = Browser::start().await?;

    // Off: the bundle has no Mixpanel.
    let (loader, wasm) = bundle(&server).await?;
    ensure!(!loader.contains(MIXPANEL_TOKEN));
    ensure!(!exports(&wasm)?.contains(&"device:mixpanel".to_string()));

    // On, through the admin API: the next bundle loads mixpanel-browser and
    // its calls arrive.
    let id = connect_mixpanel(&server, &mock).await?;
    let (loader, wasm) = bundle(&server).await?;
    ensure!(
        loader.contains(MIXPANEL_TOKEN),
        "the loader lacks Mixpanel's settings"
    );
    ensure!(exports(&wasm)?.contains(&"device:mixpanel".to_string()));
    let url = device_page(
        &site,
        &server,
        "toggle-on",
        "{}",
        "analytics.track('While On');",
    );
    browser.client.goto(&url).await?;
    mock.wait_for("mixpanel", &["While On"]).await?;
    server.wait_for_event(|e| e["event"] == "While On").await?;

    // Off again: the next bundle's wasm has no Mixpanel export, and nothing
    // reaches Mixpanel.
    server
        .api_patch(&["/connections/", &id].concat(), json!({"enabled": false}))
        .await?;
    let (loader, wasm) = bundle(&server).await?;
    ensure!(
        !loader.contains(MIXPANEL_TOKEN),
        "the loader still has Mixpanel"
    );
    let names = exports(&wasm)?;
    ensure!(!names.contains(&"device:mixpanel".to_string()), "{names:?}");
    mock.clear().await?;
    // A visitor without the previous loader in their cache (a returning one
    // gets the new bundle once the loader's max-age has passed).
    browser.close().await?;
    let browser = Browser::start().await?;
    let url = device_page(
        &site,
        &server,
        "toggle-off",
        "{}",
        "analytics.track('While Off');",
    );
    browser.client.goto(&url).await?;
    server.wait_for_event(|e| e["event"] == "While Off").await?;
    browser.wait_until("window.libraryReady === true").await?;
    // Give a script that should not be there time to have sent something.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = mock.requests("mixpanel").await?;
    ensure!(sent.is_empty(), "Mixpanel still received {sent:?}");
    let loads = mock.requests("script").await?;
    ensure!(
        !Value::Array(loads.clone()).to_string().contains("mixpanel"),
        "mixpanel-browser was loaded again: {loads:?}"
    );
    browser.close().await
}
