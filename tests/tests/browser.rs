//! End to end in real headless Chromium: Segment's snippet on a page of
//! another origin, the real browser library from `bundles/`, a real server.

use serde_json::Value;
use switchyard_tests::{Browser, Server, Site};

fn page(title: &str, head: &str) -> String {
    [
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>",
        title,
        "</title><script>\n",
        head,
        "\n</script></head><body><p>",
        title,
        "</p></body></html>",
    ]
    .concat()
}

fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && b[14] == b'4'
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && s.chars()
            .filter(|c| *c != '-')
            .all(|c| c.is_ascii_hexdigit())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_queued_by_the_snippet_arrives_and_the_anonymous_id_survives_a_reload()
-> anyhow::Result<()> {
    let server = Server::start().await?;
    let site = Site::start().await?;
    let script = [
        server.snippet(&server.demo_write_key).as_str(),
        // Made before the bundle can have loaded: the snippet queues it.
        "\nanalytics.track('Order Completed', {revenue: 12.5});",
        "\nwindow.queuedBeforeLoad = Array.isArray(window.analytics) ? window.analytics.length : -1;",
    ]
    .concat();
    let url = site.page("checkout", &page("Checkout", &script));
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;

    let is_order = |e: &Value| e["event"] == "Order Completed";
    let first = server.wait_for_event(is_order).await?;
    // page() and track() were both still in the snippet's queue.
    assert_eq!(
        browser.eval("return window.queuedBeforeLoad").await?,
        Value::from(2)
    );
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;

    assert_eq!(first["type"], "track");
    assert_eq!(first["properties"]["revenue"], 12.5);
    let anonymous_id = first["anonymousId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(is_uuid_v4(&anonymous_id), "anonymousId {anonymous_id}");
    assert!(
        is_uuid_v4(first["messageId"].as_str().unwrap_or_default()),
        "{first}"
    );
    assert_eq!(first["context"]["page"]["url"], url.as_str());
    assert_eq!(first["context"]["page"]["path"], "/checkout");
    assert_eq!(first["context"]["page"]["title"], "Checkout");
    assert_eq!(first["context"]["library"]["name"], "switchyard.js");
    assert_eq!(
        first["context"]["library"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        first["context"]["userAgent"]
            .as_str()
            .unwrap_or_default()
            .contains("Chrome")
    );
    assert!(
        first["receivedAt"]
            .as_str()
            .unwrap_or_default()
            .starts_with("20")
    );
    assert!(first.get("writeKey").is_none());

    // The snippet's own page() call arrived too, with the page as properties.
    let page_event = server.wait_for_event(|e| e["type"] == "page").await?;
    assert_eq!(page_event["properties"]["title"], "Checkout");
    assert_eq!(page_event["anonymousId"], anonymous_id.as_str());

    browser.client.refresh().await?;
    // The reloaded page's call: a second one, never a third.
    server.wait_for_events(2, is_order).await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let events: Vec<Value> = server
        .all_events()
        .await?
        .into_iter()
        .filter(is_order)
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_ne!(events[0]["messageId"], events[1]["messageId"]);
    assert_eq!(
        events[0]["anonymousId"],
        anonymous_id.as_str(),
        "the anonymous id changed across a reload"
    );
    let cookie = browser.eval("return document.cookie").await?;
    assert!(
        cookie
            .as_str()
            .unwrap_or_default()
            .contains(&["ajs_anonymous_id=", &anonymous_id].concat()),
        "{cookie}"
    );
    browser.close().await
}

#[tokio::test(flavor = "multi_thread")]
async fn identify_then_track_carries_the_user_id_across_pages() -> anyhow::Result<()> {
    let server = Server::start().await?;
    let site = Site::start().await?;
    let snippet = server.snippet(&server.demo_write_key);
    let first = site.page(
        "login",
        &page(
            "Login",
            &[
                snippet.as_str(),
                "\nanalytics.identify('user-7', {plan: 'pro'});",
            ]
            .concat(),
        ),
    );
    let second = site.page(
        "home",
        &page(
            "Home",
            &[snippet.as_str(), "\nanalytics.track('Viewed Home');"].concat(),
        ),
    );
    let browser = Browser::start().await?;
    browser.client.goto(&first).await?;
    let identify = server.wait_for_event(|e| e["type"] == "identify").await?;
    assert_eq!(identify["userId"], "user-7");
    assert_eq!(identify["traits"]["plan"], "pro");
    browser.client.goto(&second).await?;
    let track = server
        .wait_for_event(|e| e["event"] == "Viewed Home")
        .await?;
    assert_eq!(track["userId"], "user-7");
    assert_eq!(track["anonymousId"], identify["anonymousId"]);
    browser.close().await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_page_sends_its_events() -> anyhow::Result<()> {
    let server = Server::start().await?;
    let browser = Browser::start().await?;
    browser
        .client
        .goto(&[&server.origin, "/demo"].concat())
        .await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    browser
        .client
        .find(fantoccini::Locator::Css("#track"))
        .await?
        .click()
        .await?;
    let event = server
        .wait_for_event(|e| e["event"] == "Order Completed")
        .await?;
    assert_eq!(event["properties"]["currency"], "USD");
    let by_source = server
        .api(&["/events?source=", &server.demo_source_id].concat())
        .await?;
    assert!(
        by_source
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["event"] == "Order Completed"))
    );
    browser.close().await
}
