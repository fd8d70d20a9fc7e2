//! Cloud delivery in the web admin, by clicking in headless Chromium: a
//! cloud connection's delivery panel (totals, chart, the event tester,
//! failures and dead letters, retrying one, a replay) and a source's live
//! view, against a real server and mock-api's vendor stand-ins. A
//! screenshot of each step is kept in `tests/artifacts/admin-delivery/`.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use switchyard_tests::{Browser, MockApi, Server};

const DIR: &str = "admin-delivery";

fn event(id: &str) -> serde_json::Value {
    json!({"userId": "user-0001", "event": "Order Completed", "messageId": id, "properties": {"revenue": 9}})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_owner_sees_and_repairs_cloud_delivery_in_the_admin() -> Result<()> {
    let mock = MockApi::start(env!("CARGO_BIN_EXE_mock-api"))?;
    let server = Server::start().await?;
    let source = server.api_post("/sources", json!({"name": "Shop"})).await?;
    let (source_id, key) = (
        source["id"].as_str().unwrap().to_string(),
        source["write_key"].as_str().unwrap().to_string(),
    );
    let c = server
        .api_post(
            &["/sources/", &source_id, "/connections"].concat(),
            json!({"destination": "webhook", "mode": "cloud", "enabled": true,
                   "settings": {"url": mock.url("/cloud/webhook/shop"), "sharedSecret": "secret-in-admin-77"}}),
        )
        .await?;
    let id = c["id"].as_str().unwrap().to_string();
    for n in 1..=3 {
        server.track(&key, "track", event(&format!("m{n}"))).await?;
    }

    let browser = Browser::start().await?;
    browser
        .client
        .goto(&[&server.origin, "/admin"].concat())
        .await?;
    browser.fill("#token", &server.admin_token).await?;
    browser.click("#login").await?;
    browser.find("#add-destination-home").await?;

    // 1. The overview: three delivered in the last hour, in the chart too.
    browser
        .client
        .goto(&[&server.origin, "/admin#/connections/", &id].concat())
        .await?;
    browser.find("#delivery-totals").await?;
    let delivered =
        "document.querySelector('#delivery-totals tr[data-row=\"Delivered\"] td').textContent";
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        browser.click("#refresh-delivery").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if browser.eval(&["return ", delivered].concat()).await? == json!("3") {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the panel never showed 3 delivered"
        );
    }
    browser
        .wait_until("document.querySelectorAll('#delivery-chart rect.bar-ok').length >= 1")
        .await?;
    browser.screenshot(DIR, "1-overview").await?;

    // 2. The tester: one sample event, the exchange shown, no secret.
    browser.click("#send-test").await?;
    browser
        .wait_until("(document.querySelector('#test-result .exchange') || {}).textContent")
        .await?;
    let exchange = browser.text("#test-result .exchange").await?;
    assert!(exchange.starts_with("delivered"), "{exchange}");
    assert!(exchange.contains("Order Completed"), "{exchange}");
    assert!(!exchange.contains("secret-in-admin-77"), "{exchange}");
    browser.screenshot(DIR, "2-test-event").await?;

    // 3. The vendor refuses: a dead letter with its answer, and the failure.
    let r = mock
        .http
        .post(mock.url("/cloud/control"))
        .json(&json!({"vendor": "webhook", "mode": "status", "status": 400}))
        .send()
        .await?;
    assert!(r.status().is_success());
    server.track(&key, "track", event("refused")).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        browser.click("#refresh-delivery").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if browser
            .eval("return document.getElementById('dead-count').textContent")
            .await?
            == json!("1")
        {
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "no dead letter shown");
    }
    let dead = browser.text(".dead-letter summary").await?;
    assert!(
        dead.contains("refused") && dead.contains("HTTP 400"),
        "{dead}"
    );
    browser
        .wait_until("document.querySelectorAll('#failures details.failure').length >= 1")
        .await?;
    browser.screenshot(DIR, "3-dead-letter").await?;

    // 4. Fixed at the vendor's end: retrying the dead letter delivers it.
    mock.http
        .post(mock.url("/cloud/control"))
        .json(&json!({"vendor": "webhook", "mode": "ok"}))
        .send()
        .await?;
    browser.click(".retry-one").await?;
    browser
        .wait_until("(document.getElementById('delivery-notice') || {}).textContent.indexOf('Retrying 1') >= 0")
        .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        browser.click("#refresh-delivery").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if browser
            .eval("return document.getElementById('dead-count').textContent")
            .await?
            == json!("0")
        {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the dead letter stayed"
        );
    }
    let keys: serde_json::Value = mock
        .http
        .get(mock.url("/cloud/keys?vendor=webhook"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(keys["refused"], 1, "{keys}");
    browser.screenshot(DIR, "4-retried").await?;

    // 5. A replay of the whole day so far, with its progress.
    browser
        .eval("var i = document.getElementById('replay-from'); i.value = '2020-01-01T00:00:00'; return true")
        .await?;
    browser.click("#start-replay").await?;
    browser
        .wait_until(
            "document.getElementById('replay-progress').textContent.indexOf('Replay done') === 0",
        )
        .await?;
    let progress = browser.text("#replay-progress").await?;
    assert!(progress.contains("4 read, 4 delivered"), "{progress}");
    browser.screenshot(DIR, "5-replay").await?;

    // 6. The source's live view: an event appears as it arrives, routed.
    browser
        .client
        .goto(&[&server.origin, "/admin#/sources/", &source_id].concat())
        .await?;
    browser
        .wait_until("document.getElementById('live-state') && document.getElementById('live-state').textContent === 'listening'")
        .await?;
    let mut off = event("live-off");
    off["integrations"] = json!({"Webhook": false});
    server.track(&key, "track", event("live-1")).await?;
    server.track(&key, "track", off).await?;
    browser
        .wait_until("document.querySelector('.live-event[data-message-id=\"live-off\"]')")
        .await?;
    let delivered = browser
        .text(".live-event[data-message-id=\"live-1\"] .route.server")
        .await?;
    assert!(delivered.contains("Webhook"), "{delivered}");
    let skipped = browser
        .text(".live-event[data-message-id=\"live-off\"] .route.skipped")
        .await?;
    assert!(skipped.contains("integrations_off"), "{skipped}");
    browser.screenshot(DIR, "6-live").await?;
    browser.close().await?;
    Ok(())
}
