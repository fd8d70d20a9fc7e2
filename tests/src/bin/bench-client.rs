//! `cargo xtask bench-client`: Segment's analytics-next 1.84.3 and
//! Switchyard's browser library side by side, in the same headless
//! Chromium, against local servers, with the same page (Segment's snippet)
//! for both. Prints one table; fails if a library did not deliver every
//! event.
//!
//! - Switchyard: a real server with the built library from `bundles/`; the
//!   snippet loads the loader from it, the loader the wasm, and events are
//!   posted back to it.
//! - analytics-next: a local stand-in for Segment's CDN serving the npm
//!   package's `dist/umd/standalone.js` (the CDN bundle), its chunks, and
//!   the Switchyard server's own analytics-next settings document, which
//!   points `apiHost` at the Switchyard server. Both libraries' events go
//!   to the same server and are counted in its event log.
//!
//! Each library runs in its own Chromium (a fresh profile); the two are
//! measured alternately, each page load in a fresh tab.
//!
//! Flags: `--loads N` (page loads per figure, default 15), `--runs N`
//! (runs of the `track()` loop, default 7), `--calls N` (calls per run,
//! default 1000).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use switchyard_server::AppState;
use switchyard_server::service::Admin;
use switchyard_tests::measure::{Logged, RequestLog, devtools, log_requests, start_server};
use switchyard_tests::{Browser, Site, analytics_next_dir};

/// How long one page may take to load, become ready and send its first event.
const LOAD_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the events of one run may take to arrive.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(90);
/// The whole benchmark, set-up included.
const BENCH_TIMEOUT: Duration = Duration::from_secs(12 * 60);

struct Options {
    loads: usize,
    runs: usize,
    calls: usize,
}

fn options() -> Result<Options> {
    let mut o = Options {
        loads: 15,
        runs: 7,
        calls: 1000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|v| *v > 0)
            .with_context(|| format!("{flag} needs a positive number"))?;
        match flag.as_str() {
            "--loads" => o.loads = value,
            "--runs" => o.runs = value,
            "--calls" => o.calls = value,
            _ => bail!("unknown flag {flag}: use --loads N, --runs N, --calls N"),
        }
    }
    Ok(o)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let options = options()?;
    match tokio::time::timeout(BENCH_TIMEOUT, bench(options)).await {
        Ok(result) => result,
        Err(_) => bail!("the benchmark took longer than {BENCH_TIMEOUT:?}"),
    }
}

// ---------------------------------------------------------------------
// analytics-next's CDN, served locally.

/// One file as a CDN serves it: the bytes, precompressed.
struct Asset {
    raw: Vec<u8>,
    gzip: Vec<u8>,
    brotli: Vec<u8>,
    content_type: &'static str,
    cache_control: &'static str,
}

impl Asset {
    fn new(raw: Vec<u8>, content_type: &'static str, cache_control: &'static str) -> Result<Asset> {
        Ok(Asset {
            gzip: gzip(&raw)?,
            brotli: brotli(&raw)?,
            raw,
            content_type,
            cache_control,
        })
    }

    /// Brotli if the request accepts it, else gzip, else the raw bytes:
    /// the same choice, and the same levels, as Switchyard's server.
    fn respond(&self, headers: &HeaderMap) -> Response {
        let accepts = |coding: &str| {
            headers
                .get_all(header::ACCEPT_ENCODING)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|c| c.split(';').next().unwrap_or_default().trim() == coding)
        };
        let (body, encoding) = if accepts("br") {
            (self.brotli.clone(), Some("br"))
        } else if accepts("gzip") {
            (self.gzip.clone(), Some("gzip"))
        } else {
            (self.raw.clone(), None)
        };
        let mut response = (
            [
                (header::CONTENT_TYPE, self.content_type),
                (header::CACHE_CONTROL, self.cache_control),
                (header::VARY, "Accept-Encoding"),
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            ],
            body,
        )
            .into_response();
        if let Some(encoding) = encoding {
            response.headers_mut().insert(
                header::CONTENT_ENCODING,
                header::HeaderValue::from_static(encoding),
            );
        }
        response
    }
}

/// Cache lifetimes as Switchyard's server sets them, so the two libraries
/// are cached alike: a minute for the bundle and settings, a year for
/// content-hashed files.
const SHORT_CACHE: &str = "public, max-age=60";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const JS: &str = "application/javascript; charset=utf-8";

