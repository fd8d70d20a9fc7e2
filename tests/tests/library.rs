//! The browser library as a site owner uses it, end to end in real headless
//! Chromium: Segment's snippet on a page of another origin, the real
//! library from `bundles/`, a real server. Each test checks what a user
//! would check: what arrives, what the page sees, and what analytics-next
//! 1.84.3 sends for the same calls (its requests are in `tests/testdata/`).
//!
//! Build the library first: `cargo xtask build-client`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use switchyard_tests::{Browser, Server, Site, WATCH_ERRORS, html};

// ---------------------------------------------------------------------------
// Pages and fixtures

/// A page whose head runs `script`.
/// The server's snippet for the demo source, with `load_options` passed to
/// `analytics.load` and without its `analytics.page()` when `initial_page`
/// is false.
fn snippet(server: &Server, load_options: Option<&str>, initial_page: bool) -> Result<String> {
    let key = &server.demo_write_key;
    let mut s = server.snippet(key);
    let load = ["analytics.load(\"", key, "\");"].concat();
    ensure!(s.contains(&load), "the snippet has no `{load}`: {s}");
    if let Some(options) = load_options {
        s = s.replace(
            &load,
            &["analytics.load(\"", key, "\", ", options, ");"].concat(),
        );
    }
    if !initial_page {
        ensure!(
            s.contains("analytics.page();"),
            "the snippet has no page call: {s}"
        );
        s = s.replacen("analytics.page();", "", 1);
    }
    Ok(s)
}

/// A page on the site with the error watch, the snippet, then `calls`.
fn site_page(site: &Site, name: &str, title: &str, snippet: &str, calls: &str) -> String {
    site.page(
        name,
        &html(title, &[WATCH_ERRORS, "\n", snippet, "\n", calls].concat()),
    )
}

fn testdata(name: &str) -> Result<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// The body of the first `POST {path}` analytics-next made in `file`.
fn fixture_body(file: &str, path: &str) -> Result<Value> {
    testdata(file)?
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["method"] == "POST" && r["path"] == path)
        .map(|r| r["body_json"].clone())
        .with_context(|| format!("{file} has no POST {path}"))
}

const SNIPPET_FIXTURE: &str = "browser_analytics-next_snippet_sequence.json";
const NPM_FIXTURE: &str = "browser_analytics-next_1.84.3_crossorigin_sequence.json";
const BATCH_FIXTURE: &str = "browser_analytics-next_batching_v1_b.json";

fn is_uuid_v4(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    s.len() == 36
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && s.chars()
            .filter(|c| *c != '-')
            .all(|c| c.is_ascii_hexdigit())
}

/// The value at a dotted path, `None` where it is missing.
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn keys(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "missing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or("(missing)".into(), Value::to_string)
}

fn message_id(e: &Value) -> String {
    e["messageId"].as_str().unwrap_or_default().to_string()
}

/// Soft assertions: every check of a test runs, and the test fails at the
/// end with all that did not hold.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) -> bool {
        if !ok {
            self.0.push(what());
        }
        ok
    }

    fn equal(&mut self, what: &str, got: &Value, want: &Value) -> bool {
        self.check(got == want, || format!("{what}: got {got}, want {want}"))
    }

    /// A step that may fail (a wait that timed out): recorded, and the
    /// test goes on.
    fn step<T>(&mut self, what: &str, r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(format!("{what}: {e:#}"));
                None
            }
        }
    }

    fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        bail!(
            "{} check(s) failed:\n- {}",
            self.0.len(),
            self.0.join("\n- ")
        )
    }
}

/// What a page's error watch caught: nothing, if the library kept its
/// errors to itself.
async fn page_errors(browser: &Browser) -> Result<Value> {
    browser
        .eval("return window.pageErrors || ['no error watch']")
        .await
}

/// The `sy.` keys of localStorage and their values, joined.
const QUEUED: &str =
    "return Object.keys(localStorage).filter(function (k) { return k.indexOf('sy.') === 0; })
  .map(function (k) { return k + '=' + localStorage.getItem(k); }).join('\\n');";

async fn queued_text(browser: &Browser) -> Result<String> {
    Ok(browser
        .eval(QUEUED)
        .await?
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// How many times each message id is in the log and on the wire.
async fn counts(
    server: &Server,
    ids: &[String],
) -> Result<(HashMap<String, usize>, HashMap<String, usize>)> {
    let mut logged: HashMap<String, usize> = ids.iter().map(|id| (id.clone(), 0)).collect();
    for e in server.all_events().await? {
        if let Some(n) = logged.get_mut(&message_id(&e)) {
            *n += 1;
        }
    }
    let mut wire: HashMap<String, usize> = ids.iter().map(|id| (id.clone(), 0)).collect();
    for r in server.received().iter().filter(|r| !r.refused) {
        for id in r.message_ids() {
            if let Some(n) = wire.get_mut(&id) {
                *n += 1;
            }
        }
    }
    Ok((logged, wire))
}

/// Tracks `n` events named `{prefix} {i}` and returns their message ids,
/// as the page sees them (`await analytics.track(...)`).
async fn track_n(browser: &Browser, prefix: &str, n: usize) -> Result<Vec<String>> {
    let script = [
        "var calls = [];
for (var i = 1; i <= ",
        &n.to_string(),
        "; i++) calls.push(analytics.track('",
        prefix,
        " ' + i, {n: i}));
return Promise.all(calls).then(function (cs) { return cs.map(function (c) { return c.event.messageId; }); });",
    ]
    .concat();
    let ids: Vec<String> = serde_json::from_value(browser.eval(&script).await?)?;
    ensure!(
        ids.len() == n && ids.iter().all(|id| !id.is_empty()),
        "track() resolved to {ids:?}"
    );
    Ok(ids)
}

/// What the `sy.` keys of localStorage hold, in short: each key, and the
/// names of the events a queue holds.
const QUEUED_SUMMARY: &str = "return Object.keys(localStorage).filter(function (k) { return k.indexOf('sy.') === 0; }).map(function (k) {
  var v = localStorage.getItem(k), list = null;
  try { list = JSON.parse(v); } catch (e) {}
  if (!Array.isArray(list)) return k + ' = ' + v;
  return k + ' = ' + list.length + ' queued: ' + list.map(function (item) {
    try { var e = JSON.parse(item[0]); return e.event || e.type; } catch (e) { return '?'; }
  }).join(', ');
}).join('; ');";

/// Waits until every event of `ids` is in the log; says which are
/// missing if they do not all arrive.
async fn wait_for_ids(server: &Server, ids: &[String]) -> Result<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found: Vec<Value> = server
            .all_events()
            .await?
            .into_iter()
            .filter(|e| ids.contains(&message_id(e)))
            .collect();
        if ids
            .iter()
            .all(|id| found.iter().any(|e| message_id(e) == *id))
        {
            return Ok(found);
        }
        if Instant::now() > deadline {
            let mut names: Vec<String> = found
                .iter()
                .map(|e| e["event"].as_str().unwrap_or("?").to_string())
                .collect();
            names.sort();
            bail!(
                "after 15 s, {} of {} arrived: {names:?}",
                found.len(),
                ids.len()
            );
        }
        sleep_ms(100).await;
    }
}

