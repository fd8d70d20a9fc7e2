//! Switchyard's browser library.
//!
//! The loader script (see `web/loader.js`) instantiates this module, calls
//! [`start`] with the source's inlined settings, puts a facade in place of
//! Segment's snippet stub and replays the snippet's queue through [`call`].
//! Everything the page asks for goes through [`call`]; nothing thrown here
//! reaches the page.

mod args;
mod browser;
mod event;
pub mod ids;
mod js;

use std::cell::RefCell;

use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;

pub use event::Identity;

/// The library's name and version in `context.library`.
pub const LIBRARY_NAME: &str = "switchyard.js";
pub const LIBRARY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One configured instance: the source it sends for and who the visitor is.
pub struct Analytics {
    write_key: String,
    api_host: String,
    identity: Identity,
}

thread_local! {
    static INSTANCE: RefCell<Option<Analytics>> = const { RefCell::new(None) };
}

impl Analytics {
    /// An instance for `write_key`, posting to `api_host` (an origin such as
    /// `https://events.example.com`), with the visitor's stored identity.
    pub fn new(write_key: String, api_host: String) -> Analytics {
        Analytics {
            write_key,
            api_host,
            identity: Identity::load(),
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Runs one call of the public API; `None` if the method is unknown or
    /// its arguments are unusable.
    pub fn build(&mut self, method: &str, arguments: &Array) -> Option<(&'static str, Object)> {
        let call = args::Call::new(arguments);
        let page = event::page_context(call.page.as_ref());
        let built = match method {
            "track" => {
                let t = args::track(&call)?;
                ("t", event::track(&self.identity, &t, &page))
            }
            "identify" => {
                let i = args::identify(&call);
                if let Some(id) = &i.user_id {
                    self.identity.set_user_id(id);
                }
                ("i", event::identify(&self.identity, &i, &page))
            }
            "page" => {
                let p = args::page(&call);
                ("p", event::page(&self.identity, &p, &page))
            }
            _ => return None,
        };
        Some(built)
    }

    fn send(&self, path: &'static str, event: Object) {
        js::set_str(&event, "writeKey", &self.write_key);
        js::set_str(&event, "sentAt", &browser::now_iso());
        let Ok(body) = js_sys::JSON::stringify(&event) else {
            return;
        };
        let body = String::from(body);
        let url = [&self.api_host, "/v1/", path].concat();
        wasm_bindgen_futures::spawn_local(async move {
            let _ = browser::post(&url, &body).await;
        });
    }
}

/// Starts the library with the loader's settings:
/// `{writeKey, apiHost}`.
#[wasm_bindgen]
pub fn start(config: &JsValue) -> Result<(), JsValue> {
    let write_key = js::get(config, "writeKey")
        .as_string()
        .ok_or_else(|| JsValue::from_str("Switchyard: settings have no writeKey"))?;
    let api_host = js::get(config, "apiHost").as_string().unwrap_or_default();
    let analytics = Analytics::new(write_key, api_host);
    INSTANCE.with(|i| *i.borrow_mut() = Some(analytics));
    Ok(())
}

/// Runs one call of the public API, by name, with the page's arguments.
#[wasm_bindgen]
pub fn call(method: &str, arguments: Array) {
    let callback = args::Call::new(&arguments).callback;
    INSTANCE.with(|i| {
        let mut slot = i.borrow_mut();
        let Some(analytics) = slot.as_mut() else {
            return;
        };
        if let Some((path, event)) = analytics.build(method, &arguments) {
            analytics.send(path, event);
        }
    });
    if let Some(cb) = callback {
        // A throwing callback is the page's problem, not ours to rethrow.
        let _ = cb.call0(&JsValue::UNDEFINED);
    }
}

/// The visitor's anonymous id, for the page (`analytics.user().anonymousId()`).
#[wasm_bindgen(js_name = anonymousId)]
pub fn anonymous_id() -> Option<String> {
    INSTANCE.with(|i| {
        i.borrow()
            .as_ref()
            .map(|a| a.identity.anonymous_id().to_string())
    })
}
