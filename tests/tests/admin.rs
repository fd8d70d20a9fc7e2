//! The site owner's path in the web admin, by clicking in headless
//! Chromium: the six steps from each of the three "Add destination" entry
//! points, checked through the API afterwards. A screenshot of each step is
//! kept in `tests/artifacts/admin/<entry point>/`.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use switchyard_tests::{Browser, Server};

/// One run of the six steps.
struct Flow {
    /// Artifact folder name and entry point.
    entry: Entry,
    search: &'static str,
    slug: &'static str,
    mode: &'static str,
    /// `(setting key, bad value the API refuses, good value)`.
    setting: (&'static str, &'static str, &'static str),
    /// What the destination is expected to refuse among what the source
    /// sends, shown before it is added.
    refuses: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Entry {
    Home,
    DestinationsList,
    SourceOverview,
}

impl Entry {
    fn name(self) -> &'static str {
        match self {
            Entry::Home => "home",
            Entry::DestinationsList => "destinations-list",
            Entry::SourceOverview => "source-overview",
        }
    }
}

async fn log_in(server: &Server, browser: &Browser) -> Result<()> {
    browser
        .client
        .goto(&[&server.origin, "/admin"].concat())
        .await?;
    browser.fill("#token", &server.admin_token).await?;
    browser.click("#login").await?;
    browser.find("#add-destination-home").await?;
    Ok(())
}

async fn six_steps(server: &Server, browser: &Browser, flow: &Flow) -> Result<Value> {
    let dir = ["admin/", flow.entry.name()].concat();
    // 1. "Add destination" from the entry point.
    match flow.entry {
        Entry::Home => {
            browser
                .client
                .goto(&[&server.origin, "/admin#/"].concat())
                .await?;
            browser.find("#recommended .tile").await?;
            browser.screenshot(&dir, "1-add-destination").await?;
            browser.click("#add-destination-home").await?;
        }
        Entry::DestinationsList => {
            browser
                .client
                .goto(&[&server.origin, "/admin#/destinations"].concat())
                .await?;
            browser.find("#add-destination-list").await?;
            browser.screenshot(&dir, "1-add-destination").await?;
            browser.click("#add-destination-list").await?;
        }
        Entry::SourceOverview => {
            let url = [&server.origin, "/admin#/sources/", &server.demo_source_id].concat();
            browser.client.goto(&url).await?;
            browser.find("#add-destination-source").await?;
            browser.screenshot(&dir, "1-add-destination").await?;
            browser.click("#add-destination-source").await?;
        }
    }
    // 2. Search the catalog and click the tile.
    browser.fill("#catalog-search", flow.search).await?;
    let tile = ["#catalog-tiles .tile[data-slug=\"", flow.slug, "\"]"].concat();
    browser.find(&tile).await?;
    let shown = browser
        .eval("return document.querySelectorAll('#catalog-tiles .tile').length")
        .await?;
    if shown.as_u64().unwrap_or(0) > 3 {
        bail!("searching `{}` still shows {shown} tiles", flow.search);
    }
    browser.screenshot(&dir, "2-catalog").await?;
    browser.click(&tile).await?;
    // 3. The summary page, then "Configure".
    browser.find("#compatibility").await?;
    let refused = flow
        .refuses
        .map(|method| ["#compatibility .no[data-method=\"", method, "\"]"].concat());
    if let (Entry::SourceOverview, Some(refused)) = (flow.entry, &refused) {
        // With the source known, the summary already shows what it refuses.
        browser.find(refused).await?;
    }
    browser.screenshot(&dir, "3-summary").await?;
    browser.click("#configure").await?;
    // 4. Choose the source and the mode, and confirm.
    let select = browser.find("#source-select").await?;
    select.select_by_value(&server.demo_source_id).await?;
    browser
        .click(&["#mode-choice input[value=\"", flow.mode, "\"]"].concat())
        .await?;
    // Before it is added: which calls the source sends it would refuse.
    if let Some(refused) = &refused {
        browser.find(refused).await?;
    }
    browser.screenshot(&dir, "4-source").await?;
    browser.click("#confirm-source").await?;
    // 5. Settings: required fields are marked; an empty required field and
    // a value the API refuses are explained beside the field.
    let (key, bad, good) = flow.setting;
    let field = ["#setting-", key].concat();
    browser.find(&field).await?;
    let marked = browser
        .eval(
            &[
                "return !!document.querySelector('.field[data-key=\"",
                key,
                "\"] .req')",
            ]
            .concat(),
        )
        .await?;
    if marked != Value::Bool(true) {
        bail!("required setting `{key}` is not marked");
    }
    browser.click("#save-settings").await?;
    let error = ["#error-", key].concat();
    browser
        .wait_until(
            &[
                "document.querySelector('",
                &error,
                "').textContent.includes('required')",
            ]
            .concat(),
        )
        .await?;
    browser.fill(&field, bad).await?;
    browser.click("#save-settings").await?;
    browser
        .wait_until(
            &[
                "document.querySelector('",
                &error,
                "').textContent.includes('expected format')",
            ]
            .concat(),
        )
        .await?;
    browser.screenshot(&dir, "5-settings-error").await?;
    browser.fill(&field, good).await?;
    browser.screenshot(&dir, "5-settings").await?;
    browser.click("#save-settings").await?;
    // 6. Flip the toggle that enables it.
    browser.find("#enable-toggle").await?;
    browser.click("label.toggle").await?;
    browser.wait_until("document.querySelector('#enable-toggle').checked && document.querySelector('label.toggle').textContent.includes('Enabled')").await?;
    browser.screenshot(&dir, "6-enabled").await?;

    // Through the API: the connection exists, with these settings, enabled.
    let connections = server
        .api(&["/sources/", &server.demo_source_id, "/connections"].concat())
        .await?;
    let found = connections
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["destination"] == flow.slug)
        .cloned();
    match found {
        Some(c) => Ok(c),
        None => bail!("no {} connection through the API: {connections}", flow.slug),
    }
}

