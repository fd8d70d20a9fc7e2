//! Cloud forwarders checked against their cases: every destination with a
//! forwarder in the registry has `src/<slug>/testdata/cloud/*.json`, each
//!
//! ```json
//! { "settings": {…},
//!   "cases": [{ "name": "…", "settings": {…}?, "events": [{…}],
//!               "requests": [{ "method": "POST", "url": "…", "headers": {…},
//!                              "body": <JSON, or a string for other bodies>,
//!                              "events": [0] }],
//!               "skipped": [[0, "reason"]]?, "rejected": [[0, "reason"]]? }],
//!   "responses": [{ "name": "…", "status": 429, "headers": {…}?, "body": <JSON or string>,
//!                   "request": {"method", "url"}?,
//!                   "outcome": "delivered" | "retry" | "failed" | "then", "after": 2?,
//!                   "then": {"method", "url"}? }] }
//! ```
//!
//! Settings go through the catalog's validation first, so defaults are
//! filled in as the server fills them. A request's headers are compared
//! whole; a JSON body as JSON, any other as text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value as Json, json};
use switchyard_catalog::{Mode, validate_settings};
use switchyard_destinations::cloud::{Built, Outcome, Request, Response, Settings};
use switchyard_destinations::{catalog, forwarder};

/// Every destination with a cloud forwarder, from the registry.
fn forwarders() -> Vec<String> {
    catalog()
        .unwrap()
        .all()
        .iter()
        .filter(|d| forwarder(&d.slug).is_some())
        .map(|d| d.slug.clone())
        .collect()
}

