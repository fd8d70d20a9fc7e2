//! Building events in Segment's wire format.

use js_sys::Object;
use wasm_bindgen::JsValue;

use crate::args::{BufferedPage, Resolved};
use crate::identity::Identity;
use crate::js::{self, copy_or_new, get, set, set_str};
use crate::{browser, ids};

/// The six calls.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Track,
    Identify,
    Page,
    Screen,
    Group,
    Alias,
}

impl Kind {
    pub fn from_method(m: &str) -> Option<Kind> {
        Some(match m {
            "track" => Kind::Track,
            "identify" => Kind::Identify,
            "page" => Kind::Page,
            "screen" => Kind::Screen,
            "group" => Kind::Group,
            "alias" => Kind::Alias,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Track => "track",
            Kind::Identify => "identify",
            Kind::Page => "page",
            Kind::Screen => "screen",
            Kind::Group => "group",
            Kind::Alias => "alias",
        }
    }

    /// The browser's short path on the tracking API.
    pub fn path(self) -> &'static str {
        match self {
            Kind::Track => "t",
            Kind::Identify => "i",
            Kind::Page => "p",
            Kind::Screen => "s",
            Kind::Group => "g",
            Kind::Alias => "a",
        }
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
            ("canonical", &b.canonical),
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

/// `context.campaign` from `utm_*` query parameters, named as Segment
/// names them (`utm_campaign` is `name`).
pub(crate) fn campaign(search: &str) -> Option<Object> {
    let out = Object::new();
    let mut any = false;
    for (key, value) in ids::query_pairs(search) {
        if let Some(k) = key.strip_prefix("utm_") {
            let k = if k == "campaign" { "name" } else { k };
            set_str(&out, k, &value);
            any = true;
        }
    }
    any.then_some(out)
}

/// Everything an event needs besides its call: who, where, and the
/// library's static context.
pub(crate) struct Env<'a> {
    pub identity: &'a Identity,
    pub page: Object,
    /// userAgent, locale, timezone, screen, campaign, library, consent.
    pub context: &'a Object,
}

pub(crate) fn build(kind: Kind, r: &Resolved, env: &Env<'_>) -> Object {
    let ev = Object::new();
    set_str(&ev, "type", kind.name());
    set_str(&ev, "messageId", &browser::random_uuid());
    set_str(&ev, "anonymousId", env.identity.anonymous_id());
    set(&ev, "userId", &env.identity.user_id_value());
    set_str(&ev, "timestamp", &browser::now_iso());

    let context = Object::assign(&Object::new(), env.context);
    set(&context, "page", &env.page);
    set(&ev, "context", &context);
    set(&ev, "integrations", &Object::new());

    let fields = copy_or_new(r.fields.as_ref());
    match kind {
        Kind::Track => {
            set_str(&ev, "event", r.name.as_deref().unwrap_or_default());
            set(&ev, "properties", &fields);
        }
        Kind::Page | Kind::Screen => {
            let properties = if kind == Kind::Page {
                Object::assign(&copy_or_new(Some(&env.page)), &fields)
            } else {
                fields
            };
            if let Some(name) = &r.name {
                set_str(&ev, "name", name);
                // analytics-next names the page in its properties too,
                // but not the screen.
                if kind == Kind::Page {
                    set_str(&properties, "name", name);
                }
            }
            if let Some(category) = &r.category {
                set_str(&ev, "category", category);
            }
            set(&ev, "properties", &properties);
        }
        Kind::Identify => {
            // The identity already holds the new id and merged traits.
            set(&ev, "traits", &copy_or_new(Some(env.identity.traits())));
        }
        Kind::Group => {
            let id = env
                .identity
                .group_id()
                .map(JsValue::from_str)
                .unwrap_or(JsValue::NULL);
            set(&ev, "groupId", &id);
            set(
                &ev,
                "traits",
                &copy_or_new(Some(env.identity.group_traits())),
            );
        }
        Kind::Alias => {
            set_str(&ev, "userId", r.name.as_deref().unwrap_or_default());
            let previous = r
                .category
                .clone()
                .or_else(|| env.identity.user_id().map(str::to_string))
                .unwrap_or_else(|| env.identity.anonymous_id().to_string());
            set_str(&ev, "previousId", &previous);
        }
    }
    if let Some(options) = &r.options {
        apply_options(&ev, &context, options);
    }
    ev
}

/// Per-call options, as analytics-next reads them: `integrations`,
/// `timestamp`, `anonymousId` and `context` have their own places; any
/// other key goes into `context` (`traits` among them).
fn apply_options(ev: &Object, context: &Object, options: &Object) {
    for key in js::keys(options) {
        let value = get(options, &key);
        match key.as_str() {
            "integrations" => {
                if js::is_plain_object(&value) {
                    set(ev, "integrations", &js::clone_json(&value));
                }
            }
            "timestamp" => {
                if let Some(t) = browser::iso(&value) {
                    set_str(ev, "timestamp", &t);
                }
            }
            "anonymousId" => {
                if let Some(id) = js::as_id(&value) {
                    set_str(ev, "anonymousId", &id);
                }
            }
            "context" => {
                if let Some(o) = js::as_object(&value) {
                    Object::assign(context, &o);
                }
            }
            _ => set(context, &key, &value),
        }
    }
}
