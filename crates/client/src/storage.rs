//! Cookies and localStorage, as Segment's libraries use them.

use wasm_bindgen::JsCast;
use web_sys::{HtmlDocument, Storage};

use crate::ids;

const YEAR_SECONDS: &str = "31536000";

fn document() -> Option<HtmlDocument> {
    web_sys::window()?
        .document()?
        .dyn_into::<HtmlDocument>()
        .ok()
}

pub(crate) fn local() -> Option<Storage> {
    web_sys::window()?.local_storage().ok()?
}

pub(crate) fn cookie_jar() -> String {
    document().and_then(|d| d.cookie().ok()).unwrap_or_default()
}

/// The widest domain this page may set cookies on (`example.co.uk` for
/// `www.shop.example.co.uk`), found as analytics.js does: by setting a test
/// cookie on ever longer suffixes until the browser keeps one. `None` on
/// `localhost` and IP addresses, where cookies stay host-only.
pub(crate) fn top_domain() -> Option<String> {
    let host = web_sys::window()?.location().hostname().ok()?;
    if !host.contains('.') || ids::is_ip(&host) || host.starts_with('[') {
        return None;
    }
    let doc = document()?;
    let parts: Vec<&str> = host.split('.').collect();
    for i in (0..parts.len() - 1).rev() {
        let domain = parts[i..].join(".");
        let test = ["__tld__=1; path=/; domain=", &domain].concat();
        let _ = doc.set_cookie(&test);
        if ids::cookie(&doc.cookie().unwrap_or_default(), "__tld__").is_some() {
            let _ = doc.set_cookie(&["__tld__=; path=/; max-age=0; domain=", &domain].concat());
            return Some(domain);
        }
    }
    None
}

pub(crate) fn set_cookie(name: &str, value: &str, domain: Option<&str>) {
    let Some(doc) = document() else { return };
    let mut c = [
        name,
        "=",
        value,
        "; path=/; max-age=",
        YEAR_SECONDS,
        "; SameSite=Lax",
    ]
    .concat();
    if let Some(d) = domain {
        c.push_str("; domain=");
        c.push_str(d);
    }
    let _ = doc.set_cookie(&c);
}

pub(crate) fn remove_cookie(name: &str, domain: Option<&str>) {
    let Some(doc) = document() else { return };
    let _ = doc.set_cookie(&[name, "=; path=/; max-age=0"].concat());
    if let Some(d) = domain {
        let _ = doc.set_cookie(&[name, "=; path=/; max-age=0; domain=", d].concat());
    }
}

pub(crate) fn get_item(key: &str) -> Option<String> {
    local()?.get_item(key).ok()?
}

pub(crate) fn set_item(key: &str, value: &str) {
    if let Some(s) = local() {
        // Full or forbidden storage: the cookie still holds the id.
        let _ = s.set_item(key, value);
    }
}

pub(crate) fn remove_item(key: &str) {
    if let Some(s) = local() {
        let _ = s.remove_item(key);
    }
}

/// An id stored by this library or by Segment's: the cookie first, then
/// localStorage.
pub(crate) fn load_id(name: &str) -> Option<String> {
    ids::cookie(&cookie_jar(), name)
        .and_then(ids::stored_id)
        .or_else(|| get_item(name).as_deref().and_then(ids::stored_id))
}

/// Stores an id in a first-party cookie (top domain, one year,
/// `SameSite=Lax`) and in localStorage (JSON-encoded, as analytics-next
/// does), so either alone restores it.
pub(crate) fn store_id(name: &str, value: &str, domain: Option<&str>) {
    set_cookie(name, value, domain);
    set_item(name, &["\"", value, "\""].concat());
}

pub(crate) fn remove_id(name: &str, domain: Option<&str>) {
    remove_cookie(name, domain);
    remove_item(name);
}

/// Every localStorage key that starts with `prefix`.
pub(crate) fn keys_with_prefix(prefix: &str) -> Vec<String> {
    let Some(s) = local() else { return Vec::new() };
    let n = s.length().unwrap_or(0);
    (0..n)
        .filter_map(|i| s.key(i).ok().flatten())
        .filter(|k| k.starts_with(prefix))
        .collect()
}
