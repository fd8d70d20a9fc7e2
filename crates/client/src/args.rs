//! The argument shapes Analytics.js accepts for each call, resolved as
//! analytics-next resolves them.

use js_sys::{Array, Function, Object};
use wasm_bindgen::{JsCast, JsValue};

use crate::js::{as_id, as_object, get, is_plain_object};

/// The page context Segment's snippet buffers with each early call.
#[derive(Default)]
pub struct BufferedPage {
    pub canonical: Option<String>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub search: Option<String>,
    pub title: Option<String>,
    pub referrer: Option<String>,
}

/// The arguments of one call, with the snippet's buffered page context and
/// the callback split off.
pub struct Call {
    pub args: Vec<JsValue>,
    pub callback: Option<Function>,
    pub page: Option<BufferedPage>,
}

impl Call {
    pub fn new(args: &Array) -> Call {
        let mut args: Vec<JsValue> = args.iter().collect();
        let mut page = None;
        if let Some(last) = args.last()
            && is_plain_object(last)
            && get(last, "__t").as_string().as_deref() == Some("bpc")
        {
            let s = |k| get(last, k).as_string();
            page = Some(BufferedPage {
                canonical: s("c"),
                path: s("p"),
                url: s("u"),
                search: s("s"),
                title: s("t"),
                referrer: s("r"),
            });
            args.pop();
        }
        let callback = args
            .iter()
            .find(|a| a.is_function())
            .map(|f| f.clone().unchecked_into());
        Call {
            args,
            callback,
            page,
        }
    }

    pub fn arg(&self, i: usize) -> JsValue {
        self.args.get(i).cloned().unwrap_or(JsValue::UNDEFINED)
    }

    pub fn object(&self, i: usize) -> Option<Object> {
        self.args.get(i).and_then(as_object)
    }

    /// The plain objects among the first `n` arguments, in order.
    fn objects(&self, n: usize) -> Vec<Object> {
        self.args.iter().take(n).filter_map(as_object).collect()
    }
}

/// What a call resolves to, common to every kind.
pub struct Resolved {
    /// `event` of track; `name` of page and screen; the user id of
    /// identify; the group id of group; `userId` of alias.
    pub name: Option<String>,
    /// Page and screen category; alias `previousId`.
    pub category: Option<String>,
    /// Properties or traits.
    pub fields: Option<Object>,
    pub options: Option<Object>,
}

/// `track(event, properties?, options?, callback?)`.
pub fn track(call: &Call) -> Option<Resolved> {
    let name = call.arg(0).as_string().filter(|e| !e.is_empty())?;
    Some(Resolved {
        name: Some(name),
        category: None,
        fields: call.object(1),
        options: call.object(2),
    })
}

/// `identify(userId?, traits?, options?, callback?)` and
/// `group(groupId?, traits?, options?, callback?)`, where the id may be
/// left out (`identify(traits)`).
pub fn identified(call: &Call) -> Resolved {
    let first = call.arg(0);
    if is_plain_object(&first) {
        return Resolved {
            name: None,
            category: None,
            fields: call.object(0),
            options: call.object(1),
        };
    }
    Resolved {
        name: as_id(&first),
        category: None,
        fields: call.object(1),
        options: call.object(2),
    }
}

/// `page(category?, name?, properties?, options?, callback?)` and
/// `screen(...)`: two strings are category and name, one string is the
/// name; the objects that follow are properties then options.
pub fn page(call: &Call) -> Resolved {
    let strings: Vec<String> = call
        .args
        .iter()
        .take(5)
        .filter_map(|a| a.as_string())
        .collect();
    let (category, name) = match strings.as_slice() {
        [] => (None, None),
        [name] => (None, Some(name.clone())),
        [category, name, ..] => (Some(category.clone()), Some(name.clone())),
    };
    let mut objects = call.objects(5).into_iter();
    Resolved {
        name,
        category,
        fields: objects.next(),
        options: objects.next(),
    }
}

/// `alias(userId, previousId?, options?, callback?)`.
pub fn alias(call: &Call) -> Option<Resolved> {
    let to = as_id(&call.arg(0))?;
    let second = call.arg(1);
    let (from, options) = if is_plain_object(&second) {
        (None, call.object(1))
    } else {
        (as_id(&second), call.object(2))
    };
    Some(Resolved {
        name: Some(to),
        category: from,
        fields: None,
        options,
    })
}
