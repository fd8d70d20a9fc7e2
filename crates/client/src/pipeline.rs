//! What happens to an event after it is built: source middleware, plugins
//! by type (before, enrichment, destination, after, in that order),
//! destination middleware, consent and per-call `integrations`; and the
//! page's event listeners (`on`, `once`, `off`).

use js_sys::{Array, Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::js::{self, get, set};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PluginType {
    Before,
    Enrichment,
    Destination,
    After,
    Utility,
}

impl PluginType {
    pub(crate) fn parse(s: &str) -> Option<PluginType> {
        Some(match s {
            "before" => PluginType::Before,
            "enrichment" => PluginType::Enrichment,
            "destination" => PluginType::Destination,
            "after" => PluginType::After,
            "utility" => PluginType::Utility,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadState {
    Waiting,
    Loading,
    Loaded,
    Failed,
}

#[derive(Clone)]
pub(crate) struct Plugin {
    pub obj: JsValue,
    pub name: String,
    pub kind: PluginType,
    /// Consent categories this destination needs.
    pub categories: Vec<String>,
    pub state: LoadState,
    /// Settles when `load` has, once it started.
    pub loading: Option<Promise>,
    /// A device-mode destination of the source's bundle, run by the device
    /// host; `obj` is then only its identity.
    pub device: Option<std::rc::Rc<crate::device::Device>>,
}

/// Whether per-call `integrations` let an event reach destination `name`:
/// its own entry decides (`false` off, anything else on); otherwise
/// `All: false` turns everything not named off.
pub(crate) fn allowed(integrations: &JsValue, name: &str) -> bool {
    let own = get(integrations, name);
    if !own.is_undefined() && !own.is_null() {
        return own.as_bool() != Some(false);
    }
    get(integrations, "All").as_bool() != Some(false)
}

/// Whether consent preferences (`{Advertising: false, ...}`) allow a
/// destination that needs `categories`. No preferences set: allowed.
pub(crate) fn consented(preferences: Option<&Object>, categories: &[String]) -> bool {
    match preferences {
        None => true,
        Some(p) => categories.iter().all(|c| get(p, c).as_bool() == Some(true)),
    }
}

/// Runs the source middleware chain. Each gets `{payload: {obj}, next,
/// integrations}` and passes the payload on with `next(payload)`, or drops
/// the event by passing `null`. `None` when dropped.
pub(crate) async fn run_middleware(
    chain: &[Function],
    event: JsValue,
    extra: &[(&str, JsValue)],
) -> Result<Option<JsValue>, JsValue> {
    let mut event = event;
    for mw in chain {
        let payload = Object::new();
        set(&payload, "obj", &event);
        let arg = Object::new();
        set(&arg, "payload", &payload);
        set(&arg, "integrations", &get(&event, "integrations"));
        for (k, v) in extra {
            set(&arg, k, v);
        }
        let mut thrown = None;
        let next = Promise::new(&mut |resolve, _| {
            set(&arg, "next", &resolve);
            if let Err(e) = js::call(mw, &JsValue::UNDEFINED, &[arg.clone().into()]) {
                thrown = Some(e);
            }
        });
        if let Some(e) = thrown {
            return Err(e);
        }
        let out = JsFuture::from(next).await?;
        if out.is_null() || out.is_undefined() {
            return Ok(None);
        }
        let obj = get(&out, "obj");
        event = if obj.is_object() { obj } else { out };
    }
    Ok(Some(event))
}

/// Calls `plugin[method](ctx)` and waits for it; the context it resolves
/// to replaces `ctx` if it is one.
pub(crate) async fn run_plugin(
    plugin: &JsValue,
    method: &str,
    ctx: JsValue,
) -> Result<JsValue, JsValue> {
    let Some(f) = js::method(plugin, method) else {
        return Ok(ctx);
    };
    let out = JsFuture::from(js::promise(&js::call(
        &f,
        plugin,
        std::slice::from_ref(&ctx),
    )?))
    .await?;
    Ok(if get(&out, "event").is_object() {
        out
    } else {
        ctx
    })
}

/// Waits for every promise, whatever each comes to.
pub(crate) async fn settle_all(promises: Vec<Promise>) -> Vec<Result<JsValue, JsValue>> {
    let mut out = Vec::with_capacity(promises.len());
    for p in promises {
        out.push(JsFuture::from(p).await);
    }
    out
}

/// A promise that resolves to `value` after `ms`, for racing.
pub(crate) fn timeout(ms: f64, value: JsValue) -> Promise {
    let sleep = crate::browser::sleep(ms);
    let f = Closure::once_into_js(move |_: JsValue| value);
    js::then(&sleep, &f)
}

pub(crate) fn race(a: Promise, b: Promise) -> Promise {
    let list = Array::new();
    list.push(&a);
    list.push(&b);
    Promise::race(&list)
}
