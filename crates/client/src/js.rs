//! Small helpers over `js_sys` values.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub(crate) fn set(obj: &Object, key: &str, value: &JsValue) {
    // Setting a property of a plain object we created cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

pub(crate) fn set_str(obj: &Object, key: &str, value: &str) {
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
    v.as_f64()
        .and_then(|_| js_sys::JSON::stringify(v).ok())
        .map(String::from)
}
