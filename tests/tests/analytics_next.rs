//! Segment's own analytics-next (1.84.3, pinned in `bench/package.json`)
//! against Switchyard, end to end in real headless Chromium: it loads its
//! settings from Switchyard, sends every call to Switchyard's tracking API
//! without an error, and fetches nothing from Segment. The source has a
//! device-mode destination enabled, which the settings document lists
//! beside `integrations` and analytics-next leaves alone (Switchyard's own
//! library runs it).
//!
//! analytics-next would load code-split chunks of its own build
//! (`/analytics-next/bundles/`) for any `integrations` entry beside
//! `Segment.io`, from wherever the standalone script got its settings;
//! Switchyard does not serve them. With `Segment.io` alone it needs none:
//! the npm package's code built into a site, and the standalone script
//! (what Segment's CDN serves) loaded unchanged, both work.
//!
//! Needs `npm ci --prefix bench` and the built library (`cargo xtask
//! build-client`).

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use switchyard_tests::{
    ANALYTICS_NEXT_VERSION, Browser, Server, Site, WATCH_ERRORS, analytics_next_dir, html,
};

const MIXPANEL_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const MIXPANEL_SECRET: &str = "mixpanel-api-secret-4b1d";

fn umd_file(name: &str) -> Result<String> {
    let path = analytics_next_dir()?.join(name);
    std::fs::read_to_string(&path).with_context(|| path.display().to_string())
}

/// The site's static files: analytics-next's chunks where its builds look
/// for them (`{origin}/analytics-next/bundles/`), as a site serves the
/// chunks its bundler emitted. Records every path requested.
struct StaticHost {
    origin: String,
    requested: Arc<Mutex<Vec<String>>>,
}

impl StaticHost {
    async fn start() -> Result<StaticHost> {
        use axum::extract::{Path, State};
        use axum::http::{StatusCode, header};
        use axum::response::IntoResponse;
        type Shared = (Arc<Vec<(String, String)>>, Arc<Mutex<Vec<String>>>);
        let mut chunks = Vec::new();
        for entry in std::fs::read_dir(analytics_next_dir()?)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.contains(".bundle.") && name.ends_with(".js") {
                let js = umd_file(&name)?;
                chunks.push((name, js));
            }
        }
        let requested: Arc<Mutex<Vec<String>>> = Default::default();
        let app = axum::Router::new()
            .route(
                "/analytics-next/bundles/{file}",
                axum::routing::get(
                    |State((chunks, requested)): State<Shared>, Path(file): Path<String>| async move {
                        requested.lock().unwrap().push(file.clone());
                        match chunks.iter().find(|(name, _)| *name == file) {
                            Some((_, js)) => (
                                [(header::CONTENT_TYPE, "application/javascript")],
                                js.clone(),
                            )
                                .into_response(),
                            None => StatusCode::NOT_FOUND.into_response(),
                        }
                    },
                ),
            )
            .with_state((Arc::new(chunks), requested.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(StaticHost {
            origin: ["http://", &addr.to_string()].concat(),
            requested,
        })
    }

    fn requested(&self) -> Vec<String> {
        self.requested.lock().unwrap().clone()
    }
}

/// Records what the page writes to `console.error` (analytics-next reports
/// a failed load there, and throws nothing): installed first.
const WATCH_CONSOLE: &str = "window.consoleErrors = [];
(function () {
  var error = console.error;
  console.error = function () {
    consoleErrors.push(Array.prototype.map.call(arguments, String).join(' '));
    return error.apply(console, arguments);
  };
})();";

/// The calls each page makes, before analytics-next has loaded.
const CALLS: &str = "analytics.identify('user-42', {plan: 'pro'});
analytics.track('Order Completed', {revenue: 12.5});
analytics.page('Checkout');";

/// Enables Mixpanel in device mode on the demo source, with its secret set
/// too: the settings document must not carry it.
async fn enable_mixpanel(server: &Server) -> Result<()> {
    server
        .api_post(
            &["/sources/", &server.demo_source_id, "/connections"].concat(),
            json!({
                "destination": "mixpanel",
                "mode": "device",
                "settings": {"token": MIXPANEL_TOKEN, "apiSecret": MIXPANEL_SECRET},
                "enabled": true
            }),
        )
        .await?;
    Ok(())
}

/// The demo source's settings document, as analytics-next fetches it.
async fn settings_document(server: &Server) -> Result<(String, Value)> {
    let url = [
        &server.origin,
        "/v1/projects/",
        &server.demo_write_key,
        "/settings",
    ]
    .concat();
    let text = reqwest::get(&url).await?.error_for_status()?.text().await?;
    let json = serde_json::from_str(&text)?;
    Ok((text, json))
}

/// What a page did: its errors, and the URL of every resource it fetched
/// (resource timing lists failed requests too).
async fn page_report(browser: &Browser) -> Result<(Vec<String>, Vec<String>)> {
    let r = browser
        .eval(
            "return {
               errors: pageErrors.concat(consoleErrors),
               fetched: performance.getEntriesByType('resource').map(function (e) { return e.name; })
             };",
        )
        .await?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or_default().to_string())
            .collect()
    };
    Ok((strings(&r["errors"]), strings(&r["fetched"])))
}

