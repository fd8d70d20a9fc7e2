//! What the end-to-end suites share: a Switchyard server on a real socket
//! with the real built browser library, a second origin serving test pages,
//! and headless Chromium driven through chromedriver.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use switchyard_server::boot;
use switchyard_server::config::{ServeConfig, StoreConfig};

pub mod measure;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The workspace's `bundles/`, where `cargo xtask build-client` puts the
/// browser library.
pub fn bundles_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bundles")
}

/// The analytics-next version pinned in `bench/package.json`, which the
/// benchmark measures against and an end-to-end suite runs.
pub const ANALYTICS_NEXT_VERSION: &str = "1.84.3";

/// analytics-next's browser builds, `bench/node_modules/.../dist/umd`:
/// `standalone.js` (what Segment's CDN serves), `index.js` (the npm
/// package's code as one script, exposing `AnalyticsNext`) and their chunks.
pub fn analytics_next_dir() -> Result<PathBuf> {
    let package = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../bench/node_modules/@segment/analytics-next");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(package.join("package.json")).context(
            "bench/node_modules has no @segment/analytics-next: run `npm ci --prefix bench`",
        )?)?;
    if manifest["version"] != ANALYTICS_NEXT_VERSION {
        bail!(
            "bench/node_modules holds @segment/analytics-next {}, not {ANALYTICS_NEXT_VERSION}: \
             run `npm ci --prefix bench`",
            manifest["version"]
        );
    }
    Ok(package.join("dist/umd"))
}

/// What `switchyard serve` is given for a test: a free port on loopback,
/// the data in `data`, the real built library.
pub fn serve_config(data: &std::path::Path) -> Result<ServeConfig> {
    Ok(ServeConfig {
        addr: "127.0.0.1:0".parse()?,
        store: StoreConfig {
            data: data.to_path_buf(),
            database_url: None,
            secret_key: None,
            secret_key_file: None,
        },
        admin_token: None,
        bundles: bundles_dir(),
        public_url: None,
        loader_max_age: 60,
        // Vendors' stand-ins are on loopback; retries fast, so outages in
        // tests take seconds, not the production backoff's minutes.
        delivery: switchyard_server::config::DeliveryConfig {
            retry_window: 600,
            backoff_min_ms: 100,
            backoff_max_ms: 2_000,
            request_timeout: 10,
            outbound_allow: "127.0.0.1".into(),
        },
        metrics_public: false,
        rate_limit: switchyard_server::limits::DEFAULT_RATE,
        max_in_flight: switchyard_server::limits::DEFAULT_IN_FLIGHT,
        http_timeout: 30,
        trusted_proxies: String::new(),
        demo: true,
        retention_days: 30,
        retention_mb: 0,
    })
}

/// A Switchyard server, as `switchyard serve` runs it, on a free port.
pub struct Server {
    pub origin: String,
    pub admin_token: String,
    pub demo_write_key: String,
    pub demo_source_id: String,
    http: reqwest::Client,
    tracking: Tracking,
    store: StoreConfig,
    _data: tempfile::TempDir,
}

/// A tracking request (`POST /v1/...`) as it reached the server, kept by a
/// server started with [`Server::start_recording`].
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// Answered 503 without being stored (see [`Server::refuse_tracking`]).
    pub refused: bool,
}

impl Received {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The events it carried: the body itself, or each of its `batch`.
    pub fn events(&self) -> Vec<Value> {
        match self.json() {
            Some(Value::Object(mut o)) => match o.remove("batch") {
                Some(Value::Array(batch)) => batch,
                Some(other) => {
                    o.insert("batch".into(), other);
                    vec![Value::Object(o)]
                }
                None => vec![Value::Object(o)],
            },
            _ => Vec::new(),
        }
    }

    /// The `messageId` of each event it carried.
    pub fn message_ids(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|e| e["messageId"].as_str().map(str::to_string))
            .collect()
    }
}

