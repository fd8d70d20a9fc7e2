//! `cargo xtask bench-server`: the tracking API's ingest and cloud
//! delivery on this machine, measured with `wrk` against the release
//! `switchyard serve` (embedded SQLite, durable appends). The healthy
//! destination is a batched webhook to a sink in this process that answers
//! 200 and keeps nothing (so the figure is Switchyard's, not a recorder's).
//! Prints one table.
//!
//! 1. Ingest at full load: `wrk` posts `/v1/batch` bodies of 100 events,
//!    each with a new messageId, from 32 connections for 10 s.
//! 2. Ingest at half that load: `wrk` paced to half the requests per
//!    second, with its latency distribution (p50, p99).
//! 3. Steady state with a healthy destination: a cloud connection (created
//!    just before, so it starts at the head) gets every event of a paced
//!    run at `STEADY_RATE` requests a second; its receipt-to-2xx p50/p99
//!    come from its overview.
//! 4. Delivery throughput: a replay of the full-load phase's events to a
//!    new connection, timed from start to done.
//!
//! The load generator, the sink and the server share this machine's cores.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

const TOKEN: &str = "bench-admin-token";
const EVENTS_PER_REQUEST: usize = 100;
const CONNECTIONS: usize = 32;
const SECONDS: u64 = 10;
/// Requests a second (of 100 events) in the steady-state run.
const STEADY_RATE: f64 = 100.0;

/// A destination that answers 200 at once and counts what it got.
async fn start_sink() -> Result<(String, std::sync::Arc<std::sync::atomic::AtomicU64>)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let requests = std::sync::Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(move |_body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((origin, requests))
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program` and returns it with the first `http://` word it prints.
fn start(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<(Process, String)> {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let origin = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .with_context(|| format!("{} printed {line:?}", program.display()))?
        .to_string();
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    Ok((Process(child), origin))
}

struct Api {
    origin: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), [&self.origin, "/api", path].concat())
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await?;
        let status = r.status();
        let body: Value = r.json().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {body}");
        }
        Ok(body)
    }

    async fn webhook(&self, source: &str, url: &str) -> Result<String> {
        let c = self
            .call(
                reqwest::Method::POST,
                &["/sources/", source, "/connections"].concat(),
                Some(
                    json!({"destination": "webhook", "mode": "cloud", "enabled": true,
                            "settings": {"url": url, "batch": true, "batchSize": 1000}}),
                ),
            )
            .await?;
        Ok(c["id"].as_str().unwrap_or_default().to_string())
    }
}

/// wrk's script: each request a batch of new events (messageIds unique
/// within the `run`); `rate` (requests a second, all connections
/// together) paces it when set.
fn script(write_key: &str, run: &str, rate: Option<f64>) -> String {
    let delay = match rate {
        Some(rate) => format!(
            "function delay() return math.random(0, {}) end\n",
            (2000.0 * CONNECTIONS as f64 / rate) as u64
        ),
        None => String::new(),
    };
    format!(
        r#"
local counter = 0
local thread_id = 0
function setup(thread) thread:set("tid", math.random(1, 1000000000)) end
function init(args) thread_id = tid end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic {auth}"
{delay}
function request()
  counter = counter + 1
  local parts = {{}}
  for i = 1, {n} do
    parts[i] = '{{"type":"track","event":"Bench","userId":"u' .. i .. '","messageId":"{run}-' .. thread_id .. '-' .. counter .. '-' .. i .. '","properties":{{"price":' .. i .. ',"sku":"SKU-' .. i .. '"}}}}'
  end
  return wrk.format(nil, "/v1/batch", nil, '{{"batch":[' .. table.concat(parts, ",") .. ']}}')
end
"#,
        auth = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{write_key}:")
        ),
        n = EVENTS_PER_REQUEST,
        run = run,
    )
}

struct WrkResult {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

/// wrk's time (`1.23ms`, `456.78us`, `1.02s`) in milliseconds.
fn millis(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn wrk(origin: &str, script_path: &Path) -> Result<WrkResult> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{SECONDS}s"),
            "--latency",
            "-s",
        ])
        .arg(script_path)
        .arg(origin)
        .output()
        .context("cannot run wrk (cargo xtask bench-server installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    let requests_per_second = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no Requests/sec in {text}"))?;
    let p50_ms = field("50%").and_then(|v| millis(&v)).context("no p50")?;
    let p99_ms = field("99%").and_then(|v| millis(&v)).context("no p99")?;
    let non_2xx = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(WrkResult {
        requests_per_second,
        p50_ms,
        p99_ms,
        non_2xx,
    })
}