/// Waits for the three calls of `CALLS` to arrive, sent by analytics-next
/// to a server started with `Server::start_recording`, and checks what
/// they carry and that they are stored as sent; returns them (identify,
/// track, page).
async fn calls_arrived(server: &Server) -> Result<[Value; 3]> {
    let by_analytics_next = |e: &Value| e["context"]["library"]["name"] == "analytics.js";
    let identify = server
        .wait_for_event(|e| by_analytics_next(e) && e["type"] == "identify")
        .await?;
    let track = server
        .wait_for_event(|e| by_analytics_next(e) && e["event"] == "Order Completed")
        .await?;
    let page = server
        .wait_for_event(|e| by_analytics_next(e) && e["type"] == "page")
        .await?;
    for e in [&identify, &track, &page] {
        let version = e["context"]["library"]["version"].as_str().unwrap_or("");
        ensure!(
            version.ends_with(ANALYTICS_NEXT_VERSION),
            "not analytics-next {ANALYTICS_NEXT_VERSION}: {e}"
        );
        ensure!(e["userId"] == "user-42", "{e}");
        ensure!(e["anonymousId"] == identify["anonymousId"], "{e}");
    }
    ensure!(identify["traits"]["plan"] == "pro", "{identify}");
    ensure!(track["properties"]["revenue"] == 12.5, "{track}");
    ensure!(page["name"] == "Checkout", "{page}");
    let events = [identify, track, page];
    stored_as_sent(server, &events)?;
    Ok(events)
}

/// Where `stored` differs from `sent` (objects compared key by key, to
/// the first field that differs), or `None` if they are equal.
fn differs(path: &str, stored: Option<&Value>, sent: &Value) -> Option<String> {
    match (stored, sent) {
        (Some(Value::Object(got)), Value::Object(want)) => want
            .iter()
            .find_map(|(k, v)| differs(&[path, ".", k].concat(), got.get(k), v))
            .or_else(|| {
                got.keys()
                    .find(|k| !want.contains_key(*k))
                    .map(|k| format!("{path}.{k} is stored but was not sent"))
            }),
        (Some(got), want) if got == want => None,
        (got, want) => Some(format!(
            "{path}: stored {}, sent {want}",
            got.map_or("nothing".into(), Value::to_string)
        )),
    }
}

