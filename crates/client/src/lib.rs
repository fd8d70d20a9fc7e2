//! Switchyard's browser library: Analytics.js's API in WebAssembly.
//!
//! The loader script (`web/loader.js`) instantiates this module, calls
//! [`start`] with the source's inlined settings and the page's load
//! options, puts a facade in place of Segment's snippet stub and replays the
//! snippet's queue through [`call`]. Everything the page asks for goes
//! through [`call`]. The module builds events and keeps identity and the
//! delivery queue; the loader's JavaScript (`web/vendor.js`) runs the
//! pipeline of plugins and middleware, which is promise plumbing. Nothing
//! thrown here or by a plugin reaches the page: it goes to `on('error')`
//! listeners, and to the console in debug mode.

mod args;
mod browser;
mod delivery;
mod device;
mod event;
mod identity;
pub mod ids;
mod js;
mod storage;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use args::{Call, Resolved};
use event::Kind;
pub use identity::Identity;

/// The library's name and version in `context.library`.
pub const LIBRARY_NAME: &str = "switchyard.js";
pub const LIBRARY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long a device-mode destination's script may take to load, unless
/// the page's `destinationTimeout` says otherwise.
const READY_TIMEOUT_MS: f64 = 10_000.0;

struct Core {
    identity: Identity,
    /// The static part of every event's context.
    context: Object,
    queue: delivery::Shared,
    /// The loader's helpers (`web/vendor.js`): the event pipeline
    /// (`dispatch`, `api`), the page's listeners (`emit`), `report`, and
    /// for vendor scripts `stub` and `load` (see `device::Device::load`).
    vendor: JsValue,
    /// How long a device-mode destination's script may take to load.
    device_timeout: f64,
    /// The bundle's device-mode destinations, by the index the pipeline
    /// knows them by, with their names.
    devices: Vec<(String, Rc<device::Device>)>,
}

type Shared = Rc<RefCell<Core>>;

type BoxedFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<JsValue, JsValue>>>>;

/// `wasm_bindgen_futures::future_to_promise` behind one boxed future type,
/// so its machinery is in the module once rather than once per caller.
fn future_to_promise(
    f: impl std::future::Future<Output = Result<JsValue, JsValue>> + 'static,
) -> Promise {
    wasm_bindgen_futures::future_to_promise(Box::pin(f) as BoxedFuture)
}

/// A free-list allocator made for wasm32: a fraction of dlmalloc's code,
/// and the module is single-threaded, so its lock is never contended.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

thread_local! {
    static CORE: RefCell<Option<Shared>> = const { RefCell::new(None) };
}

fn core() -> Option<Shared> {
    CORE.with(|c| c.borrow().clone())
}

fn vendor(core: &Shared) -> JsValue {
    core.borrow().vendor.clone()
}

/// Tells the page's error listeners (and the console in debug mode).
fn report(core: &Shared, message: &str, detail: JsValue) {
    let _ = js::invoke(&vendor(core), "report", &[message.into(), detail]);
}

/// Settings the loader inlines and options the page passed to
/// `analytics.load(writeKey, options)`.
fn batching_option(options: &JsValue) -> Option<delivery::Batching> {
    // Switchyard's own form `{batching: {size, timeout, bytes}}` or
    // analytics-next's `integrations['Segment.io'].deliveryStrategy`.
    let own = js::get(options, "batching");
    let next = js::get(
        &js::get(
            &js::get(&js::get(options, "integrations"), "Segment.io"),
            "deliveryStrategy",
        ),
        "config",
    );
    let strategy = js::get_str(
        &js::get(
            &js::get(&js::get(options, "integrations"), "Segment.io"),
            "deliveryStrategy",
        ),
        "strategy",
    );
    let config = if own.is_object() {
        own
    } else if strategy.as_deref() == Some("batching") {
        next
    } else if own.as_bool() == Some(true) {
        Object::new().into()
    } else {
        return None;
    };
    let num = |k: &str, d: f64| {
        js::get(&config, k)
            .as_f64()
            .filter(|v| *v > 0.0)
            .unwrap_or(d)
    };
    Some(delivery::Batching {
        size: num("size", 10.0) as usize,
        bytes: num("bytes", 480_000.0).min(480_000.0) as usize,
        timeout: num("timeout", 5_000.0),
    })
}

