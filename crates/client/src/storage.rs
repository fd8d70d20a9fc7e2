//! Cookies and localStorage, as Segment's libraries use them.

use wasm_bindgen::JsValue;

use crate::{ids, js};

const YEAR_SECONDS: &str = "31536000";

fn document() -> Option<JsValue> {
    Some(js::global("document")).filter(JsValue::is_object)
}

fn set_document_cookie(doc: &JsValue, cookie: &str) {
    js::set_str(doc, "cookie", cookie);
}

/// `localStorage`, if the page may use it (reading it throws where not).
pub(crate) fn local() -> Option<JsValue> {
    Some(js::global("localStorage")).filter(JsValue::is_object)
}

pub(crate) fn cookie_jar() -> String {
    document()
        .and_then(|d| js::get_str(&d, "cookie"))
        .unwrap_or_default()
}

/// The widest domain this page may set cookies on (`example.co.uk` for
/// `www.shop.example.co.uk`), found as analytics.js does: by setting a test
/// cookie on ever longer suffixes until the browser keeps one. `None` on
/// `localhost` and IP addresses, where cookies stay host-only.
pub(crate) fn top_domain() -> Option<String> {
    let host = js::get_str(&js::global("location"), "hostname")?;
    if !host.contains('.') || ids::is_ip(&host) || host.starts_with('[') {
        return None;
    }
    let doc = document()?;
    let parts: Vec<&str> = host.split('.').collect();
    for i in (0..parts.len() - 1).rev() {
        let domain = parts[i..].join(".");
        let test = ["__tld__=1; path=/; domain=", &domain].concat();
        set_document_cookie(&doc, &test);
        if ids::cookie(&js::get_str(&doc, "cookie").unwrap_or_default(), "__tld__").is_some() {
            set_document_cookie(
                &doc,
                &["__tld__=; path=/; max-age=0; domain=", &domain].concat(),
            );
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
    set_document_cookie(&doc, &c);
}

pub(crate) fn remove_cookie(name: &str, domain: Option<&str>) {
    let Some(doc) = document() else { return };
    set_document_cookie(&doc, &[name, "=; path=/; max-age=0"].concat());
    if let Some(d) = domain {
        set_document_cookie(&doc, &[name, "=; path=/; max-age=0; domain=", d].concat());
    }
}

pub(crate) fn get_item(key: &str) -> Option<String> {
    js::invoke(&local()?, "getItem", &[JsValue::from_str(key)])
        .ok()?
        .as_string()
}

pub(crate) fn set_item(key: &str, value: &str) {
    if let Some(s) = local() {
        // Full or forbidden storage: the cookie still holds the id.
        let _ = js::invoke(&s, "setItem", &[key.into(), value.into()]);
    }
}

pub(crate) fn remove_item(key: &str) {
    if let Some(s) = local() {
        let _ = js::invoke(&s, "removeItem", &[key.into()]);
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
    let n = js::get(&s, "length").as_f64().unwrap_or(0.0) as u32;
    (0..n)
        .filter_map(|i| js::invoke(&s, "key", &[i.into()]).ok()?.as_string())
        .filter(|k| k.starts_with(prefix))
        .collect()
}