fn case_files(slug: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(slug)
        .join("testdata/cloud");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{slug}: no testdata/cloud: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{slug}: no testdata/cloud/*.json");
    files
}

fn settings(slug: &str, given: &Json) -> Settings {
    let catalog = catalog().unwrap();
    let def = catalog.get(slug).unwrap();
    let given = given.as_object().cloned().unwrap_or_default();
    validate_settings(def, Mode::Cloud, &given)
        .unwrap_or_else(|e| panic!("{slug}: settings of the case are refused: {e}"))
}

/// A request as the case files write it.
fn request_json(r: &Request) -> Json {
    let content_type = r
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let body = if content_type.contains("json") {
        serde_json::from_slice(&r.body).unwrap_or_else(|_| json!(r.body_text()))
    } else {
        json!(r.body_text())
    };
    let headers: Map<String, Json> = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "method": r.method,
        "url": r.url,
        "headers": headers,
        "body": body,
        "events": r.events,
    })
}

fn built_json(built: &Built) -> Json {
    json!({
        "requests": built.requests.iter().map(request_json).collect::<Vec<_>>(),
        "skipped": built.skipped,
        "rejected": built.rejected,
    })
}

fn expected_json(case: &Json) -> Json {
    json!({
        "requests": case.get("requests").cloned().unwrap_or(json!([])),
        "skipped": case.get("skipped").cloned().unwrap_or(json!([])),
        "rejected": case.get("rejected").cloned().unwrap_or(json!([])),
    })
}

#[test]
fn every_forwarder_matches_its_cases() {
    let mut count = 0;
    for slug in forwarders() {
        let cloud = forwarder(&slug).unwrap();
        for file in case_files(&slug) {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let data: Json = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
                .unwrap_or_else(|e| panic!("{slug}/{name}: {e}"));
            let base = data.get("settings").cloned().unwrap_or(json!({}));
            for case in data["cases"].as_array().expect("cases") {
                let what = format!("{slug}/{name}: {}", case["name"].as_str().unwrap_or("?"));
                let settings = settings(&slug, case.get("settings").unwrap_or(&base));
                let events = case["events"].as_array().expect("events").clone();
                let built = cloud.build(&events, &settings);
                let (actual, expected) = (built_json(&built), expected_json(case));
                assert!(
                    actual == expected,
                    "{what}\nexpected: {}\n  actual: {}",
                    serde_json::to_string_pretty(&expected).unwrap(),
                    serde_json::to_string_pretty(&actual).unwrap()
                );
                let limits = cloud.limits(&settings);
                for r in &built.requests {
                    assert!(
                        r.events.len() <= limits.max_events,
                        "{what}: a request carries more events than the limit"
                    );
                }
                count += 1;
            }
        }
    }
    assert!(count >= forwarders().len(), "only {count} cases");
}

#[test]
fn every_forwarder_reads_the_vendors_answers() {
    for slug in forwarders() {
        let cloud = forwarder(&slug).unwrap();
        let mut seen = Vec::new();
        for file in case_files(&slug) {
            let data: Json =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let base = settings(&slug, data.get("settings").unwrap_or(&json!({})));
            // A request of the destination's own, for forwarders that read
            // the answer in the light of what was asked.
            let first = data["cases"][0]["events"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let built = cloud.build(&first, &base);
            let request = built.requests.first().cloned().unwrap_or(Request {
                method: "POST",
                url: String::new(),
                headers: Vec::new(),
                body: Vec::new(),
                events: Vec::new(),
            });
            for r in data
                .get("responses")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let what = format!("{slug}: response {}", r["name"].as_str().unwrap_or("?"));
                let headers: Vec<(String, String)> = r
                    .get("headers")
                    .and_then(Json::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                let body = match &r["body"] {
                    Json::String(s) => s.clone().into_bytes(),
                    other => other.to_string().into_bytes(),
                };
                let status = r["status"].as_u64().expect("status") as u16;
                // A case may read the answer to a request of its own.
                let mut asked = request.clone();
                if let Some(own) = r.get("request") {
                    asked.method = if own["method"] == "PUT" {
                        "PUT"
                    } else {
                        "POST"
                    };
                    asked.url = own["url"].as_str().unwrap_or_default().to_string();
                }
                let outcome = cloud.outcome(
                    &asked,
                    &Response {
                        status,
                        headers: &headers,
                        body: &body,
                    },
                );
                let expected = r["outcome"].as_str().expect("outcome");
                match (&outcome, expected) {
                    (Outcome::Delivered, "delivered") | (Outcome::Failed { .. }, "failed") => {}
                    (Outcome::Retry { after, .. }, "retry") => {
                        let want = r.get("after").and_then(Json::as_f64);
                        assert_eq!(after.map(|d| d.as_secs_f64()), want, "{what}: retry after");
                    }
                    (Outcome::Then(next), "then") => {
                        assert_eq!(next.method, r["then"]["method"], "{what}: then");
                        assert_eq!(next.url, r["then"]["url"].as_str().unwrap(), "{what}: then");
                        assert_eq!(next.body, asked.body, "{what}: then sends the same body");
                    }
                    _ => panic!("{what}: {outcome:?}, expected {expected}"),
                }
                seen.push(expected.to_string());
            }
        }
        for outcome in ["delivered", "retry", "failed"] {
            assert!(
                seen.iter().any(|s| s == outcome),
                "{slug}: no response case that is {outcome}"
            );
        }
    }
}

#[test]
fn every_available_cloud_mode_has_a_forwarder_and_no_other() {
    for d in catalog().unwrap().all() {
        let available = d.mode(Mode::Cloud).is_some_and(|m| m.available);
        assert_eq!(
            available,
            forwarder(&d.slug).is_some(),
            "{}: cloud mode available = {available}, but the registry {} a forwarder",
            d.slug,
            if available { "lists no" } else { "lists" }
        );
    }
}

#[test]
fn every_vendor_url_is_a_setting_with_the_vendors_url_as_default() {
    // The webhook's URL is the site owner's own; every other forwarder
    // reaches its vendor through a setting whose default is the vendor's
    // real base URL, so tests and proxies can point it elsewhere.
    for slug in forwarders() {
        let catalog = catalog().unwrap();
        let def = catalog.get(&slug).unwrap();
        let urls: Vec<_> = def
            .settings_for(Mode::Cloud)
            .filter(|s| {
                s.default
                    .as_ref()
                    .and_then(Json::as_str)
                    .is_some_and(|d| d.starts_with("https://"))
            })
            .collect();
        let own_url = def
            .settings_for(Mode::Cloud)
            .any(|s| s.required && s.pattern.as_deref().is_some_and(|p| p.starts_with("https")));
        assert!(
            own_url || !urls.is_empty(),
            "{slug}: no base URL setting with an https:// default"
        );
    }
}

#[test]
fn retry_after_is_honoured_by_the_standard_policy() {
    let headers = [("Retry-After".to_string(), "7".to_string())];
    let outcome = switchyard_destinations::cloud::standard(&Response {
        status: 429,
        headers: &headers,
        body: b"",
    });
    assert!(
        matches!(outcome, Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7))
    );
}