/// Starts the library: `config` is `{writeKey, apiHost, destinations,
/// unbundled, ...}` from the loader, `options` the page's load options,
/// `vendor` the loader's helpers (`web/vendor.js`: the event pipeline and
/// the helpers for vendor scripts), `exports` this module's exports (the
/// device adapters among them).
#[wasm_bindgen]
pub fn start(
    config: &JsValue,
    options: &JsValue,
    vendor: JsValue,
    exports: &JsValue,
) -> Result<(), JsValue> {
    let write_key = js::get_str(config, "writeKey")
        .ok_or_else(|| JsValue::from_str("Switchyard: settings have no writeKey"))?;
    let api_host = js::get_str(config, "apiHost").unwrap_or_default();
    let mut queue = delivery::Queue::new(api_host, &write_key);
    queue.batching = batching_option(options);
    let queue = Rc::new(RefCell::new(queue));

    let context = Object::new();
    browser::device_context(&context);
    let library = Object::new();
    js::set_str(&library, "name", LIBRARY_NAME);
    js::set_str(&library, "version", LIBRARY_VERSION);
    js::set(&context, "library", &library);
    let search = browser::search();
    if let Some(campaign) = event::campaign(&search) {
        js::set(&context, "campaign", &campaign);
    }
    let consent = js::get(&js::get(options, "consent"), "categoryPreferences");
    js::set(&vendor, "unbundled", &js::get(config, "unbundled"));

    let shared: Shared = Rc::new(RefCell::new(Core {
        identity: Identity::load(),
        context,
        queue: queue.clone(),
        vendor: vendor.clone(),
        device_timeout: js::get(options, "destinationTimeout")
            .as_f64()
            .filter(|t| *t > 0.0)
            .unwrap_or(READY_TIMEOUT_MS),
        devices: Vec::new(),
    }));
    {
        let weak = Rc::downgrade(&shared);
        queue.borrow_mut().on_error = Some(Rc::new(move |message: &str, detail: JsValue| {
            if let Some(core) = weak.upgrade() {
                report(&core, message, detail);
            }
        }));
    }
    CORE.with(|c| *c.borrow_mut() = Some(shared.clone()));
    let consent = if consent.is_object() {
        consent
    } else {
        JsValue::NULL
    };
    js::invoke(&vendor, "setConsent", &[consent])?;
    add_devices(&shared, &js::get(config, "destinations"), exports);
    delivery::start(&queue);
    query_string_calls(&search);
    Ok(())
}

/// The source's device-mode destinations, handed to the pipeline as
/// destination plugins run by the device host; each loads once it has
/// consent.
fn add_devices(core: &Shared, destinations: &JsValue, exports: &JsValue) {
    for d in js::values(destinations) {
        let slug = js::get_str(&d, "slug").unwrap_or_default();
        let name = js::get_str(&d, "name").unwrap_or_else(|| slug.clone());
        let Some(device) = device::Device::new(exports, &slug, &js::get(&d, "settings")) else {
            report(
                core,
                &["destination ", &name, " is not in this bundle"].concat(),
                JsValue::from_str(&slug),
            );
            continue;
        };
        let index = {
            let mut c = core.borrow_mut();
            c.devices.push((name.clone(), Rc::new(device)));
            c.devices.len() - 1
        };
        let _ = js::invoke(
            &vendor(core),
            "device",
            &[
                JsValue::from_f64(index as f64),
                name.into(),
                js::get(&d, "categories"),
            ],
        );
    }
}

/// `ajs_uid`, `ajs_aid`, `ajs_event`, `ajs_prop_*`, `ajs_trait_*` in the
/// page's URL become calls, as in Analytics.js.
fn query_string_calls(search: &str) {
    let pairs = ids::query_pairs(search);
    let props = Object::new();
    let traits = Object::new();
    for (k, v) in &pairs {
        if let Some(p) = k.strip_prefix("ajs_prop_") {
            js::set_str(&props, p, v);
        } else if let Some(t) = k.strip_prefix("ajs_trait_") {
            js::set_str(&traits, t, v);
        }
    }
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if let Some(aid) = value("ajs_aid").filter(|v| !v.is_empty()) {
        call(
            "setAnonymousId",
            [JsValue::from_str(&aid)].into_iter().collect(),
        );
    }
    if let Some(uid) = value("ajs_uid").filter(|v| !v.is_empty()) {
        call(
            "identify",
            [JsValue::from_str(&uid), traits.into()]
                .into_iter()
                .collect(),
        );
    }
    if let Some(event) = value("ajs_event").filter(|v| !v.is_empty()) {
        call(
            "track",
            [JsValue::from_str(&event), props.into()]
                .into_iter()
                .collect(),
        );
    }
}

/// Puts the consent preferences (or none) in each event's context.
fn set_consent(core: &Shared, preferences: &JsValue) {
    let c = core.borrow();
    if preferences.is_object() {
        let consent = Object::new();
        js::set(&consent, "categoryPreferences", preferences);
        js::set(&c.context, "consent", &consent);
    } else {
        let _ = Reflect::delete_property(&c.context, &JsValue::from_str("consent"));
    }
}

/// The device-mode destination the pipeline knows by `index`.
fn device_at(core: &Shared, index: &JsValue) -> Option<(String, Rc<device::Device>)> {
    let i = index.as_f64()? as usize;
    core.borrow().devices.get(i).cloned()
}