/// Waits for the track call named `name`; says what did arrive if not.
async fn wait_for_track(server: &Server, name: &str) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let events = server.all_events().await?;
        if let Some(e) = events.iter().find(|e| e["event"] == name) {
            return Ok(e.clone());
        }
        if Instant::now() > deadline {
            let names: Vec<&str> = events
                .iter()
                .map(|e| {
                    e["event"]
                        .as_str()
                        .unwrap_or_else(|| e["type"].as_str().unwrap_or("?"))
                })
                .collect();
            bail!("after 15 s, no `{name}`; the log holds {names:?}");
        }
        sleep_ms(100).await;
    }
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

// ---------------------------------------------------------------------------
// 1. Every call's payload, field by field, against analytics-next's

/// How a field of Switchyard's event must match analytics-next's.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// The same value (both missing counts as the same).
    Equal,
    /// The same JSON type.
    SameType,
    /// Objects with the same set of keys.
    SameKeys,
    /// A UUID v4 in both.
    Uuid,
    /// What the call made: Switchyard's equals the case's `ours`,
    /// analytics-next's the case's `theirs` (the calls differ a little).
    FromCall,
    /// Switchyard's equals this expression evaluated in the page;
    /// analytics-next's has the same type.
    Page(&'static str),
    /// Equal to another field of the same event, in both.
    SameAs(&'static str),
}

/// Fields every call carries.
const EVERY_CALL: &[(&str, Rule)] = &[
    ("type", Rule::Equal),
    ("integrations", Rule::Equal),
    ("anonymousId", Rule::Uuid),
    ("userId", Rule::FromCall),
    ("messageId", Rule::SameType),
    ("timestamp", Rule::SameType),
    ("sentAt", Rule::SameType),
    ("context", Rule::SameType),
    ("context.page", Rule::SameKeys),
    ("context.page.path", Rule::Page("location.pathname")),
    ("context.page.referrer", Rule::Page("document.referrer")),
    ("context.page.search", Rule::Page("location.search")),
    ("context.page.title", Rule::Page("document.title")),
    (
        "context.page.url",
        Rule::Page("location.href.split('#')[0]"),
    ),
    ("context.userAgent", Rule::Page("navigator.userAgent")),
    ("context.userAgentData", Rule::SameKeys),
    ("context.locale", Rule::Page("navigator.language")),
    (
        "context.timezone",
        Rule::Page("Intl.DateTimeFormat().resolvedOptions().timeZone"),
    ),
    ("context.library", Rule::SameKeys),
    ("context.library.name", Rule::SameType),
    ("context.library.version", Rule::SameType),
];

/// Fields of each kind of call.
const BY_TYPE: &[(&str, &[(&str, Rule)])] = &[
    (
        "track",
        &[("event", Rule::Equal), ("properties", Rule::Equal)],
    ),
    (
        "page",
        &[
            ("properties", Rule::SameAs("context.page")),
            ("name", Rule::Equal),
            ("category", Rule::Equal),
        ],
    ),
    ("identify", &[("traits", Rule::Equal)]),
    (
        "group",
        &[("groupId", Rule::FromCall), ("traits", Rule::FromCall)],
    ),
    ("alias", &[("previousId", Rule::FromCall)]),
    (
        "screen",
        &[
            ("name", Rule::Equal),
            ("properties", Rule::Equal),
            ("category", Rule::Equal),
        ],
    ),
];

/// Top-level keys the server adds to what it stores, and takes out.
const SERVER_ADDS: &[&str] = &["originalTimestamp", "receivedAt"];
const SERVER_REMOVES: &[&str] = &["writeKey"];

struct Case {
    kind: &'static str,
    /// Where analytics-next's request for the same call is.
    fixture: (&'static str, &'static str),
    /// What the call made, for `FromCall` fields: Switchyard's page, and
    /// the call analytics-next was recorded making.
    ours: Value,
    theirs: Value,
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_matches_analytics_next_field_by_field() -> Result<()> {
    let server = Server::start().await?;
    let site = Site::start().await?;
    // The calls analytics-next was recorded making, in snippet mode before
    // the library loaded; `group` and `alias` differ a little (see `Case`).
    let calls = "analytics.track('Snippet Event', {x: 1});
analytics.page();
analytics.identify('user-1', {email: 'a@b.c'});
analytics.group('g-1', {plan: 'pro'});
analytics.alias('user-2');
analytics.screen('Home');";
    let url = site_page(
        &site,
        "methods",
        "Methods",
        &snippet(&server, None, false)?,
        calls,
    );
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;

    let cases = [
        Case {
            kind: "track",
            fixture: (SNIPPET_FIXTURE, "/v1/t"),
            ours: json!({"userId": null}),
            theirs: json!({"userId": null}),
        },
        Case {
            kind: "page",
            fixture: (SNIPPET_FIXTURE, "/v1/p"),
            ours: json!({"userId": null}),
            theirs: json!({"userId": null}),
        },
        Case {
            kind: "identify",
            fixture: (NPM_FIXTURE, "/v1/i"),
            ours: json!({"userId": "user-1"}),
            theirs: json!({"userId": "user-1"}),
        },
        Case {
            // analytics-next: group('g9', {name: 'Acme'}) after identify('user-1').
            kind: "group",
            fixture: (NPM_FIXTURE, "/v1/g"),
            ours: json!({"userId": "user-1", "groupId": "g-1", "traits": {"plan": "pro"}}),
            theirs: json!({"userId": "user-1", "groupId": "g9", "traits": {"name": "Acme"}}),
        },
        Case {
            // analytics-next: alias('user-1') after identify('user-1'); the
            // previous id is the identified user's.
            kind: "alias",
            fixture: (NPM_FIXTURE, "/v1/a"),
            ours: json!({"userId": "user-2", "previousId": "user-1"}),
            theirs: json!({"userId": "user-1", "previousId": "user-1"}),
        },
        Case {
            kind: "screen",
            fixture: (NPM_FIXTURE, "/v1/s"),
            ours: json!({"userId": "user-1"}),
            theirs: json!({"userId": "user-1"}),
        },
    ];

    let mut checks = Checks::default();
    let mut page_values: HashMap<&str, Value> = HashMap::new();
    let mut anonymous_ids = BTreeSet::new();
    for case in &cases {
        let theirs = fixture_body(case.fixture.0, case.fixture.1)?;
        let Some(ours) = checks.step(
            &[case.kind, ": waiting for the event"].concat(),
            server.wait_for_event(|e| e["type"] == case.kind).await,
        ) else {
            continue;
        };
        anonymous_ids.insert(ours["anonymousId"].to_string());
        let kind = case.kind;

        // The same top-level keys, but for what the server adds and takes out.
        let mut want = keys(Some(&theirs));
        for k in SERVER_REMOVES {
            want.remove(*k);
        }
        want.extend(SERVER_ADDS.iter().map(|k| k.to_string()));
        let got = keys(Some(&ours));
        checks.check(got == want, || {
            format!(
                "{kind}: top-level keys: only Switchyard's has {:?}; only analytics-next's has {:?}",
                got.difference(&want).collect::<Vec<_>>(),
                want.difference(&got).collect::<Vec<_>>(),
            )
        });

        let own = BY_TYPE
            .iter()
            .find(|(t, _)| *t == kind)
            .map(|(_, rules)| *rules)
            .unwrap_or_default();
        for &(path, rule) in EVERY_CALL.iter().chain(own) {
            let (o, t) = (at(&ours, path), at(&theirs, path));
            let fail = |why: String| format!("{kind}: {path} ({rule:?}): {why}");
            match rule {
                Rule::Equal => {
                    checks.check(o == t, || {
                        fail(format!(
                            "Switchyard {} vs analytics-next {}",
                            show(o),
                            show(t)
                        ))
                    });
                }
                Rule::SameType => {
                    checks.check(type_name(o) == type_name(t) && o.is_some(), || {
                        fail(format!(
                            "Switchyard {} vs analytics-next {}",
                            show(o),
                            show(t)
                        ))
                    });
                }
                Rule::SameKeys => {
                    let (ko, kt) = (keys(o), keys(t));
                    checks.check(ko == kt && o.is_some_and(Value::is_object), || {
                        fail(format!("keys {ko:?} vs analytics-next's {kt:?}"))
                    });
                }
                Rule::Uuid => {
                    checks.check(o.is_some_and(is_uuid_v4), || {
                        fail(format!("{} is no UUID v4", show(o)))
                    });
                    checks.check(t.is_some_and(is_uuid_v4), || {
                        fail(format!(
                            "analytics-next's {} is no UUID v4 (the table is wrong)",
                            show(t)
                        ))
                    });
                }
                Rule::FromCall => {
                    let field = path.rsplit('.').next().unwrap_or(path);
                    let (wo, wt) = (case.ours.get(field), case.theirs.get(field));
                    checks.check(o == wo, || {
                        fail(format!("Switchyard {} vs the call's {}", show(o), show(wo)))
                    });
                    checks.check(t == wt, || {
                        fail(format!(
                            "analytics-next's {} vs its call's {} (the table is wrong)",
                            show(t),
                            show(wt)
                        ))
                    });
                }
                Rule::Page(expr) => {
                    if !page_values.contains_key(expr) {
                        let v = browser.eval(&["return ", expr, ";"].concat()).await?;
                        page_values.insert(expr, v);
                    }
                    let want = &page_values[expr];
                    checks.check(o == Some(want), || {
                        fail(format!("Switchyard {} vs the page's {want}", show(o)))
                    });
                    checks.check(type_name(t) == type_name(Some(want)), || {
                        fail(format!(
                            "analytics-next's {} is not a {}",
                            show(t),
                            type_name(Some(want))
                        ))
                    });
                }
                Rule::SameAs(other) => {
                    checks.check(o.is_some() && o == at(&ours, other), || {
                        fail(format!(
                            "Switchyard {} vs its {other} {}",
                            show(o),
                            show(at(&ours, other))
                        ))
                    });
                    checks.check(t.is_some() && t == at(&theirs, other), || {
                        fail(format!(
                            "analytics-next's differs from its {other} (the table is wrong)"
                        ))
                    });
                }
            }
        }
        checks.equal(
            &[kind, ": context.library.name"].concat(),
            &ours["context"]["library"]["name"],
            &json!("switchyard.js"),
        );
    }
    checks.check(anonymous_ids.len() == 1, || {
        format!(
            "the six calls carry {} anonymous ids: {anonymous_ids:?}",
            anonymous_ids.len()
        )
    });
    checks.equal(
        "errors thrown into the page",
        &page_errors(&browser).await?,
        &json!([]),
    );
    browser.close().await?;
    checks.finish()
}

// ---------------------------------------------------------------------------
// 2. The snippet's queue, replayed in order

/// The call made at index `i` of the 50.
fn queued_kind(i: usize) -> &'static str {
    match i {
        13 | 37 => "identify",
        _ => ["track", "page", "group", "track", "screen", "alias"][i % 6],
    }
}

/// Where the index of a call is in its event.
fn queued_index(e: &Value) -> Option<usize> {
    let i = match e["type"].as_str()? {
        "track" | "page" | "screen" => &e["properties"]["i"],
        "identify" | "group" => &e["traits"]["i"],
        "alias" => &e["context"]["i"],
        _ => return None,
    };
    i.as_u64().map(|i| i as usize)
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_calls_queued_by_the_snippet_arrive_in_call_order() -> Result<()> {
    let server = Server::start_recording().await?;
    let site = Site::start().await?;
    let calls = "for (var i = 0; i < 50; i++) {
  if (i === 13) { analytics.identify('user-a', {i: i}); continue; }
  if (i === 37) { analytics.identify('user-b', {i: i}); continue; }
  switch (i % 6) {
    case 0: case 3: analytics.track('Queued ' + i, {i: i}); break;
    case 1: analytics.page('Docs', 'Page ' + i, {i: i}); break;
    case 2: analytics.group('g-' + i, {i: i}); break;
    case 4: analytics.screen('Screen ' + i, {i: i}); break;
    case 5: analytics.alias('alias-' + i, {context: {i: i}}); break;
  }
}
window.queuedBeforeLoad = Array.isArray(window.analytics) ? window.analytics.length : -1;";
    let url = site_page(
        &site,
        "queue",
        "Queue",
        &snippet(&server, None, false)?,
        calls,
    );
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;

    let mut checks = Checks::default();
    checks.equal(
        "calls the snippet held before the library loaded",
        &browser.eval("return window.queuedBeforeLoad").await?,
        &json!(50),
    );
    checks.step(
        "waiting for the 50 calls",
        server
            .wait_for_events(50, |e| queued_index(e).is_some())
            .await
            .map_err(|_| anyhow::anyhow!("fewer than 50 arrived in 15 s")),
    );
    sleep_ms(500).await;
    let events: Vec<Value> = server
        .all_events()
        .await?
        .into_iter()
        .filter(|e| queued_index(e).is_some())
        .collect();
    let mut by_index: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
    for e in events {
        by_index
            .entry(queued_index(&e).unwrap_or(usize::MAX))
            .or_default()
            .push(e);
    }
    checks.check(by_index.keys().copied().eq(0..50), || {
        format!(
            "indices that arrived: {:?}",
            by_index.keys().collect::<Vec<_>>()
        )
    });
    let anonymous_id = by_index
        .get(&0)
        .and_then(|v| v.first())
        .map(|e| e["anonymousId"].clone())
        .unwrap_or(Value::Null);
    let mut last_timestamp = String::new();
    for (i, found) in &by_index {
        let i = *i;
        let Some(e) = found.first() else { continue };
        checks.check(found.len() == 1, || {
            format!("call {i} arrived {} times", found.len())
        });
        // The log holds a messageId once however often it came: count the
        // requests that carried it.
        let id = message_id(e);
        let sent: usize = server
            .received()
            .iter()
            .map(|r| r.message_ids().iter().filter(|m| **m == id).count())
            .sum();
        checks.check(sent == 1, || format!("call {i} was sent {sent} times"));
        checks.equal(
            &format!("call {i}: type"),
            &e["type"],
            &json!(queued_kind(i)),
        );
        let user = match i {
            0..13 => Value::Null,
            13..37 => json!("user-a"),
            _ => json!("user-b"),
        };
        checks.equal(
            &format!("call {i}: anonymousId"),
            &e["anonymousId"],
            &anonymous_id,
        );
        if e["type"] == "alias" {
            // The alias is the new id; the previous one the user at the time.
            checks.equal(
                &format!("call {i}: alias userId"),
                &e["userId"],
                &json!(format!("alias-{i}")),
            );
            let previous = if user.is_null() {
                anonymous_id.clone()
            } else {
                user
            };
            checks.equal(
                &format!("call {i}: alias previousId"),
                &e["previousId"],
                &previous,
            );
        } else {
            checks.equal(&format!("call {i}: userId"), &e["userId"], &user);
        }
        // Replayed in call order: the library stamps each call as it runs it.
        let ts = e["originalTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        checks.check(ts >= last_timestamp, || {
            format!(
                "call {i} is stamped {ts}, before call {}'s {last_timestamp}",
                i - 1
            )
        });
        last_timestamp = ts;
    }
    checks.equal(
        "errors thrown into the page",
        &page_errors(&browser).await?,
        &json!([]),
    );
    browser.close().await?;
    checks.finish()
}

