//! Resolving the argument shapes Analytics.js accepts for each call.

use js_sys::{Array, Function, Object};
use wasm_bindgen::{JsCast, JsValue};

use crate::js::{as_id, as_object, get, is_plain_object};

/// The page context Segment's snippet buffers with each early call.
#[derive(Debug, Default)]
pub struct BufferedPage {
    pub canonical: Option<String>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub search: Option<String>,
    pub title: Option<String>,
    pub referrer: Option<String>,
}

/// The arguments of one call, split into what the call was given and
/// what the snippet added.
pub struct Call {
    pub args: Vec<JsValue>,
    pub callback: Option<Function>,
    pub page: Option<BufferedPage>,
}

impl Call {
    /// Splits the snippet's buffered page context (a trailing
    /// `{__t: "bpc", ...}`) and the callback off the arguments.
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

    fn arg(&self, i: usize) -> JsValue {
        self.args.get(i).cloned().unwrap_or(JsValue::UNDEFINED)
    }

    fn object(&self, i: usize) -> Option<Object> {
        self.args.get(i).and_then(as_object)
    }
}

/// `track(event, properties?, options?, callback?)`.
pub struct Track {
    pub event: String,
    pub properties: Option<Object>,
    pub options: Option<Object>,
}

pub fn track(call: &Call) -> Option<Track> {
    let event = call.arg(0).as_string().filter(|e| !e.is_empty())?;
    Some(Track {
        event,
        properties: call.object(1),
        options: call.object(2),
    })
}

/// `identify(userId?, traits?, options?, callback?)`; `identify(traits)`.
pub struct Identify {
    pub user_id: Option<String>,
    pub traits: Option<Object>,
    pub options: Option<Object>,
}

pub fn identify(call: &Call) -> Identify {
    let first = call.arg(0);
    if is_plain_object(&first) {
        return Identify {
            user_id: None,
            traits: call.object(0),
            options: call.object(1),
        };
    }
    Identify {
        user_id: as_id(&first),
        traits: call.object(1),
        options: call.object(2),
    }
}

/// `page(category?, name?, properties?, options?, callback?)`, resolved
/// as analytics-next does: two strings are category and name, one string
/// is the name; the objects that follow are properties then options.
pub struct Page {
    pub category: Option<String>,
    pub name: Option<String>,
    pub properties: Option<Object>,
    pub options: Option<Object>,
}

pub fn page(call: &Call) -> Page {
    let args: Vec<&JsValue> = call.args.iter().take(5).collect();
    let strings: Vec<String> = args.iter().filter_map(|a| a.as_string()).collect();
    let (category, name) = match strings.as_slice() {
        [] => (None, None),
        [name] => (None, Some(name.clone())),
        [category, name, ..] => (Some(category.clone()), Some(name.clone())),
    };
    let objects: Vec<Object> = args.iter().filter_map(|a| as_object(a)).collect();
    let mut objects = objects.into_iter();
    Page {
        category,
        name,
        properties: objects.next(),
        options: objects.next(),
    }
}