/// Each stored event against the body analytics-next sent for it, field
/// by field (a server started with `Server::start_recording`): every
/// field as sent, but for what the server's normalisation does, the write
/// key taken out, `timestamp` kept as `originalTimestamp` and replaced by
/// `receivedAt − (sentAt − originalTimestamp)`, `receivedAt` added. And
/// analytics-next sent nothing else.
fn stored_as_sent(server: &Server, stored: &[Value]) -> Result<()> {
    let sent: Vec<Value> = server
        .received()
        .iter()
        .filter(|r| !r.refused)
        .flat_map(|r| r.events())
        .collect();
    ensure!(
        sent.len() == stored.len(),
        "analytics-next sent {} events, {} expected: {sent:?}",
        sent.len(),
        stored.len()
    );
    let date = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    };
    for got in stored {
        let id = &got["messageId"];
        let copies: Vec<&Value> = sent.iter().filter(|s| s["messageId"] == *id).collect();
        let [one] = copies[..] else {
            bail!(
                "analytics-next sent {} events with messageId {id}: {copies:?}",
                copies.len()
            );
        };
        let (Some(one), Some(got)) = (one.as_object(), got.as_object()) else {
            bail!("not objects: sent {one}, stored {got:?}");
        };
        let kind = got.get("type").and_then(Value::as_str).unwrap_or("?");
        for (key, value) in one {
            match key.as_str() {
                "writeKey" => ensure!(!got.contains_key(key), "{kind}: the write key was stored"),
                "timestamp" => ensure!(
                    got.get("originalTimestamp") == Some(value),
                    "{kind}: originalTimestamp: stored {:?}, sent timestamp {value}",
                    got.get("originalTimestamp")
                ),
                _ => {
                    if let Some(why) = differs(key, got.get(key), value) {
                        bail!("{kind}: {why}");
                    }
                }
            }
        }
        for key in got.keys() {
            ensure!(
                one.contains_key(key) || key == "originalTimestamp" || key == "receivedAt",
                "{kind}: {key} is stored but was not sent: {}",
                got[key]
            );
        }
        let received_at = date(got.get("receivedAt"));
        let want = match (date(one.get("timestamp")), date(one.get("sentAt"))) {
            (Some(original), Some(sent_at)) => received_at.map(|r| r - (sent_at - original)),
            (original, None) => original,
            (None, Some(_)) => received_at,
        };
        ensure!(
            want.is_some() && date(got.get("timestamp")) == want,
            "{kind}: timestamp: stored {:?}, want {want:?} (sent {:?} at {:?}, received {:?})",
            got.get("timestamp"),
            one.get("timestamp"),
            one.get("sentAt"),
            got.get("receivedAt")
        );
    }
    Ok(())
}

/// Nothing went wrong on the page, and it fetched only from the hosts it
/// was given: no legacy integration code (`/next-integrations/`), nothing
/// from a Segment host (metrics included).
fn nothing_failed_nothing_from_segment(
    errors: &[String],
    fetched: &[String],
    hosts: &[&str],
) -> Result<()> {
    ensure!(errors.is_empty(), "the page saw errors: {errors:?}");
    for url in fetched {
        ensure!(
            !url.contains("/next-integrations/"),
            "analytics-next fetched a legacy integration: {url}"
        );
        ensure!(!url.contains("segment."), "a request to Segment: {url}");
        ensure!(
            hosts.iter().any(|h| url.starts_with(&[h, "/"].concat())),
            "a request to an unexpected host: {url} (expected {hosts:?})"
        );
    }
    Ok(())
}

/// Mixpanel in the settings document: listed with its token, not its
/// secret, beside `integrations`, which holds `Segment.io` alone so that
/// analytics-next installs nothing.
fn mixpanel_listed_not_loadable(text: &str, settings: &Value) -> Result<()> {
    ensure!(
        !text.contains(MIXPANEL_SECRET),
        "the secret is served: {text}"
    );
    let names: Vec<&String> = settings["integrations"]
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    ensure!(names == ["Segment.io"], "{settings}");
    let mixpanel = &settings["destinations"][0];
    ensure!(mixpanel["name"] == "Mixpanel", "{settings}");
    ensure!(mixpanel["mode"] == "device", "{settings}");
    ensure!(
        mixpanel["settings"]["token"] == MIXPANEL_TOKEN,
        "{settings}"
    );
    ensure!(settings["remotePlugins"] == json!([]), "{settings}");
    ensure!(settings["metrics"]["sampleRate"] == 0, "{settings}");
    Ok(())
}