// ---------------------------------------------------------------------------
// 3. Offline, then online

#[tokio::test(flavor = "multi_thread")]
async fn events_tracked_offline_are_kept_and_sent_once_back_online() -> Result<()> {
    let server = Server::start_recording().await?;
    let site = Site::start().await?;
    let watch = "window.onlineEvents = 0; window.addEventListener('online', function () { onlineEvents++; });";
    let url = site_page(
        &site,
        "offline",
        "Offline",
        &snippet(&server, None, true)?,
        watch,
    );
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    server.wait_for_event(|e| e["type"] == "page").await?;

    browser.set_offline(true).await?;
    browser.wait_until("navigator.onLine === false").await?;
    let ids = track_n(&browser, "Offline", 3).await?;
    let mut checks = Checks::default();
    // Kept in localStorage, under the library's `sy.` keys.
    if checks
        .step(
            "the offline events in localStorage",
            browser.wait_until(&js_all_in(&ids)).await,
        )
        .is_none()
    {
        let text = browser.eval(QUEUED_SUMMARY).await?;
        checks.check(false, || format!("localStorage `sy.` keys hold: {text}"));
    }
    sleep_ms(1000).await;
    let (logged, wire) = counts(&server, &ids).await?;
    checks.check(
        logged.values().all(|n| *n == 0) && wire.values().all(|n| *n == 0),
        || format!("events arrived while offline: log {logged:?}, requests {wire:?}"),
    );

    browser.set_offline(false).await?;
    browser.wait_until("navigator.onLine === true").await?;
    sleep_ms(200).await;
    if browser.eval("return window.onlineEvents").await? == json!(0) {
        // The browser did not fire it: fire it as a browser would.
        browser
            .eval("window.dispatchEvent(new Event('online')); return 1")
            .await?;
    }
    checks.step(
        "the 3 offline events arriving once back online",
        wait_for_ids(&server, &ids).await,
    );
    sleep_ms(1500).await;
    let (logged, wire) = counts(&server, &ids).await?;
    checks.check(logged.values().all(|n| *n == 1), || {
        format!("times each is in the log: {logged:?}")
    });
    checks.check(wire.values().all(|n| *n == 1), || {
        format!("times each was sent: {wire:?}")
    });
    // Delivered: no longer waiting in localStorage.
    let left = queued_text(&browser).await?;
    checks.check(ids.iter().all(|id| !left.contains(id.as_str())), || {
        format!("delivered events still in localStorage: {left}")
    });
    checks.equal(
        "errors thrown into the page",
        &page_errors(&browser).await?,
        &json!([]),
    );
    browser.close().await?;
    checks.finish()
}

