//! What the library reads from the page and the network it uses.

//!
//! The page is read by name through `js::get` and `js::invoke`, which share
//! two imports, rather than through web-sys, where each getter and method
//! is an import with glue of its own in the loader.

use js_sys::{Function, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::{ids, js};

/// 16 random bytes from `crypto.getRandomValues`, which, unlike
/// `crypto.randomUUID`, also exists on pages served over plain HTTP.
pub fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    let crypto = js::global("crypto");
    if crypto.is_object() {
        let _ = crypto
            .unchecked_into::<web_sys::Crypto>()
            .get_random_values_with_u8_array(&mut bytes);
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
    let doc = js::global("document");
    let loc = js::global("location");
    let canonical = js::invoke(&doc, "querySelector", &["link[rel='canonical']".into()])
        .ok()
        .filter(JsValue::is_object)
        .and_then(|l| js::invoke(&l, "getAttribute", &["href".into()]).ok())
        .and_then(|h| h.as_string());
    let text = |obj: &JsValue, key: &str| js::get_str(obj, key).unwrap_or_default();
    let href = text(&loc, "href");
    // With a canonical link, it is the page's url, and is also given as
    // `canonical`; without one, the keys are analytics-next's.
    if let Some(c) = &canonical {
        js::set_str(&ctx, "canonical", c);
    }
    let url = canonical.unwrap_or_else(|| href.split('#').next().unwrap_or_default().to_string());
    js::set_str(&ctx, "path", &text(&loc, "pathname"));
    js::set_str(&ctx, "referrer", &text(&doc, "referrer"));
    js::set_str(&ctx, "search", &text(&loc, "search"));
    js::set_str(&ctx, "title", &text(&doc, "title"));
    js::set_str(&ctx, "url", &url);
    ctx
}

pub(crate) fn search() -> String {
    js::get_str(&js::global("location"), "search").unwrap_or_default()
}

/// The static parts of `context`: userAgent, userAgentData, locale,
/// timezone, screen.
pub(crate) fn device_context(ctx: &Object) {
    let w = js::window();
    let nav = js::get(&w, "navigator");
    if let Some(ua) = js::get_str(&nav, "userAgent") {
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
    if let Some(locale) = js::get_str(&nav, "language") {
        js::set_str(ctx, "locale", &locale);
    }
    let options = js_sys::Intl::DateTimeFormat::default().resolved_options();
    if let Some(tz) = js::get_str(&options, "timeZone") {
        js::set_str(ctx, "timezone", &tz);
    }
    let screen = js::get(&w, "screen");
    if screen.is_object() {
        let s = Object::new();
        let number = |obj: &JsValue, key: &str, default: f64| {
            JsValue::from_f64(js::get(obj, key).as_f64().unwrap_or(default))
        };
        js::set(&s, "width", &number(&screen, "width", 0.0));
        js::set(&s, "height", &number(&screen, "height", 0.0));
        js::set(&s, "density", &number(&w, "devicePixelRatio", 1.0));
        js::set(ctx, "screen", &s);
    }
}

pub(crate) fn online() -> bool {
    js::get(&js::global("navigator"), "onLine").as_bool() != Some(false)
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
    let init = Object::new();
    js::set_str(&init, "method", "POST");
    js::set_str(&init, "body", body);
    js::set(&init, "keepalive", &JsValue::from_bool(body.len() < 60_000));
    let headers = Object::new();
    js::set_str(&headers, "Content-Type", "text/plain");
    if retry > 0 {
        js::set_str(&headers, "X-Retry-Count", &ids::decimal(retry.into()));
    }
    js::set(&init, "headers", &headers);
    let Ok(sent) = js::invoke(&js::window(), "fetch", &[url.into(), init.into()]) else {
        return failed;
    };
    let Ok(response) = JsFuture::from(js::promise(&sent)).await else {
        return failed;
    };
    let retry_after = js::invoke(
        &js::get(&response, "headers"),
        "get",
        &["Retry-After".into()],
    )
    .ok()
    .and_then(|v| v.as_string())
    .and_then(|v| retry_after_ms(&v));
    Reply {
        status: js::get(&response, "status").as_f64().unwrap_or(0.0) as u16,
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
    js::invoke(
        &js::global("navigator"),
        "sendBeacon",
        &[url.into(), body.into()],
    )
    .is_ok_and(|sent| sent.as_bool() == Some(true))
}

/// Runs `f` after `ms` milliseconds.
pub(crate) fn set_timeout(f: &Function, ms: f64) {
    let _ = js::invoke(
        &js::window(),
        "setTimeout",
        &[f.into(), ms.min(2_147_483_647.0).into()],
    );
}

/// Runs `f` every `ms` milliseconds for the page's lifetime.
pub(crate) fn set_interval(f: impl FnMut() + 'static, ms: f64) {
    let c = Closure::<dyn FnMut()>::new(f);
    let _ = js::invoke(
        &js::window(),
        "setInterval",
        &[c.as_ref().clone(), ms.into()],
    );
    c.forget();
}

/// Listens for `event` on the window for the page's lifetime.
pub(crate) fn on_window(event: &str, f: impl FnMut() + 'static) {
    let c = Closure::<dyn FnMut()>::new(f);
    let _ = js::invoke(
        &js::window(),
        "addEventListener",
        &[event.into(), c.as_ref().clone()],
    );
    c.forget();
}
