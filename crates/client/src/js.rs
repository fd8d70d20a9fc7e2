//! Small helpers over `js_sys` values.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen]
extern "C" {
    /// The page's global object, `window`.
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL: JsValue;
}

/// The page's `window`. The page is read through it by name (`get`,
/// `invoke`) rather than through web-sys: each web-sys getter or method
/// is an import of its own, with its own glue in the loader.
pub(crate) fn window() -> JsValue {
    GLOBAL.with(JsValue::clone)
}

/// `window[key]`.
pub(crate) fn global(key: &str) -> JsValue {
    get(&window(), key)
}

/// `obj[name](...args)`; no such method, or an exception, is `Err`.
pub(crate) fn invoke(obj: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f = method(obj, name).ok_or(JsValue::UNDEFINED)?;
    call(&f, obj, args)
}

pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() && !obj.is_function() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub(crate) fn get_str(obj: &JsValue, key: &str) -> Option<String> {
    get(obj, key).as_string()
}

pub(crate) fn set(obj: &JsValue, key: &str, value: &JsValue) {
    // Setting a property of a plain object cannot fail; of a frozen one it
    // may, and then the value simply stays.
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

pub(crate) fn set_str(obj: &JsValue, key: &str, value: &str) {
    set(obj, key, &JsValue::from_str(value));
}

/// A plain object: not null, not an array, not a function.
pub(crate) fn is_plain_object(v: &JsValue) -> bool {
    v.is_object() && !v.is_function() && !Array::is_array(v)
}

/// `v` as an object if it is a plain one.
pub(crate) fn as_object(v: &JsValue) -> Option<Object> {
    is_plain_object(v).then(|| v.clone().unchecked_into())
}

/// A shallow copy of a plain object, or a new empty object.
pub(crate) fn copy_or_new(v: Option<&Object>) -> Object {
    match v {
        Some(o) => Object::assign(&Object::new(), o),
        None => Object::new(),
    }
}

/// A string, or a number turned into its decimal string.
pub(crate) fn as_id(v: &JsValue) -> Option<String> {
    if let Some(s) = v.as_string() {
        return (!s.is_empty()).then_some(s);
    }
    v.as_f64().and_then(|_| stringify(v))
}

pub(crate) fn stringify(v: &JsValue) -> Option<String> {
    js_sys::JSON::stringify(v).ok().map(String::from)
}

pub(crate) fn parse(s: &str) -> Option<JsValue> {
    js_sys::JSON::parse(s).ok()
}

/// A deep copy through JSON: what leaves the page is what was passed, and
/// later changes by the page do not reach a queued event.
pub(crate) fn clone_json(v: &JsValue) -> JsValue {
    stringify(v)
        .and_then(|s| parse(&s))
        .unwrap_or(JsValue::NULL)
}

/// The items of an array; nothing for anything else.
pub(crate) fn values(v: &JsValue) -> Vec<JsValue> {
    if Array::is_array(v) {
        Array::from(v).iter().collect()
    } else {
        Vec::new()
    }
}

pub(crate) fn keys(obj: &JsValue) -> Vec<String> {
    match as_object(obj) {
        Some(o) => Object::keys(&o)
            .iter()
            .filter_map(|k| k.as_string())
            .collect(),
        None => Vec::new(),
    }
}

/// Calls `f` with `args`; an exception becomes `Err`, never reaches the page.
pub(crate) fn call(f: &Function, this: &JsValue, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let array: Array = args.iter().collect();
    f.apply(this, &array)
}

/// The method `name` of `obj`, if it has one.
pub(crate) fn method(obj: &JsValue, name: &str) -> Option<Function> {
    let f = get(obj, name);
    f.is_function().then(|| f.unchecked_into())
}

/// A promise of `v`: `v` itself if it is a thenable.
pub(crate) fn promise(v: &JsValue) -> Promise {
    Promise::resolve(v)
}
