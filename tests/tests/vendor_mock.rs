//! `mock-api`'s vendor side, which the device-mode tests stand on: the
//! recorder, the vendors' mock APIs, the scripts it serves, and, in real
//! headless Chromium, the stand-in scripts and the vendors' own SDKs
//! (`tests/vendor/package.json`) sending to it.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use switchyard_tests::{Browser, MockApi, Site};

fn page(script: &str) -> String {
    [
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Vendors</title><script>\n",
        script,
        "\n</script></head><body><p>Vendors</p></body></html>",
    ]
    .concat()
}

/// The vendors' SDKs are what `cargo xtask test` installs before the tests.
fn vendor_installed(path: &str) -> Result<()> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vendor/node_modules")
        .join(path);
    if !file.exists() {
        bail!(
            "{} is missing: run `cargo xtask test`, which installs tests/vendor with `npm ci`",
            file.display()
        );
    }
    Ok(())
}

#[tokio::test]
async fn vendor_requests_are_recorded_decoded_answered_and_cleared() -> Result<()> {
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let http = &mock.http;

    // Mixpanel: a form body whose `data` is base64 JSON; success is `1`.
    // `{"event":"A"}` URL-encoded as mixpanel-browser sends it.
    let r = http
        .post(mock.url("/mixpanel/track/?ip=1&_=5"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "http://localhost:1")
        .body("data=eyJldmVudCI6IkEifQ%3D%3D")
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:1"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    assert_eq!(r.text().await?, "1");

    // Amplitude: success names how many events it took.
    let r = http
        .post(mock.url("/amplitude/2/httpapi"))
        .json(&json!({"api_key": "K", "events": [{"event_type": "A"}, {"event_type": "B"}]}))
        .send()
        .await?;
    let answer: Value = r.json().await?;
    assert_eq!(answer["code"], 200);
    assert_eq!(answer["events_ingested"], 2);

    // PostHog: `{"status":1}`; a preflight is answered and recorded too.
    let r = http
        .request(reqwest::Method::OPTIONS, mock.url("/posthog/e/"))
        .header("origin", "http://localhost:1")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-headers"], "content-type");
    let r = http
        .post(mock.url("/posthog/e/"))
        .json(&json!({"api_key": "phc", "batch": [{"event": "A"}]}))
        .send()
        .await?;
    assert_eq!(r.json::<Value>().await?, json!({"status": 1}));

    let mixpanel = mock.requests("mixpanel").await?;
    assert_eq!(mixpanel.len(), 1);
    let m = &mixpanel[0];
    assert_eq!(m["vendor"], "mixpanel");
    assert_eq!(m["method"], "POST");
    assert_eq!(m["path"], "/mixpanel/track/");
    assert_eq!(m["endpoint"], "/track/");
    assert_eq!(m["query"], "ip=1&_=5");
    assert_eq!(m["contentType"], "application/x-www-form-urlencoded");
    assert_eq!(m["origin"], "http://localhost:1");
    assert_eq!(m["body"], "data=eyJldmVudCI6IkEifQ%3D%3D");
    assert_eq!(m["form"], json!({"data": "eyJldmVudCI6IkEifQ=="}));
    assert_eq!(m["json"], json!({"event": "A"}));

    let posthog = mock.requests("posthog").await?;
    let methods: Vec<&Value> = posthog.iter().map(|r| &r["method"]).collect();
    assert_eq!(methods, ["OPTIONS", "POST"]);
    assert_eq!(posthog[1]["json"]["batch"][0]["event"], "A");

    // Clearing one vendor keeps the others; clearing all forgets all.
    let r = http
        .delete(mock.url("/vendor/requests?vendor=mixpanel"))
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    assert!(mock.requests("mixpanel").await?.is_empty());
    assert_eq!(mock.requests("amplitude").await?.len(), 1);
    http.delete(mock.url("/vendor/requests")).send().await?;
    let all: Vec<Value> = http
        .get(mock.url("/vendor/requests"))
        .send()
        .await?
        .json()
        .await?;
    assert!(all.is_empty(), "{all:#?}");
    Ok(())
}

#[tokio::test]
async fn scripts_are_served_as_a_cdn_would_and_hostile_ones_misbehave() -> Result<()> {
    vendor_installed("posthog-js/dist/array.js")?;
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let http = &mock.http;

    let r = http
        .get(mock.url("/vendor/npm/posthog-js/dist/array.js"))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = http
        .get(mock.url("/vendor/npm/posthog-js/dist/none.js"))
        .send()
        .await?;
    assert_eq!(r.status(), 404);

    // A stand-in is wrapped with the shared helpers and knows its name.
    let body = http
        .get(mock.url("/vendor/standin/hotjar-42.js?sv=6"))
        .send()
        .await?
        .text()
        .await?;
    assert!(body.starts_with("(function (STANDIN) {"), "{body}");
    assert!(body.contains("_hjSettings") && body.ends_with("})(\"hotjar\");\n"));
    let r = http
        .get(mock.url("/vendor/standin/_prelude.js"))
        .send()
        .await?;
    assert_eq!(r.status(), 404);

    let r = http
        .get(mock.url("/vendor/hostile/missing.js"))
        .send()
        .await?;
    assert_eq!(r.status(), 404);
    let r = http
        .get(mock.url("/vendor/hostile/throws.js"))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert!(r.text().await?.contains("throw new Error"));

    // The hanging script holds its connection, and the server goes on
    // answering everything else meanwhile.
    let hang = http
        .get(mock.url("/vendor/hostile/hang.js"))
        .timeout(Duration::from_millis(1500))
        .send();
    let other = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        http.get(mock.url("/vendor/hostile/throws.js")).send().await
    };
    let (hang, other) = tokio::join!(hang, other);
    assert!(hang.is_err_and(|e| e.is_timeout()));
    assert_eq!(other?.status(), 200);
    let r = http
        .get(mock.url("/vendor/hostile/hang.js?ms=50"))
        .send()
        .await?;
    assert_eq!(r.status(), 200);

    // Every script load is recorded.
    let loads: Vec<Value> = mock
        .requests("script")
        .await?
        .into_iter()
        .map(|r| r["path"].clone())
        .collect();
    assert_eq!(loads.len(), 9, "{loads:#?}");
    assert_eq!(loads[0], "/vendor/npm/posthog-js/dist/array.js");
    Ok(())
}