struct Cdn {
    write_key: String,
    standalone: Asset,
    settings: Asset,
    /// The chunks under `/analytics-next/bundles/`, by file name.
    chunks: HashMap<String, Asset>,
}

impl Cdn {
    fn new(write_key: &str, settings: Vec<u8>) -> Result<Cdn> {
        let dir = analytics_next_dir()?;
        let standalone = Asset::new(std::fs::read(dir.join("standalone.js"))?, JS, SHORT_CACHE)?;
        let mut chunks = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.contains(".bundle.") && name.ends_with(".js") {
                let raw = std::fs::read(dir.join(&name))?;
                chunks.insert(name, Asset::new(raw, JS, IMMUTABLE)?);
            }
        }
        Ok(Cdn {
            write_key: write_key.to_string(),
            standalone,
            settings: Asset::new(settings, "application/json", SHORT_CACHE)?,
            chunks,
        })
    }

    fn router(self) -> Router {
        type Shared = State<Arc<Cdn>>;
        async fn bundle(
            State(cdn): Shared,
            Path(key): Path<String>,
            headers: HeaderMap,
        ) -> Response {
            if key != cdn.write_key {
                return StatusCode::NOT_FOUND.into_response();
            }
            cdn.standalone.respond(&headers)
        }
        async fn settings(
            State(cdn): Shared,
            Path(key): Path<String>,
            headers: HeaderMap,
        ) -> Response {
            if key != cdn.write_key {
                return StatusCode::NOT_FOUND.into_response();
            }
            cdn.settings.respond(&headers)
        }
        async fn chunk(
            State(cdn): Shared,
            Path(file): Path<String>,
            headers: HeaderMap,
        ) -> Response {
            match cdn.chunks.get(&file) {
                Some(asset) => asset.respond(&headers),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        Router::new()
            .route("/analytics.js/v1/{key}/analytics.min.js", get(bundle))
            .route("/v1/projects/{key}/settings", get(settings))
            .route("/analytics-next/bundles/{file}", get(chunk))
            .with_state(Arc::new(self))
    }
}

async fn serve(router: Router) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(["http://", &addr.to_string()].concat())
}

// ---------------------------------------------------------------------
// Sizes.

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

fn brotli(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        enc.write_all(bytes)?;
    }
    Ok(out)
}

/// A response body as the page received it, decoded.
fn decoded(r: &Logged) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match r.content_encoding.as_deref() {
        None => out.extend_from_slice(&r.body),
        Some("br") => {
            brotli::Decompressor::new(&r.body[..], 4096).read_to_end(&mut out)?;
        }
        Some("gzip") => {
            flate2::read::GzDecoder::new(&r.body[..]).read_to_end(&mut out)?;
        }
        Some(other) => bail!("{} was sent as {other}, which this cannot read", r.path),
    }
    Ok(out)
}

/// One response the page fetched to get the library working.
struct Fetched {
    path: String,
    status: u16,
    served: usize,
    encoding: String,
    raw: usize,
    gzip: usize,
    brotli: usize,
}

fn measure_fetched(r: &Logged) -> Result<Fetched> {
    let raw = decoded(r)?;
    Ok(Fetched {
        path: r.path.clone(),
        status: r.status,
        served: r.body.len(),
        encoding: r
            .content_encoding
            .clone()
            .unwrap_or_else(|| "identity".into()),
        raw: raw.len(),
        gzip: gzip(&raw)?.len(),
        brotli: brotli(&raw)?.len(),
    })
}

// ---------------------------------------------------------------------
// Pages.

/// `/v1/{call}` on the tracking API: where events leave the page.
fn is_tracking_path(path: &str) -> bool {
    path.strip_prefix("/v1/")
        .is_some_and(|call| !call.is_empty() && call.bytes().all(|b| b.is_ascii_lowercase()))
}