/// Runs one call of the public API, by name, with the page's arguments;
/// returns what Analytics.js returns (a promise for the event calls).
#[wasm_bindgen]
pub fn call(method: &str, arguments: Array) -> JsValue {
    let Some(core) = core() else {
        return JsValue::UNDEFINED;
    };
    match run(&core, method, &arguments) {
        Ok(v) => v,
        Err(e) => {
            report(&core, &["analytics.", method, " failed"].concat(), e);
            JsValue::UNDEFINED
        }
    }
}

fn run(core: &Shared, method: &str, arguments: &Array) -> Result<JsValue, JsValue> {
    let a = Call::new(arguments);
    if let Some(kind) = Kind::from_method(method) {
        return Ok(dispatch_call(core, kind, a).into());
    }
    let arg0 = a.arg(0);
    match method {
        "reset" => {
            core.borrow_mut().identity.reset();
            js::invoke(
                &vendor(core),
                "emit",
                &["reset".into(), Array::new().into()],
            )?;
            Ok(JsValue::UNDEFINED)
        }
        "setAnonymousId" => {
            if let Some(id) = js::as_id(&arg0) {
                core.borrow_mut().identity.set_anonymous_id(&id);
            }
            Ok(JsValue::from_str(core.borrow().identity.anonymous_id()))
        }
        "_userId" => Ok(core.borrow().identity.user_id_value()),
        "_anonymousId" => Ok(JsValue::from_str(core.borrow().identity.anonymous_id())),
        "_traits" => Ok(js::copy_or_new(Some(core.borrow().identity.traits())).into()),
        "_groupId" => Ok(core
            .borrow()
            .identity
            .group_id()
            .map(JsValue::from_str)
            .unwrap_or(JsValue::NULL)),
        "_groupTraits" => Ok(js::copy_or_new(Some(core.borrow().identity.group_traits())).into()),
        // From the pipeline (`web/vendor.js`).
        "_consent" => {
            set_consent(core, &arg0);
            Ok(JsValue::UNDEFINED)
        }
        "_enqueue" => {
            let kind = arg0.as_string().and_then(|k| Kind::from_method(&k));
            if let (Some(kind), Some(json)) = (kind, js::stringify(&a.arg(1))) {
                let queue = core.borrow().queue.clone();
                delivery::enqueue(&queue, json, kind.path());
            }
            Ok(JsValue::UNDEFINED)
        }
        "_deviceLoad" => {
            let (_, device) = device_at(core, &arg0).ok_or(arg0)?;
            let (vendor, timeout) = {
                let c = core.borrow();
                (c.vendor.clone(), c.device_timeout)
            };
            Ok(future_to_promise(async move {
                device
                    .load(&vendor, timeout)
                    .await
                    .map(|()| JsValue::UNDEFINED)
            })
            .into())
        }
        "_deviceSend" => {
            let (name, device) = device_at(core, &arg0).ok_or(arg0)?;
            if let Err(e) = device.send(&a.arg(1)) {
                report(core, &["destination ", &name, " threw"].concat(), e);
            }
            Ok(JsValue::UNDEFINED)
        }
        // The rest of the API is the pipeline's.
        _ => {
            let f = js::method(&js::get(&vendor(core), "api"), method)
                .ok_or_else(|| JsValue::from_str(&["unknown method ", method].concat()))?;
            js::call(&f, &JsValue::UNDEFINED, &a.args)
        }
    }
}

/// Builds the event of a call and hands it to the pipeline; resolves to
/// its context once dispatched.
fn dispatch_call(core: &Shared, kind: Kind, a: Call) -> Promise {
    let resolved: Option<Resolved> = match kind {
        Kind::Track => args::track(&a),
        Kind::Identify | Kind::Group => Some(args::identified(&a)),
        Kind::Page | Kind::Screen => Some(args::page(&a)),
        Kind::Alias => args::alias(&a),
    };
    let Some(r) = resolved else {
        report(
            core,
            &["analytics.", kind.name(), " needs a name or id"].concat(),
            JsValue::UNDEFINED,
        );
        return Promise::resolve(&JsValue::UNDEFINED);
    };
    let event = {
        let mut c = core.borrow_mut();
        match kind {
            Kind::Identify => {
                if let Some(id) = &r.name {
                    c.identity.set_user_id(id);
                }
                c.identity.add_traits(r.fields.as_ref());
            }
            Kind::Group => c.identity.set_group(r.name.as_deref(), r.fields.as_ref()),
            _ => {}
        }
        let page = event::page_context(a.page.as_ref());
        let c = &*c;
        let env = event::Env {
            identity: &c.identity,
            page,
            context: &c.context,
        };
        event::build(kind, &r, &env)
    };
    let callback = a.callback.map_or(JsValue::UNDEFINED, JsValue::from);
    js::invoke(
        &vendor(core),
        "dispatch",
        &[kind.name().into(), event.into(), callback],
    )
    .map(|p| js::promise(&p))
    .unwrap_or_else(|e| Promise::reject(&e))
}