/// Each vendor's own snippet shape, the stand-ins loaded after it, then
/// calls made once they have.
const STANDIN_PAGE: &str = r#"
function load(src, attrs) {
  var s = document.createElement('script');
  s.async = true; s.src = src;
  for (var k in (attrs || {})) s.setAttribute(k, attrs[k]);
  document.head.appendChild(s);
  return s;
}
window.dataLayer = window.dataLayer || [];
function gtag(){dataLayer.push(arguments);}
gtag('js', new Date(0)); gtag('config', 'G-1', {send_page_view: false});
dataLayer.push({'gtm.start': 1, event: 'gtm.js'});
!function(f){var n;if(f.fbq)return;n=f.fbq=function(){n.callMethod?n.callMethod.apply(n,arguments):n.queue.push(arguments)};if(!f._fbq)f._fbq=n;n.push=n;n.loaded=!0;n.version='2.0';n.queue=[];}(window);
fbq('init', '123'); fbq('track', 'PageView');
(function(){var i=function(){i.c(arguments);};i.q=[];i.c=function(args){i.q.push(args);};window.Intercom=i;})();
Intercom('boot', {app_id: 'abc'});
(function(h){h.hj=h.hj||function(){(h.hj.q=h.hj.q||[]).push(arguments)};h._hjSettings={hjid:123,hjsv:6};})(window);
hj('identify', 'u1', {plan: 'pro'});
var _cio = _cio || [];
(function(){var a,b,c;a=function(f){return function(){_cio.push([f].concat(Array.prototype.slice.call(arguments,0)))}};b=["load","identify","sidentify","track","page","on","off"];for(c=0;c<b.length;c++){_cio[b[c]]=a(b[c])};})();
_cio.identify({id: 'u1'});
!function(){if(!window.klaviyo){window._klOnsite=window._klOnsite||[];try{window.klaviyo=new Proxy({},{get:function(n,i){return"push"===i?function(){var n;(n=window._klOnsite).push.apply(n,arguments)}:function(){for(var n=arguments.length,o=new Array(n),w=0;w<n;w++)o[w]=arguments[w];var t="function"==typeof o[o.length-1]?o.pop():void 0,e=new Promise((function(n){window._klOnsite.push([i].concat(o,[function(i){t&&t(i),n(i)}]))}));return e}}})}catch(n){window.klaviyo=window.klaviyo||[],window.klaviyo.push=function(){var n;(n=window._klOnsite).push.apply(n,arguments)}}}}();
klaviyo.push(['identify', {email: 'a@example.com'}]);
var _learnq = _learnq || []; _learnq.push(['track', 'Legacy', {}]);
window.$crisp = []; window.CRISP_WEBSITE_ID = 'W1';
$crisp.push(['set', 'user:email', ['a@example.com']]);
var waiting = 8;
function loaded() {
  if (--waiting) return;
  gtag('event', 'purchase', {value: 1}); fbq('track', 'Purchase', {value: 1});
  Intercom('update', {email: 'x'}); hj('event', 'later'); _cio.track('Later', {a: 1});
  klaviyo.push(['track', 'Later', {}]); $crisp.push(['set', 'session:event', [[['Later']]]]);
  window.standinsDone = true;
}
['gtag.js?id=G-1', 'gtm.js?id=GTM-1', 'fbevents.js', 'intercom/abc', 'hotjar-123.js?sv=6',
 'klaviyo.js?company_id=PK1', 'l.js'].forEach(function (p) { load(MOCK + '/vendor/standin/' + p).onload = loaded; });
