//! What the library reads from the page and the network it uses.

use js_sys::{Function, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestInit, Window};

use crate::{ids, js};

pub(crate) fn window() -> Option<Window> {
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
        for b in bytes.iter_mut() {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    ids::uuid_v4(bytes)
}

pub(crate) fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// The current time as ISO-8601 with milliseconds, UTC.
pub(crate) fn now_iso() -> String {
    js_sys::Date::new_0().to_iso_string().into()
}

/// A date option (`Date` or string) as ISO-8601, if it is one.
pub(crate) fn iso(v: &JsValue) -> Option<String> {
    let date = if v.is_instance_of::<js_sys::Date>() {
        v.clone().unchecked_into::<js_sys::Date>()
    } else if v.is_string() {
        js_sys::Date::new(v)
    } else {
        return None;
    };
    (!date.get_time().is_nan()).then(|| date.to_iso_string().into())
}

/// `context.page` as analytics-next builds it, from the live page.
pub(crate) fn page_context() -> Object {
    let ctx = Object::new();
    let Some(w) = window() else { return ctx };
    let doc = w.document();
    let loc = w.location();
    let canonical = doc
        .as_ref()
        .and_then(|d| d.query_selector("link[rel='canonical']").ok().flatten())
        .and_then(|l| l.get_attribute("href"));
    let href = loc.href().unwrap_or_default();
    // With a canonical link, it is the page's url, and is also given as
    // `canonical`; without one, the keys are analytics-next's.
    if let Some(c) = &canonical {
        js::set_str(&ctx, "canonical", c);
    }
    let url = canonical.unwrap_or_else(|| href.split('#').next().unwrap_or_default().to_string());
    js::set_str(&ctx, "path", &loc.pathname().unwrap_or_default());
    js::set_str(
        &ctx,
        "referrer",
        &doc.as_ref().map(|d| d.referrer()).unwrap_or_default(),
    );
    js::set_str(&ctx, "search", &loc.search().unwrap_or_default());
    js::set_str(
        &ctx,
        "title",
        &doc.as_ref().map(|d| d.title()).unwrap_or_default(),
    );
    js::set_str(&ctx, "url", &url);
    ctx
}

pub(crate) fn search() -> String {
    window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default()
}

/// The static parts of `context`: userAgent, userAgentData, locale,
/// timezone, screen.
pub(crate) fn device_context(ctx: &Object) {
    let Some(w) = window() else { return };
    let nav = w.navigator();
    if let Ok(ua) = nav.user_agent() {
        js::set_str(ctx, "userAgent", &ua);
    }
    // Low-entropy client hints, as analytics-next sends them.
    let uad = js::get(&nav, "userAgentData");
    if uad.is_object() {
        let data = Object::new();
        for key in ["brands", "mobile", "platform"] {
            js::set(&data, key, &js::clone_json(&js::get(&uad, key)));
        }
        js::set(ctx, "userAgentData", &data);
    }
    if let Some(locale) = nav.language() {
        js::set_str(ctx, "locale", &locale);
    }
    let options = js_sys::Intl::DateTimeFormat::default().resolved_options();
    if let Some(tz) = js::get_str(&options, "timeZone") {
        js::set_str(ctx, "timezone", &tz);
    }
    if let Ok(screen) = w.screen() {
        let s = Object::new();
        js::set(&s, "width", &screen.width().unwrap_or(0).into());
        js::set(&s, "height", &screen.height().unwrap_or(0).into());
        js::set(&s, "density", &w.device_pixel_ratio().into());
        js::set(ctx, "screen", &s);
    }
}

pub(crate) fn online() -> bool {
    window().is_none_or(|w| w.navigator().on_line())
}

/// What a delivery attempt came to.
pub(crate) struct Reply {
    /// 0 when the request did not reach a server.
    pub status: u16,
    /// `Retry-After`, in milliseconds.
    pub retry_after: Option<f64>,
}

/// Posts `body` to `url` with `fetch`, `keepalive` so it survives the page
/// closing. `text/plain` keeps it a simple request without a CORS
/// preflight; only a retry adds `X-Retry-Count`.
pub(crate) async fn post(url: &str, body: &str, retry: u32) -> Reply {
    let failed = Reply {
        status: 0,
        retry_after: None,
    };
    let Some(w) = window() else { return failed };
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    // web-sys has no setter for `keepalive`; it is a plain dictionary field.
    js::set(&init, "keepalive", &JsValue::from_bool(body.len() < 60_000));
    let headers = Object::new();
    js::set_str(&headers, "Content-Type", "text/plain");
    if retry > 0 {
        js::set_str(&headers, "X-Retry-Count", &ids::decimal(retry.into()));
    }
    init.set_headers(&headers);
    let Ok(response) = JsFuture::from(w.fetch_with_str_and_init(url, &init)).await else {
        return failed;
    };
    let Ok(response) = response.dyn_into::<web_sys::Response>() else {
        return failed;
    };
    let retry_after = response
        .headers()
        .get("Retry-After")
        .ok()
        .flatten()
        .and_then(|v: String| retry_after_ms(&v));
    Reply {
        status: response.status(),
        retry_after,
    }
}

/// `Retry-After` as seconds or as an HTTP date, in milliseconds from now.
fn retry_after_ms(v: &str) -> Option<f64> {
    let seconds = js_sys::Number::from(JsValue::from_str(v.trim())).value_of();
    if !v.trim().is_empty() && !seconds.is_nan() {
        return Some(seconds * 1000.0);
    }
    let at = js_sys::Date::parse(v);
    (!at.is_nan()).then(|| (at - now_ms()).max(0.0))
}

/// Hands `body` to `navigator.sendBeacon`; false if the browser refused it.
pub(crate) fn beacon(url: &str, body: &str) -> bool {
    window()
        .and_then(|w| w.navigator().send_beacon_with_opt_str(url, Some(body)).ok())
        .unwrap_or(false)
}

/// Runs `f` after `ms` milliseconds.
pub(crate) fn set_timeout(f: &Function, ms: f64) {
    if let Some(w) = window() {
        let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(
            f,
            ms.min(2_147_483_647.0) as i32,
        );
    }
}

/// Listens for `event` on the window for the page's lifetime.
pub(crate) fn on_window(event: &str, f: impl FnMut() + 'static) {
    if let Some(w) = window() {
        let c = Closure::<dyn FnMut()>::new(f);
        let _ = w.add_event_listener_with_callback(event, c.as_ref().unchecked_ref());
        c.forget();
    }
}

/// A promise resolved after `ms` milliseconds.
pub(crate) fn sleep(ms: f64) -> js_sys::Promise {
    js_sys::Promise::new(&mut |resolve, _| set_timeout(&resolve, ms))
}

pub(crate) fn console_error(message: &str, detail: &JsValue) {
    web_sys::console::error_2(&JsValue::from_str(message), detail);
}
