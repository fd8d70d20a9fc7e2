//! Cloud mode end to end: Segment's own server libraries
//! (`@segment/analytics-node`, `segment-analytics-python`, from
//! `tests/clients/`) send to a real Switchyard server, which delivers to
//! every destination that has a cloud forwarder (the list comes from the
//! registry); each vendor's stand-in in `mock-api` receives its own
//! format. Then what a site owner checks: every event once per vendor by
//! its dedupe key, the webhook's events field by field, nothing dead, the
//! overview, `/metrics`, and no secret anywhere they are shown.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use switchyard_catalog::Mode;
use switchyard_tests::{MockApi, Server};

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// Settings every destination needs beyond its vendor base URL, with the
/// secrets the checks look for. Checked complete against the registry.
fn sample_settings(slug: &str, mock: &MockApi) -> Option<Value> {
    let base = mock.url(&["/cloud/", slug].concat());
    Some(match slug {
        "webhook" => {
            json!({"url": ([&base, "/hook"].concat()), "sharedSecret": "secret-webhook-4f2a"})
        }
        "slack" => {
            json!({"webhookUrl": ([&base, "/services/T000/B000/secret-slack-9c1d"].concat())})
        }
        "mixpanel" => {
            json!({"token": "0123456789abcdef0123456789abcdef", "apiSecret": "secret-mixpanel-7e3b"})
        }
        "amplitude" => json!({"apiKey": "fedcba9876543210fedcba9876543210"}),
        "posthog" => json!({"apiKey": "phc_test0123456789"}),
        "google_analytics_4" => {
            json!({"measurementId": "G-TEST12345", "apiSecret": "secret-ga4-1b8e"})
        }
        "facebook_conversions_api" => {
            json!({"pixelId": "123456789012345", "accessToken": "secret-facebook-5d0c"})
        }
        "customerio" => json!({"siteId": "site-0123", "apiKey": "secret-customerio-2a7f"}),
        "klaviyo" => json!({"publicApiKey": "AbC123", "privateApiKey": "pk_secretklaviyo3e9a"}),
        "intercom" => json!({"appId": "abc123", "accessToken": "secret-intercom-8f4b"}),
        _ => return None,
    })
}

/// Every destination with a cloud forwarder, from the registry.
fn cloud_destinations() -> Vec<switchyard_catalog::Definition> {
    let catalog = switchyard_destinations::catalog().unwrap();
    catalog
        .all()
        .iter()
        .filter(|d| switchyard_destinations::forwarder(&d.slug).is_some())
        .cloned()
        .collect()
}

/// The connection settings for `def`: its samples, and each cloud setting
/// whose default is the vendor's https URL pointed at the vendor's stand-in.
fn settings_for(def: &switchyard_catalog::Definition, mock: &MockApi) -> Result<Value> {
    let mut settings = sample_settings(&def.slug, mock)
        .with_context(|| format!("{}: no sample settings in tests/tests/cloud.rs", def.slug))?;
    for s in def.settings_for(Mode::Cloud) {
        let vendor_url = s
            .default
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|d| d.starts_with("https://"));
        if vendor_url && settings.get(&s.key).is_none() {
            settings[&s.key] = json!(mock.url(&["/cloud/", &def.slug].concat()));
        }
    }
    Ok(settings)
}

fn secrets() -> Vec<&'static str> {
    vec![
        "secret-webhook-4f2a",
        "secret-slack-9c1d",
        "secret-mixpanel-7e3b",
        "secret-ga4-1b8e",
        "secret-facebook-5d0c",
        "secret-customerio-2a7f",
        "pk_secretklaviyo3e9a",
        "secret-intercom-8f4b",
    ]
}