/// What a recording server keeps: the tracking requests, and whether it
/// refuses them for now.
#[derive(Clone, Default)]
struct Tracking {
    log: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    refusing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

async fn record_tracking(
    axum::extract::State(tracking): axum::extract::State<Tracking>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path().to_string();
    if request.method() != axum::http::Method::POST || !path.starts_with("/v1/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let refused = tracking.refusing.load(std::sync::atomic::Ordering::SeqCst);
    tracking.log.lock().unwrap().push(Received {
        path,
        body: bytes.to_vec(),
        at: Instant::now(),
        refused,
    });
    if refused {
        use axum::response::IntoResponse;
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
            axum::Json(serde_json::json!({ "error": "the tracking API is down (test outage)" })),
        )
            .into_response();
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

impl Server {
    pub async fn start() -> Result<Server> {
        Server::start_recording_if(false).await
    }

    /// A server that also keeps every tracking request it receives, for
    /// [`Server::received`].
    pub async fn start_recording() -> Result<Server> {
        Server::start_recording_if(true).await
    }

    /// The tracking requests received so far (only when started with
    /// [`Server::start_recording`]), in the order they arrived.
    pub fn received(&self) -> Vec<Received> {
        self.tracking.log.lock().unwrap().clone()
    }

    /// While `refuse` is set, a server started with
    /// [`Server::start_recording`] answers every tracking request 503
    /// without storing it: an outage of the tracking API.
    pub fn refuse_tracking(&self, refuse: bool) {
        self.tracking
            .refusing
            .store(refuse, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every event in `/api/events`.
    pub async fn all_events(&self) -> Result<Vec<Value>> {
        Ok(self
            .api("/events?limit=1000")
            .await?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until `/api/events` holds at least `n` events `matches`
    /// accepts, and returns those it holds.
    pub async fn wait_for_events(
        &self,
        n: usize,
        matches: impl Fn(&Value) -> bool,
    ) -> Result<Vec<Value>> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found: Vec<Value> = self
                .all_events()
                .await?
                .into_iter()
                .filter(|e| matches(e))
                .collect();
            if found.len() >= n {
                return Ok(found);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} of {n} matching events arrived: {}",
                    found.len(),
                    Value::from(found)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn start_recording_if(record: bool) -> Result<Server> {
        let data = tempfile::tempdir()?;
        let config = serve_config(data.path())?;
        let opened = boot::open(&config).await?;
        if let Some(problem) = opened.artifacts_problem {
            bail!("{problem}");
        }
        let demo = opened.demo.context("first start made no demo source")?;
        let admin_token = opened
            .new_admin_token
            .context("first start made no admin token")?;
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let tracking = Tracking::default();
        opened.state.delivery.start();
        let mut app = switchyard_server::app(opened.state);
        if record {
            app = app.layer(axum::middleware::from_fn_with_state(
                tracking.clone(),
                record_tracking,
            ));
        }
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Server {
            origin: ["http://", &addr.to_string()].concat(),
            admin_token,
            demo_write_key: demo.write_key,
            demo_source_id: demo.id,
            http: reqwest::Client::new(),
            tracking,
            store: config.store.clone(),
            _data: data,
        })
    }

    /// The instance's stores opened beside the running server, as the CLI
    /// opens them on its data directory: what is really stored, secret
    /// settings included, which the API never shows.
    pub async fn stores(&self) -> Result<boot::Stores> {
        boot::open_stores(&self.store).await
    }

    /// `GET /api/...` with the admin token.
    pub async fn api(&self, path: &str) -> Result<Value> {
        let r = self
            .http
            .get([&self.origin, "/api", path].concat())
            .bearer_auth(&self.admin_token)
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        if !status.is_success() {
            bail!("GET /api{path}: {status}: {body}");
        }
        Ok(body)
    }

    /// `PATCH /api/...` with the admin token and a JSON body.
    pub async fn api_patch(&self, path: &str, body: Value) -> Result<Value> {
        self.api_send(reqwest::Method::PATCH, path, body).await
    }

    /// `POST /api/...` with the admin token and a JSON body.
    pub async fn api_post(&self, path: &str, body: Value) -> Result<Value> {
        self.api_send(reqwest::Method::POST, path, body).await
    }

    async fn api_send(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let r = self
            .http
            .request(method.clone(), [&self.origin, "/api", path].concat())
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        if !status.is_success() {
            bail!("{method} /api{path}: {status}: {body}");
        }
        Ok(body)
    }

    /// Sends one tracking call (`/v1/{call}`) for a write key, as a server
    /// library would.
    pub async fn track(&self, write_key: &str, call: &str, body: Value) -> Result<()> {
        let r = self
            .http
            .post([&self.origin, "/v1/", call].concat())
            .basic_auth(write_key, Some(""))
            .json(&body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("POST /v1/{call}: {}", r.status());
        }
        Ok(())
    }

    /// Waits until `/api/events` holds an event `matches` accepts.
    pub async fn wait_for_event(&self, matches: impl Fn(&Value) -> bool) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let events = self.api("/events?limit=1000").await?;
            if let Some(e) = events.as_array().into_iter().flatten().find(|e| matches(e)) {
                return Ok(e.clone());
            }
            if Instant::now() > deadline {
                bail!("no matching event arrived; the log holds {events}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Segment's snippet (5.x) for a write key, loading from this server.
    pub fn snippet(&self, write_key: &str) -> String {
        boot::snippet(write_key, &self.origin)
    }
}

/// A page whose head runs `script`.
pub fn html(title: &str, script: &str) -> String {
    [
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>",
        title,
        "</title><script>\n",
        script,
        "\n</script></head><body><p>",
        title,
        "</p></body></html>",
    ]
    .concat()
}

/// Records anything thrown into the page: installed before the snippet.
pub const WATCH_ERRORS: &str = "window.pageErrors = [];
window.onerror = function (message) { pageErrors.push('onerror: ' + message); };
window.addEventListener('unhandledrejection', function (e) {
  pageErrors.push('unhandled rejection: ' + (e.reason && e.reason.message || e.reason));
});";

/// `mock-api` (this package's stand-in tracking API and vendors) on a free
/// port, stopped when dropped. `binary` is its path:
/// `env!("CARGO_BIN_EXE_mock-api")` in a test.
pub struct MockApi {
    pub origin: String,
    pub http: reqwest::Client,
    child: Child,
}

impl MockApi {
    pub fn start(binary: &str) -> Result<MockApi> {
        use std::io::BufRead;
        let mut child = Command::new(binary)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start mock-api")?;
        let stdout = child.stdout.take().context("mock-api has no stdout")?;
        // Its first line is its origin; waited for with a deadline, so a
        // mock-api that never starts fails the test instead of hanging it.
        let (said, heard) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = said.send(read.map(|_| line));
        });
        let line = match heard.recv_timeout(Duration::from_secs(20)) {
            Ok(read) => read?,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("mock-api printed no origin within 20 s: {e}");
            }
        };
        let origin = line.trim().to_string();
        if !origin.starts_with("http://") {
            let _ = child.kill();
            bail!("mock-api printed {line:?}, not its origin");
        }
        Ok(MockApi {
            origin,
            http: reqwest::Client::new(),
            child,
        })
    }

    pub fn url(&self, path: &str) -> String {
        [&self.origin, path].concat()
    }

    /// What `GET /vendor/requests?vendor=..` returns: the requests
    /// `vendor`'s mock API received, oldest first.
    pub async fn requests(&self, vendor: &str) -> Result<Vec<Value>> {
        let url = self.url(&["/vendor/requests?vendor=", vendor].concat());
        Ok(self.http.get(url).send().await?.json().await?)
    }

    /// The `POST`s recorded for `vendor`, once there are at least `n`.
    pub async fn wait_for_posts(&self, vendor: &str, n: usize) -> Result<Vec<Value>> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let posts: Vec<Value> = self
                .requests(vendor)
                .await?
                .into_iter()
                .filter(|r| r["method"] == "POST")
                .collect();
            if posts.len() >= n {
                return Ok(posts);
            }
            if Instant::now() > deadline {
                bail!(
                    "{vendor}: {} of {n} requests arrived: {posts:#?}",
                    posts.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `vendor`'s requests, as text, contain every one of
    /// `needles`; returns them.
    pub async fn wait_for(&self, vendor: &str, needles: &[&str]) -> Result<Vec<Value>> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let requests = self.requests(vendor).await?;
            let text = Value::Array(requests.clone()).to_string();
            if needles.iter().all(|n| text.contains(n)) {
                return Ok(requests);
            }
            if Instant::now() > deadline {
                let missing: Vec<_> = needles.iter().filter(|n| !text.contains(*n)).collect();
                bail!("{vendor} never received {missing:?}; it has {text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Forgets every recorded request.
    pub async fn clear(&self) -> Result<()> {
        self.http
            .delete(self.url("/vendor/requests"))
            .send()
            .await?;
        Ok(())
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A second origin that serves whatever pages a test registers, so the
/// library runs cross-origin as it does on a customer's site.
pub struct Site {
    pub origin: String,
    pages: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

impl Site {
    pub async fn start() -> Result<Site> {
        use axum::extract::{Path, State};
        use axum::response::Html;
        type Pages = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>;
        let pages: Pages = Default::default();
        let app = axum::Router::new()
            .route(
                "/{page}",
                axum::routing::get(
                    |State(pages): State<Pages>, Path(page): Path<String>| async move {
                        let html = pages
                            .lock()
                            .unwrap()
                            .get(&page)
                            .cloned()
                            .unwrap_or_default();
                        Html(html)
                    },
                ),
            )
            .with_state(pages.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        // `localhost` rather than the server's 127.0.0.1: another origin.
        Ok(Site {
            origin: ["http://localhost:", &addr.port().to_string()].concat(),
            pages,
        })
    }

    /// Serves `html` at `/{name}` and returns its URL.
    pub fn page(&self, name: &str, html: &str) -> String {
        self.pages
            .lock()
            .unwrap()
            .insert(name.to_string(), html.to_string());
        [&self.origin, "/", name].concat()
    }
}

/// Headless Chromium through chromedriver; both end with this value.
pub struct Browser {
    pub client: fantoccini::Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Browser {
    pub async fn start() -> Result<Browser> {
        Browser::start_with(&[]).await
    }

    /// Headless Chromium with more command-line arguments.
    pub async fn start_with(extra_args: &[&str]) -> Result<Browser> {
        let port = free_port()?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(["--port=", &port.to_string()].concat())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("cannot start {CHROMEDRIVER}: run `cargo xtask test`, which installs it")
            })?;
        let profile = tempfile::tempdir()?;
        let profile_arg = ["--user-data-dir=", &profile.path().to_string_lossy()].concat();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .iter()
        .chain(extra_args)
        .map(|a| a.to_string())
        .collect();
        args.push(profile_arg);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": args
            }),
        );
        let url = ["http://127.0.0.1:", &port.to_string()].concat();
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match fantoccini::ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => bail!("chromedriver did not start: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        client.set_window_size(1280, 900).await?;
        Ok(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Saves a screenshot of the page as `tests/artifacts/{dir}/{name}.png`
    /// and returns its path.
    pub async fn screenshot(&self, dir: &str, name: &str) -> Result<PathBuf> {
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("artifacts")
            .join(dir);
        std::fs::create_dir_all(&folder)?;
        let path = folder.join([name, ".png"].concat());
        std::fs::write(&path, self.client.screenshot().await?)?;
        Ok(path)
    }

    /// Clicks the element `css` matches, waiting for it to appear.
    pub async fn click(&self, css: &str) -> Result<()> {
        let el = self.find(css).await?;
        el.click().await?;
        Ok(())
    }

    /// Waits for the element `css` matches.
    pub async fn find(&self, css: &str) -> Result<fantoccini::elements::Element> {
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(fantoccini::Locator::Css(css))
            .await
            .with_context(|| format!("no element `{css}` appeared"))
    }

    /// Types `text` into the input `css` matches, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let el = self.find(css).await?;
        el.clear().await?;
        el.send_keys(text).await?;
        Ok(())
    }

    /// The text of the element `css` matches.
    pub async fn text(&self, css: &str) -> Result<String> {
        Ok(self.find(css).await?.text().await?)
    }

    /// Evaluates `script` (a function body) in the page.
    pub async fn eval(&self, script: &str) -> Result<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// Waits until `condition` (a JS expression) is true in the page.
    pub async fn wait_until(&self, condition: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let script = ["return !!(", condition, ");"].concat();
        while self.eval(&script).await? != Value::Bool(true) {
            if Instant::now() > deadline {
                bail!("timed out waiting for `{condition}`");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Sends one of chromedriver's own commands (`POST
    /// /session/{id}/{path}` with a JSON body) and returns its value.
    pub async fn driver_command(&self, path: &str, body: Value) -> Result<Value> {
        let cmd = DriverCommand {
            path: path.to_string(),
            body,
        };
        self.client
            .issue_cmd(cmd)
            .await
            .with_context(|| format!("chromedriver command {path}"))
    }

    /// Runs a Chrome DevTools Protocol command in the current tab.
    pub async fn devtools(&self, cmd: &str, params: Value) -> Result<Value> {
        self.driver_command(
            "goog/cdp/execute",
            serde_json::json!({ "cmd": cmd, "params": params }),
        )
        .await
    }

    /// Takes the current tab off the network, or puts it back, through
    /// chromedriver's network emulation: requests fail and
    /// `navigator.onLine` follows, as when a laptop loses its Wi-Fi.
    pub async fn set_offline(&self, offline: bool) -> Result<()> {
        self.driver_command(
            "chromium/network_conditions",
            serde_json::json!({
                "network_conditions": {
                    "offline": offline,
                    "latency": 0,
                    "download_throughput": -1,
                    "upload_throughput": -1,
                }
            }),
        )
        .await?;
        Ok(())
    }

    pub async fn close(mut self) -> Result<()> {
        let result = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        Ok(result?)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// A chromedriver extension command for `fantoccini::Client::issue_cmd`.
#[derive(Debug)]
struct DriverCommand {
    path: String,
    body: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for DriverCommand {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&["session/", session_id.unwrap_or_default(), "/", &self.path].concat())
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (reqwest::Method, Option<String>) {
        (reqwest::Method::POST, Some(self.body.to_string()))
    }
}
