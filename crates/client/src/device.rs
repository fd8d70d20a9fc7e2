//! The device host: brings up each device-mode destination's vendor
//! script and makes the calls its adapter maps events to.
//!
//! Adapters are pure (`switchyard_destinations`, one `device.rs` per
//! destination) and each is reached only through the module's own export
//! `device:<slug>`, which the host calls through JavaScript with a request
//! waiting in [`exchange`]: a bundle without an adapter deletes its export,
//! and the code only it reached goes with it.

use std::rc::Rc;

use js_sys::{Array, Date, Function, Object, Reflect};
use switchyard_destinations::device::{
    Call, NOW, NOW_MS, Queue, Request, Response, Value, exchange,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::js;

/// One device-mode destination of this page.
pub(crate) struct Device {
    /// The module's `device:<slug>` export.
    export: Function,
    settings: Rc<Value>,
}

fn error(parts: &[&str]) -> JsValue {
    js_sys::Error::new(&parts.concat()).into()
}

impl Device {
    /// The destination `slug`, if this module has its adapter.
    pub(crate) fn new(exports: &JsValue, slug: &str, settings: &JsValue) -> Option<Device> {
        let export = js::get(exports, &["device:", slug].concat())
            .dyn_into::<Function>()
            .ok()?;
        Some(Device {
            export,
            settings: Rc::new(from_js(settings)),
        })
    }

    fn ask(&self, request: Request) -> Result<Response, JsValue> {
        exchange::put(request);
        js::call(&self.export, &JsValue::UNDEFINED, &[])?;
        exchange::take().ok_or_else(|| error(&["the adapter did not answer"]))
    }

    /// Sets the globals and stubs the vendor's snippet would, loads its
    /// script (failing after `timeout_ms`), checks that it ran, and makes
    /// the init calls. `vendor` holds the loader's helpers: `stub(queue)`
    /// makes a queueing function (only JavaScript can keep an `arguments`
    /// object), `load(url, attributes, ms)` adds a script tag and settles
    /// once the script ran, failed, or took too long.
    pub(crate) async fn load(&self, vendor: &JsValue, timeout_ms: f64) -> Result<(), JsValue> {
        let helper = |name: &str| {
            js::method(vendor, name).ok_or_else(|| error(&["the loader has no ", name]))
        };
        let Response::Setup(setup) = self.ask(Request::Setup {
            settings: self.settings.clone(),
        })?
        else {
            return Err(error(&["the adapter did not answer"]));
        };
        let window = js::window();
        for (path, value) in &setup.globals {
            let (parent, key) = match path.rsplit_once('.') {
                Some((parent, key)) => (resolve(parent).map(|(_, p)| p), key),
                None => (Some(window.clone()), *path),
            };
            if let Some(parent) = parent
                && js::get(&parent, key).is_undefined()
            {
                js::set(&parent, key, &to_js(value));
            }
        }
        for s in setup.stubs {
            if !js::get(&window, s.global).is_undefined() {
                continue;
            }
            let queue = match s.queue {
                Queue::Global(name) => {
                    let existing = js::get(&window, name);
                    if existing.is_object() {
                        existing
                    } else {
                        let fresh: JsValue = Array::new().into();
                        js::set(&window, name, &fresh);
                        fresh
                    }
                }
                Queue::Own(_) => Array::new().into(),
            };
            let f = js::call(
                &helper("stub")?,
                &JsValue::UNDEFINED,
                std::slice::from_ref(&queue),
            )?;
            if let Queue::Own(property) = s.queue {
                js::set(&f, property, &queue);
            }
            js::set(&window, s.global, &f);
        }
        let attributes = Object::new();
        for (name, value) in &setup.script.attributes {
            js::set_str(&attributes, name, value);
        }
        let loading = js::call(
            &helper("load")?,
            &JsValue::UNDEFINED,
            &[
                JsValue::from_str(&setup.script.url),
                attributes.into(),
                JsValue::from_f64(timeout_ms),
            ],
        )?;
        JsFuture::from(js::promise(&loading)).await?;
        if !setup.ready.is_empty() && resolve(setup.ready).is_none() {
            return Err(error(&[
                &setup.script.url,
                " ran but did not define window.",
                setup.ready,
            ]));
        }
        run(&setup.init)
    }

    /// Makes the vendor calls `event` maps to.
    pub(crate) fn send(&self, event: &JsValue) -> Result<(), JsValue> {
        match self.ask(Request::Map {
            event: from_js(event),
            settings: self.settings.clone(),
        })? {
            Response::Calls(calls) => run(&calls),
            Response::Setup(_) => Ok(()),
        }
    }
}

/// The value at a dotted path from `window`, with the object it was read
/// from (the `this` of a call); `None` if any step is missing.
fn resolve(path: &str) -> Option<(JsValue, JsValue)> {
    let mut this = JsValue::UNDEFINED;
    let mut value = js::window();
    for key in path.split('.') {
        if value.is_undefined() || value.is_null() {
            return None;
        }
        let next = js::get(&value, key);
        this = value;
        value = next;
    }
    (!value.is_undefined() && !value.is_null()).then_some((this, value))
}

/// Makes `calls` in order; the first that throws stops the rest.
fn run(calls: &[Call]) -> Result<(), JsValue> {
    for call in calls {
        let Some((this, f)) = resolve(call.function) else {
            return Err(error(&["window.", call.function, " is missing"]));
        };
        let f = f
            .dyn_into::<Function>()
            .map_err(|_| error(&["window.", call.function, " is not a function"]))?;
        let args: Array = call.args.iter().map(to_js).collect();
        Reflect::apply(&f, &this, &args)?;
    }
    Ok(())
}

/// The JavaScript value of `value`, with the time placeholders filled in.
fn to_js(value: &Value) -> JsValue {
    match value {
        Value::Null => JsValue::NULL,
        Value::Bool(b) => JsValue::from_bool(*b),
        Value::Number(n) => JsValue::from_f64(*n),
        Value::String(s) if s == NOW => Date::new_0().into(),
        Value::String(s) if s == NOW_MS => JsValue::from_f64(Date::now()),
        Value::String(s) => JsValue::from_str(s),
        Value::Array(items) => items.iter().map(to_js).collect::<Array>().into(),
        Value::Object(members) => {
            let obj = Object::new();
            for (k, v) in members {
                js::set(&obj, k, &to_js(v));
            }
            obj.into()
        }
    }
}

/// A JSON-like value (an event or settings) as a [`Value`]; functions and
/// `undefined` members are left out, as `JSON.stringify` would.
fn from_js(value: &JsValue) -> Value {
    if let Some(b) = value.as_bool() {
        Value::Bool(b)
    } else if let Some(n) = value.as_f64() {
        Value::Number(n)
    } else if let Some(s) = value.as_string() {
        Value::String(s)
    } else if Array::is_array(value) {
        Value::Array(Array::from(value).iter().map(|v| from_js(&v)).collect())
    } else if value.is_object() && !value.is_function() {
        Value::Object(
            js::keys(value)
                .into_iter()
                .filter_map(|k| {
                    let v = js::get(value, &k);
                    (!v.is_undefined() && !v.is_function()).then(|| (k, from_js(&v)))
                })
                .collect(),
        )
    } else {
        Value::Null
    }
}