const NODE_SCRIPT: &str = r#"
const { Analytics } = require('@segment/analytics-node');
const analytics = new Analytics({ writeKey: process.env.WRITE_KEY, host: process.env.HOST, flushAt: 3, flushInterval: 200 });
const userId = 'node-user-1';
analytics.identify({ userId, traits: { email: 'Jane.Doe@Example.com', firstName: 'Jane', lastName: 'Doe', phone: '+1 (555) 010-9999', plan: 'pro' } });
analytics.track({ userId, event: 'Order Completed', properties: { order_id: 'ord-node-1', revenue: 42.5, total: 42.5, currency: 'USD', products: [{ product_id: 'p-1', sku: 'SKU-1', name: 'Mug', price: 20, quantity: 1 }, { product_id: 'p-2', sku: 'SKU-2', name: 'Tee', price: 11.25, quantity: 2 }] }, context: { ip: '203.0.113.9', page: { url: 'https://shop.example.com/checkout' } } });
analytics.track({ userId, event: 'Product Viewed', properties: { product_id: 'p-1', sku: 'SKU-1', name: 'Mug', price: 20, currency: 'USD' } });
analytics.page({ userId, category: 'Docs', name: 'Pricing', properties: { url: 'https://shop.example.com/pricing', path: '/pricing', title: 'Pricing' } });
analytics.screen({ userId, name: 'Home' });
analytics.group({ userId, groupId: 'company-42', traits: { name: 'Acme', plan: 'enterprise' } });
analytics.alias({ userId, previousId: 'node-anon-1' });
analytics.track({ anonymousId: 'node-anon-2', event: 'Signed Up', properties: { plan: 'free' } });
analytics.identify({ userId, traits: { email: 'Jane.Doe@Example.com', plan: 'enterprise' } });
analytics.closeAndFlush({ timeout: 10000 }).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
"#;

const PYTHON_SCRIPT: &str = r#"
import os, sys
import segment.analytics as analytics
analytics.write_key = os.environ['WRITE_KEY']
analytics.host = os.environ['HOST']
analytics.sync_mode = True
errors = []
analytics.on_error = lambda e, batch: errors.append(e)
uid = 'py-user-1'
analytics.identify(uid, {'email': 'py@example.com', 'firstName': 'Py', 'plan': 'basic'})
analytics.track(uid, 'Order Completed', {'order_id': 'ord-py-1', 'revenue': 10.0, 'currency': 'EUR', 'products': [{'product_id': 'p-9', 'sku': 'SKU-9', 'price': 10.0, 'quantity': 1}]})
analytics.page(uid, 'Docs', 'Install', {'url': 'https://shop.example.com/install'})
analytics.group(uid, 'company-7', {'name': 'Initech'})
analytics.track(None, 'Newsletter Subscribed', anonymous_id='py-anon-1')
analytics.flush()
sys.exit(1 if errors else 0)
"#;