/// A JS expression: the `sy.` localStorage values hold every one of `ids`.
fn js_all_in(ids: &[String]) -> String {
    [
        "(function () { var t = Object.keys(localStorage).filter(function (k) { return k.indexOf('sy.') === 0; })",
        ".map(function (k) { return localStorage.getItem(k); }).join('\\n'); return ",
        &serde_json::to_string(ids).unwrap_or_default(),
        ".every(function (id) { return t.indexOf(id) >= 0; }); })()",
    ]
    .concat()
}

// ---------------------------------------------------------------------------
// 4. A reload while events wait to be delivered

#[tokio::test(flavor = "multi_thread")]
async fn events_still_queued_when_the_page_reloads_arrive_once_after() -> Result<()> {
    let server = Server::start_recording().await?;
    let site = Site::start().await?;
    let url = site_page(
        &site,
        "reload",
        "Reload",
        &snippet(&server, None, true)?,
        "",
    );
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    server.wait_for_event(|e| e["type"] == "page").await?;

    // The tracking API goes down: delivery fails and is retried.
    server.refuse_tracking(true);
    let ids = track_n(&browser, "Queued Before Reload", 3).await?;
    let mut checks = Checks::default();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ids.iter().all(|id| {
        server
            .received()
            .iter()
            .any(|r| r.refused && r.message_ids().contains(id))
    }) {
        ensure!(
            Instant::now() < deadline,
            "the library never tried to send {ids:?}"
        );
        sleep_ms(50).await;
    }
    checks.step(
        "the failing events in localStorage",
        browser.wait_until(&js_all_in(&ids)).await,
    );

    browser.client.refresh().await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    // Still down: the new page holds the events.
    checks.step(
        "the events in localStorage after the reload",
        browser.wait_until(&js_all_in(&ids)).await,
    );
    sleep_ms(1000).await;
    let (logged, _) = counts(&server, &ids).await?;
    checks.check(logged.values().all(|n| *n == 0), || {
        format!("stored during the outage: {logged:?}")
    });

    server.refuse_tracking(false);
    let arrived = checks.step(
        "the queued events arriving after the reload",
        wait_for_ids(&server, &ids).await,
    );
    sleep_ms(1500).await;
    // The log keeps one row per messageId whatever arrives, so what shows
    // "once" is what the server was sent: each event accepted once, by
    // the reloaded page, and not again.
    let (logged, wire) = counts(&server, &ids).await?;
    checks.check(logged.values().all(|n| *n == 1), || {
        format!("times each original messageId is in the log: {logged:?}")
    });
    checks.check(wire.values().all(|n| *n == 1), || {
        format!("times each was sent and accepted after the outage: {wire:?}")
    });
    // Nothing else with those names: no copy under a new messageId.
    let copies = server
        .all_events()
        .await?
        .into_iter()
        .filter(|e| {
            e["event"]
                .as_str()
                .is_some_and(|n| n.starts_with("Queued Before Reload"))
        })
        .count();
    checks.check(copies == 3, || {
        format!("{copies} events named `Queued Before Reload *` in the log")
    });
    for e in arrived.unwrap_or_default() {
        let n = e["properties"]["n"].as_u64().unwrap_or(0) as usize;
        checks.check(n >= 1 && ids.get(n - 1) == Some(&message_id(&e)), || {
            format!("event {e} does not carry the messageId track() gave it")
        });
    }
    checks.equal(
        "errors thrown into the page",
        &page_errors(&browser).await?,
        &json!([]),
    );
    browser.close().await?;
    checks.finish()
}

