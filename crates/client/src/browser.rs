//! What the library reads from and writes to the page: storage, cookies,
//! random bytes, the clock, and the network.

use js_sys::Object;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{HtmlDocument, RequestInit, Window};

use crate::ids;

const YEAR_SECONDS: &str = "31536000";

fn window() -> Option<Window> {
    web_sys::window()
}

/// 16 random bytes from `crypto.getRandomValues`, which, unlike
/// `crypto.randomUUID`, also exists on pages served over plain HTTP.
pub fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    if let Some(crypto) = window().and_then(|w| w.crypto().ok()) {
        let _ = crypto.get_random_values_with_u8_array(&mut bytes);
    }
    if bytes == [0; 16] {
        // No crypto: fall back to Math.random, still a valid v4 id.
        for b in bytes.iter_mut() {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    ids::uuid_v4(bytes)
}

/// The current time as ISO-8601 with milliseconds, UTC.
pub fn now_iso() -> String {
    js_sys::Date::new_0().to_iso_string().into()
}

fn html_document() -> Option<HtmlDocument> {
    window()?.document()?.dyn_into::<HtmlDocument>().ok()
}

/// An id stored by this library or by Segment's: the cookie first, then
/// localStorage.
pub fn load_id(name: &str) -> Option<String> {
    let from_cookie = html_document()
        .and_then(|d| d.cookie().ok())
        .and_then(|jar| ids::cookie(&jar, name).and_then(ids::stored_id));
    from_cookie.or_else(|| {
        let stored = window()?.local_storage().ok()??.get_item(name).ok()??;
        ids::stored_id(&stored)
    })
}

/// Stores an id in a first-party cookie (one year, `SameSite=Lax`) and in
/// localStorage (JSON-encoded, as analytics-next does), so either alone
/// restores it.
pub fn store_id(name: &str, value: &str) {
    if let Some(doc) = html_document() {
        let cookie = [
            name,
            "=",
            value,
            "; path=/; max-age=",
            YEAR_SECONDS,
            "; SameSite=Lax",
        ]
        .concat();
        let _ = doc.set_cookie(&cookie);
    }
    if let Some(Ok(Some(storage))) = window().map(|w| w.local_storage()) {
        let _ = storage.set_item(name, &["\"", value, "\""].concat());
    }
}

/// `context.page` as Segment defines it, from the live page.
pub fn page_context() -> Object {
    let ctx = Object::new();
    let Some(w) = window() else { return ctx };
    let doc = w.document();
    let loc = w.location();
    let canonical = doc
        .as_ref()
        .and_then(|d| d.query_selector("link[rel='canonical']").ok().flatten())
        .and_then(|l| l.get_attribute("href"));
    let href = loc.href().unwrap_or_default();
    let url = match &canonical {
        Some(c) => c.clone(),
        None => href.split('#').next().unwrap_or_default().to_string(),
    };
    crate::js::set_str(&ctx, "path", &loc.pathname().unwrap_or_default());
    crate::js::set_str(
        &ctx,
        "referrer",
        &doc.as_ref().map(|d| d.referrer()).unwrap_or_default(),
    );
    crate::js::set_str(&ctx, "search", &loc.search().unwrap_or_default());
    crate::js::set_str(
        &ctx,
        "title",
        &doc.as_ref().map(|d| d.title()).unwrap_or_default(),
    );
    crate::js::set_str(&ctx, "url", &url);
    ctx
}

pub fn user_agent() -> Option<String> {
    window()?.navigator().user_agent().ok()
}

pub fn locale() -> Option<String> {
    window()?.navigator().language()
}

/// Posts `body` to `url` with `fetch` (`keepalive`, so it survives the page
/// being closed). The body is `text/plain`, which makes the request a
/// simple one: no CORS preflight.
pub async fn post(url: &str, body: &str) -> Result<u16, JsValue> {
    let w = window().ok_or(JsValue::NULL)?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    // web-sys has no setter for `keepalive`; it is a plain dictionary field.
    crate::js::set(&init, "keepalive", &JsValue::TRUE);
    let response = JsFuture::from(w.fetch_with_str_and_init(url, &init)).await?;
    let response: web_sys::Response = response.dyn_into()?;
    Ok(response.status())
}