async fn check(flow: Flow) -> Result<()> {
    let server = Server::start().await?;
    // The source already sends track and screen calls.
    server
        .track(
            &server.demo_write_key,
            "track",
            json!({"event": "Signed Up", "userId": "u1"}),
        )
        .await?;
    server
        .track(
            &server.demo_write_key,
            "screen",
            json!({"name": "Home", "userId": "u1"}),
        )
        .await?;
    let browser = Browser::start().await?;
    log_in(&server, &browser).await?;
    let connection = six_steps(&server, &browser, &flow).await?;
    assert_eq!(connection["enabled"], true, "{connection}");
    assert_eq!(connection["mode"], flow.mode);
    assert_eq!(connection["settings"][flow.setting.0], flow.setting.2);
    browser.close().await
}

#[tokio::test(flavor = "multi_thread")]
async fn six_steps_from_the_connections_home() -> Result<()> {
    check(Flow {
        entry: Entry::Home,
        search: "mixp",
        slug: "mixpanel",
        mode: "device",
        setting: ("token", "not-a-token", "0123456789abcdef0123456789abcdef"),
        refuses: Some("screen"),
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn six_steps_from_the_destinations_list() -> Result<()> {
    check(Flow {
        entry: Entry::DestinationsList,
        search: "webhook",
        slug: "webhook",
        mode: "cloud",
        setting: ("url", "ftp:nothing", "https://hooks.example.com/in"),
        refuses: None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn six_steps_from_a_source_overview() -> Result<()> {
    check(Flow {
        entry: Entry::SourceOverview,
        search: "analytics 4",
        slug: "google_analytics_4",
        mode: "device",
        setting: ("measurementId", "UA-1234-1", "G-ABC123XYZ9"),
        refuses: Some("screen"),
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn names_are_shown_as_text_never_run() -> Result<()> {
    let server = Server::start().await?;
    let hostile = "<img src=x onerror=\"window.__xss=1\">";
    let source = server
        .api_post("/sources", json!({"name": hostile}))
        .await?;
    let id = source["id"].as_str().unwrap_or_default().to_string();
    let browser = Browser::start().await?;
    log_in(&server, &browser).await?;
    for page in ["#/", "#/sources", &["#/sources/", &id].concat()] {
        browser
            .client
            .goto(&[&server.origin, "/admin", page].concat())
            .await?;
        browser.client.refresh().await?;
        browser
            .wait_until(
                &[
                    "document.body.textContent.includes('",
                    "<img src=x onerror=",
                    "')",
                ]
                .concat(),
            )
            .await?;
        let ran = browser
            .eval("return window.__xss === 1 || !!document.querySelector('main img[src=\"x\"]')")
            .await?;
        assert_eq!(ran, Value::Bool(false), "markup from a name ran on {page}");
    }
    assert_eq!(browser.text("#source-title").await?, hostile);
    browser.screenshot("admin", "hostile-name").await?;
    browser.close().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_refused_and_secrets_are_never_shown() -> Result<()> {
    let server = Server::start().await?;
    let browser = Browser::start().await?;
    browser
        .client
        .goto(&[&server.origin, "/admin"].concat())
        .await?;
    browser.fill("#token", &server.demo_write_key).await?;
    browser.click("#login").await?;
    browser
        .wait_until("document.querySelector('#login-error').textContent.includes('not valid')")
        .await?;

    let secret = "whsec-very-secret-value-42";
    let c = server
        .api_post(
            &["/sources/", &server.demo_source_id, "/connections"].concat(),
            json!({"destination": "webhook", "settings": {"url": "https://hooks.example.com/x", "sharedSecret": secret}}),
        )
        .await?;
    log_in(&server, &browser).await?;
    let id = c["id"].as_str().unwrap_or_default();
    browser
        .client
        .goto(&[&server.origin, "/admin#/connections/", id].concat())
        .await?;
    let input = browser.find("#setting-sharedSecret").await?;
    assert_eq!(input.prop("value").await?.unwrap_or_default(), "");
    let html = browser.client.source().await?;
    assert!(!html.contains(secret), "the secret reached the page");
    // Saving other settings keeps the secret.
    browser
        .fill("#setting-url", "https://hooks.example.com/y")
        .await?;
    browser.click("#update-settings").await?;
    browser.find("#saved .banner").await?;
    let now = server.api(&["/connections/", id].concat()).await?;
    assert_eq!(now["settings"]["url"], "https://hooks.example.com/y");
    assert_eq!(now["settings"]["sharedSecret"], "••••••••");
    // The mask reads the same whatever is stored: the stored value is what
    // shows the secret was kept.
    let stored = server
        .stores()
        .await?
        .config
        .connection(id)
        .await?
        .context("the connection is not in the store")?;
    let settings: Value = serde_json::from_str(&stored.settings)?;
    assert_eq!(settings["sharedSecret"], secret, "stored: {settings}");
    assert_eq!(settings["url"], "https://hooks.example.com/y");
    browser.close().await
}