// ---------------------------------------------------------------------------
// 5. Two tabs

#[tokio::test(flavor = "multi_thread")]
async fn two_tabs_offline_then_one_closed_lose_and_repeat_nothing() -> Result<()> {
    let server = Server::start_recording().await?;
    let site = Site::start().await?;
    let url = site_page(&site, "tabs", "Tabs", &snippet(&server, None, true)?, "");
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    let first = browser.client.window().await?;
    let second = browser.client.new_window(true).await?.handle;
    browser.client.switch_to_window(second.clone()).await?;
    browser.client.goto(&url).await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    server.wait_for_events(2, |e| e["type"] == "page").await?;

    // Both tabs go offline (chromedriver's emulation; set in each tab).
    browser.set_offline(true).await?;
    browser.wait_until("navigator.onLine === false").await?;
    let second_ids = track_n(&browser, "Second Tab", 10).await?;
    browser.client.switch_to_window(first.clone()).await?;
    browser.set_offline(true).await?;
    browser.wait_until("navigator.onLine === false").await?;
    let first_ids = track_n(&browser, "First Tab", 10).await?;
    browser.wait_until(&js_all_in(&second_ids)).await?;
    browser.wait_until(&js_all_in(&first_ids)).await?;

    // The second tab is closed while offline; the first comes back online.
    // Closing a tab ends chromedriver's emulation for it, so its page may
    // see itself online in its last moments: the tracking API refuses
    // meanwhile, as the network would have.
    server.refuse_tracking(true);
    browser.client.switch_to_window(second).await?;
    browser.client.close_window().await?;
    browser.client.switch_to_window(first).await?;
    sleep_ms(1000).await;
    server.refuse_tracking(false);
    browser.set_offline(false).await?;
    browser.wait_until("navigator.onLine === true").await?;

    let ids: Vec<String> = first_ids.iter().chain(&second_ids).cloned().collect();
    let mut checks = Checks::default();
    checks.step(
        "the 20 events of both tabs arriving",
        wait_for_ids(&server, &ids).await,
    );
    sleep_ms(1500).await;
    let (logged, wire) = counts(&server, &ids).await?;
    for (tab, tab_ids) in [("first", &first_ids), ("second (closed)", &second_ids)] {
        let lost: Vec<&String> = tab_ids.iter().filter(|id| logged[*id] == 0).collect();
        checks.check(lost.is_empty(), || {
            format!("{} of the {tab} tab's 10 events never arrived", lost.len())
        });
        let twice: Vec<(&String, usize)> = tab_ids
            .iter()
            .map(|id| (id, wire[id]))
            .filter(|(_, n)| *n > 1)
            .collect();
        checks.check(twice.is_empty(), || {
            format!("the {tab} tab's events sent more than once: {twice:?}")
        });
    }
    if !checks.0.is_empty() {
        let left = browser.eval(QUEUED_SUMMARY).await?;
        checks.check(false, || format!("what localStorage still holds: {left}"));
    }
    checks.equal(
        "errors thrown into the page",
        &page_errors(&browser).await?,
        &json!([]),
    );
    browser.close().await?;
    checks.finish()
}

// ---------------------------------------------------------------------------
// 6. Identity