load(MOCK + '/vendor/standin/customerio.js', {id: 'cio-tracker', 'data-site-id': 'SITE1'}).onload = loaded;
"#;

#[tokio::test(flavor = "multi_thread")]
async fn standins_take_over_their_stubs_and_record_every_call() -> Result<()> {
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let site = Site::start().await?;
    let script = ["var MOCK = '", &mock.origin, "';\n", STANDIN_PAGE].concat();
    let browser = Browser::start().await?;
    browser
        .client
        .goto(&site.page("standins", &page(&script)))
        .await?;
    browser.wait_until("window.standinsDone === true").await?;
    // Crisp's chatbox boots a moment after its loader, as the real one does.
    browser
        .wait_until("window.$crisp.__standin === true")
        .await?;
    let s = browser.eval("return window.__standin").await?;
    browser.close().await?;

    let date = json!({"$date": "1970-01-01T00:00:00.000Z"});
    let gtag = json!([
        ["js", date],
        ["config", "G-1", {"send_page_view": false}],
        {"gtm.start": 1, "event": "gtm.js"},
        ["event", "purchase", {"value": 1}],
    ]);
    assert_eq!(s["gtag"], gtag);
    assert_eq!(s["gtm"], gtag);
    assert_eq!(s["gtagIds"], json!(["G-1"]));
    assert_eq!(s["gtmIds"], json!(["GTM-1"]));
    assert_eq!(
        s["fbq"],
        json!([["init", "123"], ["track", "PageView"], ["track", "Purchase", {"value": 1}]])
    );
    assert_eq!(
        s["intercom"],
        json!([["boot", {"app_id": "abc"}], ["update", {"email": "x"}]])
    );
    assert_eq!(s["hotjarSettings"], json!({"hjid": 123, "hjsv": 6}));
    assert_eq!(
        s["hj"],
        json!([["identify", "u1", {"plan": "pro"}], ["event", "later"]])
    );
    assert_eq!(s["cioSiteId"], "SITE1");
    assert_eq!(
        s["cio"],
        json!([["identify", {"id": "u1"}], ["track", "Later", {"a": 1}]])
    );
    assert_eq!(s["klaviyoCompanyId"], "PK1");
    assert_eq!(
        s["klaviyo"],
        json!([["identify", {"email": "a@example.com"}], ["track", "Later", {}]])
    );
    assert_eq!(s["learnq"], json!([["track", "Legacy", {}]]));
    assert_eq!(s["crispWebsiteId"], "W1");
    assert_eq!(
        s["crisp"],
        json!([
            ["set", "user:email", ["a@example.com"]],
            ["set", "session:event", [[["Later"]]]]
        ])
    );
    let names: Vec<&Value> = s["loads"]
        .as_array()
        .context("loads")?
        .iter()
        .map(|l| &l["name"])
        .collect();
    assert_eq!(names.len(), 8, "{names:?}");
    Ok(())
}