/// The page both libraries are measured on: Segment's snippet, as
/// Switchyard hands it out, for a host and a write key; a mark just before
/// it (the snippet inserts the library's script tag), and a `ready`
/// callback queued after it.
fn page_html(snippet: &str, cdn: Option<&str>) -> String {
    let cdn = cdn
        .map(|c| {
            [
                "window.analytics._cdn = ",
                &Value::from(c).to_string(),
                ";\n",
            ]
            .concat()
        })
        .unwrap_or_default();
    [
        // No favicon request: only the library's requests are counted.
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Bench</title>",
        "<link rel=\"icon\" href=\"data:,\"><script>\n",
        "performance.setResourceTimingBufferSize(100000);\n",
        "window.analytics = [];\n",
        &cdn,
        "window.__bench = {t0: performance.now()};\n",
        snippet,
        "\nanalytics.ready(function () { window.__bench.ready = performance.now(); });\n",
        "</script></head><body><p>Bench</p></body></html>",
    ]
    .concat()
}

/// Reads the page's marks and resource timing; null until the library is
/// ready, has replaced the snippet's stub, and a tracking request has
/// completed.
const READ_PAGE: &str = r#"
var b = window.__bench, api = arguments[0];
if (!b || b.ready === undefined || Array.isArray(window.analytics)) return null;
var entries = performance.getEntriesByType('resource').map(function (e) {
  return {name: e.name, start: e.startTime, end: e.responseEnd};
});
var tracking = entries.some(function (e) { return e.name.indexOf(api + '/v1/') === 0; });
return tracking ? {t0: b.t0, ready: b.ready, entries: entries} : null;
"#;

/// Starts `calls` calls of `track()` and records, in `window.__run`, the
/// time the loop took and the time until every promise resolved.
const TRACK_LOOP: &str = r#"
var name = arguments[0], run = arguments[1], calls = arguments[2];
window.__run = null;
var a = window.analytics, promises = new Array(calls);
var t0 = performance.now();
for (var i = 0; i < calls; i++) promises[i] = a.track(name, {run: run, i: i});
var t1 = performance.now();
Promise.all(promises).then(
  function () { window.__run = {t0: t0, sync: t1 - t0, all: performance.now() - t0}; },
  function (e) { window.__run = {error: String(e)}; });
return true;
"#;

struct Lib {
    name: &'static str,
    browser: Browser,
    home: fantoccini::wd::WindowHandle,
    url: String,
    source_id: String,
}

/// What one page load measured.
struct Load {
    ready: f64,
    first_event: f64,
    /// Resource timing entries that started before the first tracking request.
    before_first_event: Vec<String>,
    /// What the servers received before the first tracking request.
    server_before_first_event: usize,
    /// Every request the servers received for this page.
    logged: Vec<Logged>,
}

struct Entry {
    name: String,
    start: f64,
    end: f64,
}

fn entries(v: &Value) -> Vec<Entry> {
    v["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Entry {
            name: e["name"].as_str().unwrap_or_default().to_string(),
            start: e["start"].as_f64().unwrap_or_default(),
            end: e["end"].as_f64().unwrap_or_default(),
        })
        .collect()
}

struct Bench {
    log: RequestLog,
    api: String,
    state: AppState,
}

impl Bench {
    fn is_tracking_url(&self, url: &str) -> bool {
        url.strip_prefix(&self.api).is_some_and(is_tracking_path)
    }

    /// Opens a fresh tab on the library's page; with `cold`, the tab's
    /// HTTP cache is disabled (a first visit); without, it uses the
    /// profile's cache (a repeat visit).
    async fn open(&self, lib: &Lib, cold: bool) -> Result<()> {
        let client = &lib.browser.client;
        let tab = client.new_window(true).await?;
        client.switch_to_window(tab.handle).await?;
        if cold {
            devtools(&lib.browser, "Network.enable", json!({})).await?;
            devtools(
                &lib.browser,
                "Network.setCacheDisabled",
                json!({"cacheDisabled": true}),
            )
            .await?;
        }
        client.goto(&lib.url).await?;
        Ok(())
    }

    async fn close_tab(&self, lib: &Lib) -> Result<()> {
        lib.browser.client.close_window().await?;
        lib.browser
            .client
            .switch_to_window(lib.home.clone())
            .await?;
        Ok(())
    }