#[tokio::test(flavor = "multi_thread")]
async fn identity_lives_in_a_cookie_and_follows_reset_set_and_the_query_string() -> Result<()> {
    let server = Server::start().await?;
    let site = Site::start().await?;
    let snip = snippet(&server, None, true)?;
    let url = site_page(&site, "identity", "Identity", &snip, "");
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    let mut checks = Checks::default();

    let first = server.wait_for_event(|e| e["type"] == "page").await?;
    let anonymous_id = first["anonymousId"].clone();
    checks.check(is_uuid_v4(&anonymous_id), || {
        format!("anonymousId {anonymous_id}")
    });
    let cookie_of = |cookies: &[fantoccini::cookies::Cookie<'static>]| {
        cookies
            .iter()
            .find(|c| c.name() == "ajs_anonymous_id")
            .map(|c| {
                (
                    c.value().to_string(),
                    c.domain()
                        .unwrap_or_default()
                        .trim_start_matches('.')
                        .to_string(),
                )
            })
    };
    let cookie = cookie_of(&browser.client.get_all_cookies().await?);
    checks.equal(
        "the ajs_anonymous_id cookie (value, domain)",
        &json!(cookie),
        &json!([anonymous_id, "localhost"]),
    );

    // It survives a reload.
    browser.client.refresh().await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    checks.equal(
        "user().anonymousId() after a reload",
        &browser
            .eval("return analytics.user().anonymousId()")
            .await?,
        &anonymous_id,
    );
    browser
        .eval("analytics.track('After Reload'); return 1")
        .await?;
    let e = wait_for_track(&server, "After Reload").await?;
    checks.equal(
        "anonymousId after a reload",
        &e["anonymousId"],
        &anonymous_id,
    );
    let cookie = cookie_of(&browser.client.get_all_cookies().await?);
    checks.equal(
        "the cookie after a reload",
        &json!(cookie.map(|c| c.0)),
        &anonymous_id,
    );

    // identify, then what user() says.
    checks.equal(
        "user().id() before identify",
        &browser.eval("return analytics.user().id()").await?,
        &Value::Null,
    );
    browser
        .eval("return analytics.identify('u-1', {name: 'Zed', plan: 'pro'}).then(function () { return 1; })")
        .await?;
    let user = browser
        .eval("var u = analytics.user(); return {id: u.id(), anonymousId: u.anonymousId(), traits: u.traits()};")
        .await?;
    checks.equal(
        "user() after identify",
        &user,
        &json!({"id": "u-1", "anonymousId": anonymous_id, "traits": {"name": "Zed", "plan": "pro"}}),
    );
    let e = server.wait_for_event(|e| e["type"] == "identify").await?;
    checks.equal("identify userId", &e["userId"], &json!("u-1"));

    // reset(): a new anonymous id, no user.
    let after = browser
        .eval("analytics.reset(); var u = analytics.user(); return {id: u.id(), anonymousId: u.anonymousId(), traits: u.traits()};")
        .await?;
    checks.equal("user().id() after reset", &after["id"], &Value::Null);
    checks.equal("user().traits() after reset", &after["traits"], &json!({}));
    checks.check(
        after["anonymousId"] != anonymous_id && is_uuid_v4(&after["anonymousId"]),
        || {
            format!(
                "anonymousId after reset: {} (was {anonymous_id})",
                after["anonymousId"]
            )
        },
    );
    browser
        .eval("analytics.track('After Reset'); return 1")
        .await?;
    let e = wait_for_track(&server, "After Reset").await?;
    checks.equal("After Reset: userId", &e["userId"], &Value::Null);
    checks.equal(
        "After Reset: anonymousId",
        &e["anonymousId"],
        &after["anonymousId"],
    );

    // setAnonymousId: the next event carries it.
    browser
        .eval("analytics.setAnonymousId('x'); analytics.track('After Set'); return 1")
        .await?;
    let e = wait_for_track(&server, "After Set").await?;
    checks.equal("After Set: anonymousId", &e["anonymousId"], &json!("x"));
    checks.equal(
        "user().anonymousId() after setAnonymousId",
        &browser
            .eval("return analytics.user().anonymousId()")
            .await?,
        &json!("x"),
    );

    // The query string: ajs_* calls and utm_* campaign.
    let landing = site_page(&site, "landing", "Landing", &snip, "");
    let query = "?ajs_uid=u9&ajs_trait_name=Ann&ajs_event=Clicked&ajs_prop_color=red&ajs_aid=a9&utm_source=news&utm_campaign=spring";
    browser
        .client
        .goto(&[landing.as_str(), query].concat())
        .await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    let campaign = json!({"source": "news", "name": "spring"});
    if let Some(e) = checks.step(
        "the ajs_uid identify",
        server
            .wait_for_event(|e| e["type"] == "identify" && e["userId"] == "u9")
            .await,
    ) {
        checks.equal(
            "ajs_uid identify: traits.name",
            &e["traits"]["name"],
            &json!("Ann"),
        );
        checks.equal(
            "ajs_uid identify: anonymousId",
            &e["anonymousId"],
            &json!("a9"),
        );
        checks.equal(
            "ajs_uid identify: context.campaign",
            &e["context"]["campaign"],
            &campaign,
        );
    }
    if let Some(e) = checks.step(
        "the ajs_event track",
        wait_for_track(&server, "Clicked").await,
    ) {
        checks.equal(
            "ajs_event track: properties",
            &e["properties"],
            &json!({"color": "red"}),
        );
        checks.equal(
            "ajs_event track: anonymousId",
            &e["anonymousId"],
            &json!("a9"),
        );
        checks.equal("ajs_event track: userId", &e["userId"], &json!("u9"));
        checks.equal(
            "ajs_event track: context.campaign",
            &e["context"]["campaign"],
            &campaign,
        );
    }
    if let Some(e) = checks.step(
        "the landing page's page call",
        server
            .wait_for_event(|e| e["type"] == "page" && e["context"]["page"]["path"] == "/landing")
            .await,
    ) {
        checks.equal(
            "landing page: context.campaign",
            &e["context"]["campaign"],
            &campaign,
        );
        checks.equal("landing page: anonymousId", &e["anonymousId"], &json!("a9"));
    }
    checks.equal(
        "errors thrown into the page",
        &page_errors(&browser).await?,
        &json!([]),
    );
    browser.close().await?;
    checks.finish()
}

// ---------------------------------------------------------------------------
// 7. Callbacks, promises, ready and errors

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_promises_ready_and_errors_never_reach_the_page() -> Result<()> {
    let server = Server::start().await?;
    let site = Site::start().await?;
    let url = site_page(
        &site,
        "errors",
        "Errors",
        &snippet(&server, None, true)?,
        "",
    );
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    let mut checks = Checks::default();

    browser
        .eval(
            "window.errorsSeen = []; window.goodCalls = []; window.readyRan = false;
window.enrichBoom = new Error('boom in enrichment');
window.destBoom = new Error('boom in destination');
analytics.on('error', function () { errorsSeen.push(Array.prototype.slice.call(arguments)); });
function plugin(name, type, extra) {
  var p = {name: name, type: type, version: '1.0.0', isLoaded: function () { return true; }, load: function () { return Promise.resolve(); }};
  for (var k in extra) p[k] = extra[k];
  return p;
}
analytics.register(
  plugin('Broken Loader', 'destination', {isLoaded: function () { return false; }, load: function () { return Promise.reject(new Error('cannot load')); }}),
  plugin('Good Destination', 'destination', {track: function (ctx) { goodCalls.push(ctx.event.event); return ctx; }}),
  plugin('Throwing Enrichment', 'enrichment', {track: function () { throw enrichBoom; }}),
  plugin('Throwing Destination', 'destination', {track: function () { throw destBoom; }})
);
window.readyStarted = Date.now();
analytics.ready(function () { window.readyRan = true; window.readyAfter = Date.now() - readyStarted; });
return 1;",
        )
        .await?;
    checks.step(
        "ready() running its callback",
        browser.wait_until("window.readyRan === true").await,
    );

    // A callback, and a promise that resolves to the context.
    browser
        .eval("analytics.track('With Callback', {}, {}, function (ctx) { window.callbackCtx = !!(ctx && ctx.event); window.callbackRan = true; }); return 1")
        .await?;
    checks.step(
        "the track callback running",
        browser.wait_until("window.callbackRan === true").await,
    );
    let awaited = browser
        .eval("return analytics.track('Awaited', {a: 1}).then(function (ctx) { return {isObject: typeof ctx === 'object' && ctx !== null, event: ctx && ctx.event && ctx.event.event}; })")
        .await?;
    checks.equal(
        "await analytics.track(...)",
        &awaited,
        &json!({"isObject": true, "event": "Awaited"}),
    );

    // Both reach the server despite the throwing plugins.
    for name in ["With Callback", "Awaited"] {
        checks.step(
            &["`", name, "` reaching the server"].concat(),
            wait_for_track(&server, name).await,
        );
    }
    checks.step(
        "the good destination getting both",
        browser
            .wait_until(
                "goodCalls.indexOf('With Callback') >= 0 && goodCalls.indexOf('Awaited') >= 0",
            )
            .await,
    );
    // The error listener got each plugin's error.
    for (what, err) in [
        ("the enrichment plugin's", "enrichBoom"),
        ("the destination plugin's", "destBoom"),
    ] {
        let script = [
            "return errorsSeen.some(function (args) { return args.some(function (a) { return a === ",
            err,
            " || (a && (a.detail === ",
            err,
            " || a.cause === ",
            err,
            " || String(a.message).indexOf(",
            err,
            ".message) >= 0)); }); });",
        ]
        .concat();
        let seen = browser.eval(&script).await?;
        checks.check(seen == json!(true), || {
            format!("on('error') did not receive {what} error")
        });
    }
    let load_seen = browser
        .eval("return errorsSeen.some(function (args) { return args.some(function (a) { return a && /cannot load|Broken Loader/.test(String(a.message) + String(a.detail && a.detail.message)); }); });")
        .await?;
    checks.check(load_seen == json!(true), || {
        "on('error') did not hear of the failed load".to_string()
    });
    checks.equal(
        "errors thrown into the page",
        &page_errors(&browser).await?,
        &json!([]),
    );
    browser.close().await?;
    checks.finish()
}