/// nginx serving one file on a free loopback port, stopped when dropped.
struct Nginx {
    child: std::process::Child,
    url: String,
}

impl Nginx {
    fn start(dir: &Path, body: &[u8]) -> Result<Nginx> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let root = dir.join("www");
        std::fs::create_dir_all(&root)?;
        std::fs::write(root.join("analytics.min.js"), body)?;
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nworker_processes 2;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{ access_log off; default_type application/javascript;\n\
                 client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;\n\
                 uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;\n\
                 server {{ listen 127.0.0.1:{port}; root {root};\n\
                 location / {{ add_header Cache-Control \"public, max-age=60\"; }} }} }}\n",
                dir = dir.display(),
                root = root.display(),
            ),
        )?;
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start nginx (cargo xtask bench-server installs it)")?;
        let url = format!("http://127.0.0.1:{port}/analytics.min.js");
        let nginx = Nginx { child, url };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("nginx did not listen within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("no directory")?.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: run `cargo xtask bench-server`",
            path.display()
        );
    }
    Ok(path)
}

#[tokio::main]
async fn main() -> Result<()> {
    let data = tempfile::tempdir()?;
    let (mock, sink_requests) = start_sink().await?;
    let (_server, origin) = start(
        &sibling("switchyard")?,
        &["serve"],
        &[
            ("SWITCHYARD_ADDR", "127.0.0.1:0"),
            ("SWITCHYARD_DATA", data.path().to_str().unwrap_or_default()),
            ("SWITCHYARD_ADMIN_TOKEN", TOKEN),
            ("SWITCHYARD_OUTBOUND_ALLOW", "127.0.0.1"),
            // The load is one write key's: its rate is what is measured.
            ("SWITCHYARD_RATE_LIMIT", "0"),
            ("SWITCHYARD_MAX_IN_FLIGHT", "100000"),
            ("RUST_LOG", "error"),
        ],
    )?;
    let api = Api {
        origin: origin.clone(),
        http: reqwest::Client::new(),
    };
    let source = api
        .call(
            reqwest::Method::POST,
            "/sources",
            Some(json!({"name": "Bench"})),
        )
        .await?;
    let source_id = source["id"].as_str().unwrap_or_default().to_string();
    let key = source["write_key"].as_str().unwrap_or_default().to_string();
    let dir = tempfile::tempdir()?;

    // 0. The loader, cached, against nginx serving the same bytes from a
    // file, with the same connections and threads.
    let loader_url = [&origin, "/analytics.js/v1/", &key, "/analytics.min.js"].concat();
    let loader_bytes = reqwest::get(&loader_url).await?.bytes().await?;
    let get_script = dir.path().join("get.lua");
    std::fs::write(&get_script, "wrk.method = \"GET\"\n")?;
    let loader = wrk(&loader_url, &get_script)?;
    let nginx = match Nginx::start(dir.path(), &loader_bytes) {
        Ok(nginx) => Some((wrk(&nginx.url, &get_script)?, nginx)),
        Err(e) => {
            eprintln!("nginx: {e:#}");
            None
        }
    };

    // 1. Full load.
    let started_at = chrono::Utc::now();
    let full_script = dir.path().join("full.lua");
    std::fs::write(&full_script, script(&key, "full", None))?;
    let full = wrk(&origin, &full_script)?;
    let ended_at = chrono::Utc::now();

    // 2. Half load.
    let half_script = dir.path().join("half.lua");
    std::fs::write(
        &half_script,
        script(&key, "half", Some(full.requests_per_second / 2.0)),
    )?;
    let half = wrk(&origin, &half_script)?;

    // 3. Steady state, with a healthy destination delivering: it must see
    // every event of the run.
    let steady = api.webhook(&source_id, &format!("{mock}/steady")).await?;
    let steady_script = dir.path().join("steady.lua");
    std::fs::write(&steady_script, script(&key, "steady", Some(STEADY_RATE)))?;
    let steady_run = wrk(&origin, &steady_script)?;
    let overview_path = ["/connections/", &steady, "/delivery"].concat();
    let deadline = Instant::now() + Duration::from_secs(120);
    let overview = loop {
        let o = api.call(reqwest::Method::GET, &overview_path, None).await?;
        if o["lag"] == 0 && o["retrying"] == 0 && o["last_hour"]["received"].as_u64() > Some(0) {
            break o;
        }
        if Instant::now() > deadline {
            bail!("the steady destination did not catch up: {o}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // 4. Delivery throughput: the full-load events replayed.
    let replay_to = api.webhook(&source_id, &format!("{mock}/replay")).await?;
    let t0 = Instant::now();
    let replay = api
        .call(
            reqwest::Method::POST,
            &["/connections/", &replay_to, "/replays"].concat(),
            Some(json!({"from": started_at.to_rfc3339(), "to": ended_at.to_rfc3339()})),
        )
        .await?;
    let replay_id = replay["id"].as_str().unwrap_or_default().to_string();
    let deadline = Instant::now() + Duration::from_secs(600);
    let replayed = loop {
        let list = api
            .call(
                reqwest::Method::GET,
                &["/connections/", &replay_to, "/replays"].concat(),
                None,
            )
            .await?;
        let r = list
            .as_array()
            .and_then(|l| l.iter().find(|r| r["id"] == json!(replay_id)).cloned())
            .context("the replay is gone")?;
        if r["done"] == true {
            break r;
        }
        if Instant::now() > deadline {
            bail!("the replay did not finish: {r}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let replay_seconds = t0.elapsed().as_secs_f64();
    let delivered = replayed["delivered"].as_f64().unwrap_or(0.0);

    let events_per_request = EVENTS_PER_REQUEST as f64;
    let ingest = full.requests_per_second * events_per_request;
    let p = |v: &Value| v.as_u64().map_or("–".to_string(), |n| format!("≤ {n}"));
    println!();
    println!(
        "switchyard server on this machine ({} cores), SQLite, durable appends",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("{:<58} {:>16} {:>18}", "measure", "value", "budget");
    println!(
        "{:<58} {:>16.0} {:>18}",
        "/v1/batch ingest, events/s (100 a request, full load)", ingest, "≥ 50000"
    );
    println!(
        "{:<58} {:>16.0} {:>18}",
        "  requests/s", full.requests_per_second, ""
    );
    println!(
        "{:<58} {:>16} {:>18}",
        "  non-2xx answers", full.non_2xx, "0"
    );
    println!(
        "{:<58} {:>16.0} {:>18}",
        "at half load: events/s",
        half.requests_per_second * events_per_request,
        ""
    );
    println!(
        "{:<58} {:>16.2} {:>18}",
        "  request p50, ms", half.p50_ms, ""
    );
    println!(
        "{:<58} {:>16.2} {:>18}",
        "  request p99, ms", half.p99_ms, "≤ 10"
    );
    println!(
        "{:<58} {:>16.0} {:>18}",
        "steady state, one healthy destination: events/s",
        steady_run.requests_per_second * events_per_request,
        ""
    );
    println!(
        "{:<58} {:>16.2} {:>18}",
        "  request p99, ms", steady_run.p99_ms, ""
    );
    println!(
        "{:<58} {:>16} {:>18}",
        "  receipt → healthy destination's 2xx, p50 ms",
        p(&overview["last_hour"]["latency_p50_ms"]),
        ""
    );
    println!(
        "{:<58} {:>16} {:>18}",
        "  receipt → healthy destination's 2xx, p99 ms",
        p(&overview["last_hour"]["latency_p99_ms"]),
        "≤ 1000"
    );
    println!(
        "{:<58} {:>16} {:>18}",
        "  delivered by the steady connection", overview["last_hour"]["delivered"], ""
    );
    println!(
        "{:<58} {:>16.0} {:>18}",
        "delivery to a local mock (replay), events/s",
        delivered / replay_seconds,
        ""
    );
    println!("{:<58} {:>16.0} {:>18}", "  events replayed", delivered, "");
    println!(
        "{:<58} {:>16} {:>18}",
        "  requests the sink answered, in all",
        sink_requests.load(std::sync::atomic::Ordering::Relaxed),
        ""
    );
    println!(
        "{:<58} {:>16} {:>18}",
        "peer: RudderStack gateway, requests/s on 2 cores (published)", "~1700", ""
    );
    println!(
        "{:<58} {:>16.0} {:>18}",
        "cached loader (same bytes, no compression), requests/s", loader.requests_per_second, ""
    );
    match &nginx {
        Some((n, _)) => {
            println!(
                "{:<58} {:>16.0} {:>18}",
                "  nginx serving them from a file, requests/s", n.requests_per_second, ""
            );
            println!(
                "{:<58} {:>16.2} {:>18}",
                "  Switchyard / nginx",
                loader.requests_per_second / n.requests_per_second,
                "≥ 0.5"
            );
        }
        None => println!("{:<58} {:>16} {:>18}", "  nginx", "not run", ""),
    }
    if full.non_2xx > 0 || half.non_2xx > 0 || steady_run.non_2xx > 0 {
        bail!("the server refused requests under load");
    }
    Ok(())
}
