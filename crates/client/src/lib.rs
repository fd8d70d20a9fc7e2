//! Switchyard's browser library: Analytics.js's API in WebAssembly.
//!
//! The loader script (`web/loader.js`) instantiates this module, calls
//! [`start`] with the source's inlined settings and the page's load
//! options, puts a facade in place of Segment's snippet stub and replays the
//! snippet's queue through [`call`]. Everything the page asks for goes
//! through [`call`]; nothing thrown here or by a plugin reaches the page:
//! it goes to `on('error')` listeners, and to the console in debug mode.

mod args;
mod browser;
mod delivery;
mod device;
mod event;
mod identity;
pub mod ids;
mod js;
mod pipeline;
mod storage;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use args::{Call, Resolved};
use event::Kind;
pub use identity::Identity;
use pipeline::{LoadState, Plugin, PluginType};

/// The library's name and version in `context.library`.
pub const LIBRARY_NAME: &str = "switchyard.js";
pub const LIBRARY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long `ready()` waits for a destination that neither loads nor fails.
const READY_TIMEOUT_MS: f64 = 10_000.0;
/// How long a call waits before its callback runs regardless.
const CALLBACK_TIMEOUT_MS: f64 = 300.0;

struct Core {
    identity: Identity,
    /// The static part of every event's context.
    context: Object,
    debug: bool,
    source_middleware: Vec<Function>,
    /// `(destination name, middleware)`.
    destination_middleware: Vec<(String, Function)>,
    plugins: Vec<Plugin>,
    /// Load promises of destination plugins, for `ready()`.
    loads: Vec<Promise>,
    consent: Option<Object>,
    /// The page's `analytics` object, handed to plugins' `load`.
    facade: JsValue,
    /// The loader's `Context` constructor: `new Context(event)`.
    context_class: Function,
    queue: delivery::Shared,
    /// The loader's helpers (`web/vendor.js`): the page's listeners
    /// (`on`, `off`, `emit`) and, for vendor scripts, `stub` and `load`
    /// (see `device::Device::load`).
    vendor: JsValue,
    /// How long a device-mode destination's script may take to load.
    device_timeout: f64,
    /// Destinations the server delivers to (`_metadata.unbundled`).
    unbundled: Array,
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

/// Tells the page's error listeners (and the console in debug mode).
fn report(core: &Shared, message: &str, detail: JsValue) {
    let debug = core.borrow().debug;
    if debug {
        browser::console_error(&["Switchyard: ", message].concat(), &detail);
    }
    let error = js_sys::Error::new(message);
    js::set(&error, "detail", &detail);
    emit(core, "error", &[error.into()]);
}

/// Calls the page's listeners of `name` (kept by the loader's helpers);
/// what one throws is reported, unless it is an `error` listener.
fn emit(core: &Shared, name: &str, args: &[JsValue]) {
    let vendor = core.borrow().vendor.clone();
    let args: Array = args.iter().collect();
    let thrown = js::invoke(&vendor, "emit", &[name.into(), args.into()]);
    if name != "error" {
        for e in js::values(&thrown.unwrap_or(JsValue::UNDEFINED)) {
            report(core, "an event listener threw", e);
        }
    }
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
/// `facade` the page's `analytics` object, `context_class` the loader's
/// `Context`, `vendor` its helpers for vendor scripts (`stub`, `load`),
/// `exports` this module's exports (the device adapters among them).
#[wasm_bindgen]
pub fn start(
    config: &JsValue,
    options: &JsValue,
    facade: JsValue,
    context_class: Function,
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
    let consent = js::as_object(&js::get(
        &js::get(options, "consent"),
        "categoryPreferences",
    ));

    let shared: Shared = Rc::new(RefCell::new(Core {
        identity: Identity::load(),
        context,
        debug: false,
        source_middleware: Vec::new(),
        destination_middleware: Vec::new(),
        plugins: Vec::new(),
        loads: Vec::new(),
        consent: None,
        facade,
        context_class,
        queue: queue.clone(),
        vendor,
        device_timeout: js::get(options, "destinationTimeout")
            .as_f64()
            .filter(|t| *t > 0.0)
            .unwrap_or(READY_TIMEOUT_MS),
        unbundled: {
            let names = js::get(config, "unbundled");
            if Array::is_array(&names) {
                Array::from(&names)
            } else {
                Array::new()
            }
        },
    }));
    set_consent(&shared, consent);
    add_devices(&shared, &js::get(config, "destinations"), exports);
    {
        let weak = Rc::downgrade(&shared);
        queue.borrow_mut().on_error = Some(Rc::new(move |message: &str, detail: JsValue| {
            if let Some(core) = weak.upgrade() {
                report(&core, message, detail);
            }
        }));
    }
    CORE.with(|c| *c.borrow_mut() = Some(shared.clone()));
    delivery::start(&queue);
    query_string_calls(&search);
    Ok(())
}

/// The source's device-mode destinations, as destination plugins run by
/// the device host; each loads once it has consent.
fn add_devices(core: &Shared, destinations: &JsValue, exports: &JsValue) {
    if !Array::is_array(destinations) {
        return;
    }
    for d in Array::from(destinations).iter() {
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
        let categories = js::get(&d, "categories");
        let index = {
            let mut c = core.borrow_mut();
            let obj = Object::new();
            js::set_str(&obj, "name", &name);
            c.plugins.push(Plugin {
                obj: obj.into(),
                name,
                kind: PluginType::Destination,
                categories: js::strings(&categories),
                state: LoadState::Waiting,
                loading: None,
                device: Some(Rc::new(device)),
            });
            c.plugins.len() - 1
        };
        let allowed = {
            let c = core.borrow();
            pipeline::consented(c.consent.as_ref(), &c.plugins[index].categories)
        };
        if allowed {
            load_plugin(core, index);
        }
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

fn set_consent(core: &Shared, preferences: Option<Object>) {
    {
        let mut c = core.borrow_mut();
        match &preferences {
            Some(p) => {
                let consent = Object::new();
                js::set(&consent, "categoryPreferences", p);
                js::set(&c.context, "consent", &consent);
            }
            None => {
                let _ = Reflect::delete_property(&c.context, &JsValue::from_str("consent"));
            }
        }
        c.consent = preferences;
    }
    load_consented(core);
}

/// Loads destination plugins that now have consent.
fn load_consented(core: &Shared) {
    let ready: Vec<usize> = {
        let c = core.borrow();
        c.plugins
            .iter()
            .enumerate()
            .filter(|(_, p)| p.state == LoadState::Waiting)
            .filter(|(_, p)| pipeline::consented(c.consent.as_ref(), &p.categories))
            .map(|(i, _)| i)
            .collect()
    };
    for i in ready {
        load_plugin(core, i);
    }
}

fn load_plugin(core: &Shared, index: usize) {
    let (plugin, facade, ctx, device, vendor, timeout) = {
        let mut c = core.borrow_mut();
        c.plugins[index].state = LoadState::Loading;
        let ctx = Reflect::construct(&c.context_class, &Array::of1(&Object::new()))
            .unwrap_or(JsValue::NULL);
        (
            c.plugins[index].obj.clone(),
            c.facade.clone(),
            ctx,
            c.plugins[index].device.clone(),
            c.vendor.clone(),
            c.device_timeout,
        )
    };
    let started = match (device, js::method(&plugin, "load")) {
        (Some(device), _) => Ok(future_to_promise(async move {
            device
                .load(&vendor, timeout)
                .await
                .map(|()| JsValue::UNDEFINED)
        })),
        (None, Some(f)) => js::call(&f, &plugin, &[ctx, facade]).map(|v| js::promise(&v)),
        (None, None) => Ok(Promise::resolve(&JsValue::UNDEFINED)),
    };
    let shared = core.clone();
    let done = future_to_promise(async move {
        let outcome = match started {
            Ok(p) => JsFuture::from(p).await,
            Err(e) => Err(e),
        };
        let name = {
            let mut c = shared.borrow_mut();
            let p = &mut c.plugins[index];
            p.state = if outcome.is_ok() {
                LoadState::Loaded
            } else {
                LoadState::Failed
            };
            p.name.clone()
        };
        if let Err(e) = outcome {
            report(
                &shared,
                &["destination ", &name, " failed to load"].concat(),
                e,
            );
        }
        Ok(JsValue::UNDEFINED)
    });
    let mut c = core.borrow_mut();
    c.plugins[index].loading = Some(done.clone());
    c.loads.push(done);
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
        "ready" => Ok(ready(core, a.callback).into()),
        "reset" => {
            core.borrow_mut().identity.reset();
            emit(core, "reset", &[]);
            Ok(JsValue::UNDEFINED)
        }
        "setAnonymousId" => {
            if let Some(id) = js::as_id(&arg0) {
                core.borrow_mut().identity.set_anonymous_id(&id);
            }
            Ok(JsValue::from_str(core.borrow().identity.anonymous_id()))
        }
        "debug" => {
            core.borrow_mut().debug = arg0.as_bool() != Some(false);
            Ok(JsValue::UNDEFINED)
        }
        "on" | "once" => {
            if let (true, Some(f)) = (arg0.is_string(), a.callback.clone()) {
                let vendor = core.borrow().vendor.clone();
                let once = JsValue::from_bool(method == "once");
                js::invoke(&vendor, "on", &[arg0, f.into(), once])?;
            }
            Ok(JsValue::UNDEFINED)
        }
        "off" => {
            if arg0.is_string() {
                let vendor = core.borrow().vendor.clone();
                let f = a.callback.clone().map_or(JsValue::UNDEFINED, JsValue::from);
                js::invoke(&vendor, "off", &[arg0, f])?;
            }
            Ok(JsValue::UNDEFINED)
        }
        "addSourceMiddleware" => {
            if let Some(f) = a.callback.clone() {
                core.borrow_mut().source_middleware.push(f);
            }
            Ok(JsValue::UNDEFINED)
        }
        "addDestinationMiddleware" => {
            if let (Some(name), Some(f)) = (arg0.as_string(), a.callback.clone()) {
                core.borrow_mut().destination_middleware.push((name, f));
            }
            Ok(JsValue::UNDEFINED)
        }
        "register" => Ok(register(core, &a.args).into()),
        "consent" => {
            let prefs = js::as_object(&js::get(&arg0, "categoryPreferences"))
                .or_else(|| js::as_object(&arg0));
            set_consent(core, prefs);
            Ok(JsValue::UNDEFINED)
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
        _ => Err(JsValue::from_str(&["unknown method ", method].concat())),
    }
}

/// `register(...plugins)`: each plugin is `{name, type, version, load,
/// isLoaded, track, identify, ...}`; destination plugins load once they
/// have consent (`consentCategories`).
fn register(core: &Shared, plugins: &[JsValue]) -> Promise {
    for p in plugins.iter().filter(|p| p.is_object()) {
        let Some(kind) = js::get_str(p, "type").and_then(|t| PluginType::parse(&t)) else {
            report(
                core,
                "a plugin without a valid type was not registered",
                p.clone(),
            );
            continue;
        };
        let categories = js::strings(&js::get(p, "consentCategories"));
        let index = {
            let mut c = core.borrow_mut();
            c.plugins.push(Plugin {
                obj: p.clone(),
                name: js::get_str(p, "name").unwrap_or_default(),
                kind,
                categories,
                state: LoadState::Waiting,
                loading: None,
                device: None,
            });
            c.plugins.len() - 1
        };
        let allowed = {
            let c = core.borrow();
            kind != PluginType::Destination
                || pipeline::consented(c.consent.as_ref(), &c.plugins[index].categories)
        };
        if allowed {
            load_plugin(core, index);
        }
    }
    let loads: Vec<Promise> = core.borrow().loads.clone();
    future_to_promise(async move {
        pipeline::settle_all(loads).await;
        Ok(JsValue::UNDEFINED)
    })
}

/// `ready(callback?)`: resolves once every destination has loaded, failed
/// or timed out; one failing destination never holds it back.
fn ready(core: &Shared, callback: Option<Function>) -> Promise {
    let loads: Vec<Promise> = core.borrow().loads.clone();
    let shared = core.clone();
    future_to_promise(async move {
        let all = future_to_promise(async move {
            pipeline::settle_all(loads).await;
            Ok(JsValue::UNDEFINED)
        });
        let _ = JsFuture::from(pipeline::race(
            all,
            pipeline::timeout(READY_TIMEOUT_MS, JsValue::UNDEFINED),
        ))
        .await;
        if let Some(cb) = callback
            && let Err(e) = js::call(&cb, &JsValue::UNDEFINED, &[])
        {
            report(&shared, "a ready callback threw", e);
        }
        emit(&shared, "ready", &[]);
        Ok(JsValue::UNDEFINED)
    })
}

/// Builds the event of a call and sends it through the pipeline.
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
    let shared = core.clone();
    let callback = a.callback;
    let done = future_to_promise(async move {
        let ctx = dispatch(&shared, kind, event.into()).await;
        Ok(ctx)
    });
    if let Some(cb) = callback {
        // The callback runs when the event is dispatched, or after 300 ms.
        let race = pipeline::race(
            done.clone(),
            pipeline::timeout(CALLBACK_TIMEOUT_MS, JsValue::UNDEFINED),
        );
        let shared = core.clone();
        let then = Closure::once_into_js(move |ctx: JsValue| {
            if let Err(e) = js::call(&cb, &JsValue::UNDEFINED, &[ctx]) {
                report(&shared, "a callback threw", e);
            }
        });
        let _ = js::then(&race, &then);
    }
    done
}

/// The pipeline: source middleware, before and enrichment plugins,
/// destinations (plugins, each behind its destination middleware, and the
/// tracking API), after plugins, then the page's listeners.
async fn dispatch(core: &Shared, kind: Kind, event: JsValue) -> JsValue {
    let (source_mw, plugins, context_class) = {
        let c = core.borrow();
        (
            c.source_middleware.clone(),
            c.plugins.clone(),
            c.context_class.clone(),
        )
    };
    let event = match pipeline::run_middleware(&source_mw, event.clone(), &[]).await {
        Ok(Some(e)) => e,
        Ok(None) => return JsValue::NULL,
        Err(e) => {
            report(core, "source middleware threw", e);
            event
        }
    };
    let mut ctx = Reflect::construct(&context_class, &Array::of1(&event)).unwrap_or(JsValue::NULL);
    for stage in [PluginType::Before, PluginType::Enrichment] {
        for p in plugins.iter().filter(|p| p.kind == stage) {
            match pipeline::run_plugin(&p.obj, kind.name(), ctx.clone()).await {
                Ok(next) => ctx = next,
                Err(e) => {
                    report(core, &["plugin ", &p.name, " threw"].concat(), e);
                    if stage == PluginType::Before {
                        // A failing `before` plugin stops the event, as in analytics-next.
                        return ctx;
                    }
                }
            }
        }
    }
    let event = js::get(&ctx, "event");
    let integrations = js::get(&event, "integrations");

    // The destination plugins this event is for: allowed by the call's
    // integrations and by consent, and not failed to load.
    let candidates: Vec<Plugin> = {
        let c = core.borrow();
        plugins
            .iter()
            .filter(|p| p.kind == PluginType::Destination)
            .filter(|p| {
                c.plugins.iter().find(|q| q.obj == p.obj).is_some_and(|q| {
                    q.state != LoadState::Failed
                        && pipeline::allowed(&integrations, &q.name)
                        && pipeline::consented(c.consent.as_ref(), &q.categories)
                })
            })
            .cloned()
            .collect()
    };

    // Which destinations get the event in the browser and which are left
    // to the server, so that none gets it twice. Settled before any wait
    // for a destination, so the event is queued (and kept across a reload)
    // at once.
    let metadata = Object::new();
    let mut bundled = vec!["Segment.io".to_string()];
    bundled.extend(candidates.iter().map(|p| p.name.clone()));
    js::set(&metadata, "bundled", &js::str_array(&bundled));
    js::set(
        &metadata,
        "unbundled",
        &core.borrow().unbundled.slice(0, u32::MAX),
    );
    js::set(&metadata, "bundledIds", &Array::new());
    js::set(&event, "_metadata", &metadata);

    // The tracking API: per-call `All: false` does not turn it off, only
    // `'Segment.io': false` does (as in analytics-next).
    if js::get(&integrations, "Segment.io").as_bool() != Some(false)
        && let Some(json) = js::stringify(&event)
    {
        let queue = core.borrow().queue.clone();
        delivery::enqueue(&queue, json, kind.path());
    }

    // Those still loading are waited for, as analytics-next buffers events
    // for them; one that fails or times out is passed over.
    let mut targets: Vec<(Plugin, Vec<Function>)> = Vec::new();
    for p in candidates {
        let loading = {
            let c = core.borrow();
            c.plugins
                .iter()
                .find(|q| q.obj == p.obj)
                .and_then(|q| q.loading.clone())
        };
        let Some(loading) = loading else {
            continue;
        };
        let waited = pipeline::race(
            loading,
            pipeline::timeout(READY_TIMEOUT_MS, JsValue::UNDEFINED),
        );
        let _ = JsFuture::from(waited).await;
        let c = core.borrow();
        if c.plugins.iter().find(|q| q.obj == p.obj).map(|q| q.state) != Some(LoadState::Loaded) {
            continue;
        }
        let chain = c
            .destination_middleware
            .iter()
            .filter(|(n, _)| n == &p.name)
            .map(|(_, f)| f.clone())
            .collect();
        targets.push((p, chain));
    }

    // Destination plugins, side by side, each isolated.
    let mut pending = Vec::new();
    for (p, chain) in targets {
        let copy = js::clone_json(&event);
        let obj = p.obj.clone();
        let device = p.device.clone();
        let name = p.name.clone();
        let class = context_class.clone();
        let shared = core.clone();
        pending.push(future_to_promise(async move {
            let extra = [("destination", JsValue::from_str(&name))];
            let result = match pipeline::run_middleware(&chain, copy, &extra).await {
                Ok(Some(e)) => match device {
                    Some(device) => device.send(&e),
                    None => {
                        let ctx =
                            Reflect::construct(&class, &Array::of1(&e)).unwrap_or(JsValue::NULL);
                        pipeline::run_plugin(&obj, kind.name(), ctx).await.map(drop)
                    }
                },
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                report(&shared, &["destination ", &name, " threw"].concat(), e);
            }
            Ok(JsValue::UNDEFINED)
        }));
    }
    pipeline::settle_all(pending).await;

    for p in plugins.iter().filter(|p| p.kind == PluginType::After) {
        if let Err(e) = pipeline::run_plugin(&p.obj, kind.name(), ctx.clone()).await {
            report(core, &["plugin ", &p.name, " threw"].concat(), e);
        }
    }
    let listener_args = match kind {
        Kind::Track => vec![js::get(&event, "event"), js::get(&event, "properties")],
        Kind::Identify => vec![js::get(&event, "userId"), js::get(&event, "traits")],
        Kind::Page | Kind::Screen => vec![
            js::get(&event, "category"),
            js::get(&event, "name"),
            js::get(&event, "properties"),
        ],
        Kind::Group => vec![js::get(&event, "groupId"), js::get(&event, "traits")],
        Kind::Alias => vec![js::get(&event, "userId"), js::get(&event, "previousId")],
    };
    emit(core, kind.name(), &listener_args);
    ctx
}