/// In each event's `_metadata`, analytics-next names only `Segment.io` as
/// bundled: Mixpanel is neither bundled nor unbundled (the server does not
/// deliver it, Switchyard's own library would).
fn metadata_claims_nothing(events: &[Value]) -> Result<()> {
    for e in events {
        let metadata = &e["_metadata"];
        ensure!(metadata["bundled"] == json!(["Segment.io"]), "{e}");
        ensure!(metadata["unbundled"] == json!([]), "{e}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn analytics_next_built_into_a_site_loads_switchyard_settings_and_sends_every_call()
-> Result<()> {
    let server = Server::start_recording().await?;
    let site = Site::start().await?;
    let statics = StaticHost::start().await?;
    enable_mixpanel(&server).await?;
    let (text, settings) = settings_document(&server).await?;
    mixpanel_listed_not_loadable(&text, &settings)?;

    // The npm package's code; `_cdn` tells this build where its chunks are
    // (a site's bundler would put them in its own build instead).
    let head = [
        WATCH_ERRORS,
        "\n",
        WATCH_CONSOLE,
        "\nwindow.analytics = {_cdn: '",
        &statics.origin,
        "'};\n</script><script>\n",
        &umd_file("index.js")?,
        "\n</script><script>\n",
        "window.analytics = AnalyticsNext.AnalyticsBrowser.load({writeKey: '",
        &server.demo_write_key,
        "', cdnURL: '",
        &server.origin,
        "'});\nanalytics.then(function () { window.loaded = true; },\n",
        "  function (e) { pageErrors.push('load failed: ' + e); });\n",
        CALLS,
    ]
    .concat();
    let url = site.page("shop", &html("Shop", &head));
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    let events = calls_arrived(&server).await?;
    browser.wait_until("window.loaded === true").await?;

    let (errors, fetched) = page_report(&browser).await?;
    nothing_failed_nothing_from_segment(
        &errors,
        &fetched,
        &[&server.origin, &site.origin, &statics.origin],
    )?;
    metadata_claims_nothing(&events)?;
    let settings_url = [
        &server.origin,
        "/v1/projects/",
        &server.demo_write_key,
        "/settings",
    ]
    .concat();
    ensure!(fetched.contains(&settings_url), "{fetched:?}");
    // Segment.io alone: no chunk of analytics-next's own is needed.
    let chunks = statics.requested();
    ensure!(chunks.is_empty(), "chunks fetched: {chunks:?}");
    browser.close().await
}

/// Segment's snippet stub, pointed at Switchyard; the standalone script
/// (what Segment's CDN serves) from the page itself, with no option.
fn standalone_head(server: &Server) -> Result<String> {
    Ok([
        WATCH_ERRORS,
        "\n",
        WATCH_CONSOLE,
        "\nvar analytics = window.analytics = [];\n",
        "analytics._writeKey = '",
        &server.demo_write_key,
        "';\nanalytics._cdn = '",
        &server.origin,
        "';\n",
        "['identify', 'track', 'page'].forEach(function (method) {\n",
        "  analytics[method] = function () {\n",
        "    var args = Array.prototype.slice.call(arguments);\n",
        "    args.unshift(method);\n",
        "    analytics.push(args);\n",
        "    return analytics;\n",
        "  };\n",
        "});\n",
        CALLS,
        "\n</script><script>\n",
        &umd_file("standalone.js")?,
    ]
    .concat())
}

#[tokio::test(flavor = "multi_thread")]
async fn analytics_next_events_reach_a_cloud_destination_through_switchyard() -> Result<()> {
    let mock = switchyard_tests::MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let server = Server::start_recording().await?;
    let site = Site::start().await?;
    server
        .api_post(
            &["/sources/", &server.demo_source_id, "/connections"].concat(),
            json!({"destination": "webhook", "mode": "cloud", "enabled": true,
                   "settings": {"url": mock.url("/cloud/webhook/next")}}),
        )
        .await?;
    let url = site.page("shop", &html("Shop", &standalone_head(&server)?));
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    let events = calls_arrived(&server).await?;
    // analytics-next names the server's destination in each event.
    for e in &events {
        ensure!(e["_metadata"]["unbundled"] == json!(["Webhook"]), "{e}");
    }
    // The webhook gets each of them as stored, field by field.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got: Value = mock
            .http
            .get(mock.url("/cloud/requests?vendor=webhook"))
            .send()
            .await?
            .json()
            .await?;
        let bodies: Vec<Value> = got
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["body"].clone())
            .collect();
        if events.iter().all(|e| bodies.contains(e)) {
            ensure!(
                bodies.len() == events.len(),
                "more than was sent: {bodies:?}"
            );
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the webhook got {bodies:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    browser.close().await
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_analytics_next_pointed_at_switchyard_sends_every_call_unchanged() -> Result<()>
{
    let server = Server::start_recording().await?;
    let site = Site::start().await?;
    enable_mixpanel(&server).await?;

    let head = standalone_head(&server)?;
    let url = site.page("shop", &html("Shop", &head));
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    let events = calls_arrived(&server).await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;

    let (errors, fetched) = page_report(&browser).await?;
    nothing_failed_nothing_from_segment(&errors, &fetched, &[&server.origin, &site.origin])?;
    metadata_claims_nothing(&events)?;
    if let Some(chunk) = fetched.iter().find(|u| u.contains("/analytics-next/")) {
        bail!("a chunk was fetched: {chunk}");
    }
    browser.close().await
}