/// Runs `before`, loads `script_path` from mock-api on a page of another
/// origin, then runs `calls` (with `MOCK` the mock's origin) once it has
/// loaded. The page stays open (the SDKs send asynchronously) until the
/// returned browser is closed.
async fn with_vendor_script(
    mock: &MockApi,
    before: &str,
    script_path: &str,
    calls: &str,
) -> Result<(Browser, Site)> {
    let site = Site::start().await?;
    let script = [
        "var MOCK = '",
        &mock.origin,
        "';\n",
        before,
        "\nvar s = document.createElement('script');\ns.src = MOCK + '",
        script_path,
        "';\ns.onload = function () {\n",
        calls,
        "\nwindow.callsDone = true;\n};\ndocument.head.appendChild(s);",
    ]
    .concat();
    let browser = Browser::start().await?;
    browser
        .client
        .goto(&site.page("sdk", &page(&script)))
        .await?;
    browser.wait_until("window.callsDone === true").await?;
    Ok((browser, site))
}

#[tokio::test(flavor = "multi_thread")]
async fn mixpanel_browser_from_its_snippet_build_sends_to_the_mock() -> Result<()> {
    vendor_installed("mixpanel-browser/dist/mixpanel.min.js")?;
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    // The snippet build needs the snippet's stub: an array with `__SV` and
    // `_i`. `init` after load replaces `window.mixpanel` with the instance.
    let page = with_vendor_script(
        &mock,
        "var stub = []; stub.__SV = 1.2; stub._i = []; window.mixpanel = stub;",
        "/vendor/npm/mixpanel-browser/dist/mixpanel.min.js",
        "mixpanel.init('MP_TOKEN', {api_host: MOCK + '/mixpanel', batch_requests: false});
         mixpanel.identify('user-1');
         mixpanel.people.set({plan: 'pro'});
         mixpanel.track('Order Completed', {revenue: 12.5});",
    )
    .await?;
    let posts = mock.wait_for_posts("mixpanel", 4).await?;
    page.0.close().await?;
    // Each call is its own request; they may arrive in any order.
    let mut seen: Vec<(String, String)> = posts
        .iter()
        .map(|r| {
            let endpoint = r["endpoint"].as_str().unwrap_or_default().to_string();
            let what = match endpoint.as_str() {
                "/track/" => r["json"]["event"].clone(),
                _ => r["json"]["$set"]["plan"].clone(),
            };
            (endpoint, what.to_string())
        })
        .collect();
    seen.sort();
    let expected = [
        ("/engage/", "\"pro\""),
        ("/engage/", "null"),
        ("/track/", "\"$identify\""),
        ("/track/", "\"Order Completed\""),
    ];
    assert_eq!(seen, expected.map(|(a, b)| (a.to_string(), b.to_string())));
    let order = posts
        .iter()
        .find(|r| r["json"]["event"] == "Order Completed")
        .context("no Order Completed")?;
    assert_eq!(order["contentType"], "application/x-www-form-urlencoded");
    assert_eq!(order["json"]["properties"]["revenue"], 12.5);
    assert_eq!(order["json"]["properties"]["distinct_id"], "user-1");
    assert_eq!(order["json"]["properties"]["token"], "MP_TOKEN");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn amplitude_script_build_sends_to_the_mock() -> Result<()> {
    vendor_installed("@amplitude/analytics-browser/lib/scripts/amplitude-min.js")?;
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let page = with_vendor_script(
        &mock,
        "",
        "/vendor/npm/@amplitude/analytics-browser/lib/scripts/amplitude-min.js",
        "amplitude.init('AMP_KEY', {serverUrl: MOCK + '/amplitude/2/httpapi',
           fetchRemoteConfig: false, flushQueueSize: 1, autocapture: false});
         amplitude.setUserId('user-1');
         amplitude.identify(new amplitude.Identify().set('plan', 'pro'));
         amplitude.track('Order Completed', {revenue: 12.5});",
    )
    .await?;
    let posts = mock.wait_for_posts("amplitude", 2).await?;
    page.0.close().await?;
    // Each is JSON, so each was preflighted.
    let preflights = mock
        .requests("amplitude")
        .await?
        .iter()
        .filter(|r| r["method"] == "OPTIONS")
        .count();
    assert!(preflights >= 2);
    let mut events: Vec<&Value> = posts
        .iter()
        .flat_map(|r| r["json"]["events"].as_array().into_iter().flatten())
        .collect();
    events.sort_by_key(|e| e["event_id"].as_u64());
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["event_type"], "$identify");
    assert_eq!(
        events[0]["user_properties"],
        json!({"$set": {"plan": "pro"}})
    );
    assert_eq!(events[1]["event_type"], "Order Completed");
    assert_eq!(events[1]["event_properties"], json!({"revenue": 12.5}));
    assert!(events.iter().all(|e| e["user_id"] == "user-1"));
    assert_eq!(posts[0]["json"]["api_key"], "AMP_KEY");
    assert_eq!(posts[0]["contentType"], "application/json");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn posthog_array_build_sends_to_the_mock() -> Result<()> {
    vendor_installed("posthog-js/dist/array.js")?;
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let page = with_vendor_script(
        &mock,
        "",
        "/vendor/npm/posthog-js/dist/array.js",
        "posthog.init('phc_KEY', {api_host: MOCK + '/posthog', opt_out_useragent_filter: true,
           disable_compression: true, advanced_disable_flags: true, capture_pageview: false,
           autocapture: false, request_batching: false});
         posthog.identify('user-1', {plan: 'pro'});
         posthog.capture('Order Completed', {revenue: 12.5});",
    )
    .await?;
    let posts = mock.wait_for_posts("posthog", 2).await?;
    page.0.close().await?;
    let mut events: Vec<&Value> = posts
        .iter()
        .flat_map(|r| r["json"]["batch"].as_array().into_iter().flatten())
        .collect();
    events.sort_by_key(|e| e["timestamp"].as_str().map(str::to_string));
    let names: Vec<&Value> = events.iter().map(|e| &e["event"]).collect();
    assert_eq!(names, ["$identify", "Order Completed"]);
    assert_eq!(events[0]["$set"], json!({"plan": "pro"}));
    assert_eq!(events[1]["properties"]["revenue"], 12.5);
    assert_eq!(events[1]["properties"]["distinct_id"], "user-1");
    assert_eq!(posts[0]["endpoint"], "/e/");
    assert_eq!(posts[0]["json"]["api_key"], "phc_KEY");
    assert_eq!(posts[0]["contentType"], "application/json");
    Ok(())
}