    /// Waits until the page is ready and its first event has been sent.
    async fn wait_loaded(&self, lib: &Lib) -> Result<Value> {
        let deadline = Instant::now() + LOAD_TIMEOUT;
        loop {
            let v = lib
                .browser
                .client
                .execute(READ_PAGE, vec![Value::from(self.api.as_str())])
                .await?;
            if !v.is_null() {
                return Ok(v);
            }
            if Instant::now() > deadline {
                let state = lib
                    .browser
                    .eval("return [String(window.__bench && window.__bench.ready), Array.isArray(window.analytics), performance.getEntriesByType('resource').map(function (e) { return e.name; })]")
                    .await?;
                bail!(
                    "{}: the page did not become ready and send its first event within {LOAD_TIMEOUT:?} (ready, still the snippet's stub, resources: {state})",
                    lib.name
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One page load in a fresh tab.
    async fn load(&self, lib: &Lib, cold: bool, settle: bool) -> Result<Load> {
        let mark = self.log.len();
        self.open(lib, cold).await?;
        let mut page = self.wait_loaded(lib).await?;
        if settle {
            // Chunks a library fetches once it is running count too.
            tokio::time::sleep(Duration::from_secs(1)).await;
            page = self.wait_loaded(lib).await?;
        }
        self.close_tab(lib).await?;
        let logged = self.log.since(mark);
        let t0 = page["t0"].as_f64().unwrap_or_default();
        let entries = entries(&page);
        let first = entries
            .iter()
            .filter(|e| self.is_tracking_url(&e.name))
            .map(|e| e.start)
            .fold(f64::INFINITY, f64::min);
        let before_first_event = entries
            .iter()
            .filter(|e| e.start < first && !self.is_tracking_url(&e.name))
            .map(|e| e.name.clone())
            .collect();
        let server_before_first_event = logged
            .iter()
            .take_while(|r| !(r.server == "switchyard" && is_tracking_path(&r.path)))
            .count();
        Ok(Load {
            ready: page["ready"].as_f64().unwrap_or_default() - t0,
            first_event: first - t0,
            before_first_event,
            server_before_first_event,
            logged,
        })
    }

    /// Events of `name` the server has stored for the library's source.
    async fn received(&self, lib: &Lib, name: &str) -> Result<usize> {
        let events = self
            .state
            .events
            .recent(Some(&lib.source_id), usize::MAX / 2)
            .await?;
        Ok(events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(&e.json).ok())
            .filter(|e| e["event"] == name)
            .count())
    }

    /// One run of `calls` `track()` calls in a fresh, ready page.
    async fn track_run(&self, lib: &Lib, run: usize, calls: usize) -> Result<Run> {
        self.open(lib, false).await?;
        self.wait_loaded(lib).await?;
        let name = ["Bench Run ", &run.to_string()].concat();
        devtools(&lib.browser, "Performance.enable", json!({})).await?;
        let (busy_before, cpu_before) = main_thread(&lib.browser).await?;
        let mark = self.log.len();
        lib.browser
            .client
            .execute(
                TRACK_LOOP,
                vec![
                    Value::from(name.as_str()),
                    Value::from(run),
                    Value::from(calls),
                ],
            )
            .await?;
        let started = Instant::now();
        let timing = loop {
            let v = lib.browser.eval("return window.__run").await?;
            if let Some(e) = v["error"].as_str() {
                bail!("{}: a track() promise was rejected: {e}", lib.name);
            }
            if !v.is_null() {
                break v;
            }
            if started.elapsed() > DELIVERY_TIMEOUT {
                bail!(
                    "{}: the {calls} track() promises did not all resolve within {DELIVERY_TIMEOUT:?}",
                    lib.name
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut received = self.received(lib, &name).await?;
        while received < calls && started.elapsed() < DELIVERY_TIMEOUT {
            tokio::time::sleep(Duration::from_millis(250)).await;
            received = self.received(lib, &name).await?;
        }
        let (busy, cpu) = main_thread(&lib.browser).await?;
        // The page's view of the same requests, once each has completed.
        let t0 = timing["t0"].as_f64().unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(10);
        let sent = loop {
            let posts = self
                .log
                .since(mark)
                .iter()
                .filter(|r| r.method == "POST" && is_tracking_path(&r.path))
                .count();
            let page = lib
                .browser
                .eval("return {entries: performance.getEntriesByType('resource').map(function (e) { return {name: e.name, start: e.startTime, end: e.responseEnd}; })}")
                .await?;
            let sent: Vec<Entry> = entries(&page)
                .into_iter()
                .filter(|e| e.start >= t0 && self.is_tracking_url(&e.name))
                .collect();
            if sent.len() >= posts || Instant::now() > deadline {
                break sent;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.close_tab(lib).await?;
        let logged = self.log.since(mark);
        let count = |method: &str| {
            logged
                .iter()
                .filter(|r| r.method == method && is_tracking_path(&r.path))
                .count()
        };
        Ok(Run {
            sync: timing["sync"].as_f64().unwrap_or_default(),
            all: timing["all"].as_f64().unwrap_or_default(),
            delivered: sent.iter().map(|e| e.end).fold(0.0, f64::max) - t0,
            busy: busy - busy_before,
            cpu: cpu - cpu_before,
            received,
            posts: count("POST"),
            preflights: count("OPTIONS"),
            server_ms: median(
                logged
                    .iter()
                    .filter(|r| r.method == "POST" && is_tracking_path(&r.path))
                    .map(|r| r.took.as_secs_f64() * 1000.0)
                    .collect(),
            ),
        })
    }
}

/// The page's main thread so far, from DevTools (`Performance.enable`
/// first): the time it spent in tasks (`TaskDuration`, which counts time a
/// task waits, on a synchronous cookie read say) and its CPU time
/// (`ThreadTime`), both in ms.
async fn main_thread(browser: &Browser) -> Result<(f64, f64)> {
    let metrics = devtools(browser, "Performance.getMetrics", json!({})).await?;
    let metric = |name: &str| {
        metrics["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["name"] == name)
            .and_then(|m| m["value"].as_f64())
            .map(|s| s * 1000.0)
            .with_context(|| format!("DevTools reported no {name}"))
    };
    Ok((metric("TaskDuration")?, metric("ThreadTime")?))
}

struct Run {
    sync: f64,
    all: f64,
    /// Until the last tracking response, from the page's resource timing.
    delivered: f64,
    /// The page's main-thread task time from before the loop until every
    /// event was answered, ms.
    busy: f64,
    /// The main thread's CPU time over the same span, ms.
    cpu: f64,
    received: usize,
    posts: usize,
    preflights: usize,
    /// The server's median time to answer one of its tracking requests, ms.
    server_ms: f64,
}

#[derive(Default)]
struct Figures {
    cold: Vec<Load>,
    warm: Vec<Load>,
    runs: Vec<Run>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

async fn bench(o: Options) -> Result<()> {
    let log = RequestLog::default();
    let (api, state, _data) = {
        let log = log.clone();
        start_server(move |app| log_requests(app, log, "switchyard")).await?
    };
    let admin = Admin::new(&state);
    let an_source = admin
        .create_source(Some("analytics-next (bench)"))
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let sy_source = admin
        .create_source(Some("Switchyard (bench)"))
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;

    // analytics-next's settings: Switchyard's own document for the source,
    // whose apiHost is this server.
    let settings =
        reqwest::get([&api, "/v1/projects/", &an_source.write_key, "/settings"].concat())
            .await?
            .error_for_status()?
            .bytes()
            .await?
            .to_vec();
    let cdn = serve(log_requests(
        Cdn::new(&an_source.write_key, settings)?.router(),
        log.clone(),
        "cdn",
    ))
    .await?;
    let site = Site::start().await?;
    let an_url = site.page(
        "analytics-next",
        &page_html(
            &switchyard_server::boot::snippet(&an_source.write_key, &cdn),
            Some(&cdn),
        ),
    );
    let sy_url = site.page(
        "switchyard",
        &page_html(
            &switchyard_server::boot::snippet(&sy_source.write_key, &api),
            None,
        ),
    );

    let mut libs = Vec::new();
    for (name, url, source) in [
        ("analytics-next", an_url, &an_source),
        ("switchyard", sy_url, &sy_source),
    ] {
        // A fresh profile for each library: caches never mix.
        let browser = Browser::start().await?;
        let home = browser.client.window().await?;
        libs.push(Lib {
            name,
            browser,
            home,
            url,
            source_id: source.id.clone(),
        });
    }
    let user_agent = libs[0].browser.eval("return navigator.userAgent").await?;
    let b = Bench {
        log: log.clone(),
        api: api.clone(),
        state: state.clone(),
    };
    let mut figures: Vec<Figures> = libs.iter().map(|_| Figures::default()).collect();
    // Alternate which library goes first, so drift on this machine falls
    // on both alike.
    let order = |i: usize| if i.is_multiple_of(2) { [0, 1] } else { [1, 0] };

    eprintln!("bench-client: warming up (one page load each, not counted)");
    for lib in &libs {
        b.load(lib, false, true).await?;
    }
    eprintln!(
        "bench-client: {} first visits each (cache disabled)",
        o.loads
    );
    for i in 0..o.loads {
        for l in order(i) {
            let load = b.load(&libs[l], true, i == 0).await?;
            figures[l].cold.push(load);
        }
    }
    eprintln!(
        "bench-client: {} repeat visits each (HTTP cache warm)",
        o.loads
    );
    for i in 0..o.loads {
        for l in order(i) {
            let load = b.load(&libs[l], false, false).await?;
            figures[l].warm.push(load);
        }
    }
    eprintln!(
        "bench-client: {} runs of {} track() calls each",
        o.runs, o.calls
    );
    for i in 0..o.runs {
        for l in order(i) {
            let run = b.track_run(&libs[l], i + 1, o.calls).await?;
            eprintln!(
                "  {:<15} run {}: loop {:.1} ms, promises {:.1} ms, last response {:.1} ms, {} received",
                libs[l].name,
                i + 1,
                run.sync,
                run.all,
                run.delivered,
                run.received
            );
            figures[l].runs.push(run);
        }
    }
    for lib in libs.drain(..) {
        lib.browser.close().await?;
    }

    let report = Report::new(&figures, &o)?;
    println!(
        "{}",
        report.render(&o, user_agent.as_str().unwrap_or_default())
    );
    let mut failures = Vec::new();
    for (l, name) in ["analytics-next", "switchyard"].iter().enumerate() {
        for (i, run) in figures[l].runs.iter().enumerate() {
            if run.received != o.calls {
                failures.push(format!(
                    "{name} delivered {} of {} events in run {} ({} tracking requests answered)",
                    run.received,
                    o.calls,
                    i + 1,
                    run.posts
                ));
            }
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

// ---------------------------------------------------------------------
// The table.

struct Report {
    /// Per library: the responses of its first load with the cache disabled.
    fetched: Vec<Vec<Fetched>>,
    rows: Vec<(String, [String; 2], String)>,
    warnings: Vec<String>,
    accept_encoding: String,
}

fn fmt_ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

fn ratio(an: f64, sy: f64) -> String {
    if an > 0.0 && sy > 0.0 && sy.is_finite() {
        format!("{:.2}×", sy / an)
    } else {
        "–".into()
    }
}

impl Report {
    fn new(figures: &[Figures], o: &Options) -> Result<Report> {
        let mut warnings = Vec::new();
        let mut fetched = Vec::new();
        let mut accept_encoding = String::new();
        for (l, f) in figures.iter().enumerate() {
            let first = f.cold.first().context("no page loads")?;
            // What the page fetched from the library's servers, less the
            // tracking API: bundle, settings, chunks, loader, wasm.
            let library: Vec<&Logged> = first
                .logged
                .iter()
                .filter(|r| r.method == "GET" && !is_tracking_path(&r.path))
                .collect();
            if let Some(ae) = library.first().and_then(|r| r.accept_encoding.clone()) {
                accept_encoding = ae;
            }
            for r in &library {
                if r.status != 200 {
                    warnings.push(format!(
                        "{}: GET {} answered {}",
                        ["analytics-next", "switchyard"][l],
                        r.path,
                        r.status
                    ));
                }
            }
            fetched.push(
                library
                    .iter()
                    .map(|r| measure_fetched(r))
                    .collect::<Result<Vec<_>>>()?,
            );
            // Every first visit must have fetched everything again.
            for (i, load) in f.cold.iter().enumerate() {
                let n = load
                    .logged
                    .iter()
                    .filter(|r| r.method == "GET" && !is_tracking_path(&r.path))
                    .count();
                if n != library.len() {
                    warnings.push(format!(
                        "{}: first visit {} fetched {n} library files, the first fetched {}",
                        ["analytics-next", "switchyard"][l],
                        i + 1,
                        library.len()
                    ));
                }
            }
            for load in &f.cold {
                if load.before_first_event.len() != load.server_before_first_event {
                    warnings.push(format!(
                        "{}: the page counted {} requests before its first event ({}), the servers {}",
                        ["analytics-next", "switchyard"][l],
                        load.before_first_event.len(),
                        load.before_first_event.join(", "),
                        load.server_before_first_event
                    ));
                    break;
                }
            }
        }
        let mut rows = Vec::new();
        let mut row = |label: String, an: f64, sy: f64, fmt: &dyn Fn(f64) -> String| {
            rows.push((label, [fmt(an), fmt(sy)], ratio(an, sy)));
        };
        let int = |v: f64| format!("{v:.0}");
        let sum = |l: usize, f: &dyn Fn(&Fetched) -> usize| {
            fetched[l].iter().map(f).sum::<usize>() as f64
        };
        row(
            "library bytes, gzip -9".into(),
            sum(0, &|f| f.gzip),
            sum(1, &|f| f.gzip),
            &int,
        );
        row(
            "library bytes, brotli -q 11".into(),
            sum(0, &|f| f.brotli),
            sum(1, &|f| f.brotli),
            &int,
        );
        row(
            "library bytes, uncompressed".into(),
            sum(0, &|f| f.raw),
            sum(1, &|f| f.raw),
            &int,
        );
        row(
            "library files fetched".into(),
            fetched[0].len() as f64,
            fetched[1].len() as f64,
            &int,
        );
        let before = |l: usize| {
            median(
                figures[l]
                    .cold
                    .iter()
                    .map(|x| x.before_first_event.len() as f64)
                    .collect(),
            )
        };
        row(
            "requests before the first event leaves".into(),
            before(0),
            before(1),
            &int,
        );
        let med = |l: usize, f: &dyn Fn(&Figures) -> Vec<f64>| median(f(&figures[l]));
        let n = o.loads;
        for (label, pick) in [
            (
                format!("insertion → ready, first visit, ms (median of {n})"),
                &(|f: &Figures| f.cold.iter().map(|x| x.ready).collect())
                    as &dyn Fn(&Figures) -> Vec<f64>,
            ),
            (
                format!("insertion → ready, repeat visit, ms (median of {n})"),
                &|f: &Figures| f.warm.iter().map(|x| x.ready).collect(),
            ),
            (
                format!("insertion → first event sent, first visit, ms (median of {n})"),
                &|f: &Figures| f.cold.iter().map(|x| x.first_event).collect(),
            ),
        ] {
            row(label, med(0, pick), med(1, pick), &fmt_ms);
        }
        let (c, r) = (o.calls, o.runs);
        for (label, pick) in [
            (
                format!("{c} track(): synchronous loop, ms (median of {r})"),
                &(|f: &Figures| f.runs.iter().map(|x| x.sync).collect())
                    as &dyn Fn(&Figures) -> Vec<f64>,
            ),
            (
                format!("{c} track(): until all promises resolve, ms (median of {r})"),
                &|f: &Figures| f.runs.iter().map(|x| x.all).collect(),
            ),
            (
                format!("{c} track(): until the last response, ms (median of {r})"),
                &|f: &Figures| f.runs.iter().map(|x| x.delivered).collect(),
            ),
            (
                format!("{c} track(): main-thread task time until then, ms (median of {r})"),
                &|f: &Figures| f.runs.iter().map(|x| x.busy).collect(),
            ),
            (
                format!("{c} track(): main-thread CPU time until then, ms (median of {r})"),
                &|f: &Figures| f.runs.iter().map(|x| x.cpu).collect(),
            ),
        ] {
            row(label, med(0, pick), med(1, pick), &fmt_ms);
        }
        // The same server for both: a check that it is not the bottleneck.
        let server = |l: usize| fmt_ms(med(l, &|f| f.runs.iter().map(|x| x.server_ms).collect()));
        rows.push((
            "  server's time to answer one tracking request, ms (median)".into(),
            [server(0), server(1)],
            "–".into(),
        ));
        // Counts: the range over the runs, when they differ.
        let range = |l: usize, f: &dyn Fn(&Run) -> usize| {
            let counts: Vec<usize> = figures[l].runs.iter().map(f).collect();
            let (min, max) = (
                counts.iter().copied().min().unwrap_or_default(),
                counts.iter().copied().max().unwrap_or_default(),
            );
            let text = if min == max {
                min.to_string()
            } else {
                [min.to_string(), max.to_string()].join("–")
            };
            (text, median(counts.iter().map(|&n| n as f64).collect()))
        };
        for (label, pick) in [
            (
                format!("{c} track(): tracking requests per run"),
                &(|r: &Run| r.posts) as &dyn Fn(&Run) -> usize,
            ),
            (
                format!("{c} track(): CORS preflights per run"),
                &|r: &Run| r.preflights,
            ),
            (
                format!("events received by the server per run (of {c})"),
                &|r: &Run| r.received,
            ),
        ] {
            let (an, an_median) = range(0, pick);
            let (sy, sy_median) = range(1, pick);
            rows.push((label, [an, sy], ratio(an_median, sy_median)));
        }
        Ok(Report {
            fetched,
            rows,
            warnings,
            accept_encoding,
        })
    }

    fn render(&self, o: &Options, user_agent: &str) -> String {
        let names = ["analytics-next 1.84.3", "switchyard"];
        let width = self
            .rows
            .iter()
            .map(|r| r.0.chars().count())
            .max()
            .unwrap_or(0);
        let pad = |s: &str, w: usize| {
            let n = s.chars().count();
            [s, &" ".repeat(w.saturating_sub(n))].concat()
        };
        let lpad = |s: &str, w: usize| {
            let n = s.chars().count();
            [&" ".repeat(w.saturating_sub(n)), s].concat()
        };
        let mut out = String::new();
        out.push_str(&format!(
            "\nClient benchmark: {} in {user_agent}, servers on 127.0.0.1\n\n",
            names.join(" vs "),
        ));
        out.push_str(&pad("", width));
        for n in names {
            out.push_str(&lpad(n, 23));
        }
        out.push_str(&lpad("switchyard ÷ a-n", 18));
        out.push('\n');
        for (label, values, ratio) in &self.rows {
            out.push_str(&pad(label, width));
            for v in values {
                out.push_str(&lpad(v, 23));
            }
            out.push_str(&lpad(ratio, 18));
            out.push('\n');
        }
        out.push_str(&format!(
            "\nLibrary bytes: the responses the page fetched from the library's servers during the \
             first load\nwith the cache disabled (everything but the tracking API), decoded, then \
             compressed here\nwith gzip -9 and brotli -q 11. Both servers also sent them \
             compressed, brotli else gzip at\nthose levels, as Chromium's Accept-Encoding \
             allowed (`{}`):\n",
            self.accept_encoding
        ));
        for (l, files) in self.fetched.iter().enumerate() {
            out.push_str(&format!("  {}\n", names[l]));
            for f in files {
                out.push_str(&format!(
                    "    {:<64} {:>3} {:>7} raw {:>7} gzip {:>7} br   (sent {} {})\n",
                    f.path, f.status, f.raw, f.gzip, f.brotli, f.served, f.encoding
                ));
            }
        }
        out.push_str(&format!(
            "\nRequests before the first event: resource-timing entries that started before the \
             first\nrequest to the tracking API (checked against the servers' logs), median of {} \
             first visits.\n\
             Ready: performance.now() in ready's callback less a mark just before the snippet \
             inserts\nthe script. First visit: the tab's HTTP cache disabled (DevTools \
             Network.setCacheDisabled);\nrepeat visit: the profile's cache, warmed by an earlier \
             load. Each load in a fresh tab.\n\
             track(): {} calls in a loop in a fresh, ready page, timed with performance.now(); \
             then until\nPromise.all of their promises resolves (analytics-next resolves a call \
             once its request is\nanswered, Switchyard once the event is queued); then until \
             the last tracking response\n(resource timing). Main-thread task and CPU time: over the same span, loop \
             included (DevTools\nPerformance.getMetrics TaskDuration and ThreadTime; task time \
             counts a task's waits, such as a\nsynchronous cookie read). Events received: \
             counted in Switchyard's event log, per run.\n",
            o.loads, o.calls
        ));
        if !self.warnings.is_empty() {
            out.push_str("\nWarnings:\n");
            for w in &self.warnings {
                out.push_str(&["  ", w, "\n"].concat());
            }
        }
        out
    }
}