/// Runs a client program to its end, off the async threads (the server
/// under test runs on them).
async fn run_client(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .with_context(|| format!("{program} did not finish in two minutes"))?
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get_json(mock: &MockApi, path: &str) -> Result<Value> {
    Ok(mock.http.get(mock.url(path)).send().await?.json().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_server_libraries_reach_every_cloud_destination_in_its_format() -> Result<()> {
    let node_modules = clients_dir().join("node_modules");
    let python = clients_dir().join("python");
    for path in [&node_modules, &python] {
        if !path.exists() {
            bail!(
                "{} is missing: run `cargo xtask test`, which installs tests/clients",
                path.display()
            );
        }
    }
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let server = Server::start().await?;
    let source = server
        .api_post("/sources", json!({"name": "Cloud shop"}))
        .await?;
    let source_id = source["id"].as_str().unwrap().to_string();
    let write_key = source["write_key"].as_str().unwrap().to_string();

    let destinations = cloud_destinations();
    assert!(
        destinations.len() >= 10,
        "only {} cloud destinations",
        destinations.len()
    );
    let mut connections = Vec::new();
    for def in &destinations {
        let c = server
            .api_post(
                &["/sources/", &source_id, "/connections"].concat(),
                json!({"destination": def.slug, "mode": "cloud", "enabled": true, "settings": settings_for(def, &mock)?}),
            )
            .await?;
        let codes: Vec<&str> = c["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w["code"].as_str())
            .collect();
        assert!(
            !codes.contains(&"mode_unavailable"),
            "{}: {codes:?}",
            def.slug
        );
        connections.push((def.clone(), c["id"].as_str().unwrap().to_string()));
    }
    // The bundle names each of them as delivered by the server.
    let settings: Value = reqwest::get(
        [
            server.origin.as_str(),
            &["/v1/projects/", &write_key, "/settings"].concat(),
        ]
        .concat(),
    )
    .await?
    .json()
    .await?;
    let unbundled = &settings["integrations"]["Segment.io"]["unbundledIntegrations"];
    for def in &destinations {
        assert!(
            unbundled.as_array().unwrap().contains(&json!(def.name)),
            "{} is not unbundled: {unbundled}",
            def.name
        );
    }

    let host = server.origin.clone();
    run_client(
        "node",
        &["-e", NODE_SCRIPT],
        &[
            ("WRITE_KEY", &write_key),
            ("HOST", &host),
            ("NODE_PATH", node_modules.to_str().unwrap()),
        ],
    )
    .await?;
    run_client(
        "python3",
        &["-c", PYTHON_SCRIPT],
        &[
            ("WRITE_KEY", &write_key),
            ("HOST", &host),
            ("PYTHONPATH", python.to_str().unwrap()),
        ],
    )
    .await?;

    // What the server stored: 9 calls from Node.js, 5 from Python.
    let stored: Vec<Value> = server
        .api(&["/events?limit=1000&source=", &source_id].concat())
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(stored.len(), 14, "stored: {stored:?}");

    // Every connection handles every event: delivered, or skipped by
    // routing (a call the destination does not take), none dead.
    for (def, id) in &connections {
        let path = ["/connections/", id, "/delivery"].concat();
        wait_until(
            &format!("{} to handle every event", def.slug),
            Duration::from_secs(60),
            || async {
                let o = server.api(&path).await?;
                let t = &o["last_hour"];
                let filtered: u64 = t["filtered"]
                    .as_object()
                    .unwrap()
                    .values()
                    .filter_map(Value::as_u64)
                    .sum();
                let handled = t["delivered"].as_u64().unwrap()
                    + filtered
                    + t["dead_lettered"].as_u64().unwrap();
                Ok(t["received"] == 14 && handled == 14 && o["lag"] == 0 && o["retrying"] == 0)
            },
        )
        .await?;
        let o = server.api(&path).await?;
        let dead = server
            .api(&["/connections/", id, "/dead-letters"].concat())
            .await?;
        assert_eq!(o["last_hour"]["dead_lettered"], 0, "{}: {dead}", def.slug);
        assert!(
            o["last_hour"]["delivered"].as_u64().unwrap() >= 4,
            "{}: {o}",
            def.slug
        );
        let failures = server
            .api(&["/connections/", id, "/failures"].concat())
            .await?;
        assert_eq!(failures, json!([]), "{}", def.slug);

        // The vendor's stand-in took every request, each event once.
        let requests = get_json(&mock, &["/cloud/requests?vendor=", &def.slug].concat()).await?;
        let requests = requests.as_array().unwrap();
        assert!(!requests.is_empty(), "{}: nothing arrived", def.slug);
        for r in requests {
            let status = r["status"].as_u64().unwrap();
            // Intercom's "contact exists", answered by an update (below).
            let exists = def.slug == "intercom" && status == 409 && r["endpoint"] == "/contacts";
            assert!((200..300).contains(&status) || exists, "{}: {r}", def.slug);
        }
        let keys = get_json(&mock, &["/cloud/keys?vendor=", &def.slug].concat()).await?;
        let keys = keys.as_object().unwrap();
        assert!(!keys.is_empty(), "{}: no dedupe keys", def.slug);
        for (key, n) in keys {
            assert_eq!(n, 1, "{}: {key} arrived {n} times", def.slug);
        }
    }

    // The webhook gets Segment's events as stored, field by field, signed.
    let hooks = get_json(&mock, "/cloud/requests?vendor=webhook").await?;
    let mut got: Vec<Value> = hooks
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"].clone())
        .collect();
    let mut want = stored.clone();
    let by_id = |a: &Value, b: &Value| a["messageId"].as_str().cmp(&b["messageId"].as_str());
    got.sort_by(by_id);
    want.sort_by(by_id);
    assert_eq!(
        got, want,
        "the webhook's events differ from the stored ones"
    );
    for r in hooks.as_array().unwrap() {
        assert_eq!(
            r["headers"]["x-signature"].as_str().map(str::len),
            Some(64),
            "{r}"
        );
    }

    // Intercom has the contact already at the second identify (409): the
    // same attributes went as an update of the contact it named.
    let intercom = get_json(&mock, "/cloud/requests?vendor=intercom").await?;
    let conflicts = intercom
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 409)
        .count();
    let updates: Vec<&Value> = intercom
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "PUT"
                && r["endpoint"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("/contacts/")
        })
        .collect();
    assert_eq!((conflicts, updates.len()), (1, 1), "{intercom}");
    assert_eq!(updates[0]["status"], 200, "{}", updates[0]);

    // Facebook's event_id is the messageId, so the browser Pixel dedupes.
    let fb = get_json(&mock, "/cloud/keys?vendor=facebook_conversions_api").await?;
    for key in fb.as_object().unwrap().keys() {
        assert!(
            stored.iter().any(|e| e["messageId"] == json!(key)),
            "event_id {key} is no messageId"
        );
    }

    // /metrics: behind the admin token, counting what happened, no secret.
    let anonymous = reqwest::get([server.origin.as_str(), "/metrics"].concat()).await?;
    assert_eq!(anonymous.status(), 401);
    let metrics = reqwest::Client::new()
        .get([server.origin.as_str(), "/metrics"].concat())
        .bearer_auth(&server.admin_token)
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("switchyard_events_accepted_total"),
        "{metrics}"
    );
    let webhook_id = &connections
        .iter()
        .find(|(d, _)| d.slug == "webhook")
        .unwrap()
        .1;
    let line = format!(
        "switchyard_delivery_events_total{{destination=\"webhook\",connection=\"{webhook_id}\",result=\"delivered\"}} 14"
    );
    assert!(metrics.contains(&line), "no `{line}` in\n{metrics}");

    // Secrets: nowhere the admin shows delivery, nor in /metrics.
    let mut shown = vec![metrics];
    for (_, id) in &connections {
        for part in ["", "/delivery", "/failures", "/dead-letters"] {
            shown.push(
                server
                    .api(&["/connections/", id, part].concat())
                    .await?
                    .to_string(),
            );
        }
        shown.push(
            server
                .api_post(&["/connections/", id, "/test"].concat(), json!({}))
                .await?
                .to_string(),
        );
    }
    for text in &shown {
        for secret in secrets() {
            assert!(!text.contains(secret), "{secret} is shown: {text}");
        }
    }
    // The tester's exchange did reach the vendor and says so.
    let report = server
        .api_post(&["/connections/", webhook_id, "/test"].concat(), json!({}))
        .await?;
    assert_eq!(report["exchanges"][0]["status"], 200, "{report}");
    Ok(())
}

/// Sets a vendor stand-in's failure switch (`POST /cloud/control`).
async fn control(mock: &MockApi, body: Value) -> Result<()> {
    let r = mock
        .http
        .post(mock.url("/cloud/control"))
        .json(&body)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("control {body}: {}", r.status());
    }
    Ok(())
}