// ---------------------------------------------------------------------------
// 8. Middleware and plugins, in order; integrations options

#[tokio::test(flavor = "multi_thread")]
async fn middleware_and_plugins_run_in_order_and_integrations_route_events() -> Result<()> {
    let server = Server::start().await?;
    let site = Site::start().await?;
    let url = site_page(&site, "order", "Order", &snippet(&server, None, false)?, "");
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    let mut checks = Checks::default();

    browser
        .eval(
            "window.order = []; window.destEvents = [];
analytics.addSourceMiddleware(function (m) {
  order.push('source middleware');
  if (m.payload.obj.event === 'Drop Me') return m.next(null);
  m.next(m.payload);
});
analytics.addDestinationMiddleware('Order Destination', function (m) { order.push('destination middleware'); m.next(m.payload); });
function plugin(name, type, step) {
  return {name: name, type: type, version: '1.0.0', isLoaded: function () { return true; }, load: function () { return Promise.resolve(); },
    track: function (ctx) { order.push(step); if (type === 'destination') destEvents.push(ctx.event.event); return ctx; }};
}
return analytics.register(
  plugin('Order After', 'after', 'after'),
  plugin('Order Destination', 'destination', 'destination'),
  plugin('Order Enrichment', 'enrichment', 'enrichment'),
  plugin('Order Before', 'before', 'before')
).then(function () { return 1; });",
        )
        .await?;

    browser
        .eval("window.order = []; analytics.track('Ordered'); return 1")
        .await?;
    checks.step(
        "`Ordered` reaching the server",
        wait_for_track(&server, "Ordered").await,
    );
    checks.step(
        "the after plugin running",
        browser.wait_until("order.indexOf('after') >= 0").await,
    );
    checks.equal(
        "the order each step saw `Ordered`",
        &browser.eval("return order").await?,
        &json!([
            "source middleware",
            "before",
            "enrichment",
            "destination middleware",
            "destination",
            "after"
        ]),
    );

    // A source middleware that passes null drops the event everywhere.
    browser
        .eval("analytics.track('Drop Me'); analytics.track('After Drop'); return 1")
        .await?;
    checks.step(
        "`After Drop` reaching the server",
        wait_for_track(&server, "After Drop").await,
    );
    sleep_ms(1000).await;
    let names: Vec<Value> = server
        .all_events()
        .await?
        .iter()
        .map(|e| e["event"].clone())
        .collect();
    checks.check(!names.contains(&json!("Drop Me")), || {
        "`Drop Me`, dropped by middleware, reached the server".into()
    });
    checks.check(
        browser.eval("return destEvents.indexOf('Drop Me')").await? == json!(-1),
        || "`Drop Me`, dropped by middleware, reached the destination".into(),
    );

    // All: false keeps it from destinations, not from Segment.io.
    browser
        .eval("analytics.track('Not For Destinations', {}, {integrations: {All: false}}); return 1")
        .await?;
    checks.step(
        "`Not For Destinations` ({All: false}) reaching the server",
        wait_for_track(&server, "Not For Destinations").await,
    );
    // All: false and Segment.io: false keep it from the server too.
    browser
        .eval("analytics.track('Nowhere', {}, {integrations: {All: false, 'Segment.io': false}}); analytics.track('Sentinel'); return 1")
        .await?;
    checks.step(
        "`Sentinel` reaching the server",
        wait_for_track(&server, "Sentinel").await,
    );
    sleep_ms(1000).await;
    let names: Vec<Value> = server
        .all_events()
        .await?
        .iter()
        .map(|e| e["event"].clone())
        .collect();
    checks.check(!names.contains(&json!("Nowhere")), || {
        "`Nowhere` ({All: false, 'Segment.io': false}) reached the server".into()
    });
    let dest = browser.eval("return destEvents").await?;
    for name in ["Not For Destinations", "Nowhere"] {
        checks.check(
            !dest.as_array().is_some_and(|a| a.contains(&json!(name))),
            || format!("`{name}` reached the destination plugin despite All: false"),
        );
    }
    checks.check(
        dest.as_array()
            .is_some_and(|a| a.contains(&json!("Sentinel"))),
        || format!("the destination plugin missed `Sentinel`: it got {dest}"),
    );
    checks.equal(
        "errors thrown into the page",
        &page_errors(&browser).await?,
        &json!([]),
    );
    browser.close().await?;
    checks.finish()
}

