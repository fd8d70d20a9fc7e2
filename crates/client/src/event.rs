//! Building events in Segment's wire format.

use js_sys::Object;
use wasm_bindgen::JsValue;

use crate::args::{BufferedPage, Identify, Page, Track};
use crate::js::{copy_or_new, get, set, set_str};
use crate::{LIBRARY_NAME, LIBRARY_VERSION, browser};

const ANONYMOUS_ID: &str = "ajs_anonymous_id";
const USER_ID: &str = "ajs_user_id";

/// Who the visitor is: an anonymous id kept across visits, and the user id
/// once `identify` gave one. Stored where Segment's libraries keep them,
/// so a site that ran Segment keeps its visitors' ids.
pub struct Identity {
    anonymous_id: String,
    user_id: Option<String>,
}

impl Identity {
    pub fn load() -> Identity {
        let anonymous_id = browser::load_id(ANONYMOUS_ID).unwrap_or_else(browser::random_uuid);
        // Written back every start: restores a cookie cleared while
        // localStorage kept the id, and the other way round.
        browser::store_id(ANONYMOUS_ID, &anonymous_id);
        Identity {
            anonymous_id,
            user_id: browser::load_id(USER_ID),
        }
    }

    pub fn anonymous_id(&self) -> &str {
        &self.anonymous_id
    }

    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    pub(crate) fn set_user_id(&mut self, id: &str) {
        browser::store_id(USER_ID, id);
        self.user_id = Some(id.to_string());
    }
}

/// `context.page`: from the snippet's buffer when the call was made before
/// the library loaded, else from the live page.
pub(crate) fn page_context(buffered: Option<&BufferedPage>) -> Object {
    let live = browser::page_context();
    if let Some(b) = buffered {
        let url = b.canonical.clone().or_else(|| {
            b.url
                .as_ref()
                .map(|u| u.split('#').next().unwrap_or_default().to_string())
        });
        for (key, value) in [
            ("path", &b.path),
            ("referrer", &b.referrer),
            ("search", &b.search),
            ("title", &b.title),
            ("url", &url),
        ] {
            if let Some(v) = value {
                set_str(&live, key, v);
            }
        }
    }
    live
}

fn base(kind: &str, identity: &Identity, page: &Object, options: Option<&Object>) -> Object {
    let ev = Object::new();
    set_str(&ev, "type", kind);
    set_str(&ev, "messageId", &browser::random_uuid());
    set_str(&ev, "anonymousId", identity.anonymous_id());
    set(
        &ev,
        "userId",
        &identity
            .user_id()
            .map(JsValue::from_str)
            .unwrap_or(JsValue::NULL),
    );
    set_str(&ev, "timestamp", &browser::now_iso());

    let context = Object::new();
    set(&context, "page", page);
    if let Some(ua) = browser::user_agent() {
        set_str(&context, "userAgent", &ua);
    }
    if let Some(locale) = browser::locale() {
        set_str(&context, "locale", &locale);
    }
    let library = Object::new();
    set_str(&library, "name", LIBRARY_NAME);
    set_str(&library, "version", LIBRARY_VERSION);
    set(&context, "library", &library);
    set(&ev, "context", &context);

    let integrations = options
        .map(|o| get(o, "integrations"))
        .filter(crate::js::is_plain_object)
        .unwrap_or_else(|| Object::new().into());
    set(&ev, "integrations", &integrations);
    ev
}

pub(crate) fn track(identity: &Identity, t: &Track, page: &Object) -> Object {
    let ev = base("track", identity, page, t.options.as_ref());
    set_str(&ev, "event", &t.event);
    set(&ev, "properties", &copy_or_new(t.properties.as_ref()));
    ev
}

pub(crate) fn identify(identity: &Identity, i: &Identify, page: &Object) -> Object {
    let ev = base("identify", identity, page, i.options.as_ref());
    set(&ev, "traits", &copy_or_new(i.traits.as_ref()));
    ev
}

pub(crate) fn page(identity: &Identity, p: &Page, page: &Object) -> Object {
    let ev = base("page", identity, page, p.options.as_ref());
    // Properties start from the page context; the caller's win.
    let properties = Object::assign(
        &copy_or_new(Some(page)),
        &copy_or_new(p.properties.as_ref()),
    );
    if let Some(name) = &p.name {
        set_str(&ev, "name", name);
        set_str(&properties, "name", name);
    }
    if let Some(category) = &p.category {
        set_str(&ev, "category", category);
    }
    set(&ev, "properties", &properties);
    ev
}