/// A cloud connection for `slug` on `source`, its settings pointed at the
/// stand-in (`settings` merged over the samples).
async fn connect(
    server: &Server,
    mock: &MockApi,
    source: &str,
    slug: &str,
    extra: Value,
) -> Result<String> {
    let catalog = switchyard_destinations::catalog().unwrap();
    let def = catalog.get(slug).context("no such destination")?;
    let mut settings = settings_for(def, mock)?;
    for (k, v) in extra.as_object().into_iter().flatten() {
        settings[k] = v.clone();
    }
    let c = server
        .api_post(
            &["/sources/", source, "/connections"].concat(),
            json!({"destination": slug, "mode": "cloud", "enabled": true, "settings": settings}),
        )
        .await?;
    Ok(c["id"].as_str().unwrap().to_string())
}

fn track(id: &str) -> Value {
    json!({"type": "track", "event": "Order Completed", "userId": "user-0001", "messageId": id,
           "properties": {"order_id": id, "revenue": 5, "currency": "USD"}})
}

/// The webhook stand-in's arrival time for each messageId, and each
/// stored event's receipt time, give receipt-to-2xx latencies.
fn percentile(mut values: Vec<i64>, q: f64) -> i64 {
    values.sort();
    let at = ((values.len() as f64) * q).ceil() as usize;
    values[at.saturating_sub(1).min(values.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_down_for_two_minutes_gets_every_event_once_and_the_others_keep_their_pace()
-> Result<()> {
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let server = Server::start().await?;
    let source = server
        .api_post("/sources", json!({"name": "Outage"}))
        .await?;
    let (source_id, key) = (
        source["id"].as_str().unwrap().to_string(),
        source["write_key"].as_str().unwrap().to_string(),
    );
    connect(&server, &mock, &source_id, "mixpanel", json!({})).await?;
    connect(&server, &mock, &source_id, "webhook", json!({})).await?;

    // A steady stream: a batch of 25 every 250 ms, 100 events a second.
    let send_for = |prefix: &'static str, seconds: u64| {
        let (origin, key) = (server.origin.clone(), key.clone());
        async move {
            let http = reqwest::Client::new();
            let mut sent = Vec::new();
            let started = Instant::now();
            let mut n = 0;
            while started.elapsed() < Duration::from_secs(seconds) {
                let ids: Vec<String> = (0..25).map(|i| format!("{prefix}-{n}-{i}")).collect();
                n += 1;
                let batch: Vec<Value> = ids.iter().map(|id| track(id)).collect();
                let r = http
                    .post([origin.as_str(), "/v1/batch"].concat())
                    .basic_auth(&key, Some(""))
                    .json(&json!({"batch": batch}))
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("ingest refused: {}", r.status());
                }
                sent.extend(ids);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok::<_, anyhow::Error>(sent)
        }
    };
    let before = send_for("before", 15).await?;
    control(&mock, json!({"vendor": "mixpanel", "mode": "down"})).await?;
    let during = send_for("during", 120).await?;
    control(&mock, json!({"vendor": "mixpanel", "mode": "ok"})).await?;
    let all: Vec<String> = before.iter().chain(&during).cloned().collect();
    assert!(all.len() >= 10_000, "only {} events", all.len());

    // Mixpanel has every event exactly once by $insert_id (the messageId).
    wait_until("Mixpanel to catch up", Duration::from_secs(120), || async {
        let keys = get_json(&mock, "/cloud/keys?vendor=mixpanel").await?;
        Ok(keys.as_object().unwrap().len() >= all.len())
    })
    .await?;
    // The stand-in keys Mixpanel's events as Mixpanel dedupes them:
    // `$insert_id/event/distinct_id/second`.
    let keys = get_json(&mock, "/cloud/keys?vendor=mixpanel").await?;
    let mut by_insert_id: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for (key, n) in keys.as_object().unwrap() {
        let insert_id = key.split('/').next().unwrap_or_default();
        *by_insert_id.entry(insert_id).or_default() += n.as_u64().unwrap();
    }
    for id in &all {
        assert_eq!(
            by_insert_id.get(id.as_str()),
            Some(&1),
            "{id} reached Mixpanel {:?} times",
            by_insert_id.get(id.as_str())
        );
    }
    assert_eq!(by_insert_id.len(), all.len());
    let refused = get_json(&mock, "/cloud/requests?vendor=mixpanel").await?;
    assert!(
        refused
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == 503),
        "Mixpanel was never down"
    );

    // The webhook kept its pace: p99 receipt-to-2xx during the outage
    // within twice that before (or 50 ms, this machine's timer noise).
    let hooks = get_json(&mock, "/cloud/requests?vendor=webhook").await?;
    let mut before_ms = Vec::new();
    let mut during_ms = Vec::new();
    for r in hooks.as_array().unwrap() {
        let id = r["body"]["messageId"].as_str().unwrap_or_default();
        let received = chrono::DateTime::parse_from_rfc3339(
            r["body"]["receivedAt"].as_str().unwrap_or_default(),
        )?;
        let latency = r["at_ms"].as_i64().unwrap() - received.timestamp_millis();
        if id.starts_with("before") {
            before_ms.push(latency);
        } else if id.starts_with("during") {
            during_ms.push(latency);
        }
    }
    assert_eq!(before_ms.len(), before.len());
    assert_eq!(during_ms.len(), during.len());
    let (p99_before, p99_during) = (percentile(before_ms, 0.99), percentile(during_ms, 0.99));
    println!(
        "webhook p99 receipt to 2xx: {p99_before} ms before, {p99_during} ms during Mixpanel's outage"
    );
    assert!(
        p99_during <= (2 * p99_before).max(50),
        "p99 {p99_during} ms during the outage, {p99_before} ms before"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_waited_for_and_a_refused_event_waits_for_its_fixed_setting() -> Result<()> {
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let server = Server::start().await?;
    let source = server
        .api_post("/sources", json!({"name": "Retries"}))
        .await?;
    let (source_id, key) = (
        source["id"].as_str().unwrap().to_string(),
        source["write_key"].as_str().unwrap().to_string(),
    );

    // 429 with Retry-After: 2, once: the next request no sooner than 2 s.
    control(&mock, json!({"vendor": "posthog", "mode": "status", "status": 429, "retry_after": "2", "times": 1})).await?;
    connect(&server, &mock, &source_id, "posthog", json!({})).await?;
    server.track(&key, "track", track("slow-down")).await?;
    wait_until(
        "the second PostHog request",
        Duration::from_secs(20),
        || async {
            Ok(get_json(&mock, "/cloud/requests?vendor=posthog")
                .await?
                .as_array()
                .unwrap()
                .len()
                >= 2)
        },
    )
    .await?;
    let posthog = get_json(&mock, "/cloud/requests?vendor=posthog").await?;
    let (first, second) = (&posthog[0], &posthog[1]);
    assert_eq!(first["status"], 429);
    assert!(
        (200..300).contains(&second["status"].as_u64().unwrap()),
        "{second}"
    );
    let gap = second["at_ms"].as_i64().unwrap() - first["at_ms"].as_i64().unwrap();
    assert!(gap >= 2000, "retried after {gap} ms");

    // A 400 (Amplitude refuses user ids shorter than the connection's
    // minimum id length, set too high here) is dead-lettered at once with
    // the vendor's answer; fixing the setting and retrying the dead
    // letters delivers them.
    let amplitude = connect(
        &server,
        &mock,
        &source_id,
        "amplitude",
        json!({"minIdLength": 20}),
    )
    .await?;
    server.track(&key, "track", track("refused-1")).await?;
    server.track(&key, "track", track("refused-2")).await?;
    let dead_path = ["/connections/", &amplitude, "/dead-letters"].concat();
    wait_until("two dead letters", Duration::from_secs(20), || async {
        Ok(server.api(&dead_path).await?["count"] == 2)
    })
    .await?;
    let dead = server.api(&dead_path).await?;
    let letter = &dead["dead_letters"][0];
    assert_eq!(letter["event"]["messageId"], "refused-1");
    assert!(
        letter["response"].as_str().unwrap().starts_with("HTTP 400"),
        "{letter}"
    );
    assert!(
        letter["request"]
            .as_str()
            .unwrap()
            .contains("\"min_id_length\":20"),
        "{letter}"
    );
    // Refused at once: one attempt, no retry.
    assert_eq!(letter["attempts"], 1, "{letter}");
    server
        .api_patch(
            &["/connections/", &amplitude].concat(),
            json!({"settings": {"minIdLength": 5}}),
        )
        .await?;
    server
        .api_post(&[dead_path.as_str(), "/retry"].concat(), json!({}))
        .await?;
    wait_until("the retried events", Duration::from_secs(20), || async {
        Ok(server.api(&dead_path).await?["count"] == 0)
    })
    .await?;
    let keys = get_json(&mock, "/cloud/keys?vendor=amplitude").await?;
    for id in ["refused-1", "refused-2"] {
        assert_eq!(keys[id], 1, "{keys}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn switchyards_own_snippet_sends_once_and_the_server_delivers_to_each_cloud_destination()
-> Result<()> {
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let server = Server::start().await?;
    let site = switchyard_tests::Site::start().await?;
    let source_id = server.demo_source_id.clone();
    connect(&server, &mock, &source_id, "webhook", json!({})).await?;
    connect(&server, &mock, &source_id, "posthog", json!({})).await?;
    let head = [
        server.snippet(&server.demo_write_key).as_str(),
        "\nanalytics.identify('user-0042', {email: 'jane@example.com'});",
        "\nanalytics.track('Order Completed', {order_id: 'o-9', revenue: 12.5, currency: 'USD'});",
        "\nanalytics.page('Checkout');",
    ]
    .concat();
    let url = site.page("shop", &switchyard_tests::html("Shop", &head));
    let browser = switchyard_tests::Browser::start().await?;
    browser.client.goto(&url).await?;
    // The snippet's own page call, then the three of the page.
    server.wait_for_event(|e| e["name"] == "Checkout").await?;
    let stored: Vec<Value> = server
        .api(&["/events?limit=100&source=", &source_id].concat())
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(stored.len(), 4, "{stored:?}");
    // The browser sent each once and named the server's destinations.
    for e in &stored {
        let mut unbundled: Vec<&str> = e["_metadata"]["unbundled"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        unbundled.sort();
        assert_eq!(unbundled, ["PostHog", "Webhook"], "{e}");
    }
    wait_until("both destinations", Duration::from_secs(20), || async {
        let hooks = get_json(&mock, "/cloud/requests?vendor=webhook").await?;
        let posthog = get_json(&mock, "/cloud/keys?vendor=posthog").await?;
        Ok(hooks.as_array().unwrap().len() >= 4 && posthog.as_object().unwrap().len() >= 4)
    })
    .await?;
    let hooks = get_json(&mock, "/cloud/requests?vendor=webhook").await?;
    let bodies: Vec<Value> = hooks
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"].clone())
        .collect();
    for e in &stored {
        assert!(
            bodies.contains(e),
            "the webhook did not get {e} as stored: {bodies:?}"
        );
    }
    assert_eq!(bodies.len(), stored.len());
    // PostHog's uuid is the browser's messageId (a UUID), each once.
    let keys = get_json(&mock, "/cloud/keys?vendor=posthog").await?;
    for e in &stored {
        let id = e["messageId"].as_str().unwrap();
        assert_eq!(keys[id], 1, "{id}: {keys}");
    }
    browser.close().await
}