// ---------------------------------------------------------------------------
// 9. Consent

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_without_consent_waits_until_it_is_given() -> Result<()> {
    let server = Server::start().await?;
    let site = Site::start().await?;
    let options = "{consent: {categoryPreferences: {Advertising: false, Analytics: true}}}";
    let url = site_page(
        &site,
        "consent",
        "Consent",
        &snippet(&server, Some(options), true)?,
        "",
    );
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    let mut checks = Checks::default();

    browser
        .eval(
            "window.adsLoads = 0; window.adsCalls = []; window.statsCalls = [];
analytics.register(
  {name: 'Ads Destination', type: 'destination', version: '1.0.0', consentCategories: ['Advertising'],
   isLoaded: function () { return adsLoads > 0; }, load: function () { adsLoads++; return Promise.resolve(); },
   track: function (ctx) { adsCalls.push(ctx.event.event); return ctx; },
   page: function (ctx) { adsCalls.push('page'); return ctx; }},
  {name: 'Stats Destination', type: 'destination', version: '1.0.0', consentCategories: ['Analytics'],
   isLoaded: function () { return true; }, load: function () { return Promise.resolve(); },
   track: function (ctx) { statsCalls.push(ctx.event.event); return ctx; }}
);
return 1;",
        )
        .await?;
    browser
        .eval("analytics.track('Before Consent'); return 1")
        .await?;
    let prefs = json!({"Advertising": false, "Analytics": true});
    if let Some(e) = checks.step(
        "`Before Consent` arriving",
        wait_for_track(&server, "Before Consent").await,
    ) {
        checks.equal(
            "Before Consent: context.consent.categoryPreferences",
            &e["context"]["consent"]["categoryPreferences"],
            &prefs,
        );
    }
    if let Some(e) = checks.step(
        "the page call arriving",
        server.wait_for_event(|e| e["type"] == "page").await,
    ) {
        checks.equal(
            "page: context.consent.categoryPreferences",
            &e["context"]["consent"]["categoryPreferences"],
            &prefs,
        );
    }
    checks.step(
        "the consented destination getting `Before Consent`",
        browser
            .wait_until("statsCalls.indexOf('Before Consent') >= 0")
            .await,
    );
    checks.equal(
        "loads of the Advertising destination before consent",
        &browser.eval("return adsLoads").await?,
        &json!(0),
    );
    checks.equal(
        "calls to the Advertising destination before consent",
        &browser.eval("return adsCalls").await?,
        &json!([]),
    );

    // Consent given: it loads, and gets the next call.
    browser
        .eval("analytics.consent({categoryPreferences: {Advertising: true}}); analytics.track('After Consent'); return 1")
        .await?;
    checks.step(
        "the Advertising destination loading",
        browser.wait_until("adsLoads === 1").await,
    );
    checks.step(
        "the Advertising destination getting `After Consent`",
        browser
            .wait_until("adsCalls.indexOf('After Consent') >= 0")
            .await,
    );
    if let Some(e) = checks.step(
        "`After Consent` arriving",
        wait_for_track(&server, "After Consent").await,
    ) {
        checks.equal(
            "After Consent: context.consent.categoryPreferences.Advertising",
            &e["context"]["consent"]["categoryPreferences"]["Advertising"],
            &json!(true),
        );
    }
    checks.equal(
        "what the Advertising destination got",
        &browser.eval("return adsCalls").await?,
        &json!(["After Consent"]),
    );
    checks.equal(
        "errors thrown into the page",
        &page_errors(&browser).await?,
        &json!([]),
    );
    browser.close().await?;
    checks.finish()
}

// ---------------------------------------------------------------------------
// 10. Batching

#[tokio::test(flavor = "multi_thread")]
async fn batching_sends_full_batches_at_once_and_the_rest_after_the_timeout() -> Result<()> {
    let server = Server::start_recording().await?;
    let site = Site::start().await?;
    let options = "{integrations: {'Segment.io': {deliveryStrategy: {strategy: 'batching', config: {size: 5, timeout: 1000}}}}}";
    let url = site_page(
        &site,
        "batching",
        "Batching",
        &snippet(&server, Some(options), false)?,
        "",
    );
    let browser = Browser::start().await?;
    browser.client.goto(&url).await?;
    browser
        .wait_until("window.analytics.initialized === true")
        .await?;
    let mut checks = Checks::default();
    let fixture = fixture_body(BATCH_FIXTURE, "/v1/b")?;
    let body_keys = keys(Some(&fixture));

    // Five: one request, at once (the size is reached; no waiting for the timeout).
    let tracked = Instant::now();
    let five = track_n(&browser, "B", 5).await?;
    checks.step("the 5 events arriving", wait_for_ids(&server, &five).await);
    let requests: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.message_ids().iter().any(|id| five.contains(id)))
        .collect();
    checks.check(requests.len() == 1 && requests[0].path == "/v1/b", || {
        format!(
            "the 5 events went as {:?}",
            requests
                .iter()
                .map(|r| (r.path.clone(), r.message_ids().len()))
                .collect::<Vec<_>>()
        )
    });
    if let Some(r) = requests.first() {
        let waited = r.at.duration_since(tracked);
        checks.check(waited < Duration::from_millis(800), || {
            format!("the full batch left {waited:?} after the calls, not at once")
        });
        let body = r.json().unwrap_or(Value::Null);
        checks.check(keys(Some(&body)) == body_keys, || {
            format!(
                "batch body keys {:?}, analytics-next's {:?}",
                keys(Some(&body)),
                body_keys
            )
        });
        checks.equal(
            "batch writeKey",
            &body["writeKey"],
            &json!(server.demo_write_key),
        );
        checks.check(
            body["sentAt"].as_str().is_some_and(|s| s.ends_with('Z')),
            || format!("sentAt {}", body["sentAt"]),
        );
        let names: Vec<Value> = r.events().iter().map(|e| e["event"].clone()).collect();
        checks.equal(
            "the batch's events, in call order",
            &json!(names),
            &json!(["B 1", "B 2", "B 3", "B 4", "B 5"]),
        );
        let want_item = [
            "anonymousId",
            "context",
            "event",
            "messageId",
            "properties",
            "timestamp",
            "type",
        ];
        for e in r.events() {
            let k = keys(Some(&e));
            checks.check(want_item.iter().all(|w| k.contains(*w)), || {
                format!("batch item keys {k:?}")
            });
        }
    }

    // Two more, once the queue is empty and idle: they wait for the timeout.
    // (The timer the first batch started may still be pending and would
    // send them early; analytics-next's batching does the same.)
    sleep_ms(1200).await;
    let sent = Instant::now();
    let two = track_n(&browser, "C", 2).await?;
    sleep_ms(500).await;
    let early = server
        .received()
        .iter()
        .filter(|r| r.message_ids().iter().any(|id| two.contains(id)))
        .count();
    checks.check(early == 0, || {
        "the 2 events left before the 1000 ms timeout".into()
    });
    checks.step("the 2 events arriving", wait_for_ids(&server, &two).await);
    let requests: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.message_ids().iter().any(|id| two.contains(id)))
        .collect();
    checks.check(
        requests.len() == 1 && requests[0].path == "/v1/b" && requests[0].message_ids().len() == 2,
        || {
            format!(
                "the 2 events went as {:?}",
                requests
                    .iter()
                    .map(|r| (r.path.clone(), r.message_ids().len()))
                    .collect::<Vec<_>>()
            )
        },
    );
    if let Some(r) = requests.first() {
        let waited = r.at.duration_since(sent);
        checks.check(waited >= Duration::from_millis(950) && waited < Duration::from_millis(4000), || {
            format!("the 2 events left {waited:?} after they were tracked, not after the 1000 ms timeout")
        });
    }
    let singles = server
        .received()
        .iter()
        .filter(|r| r.path != "/v1/b")
        .count();
    checks.check(singles == 0, || {
        format!("{singles} requests other than /v1/b while batching")
    });
    checks.equal(
        "errors thrown into the page",
        &page_errors(&browser).await?,
        &json!([]),
    );
    browser.close().await?;
    checks.finish()
}
