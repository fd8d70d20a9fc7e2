//! What device mode's mappings speak: a small JSON-like [`Value`] and the
//! [`Call`]s a mapping asks the browser to make on a vendor's global.
//!
//! This code is compiled into the browser's wasm module, so it uses neither
//! `serde` nor `core::fmt` (no `Debug` derives, no `format!`, no number
//! printing) and never indexes in a way that can panic. Tests compare values
//! with `PartialEq` and print them through their own conversion.

use std::rc::Rc;

/// A JSON value, as the vendor's JavaScript will see it. Objects keep their
/// keys in insertion order.
#[derive(Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// Stands for `new Date()`, the current time as a JavaScript `Date`, which a
/// pure function cannot know: the device host replaces an argument equal to
/// `Value::String(NOW.into())` before calling (gtag's `gtag('js', new Date())`).
pub const NOW: &str = "$switchyard:now";

/// Stands for `Date.now()`, the current time in milliseconds, replaced the
/// same way wherever it appears, also inside objects (GTM's `gtm.start`).
pub const NOW_MS: &str = "$switchyard:now_ms";

/// One call on a vendor's global: `function` is a dotted path from `window`
/// (`"mixpanel.track"`, `"gtag"`, `"dataLayer.push"`), `args` its arguments.
#[derive(Clone, PartialEq)]
pub struct Call {
    pub function: &'static str,
    pub args: Vec<Value>,
}

impl Call {
    pub fn new(function: &'static str, args: Vec<Value>) -> Call {
        Call { function, args }
    }
}

impl Value {
    /// An empty object.
    pub fn empty() -> Value {
        Value::Object(Vec::new())
    }

    /// An object from `(key, value)` pairs; `Null` values are left out, so a
    /// builder can pass optional fields straight through. A `Vec`, not any
    /// iterator: one copy of this code in the module, not one per length of
    /// array a caller writes.
    pub fn object(pairs: Vec<(&str, Value)>) -> Value {
        Value::Object(
            pairs
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.into(), v))
                .collect(),
        )
    }

    pub fn str(s: &str) -> Value {
        Value::String(s.into())
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at a dotted path of object keys, e.g. `"context.page.url"`.
    pub fn path(&self, path: &str) -> Option<&Value> {
        path.split('.').try_fold(self, |v, key| v.get(key))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A non-empty string.
    pub fn as_text(&self) -> Option<&str> {
        self.as_str().filter(|s| !s.is_empty())
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> &[Value] {
        match self {
            Value::Array(items) => items,
            _ => &[],
        }
    }

    /// An object's members; nothing for any other value.
    pub fn members(&self) -> &[(String, Value)] {
        match self {
            Value::Object(members) => members,
            _ => &[],
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A string, number or boolean: what vendors that take only flat
    /// attributes (GA4 user properties, Hotjar, Intercom) accept.
    pub fn is_scalar(&self) -> bool {
        matches!(self, Value::Bool(_) | Value::Number(_) | Value::String(_))
    }

    /// Sets `key` on an object, replacing an existing member in place; does
    /// nothing on another value or when `value` is `Null`.
    pub fn set(&mut self, key: &str, value: Value) {
        if value.is_null() {
            return;
        }
        if let Value::Object(members) = self {
            match members.iter_mut().find(|(k, _)| k == key) {
                Some(member) => member.1 = value,
                None => members.push((key.into(), value)),
            }
        }
    }

    /// Removes `key` from an object and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        match self {
            Value::Object(members) => {
                let at = members.iter().position(|(k, _)| k == key)?;
                Some(members.remove(at).1)
            }
            _ => None,
        }
    }
}

/// `value` cloned, or `Null` when absent.
pub fn cloned(value: Option<&Value>) -> Value {
    value.cloned().unwrap_or(Value::Null)
}

/// The first of `keys` present and not `Null` in `object`, cloned.
pub fn first(object: &Value, keys: &[&str]) -> Value {
    keys.iter()
        .filter_map(|k| object.get(k))
        .find(|v| !v.is_null())
        .cloned()
        .unwrap_or(Value::Null)
}

/// The strings joined, without `format!`.
pub fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

/// A string setting, or `default` when unset or empty.
pub fn setting<'a>(settings: &'a Value, key: &str, default: &'a str) -> &'a str {
    settings
        .get(key)
        .and_then(Value::as_text)
        .unwrap_or(default)
}

/// The parts of a Segment event every mapping reads.
pub struct Event<'a> {
    pub raw: &'a Value,
    /// `track`, `identify`, `page`, `screen`, `group` or `alias`.
    pub kind: &'a str,
    pub user_id: Option<&'a str>,
    pub anonymous_id: Option<&'a str>,
}

impl<'a> Event<'a> {
    pub fn new(raw: &'a Value) -> Event<'a> {
        let text = |key| raw.get(key).and_then(Value::as_text);
        Event {
            raw,
            kind: text("type").unwrap_or_default(),
            user_id: text("userId"),
            anonymous_id: text("anonymousId"),
        }
    }

    /// The track event's name.
    pub fn name(&self) -> &'a str {
        self.raw
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `properties` (track, page) as an object, empty when absent.
    pub fn properties(&self) -> Value {
        self.object("properties")
    }

    /// `traits` (identify, group) as an object, empty when absent.
    pub fn traits(&self) -> Value {
        self.object("traits")
    }

    fn object(&self, key: &str) -> Value {
        match self.raw.get(key) {
            Some(v @ Value::Object(_)) => v.clone(),
            _ => Value::empty(),
        }
    }

    /// A string member of the event, e.g. `groupId`, `previousId`.
    pub fn text(&self, key: &str) -> Option<&'a str> {
        self.raw.get(key).and_then(Value::as_text)
    }

    /// The names of the events analytics.js's classic integrations make of a
    /// page call with their default options (`trackAllPages: false`,
    /// `trackCategorizedPages: true`, `trackNamedPages: true`): `Viewed
    /// {category} Page` when the page has a category, then `Viewed {category}
    /// {name} Page` when it has a name. Followed for Mixpanel, Amplitude and
    /// Google Tag Manager, as segmentio/analytics.js-integrations did.
    pub fn viewed_page_events(&self) -> Vec<String> {
        let category = self.page_field("category");
        let name = self.page_field("name");
        let mut events = Vec::new();
        if let Some(category) = category {
            events.push(concat(&["Viewed ", category, " Page"]));
        }
        match (category, name) {
            (Some(category), Some(name)) => {
                events.push(concat(&["Viewed ", category, " ", name, " Page"]))
            }
            (None, Some(name)) => events.push(concat(&["Viewed ", name, " Page"])),
            _ => {}
        }
        events
    }

    /// A page call's `name` or `category`, top level or in its properties.
    pub fn page_field(&self, key: &str) -> Option<&'a str> {
        self.text(key)
            .or_else(|| self.raw.get("properties")?.get(key)?.as_text())
    }
}

/// An object with each key renamed by `aliases` (`(from, to)`); other keys
/// kept as they are.
pub fn rename(object: &Value, aliases: &[(&str, &str)]) -> Value {
    Value::Object(
        object
            .members()
            .iter()
            .map(|(k, v)| {
                let key = aliases
                    .iter()
                    .find(|(from, _)| from == k)
                    .map_or(k.as_str(), |(_, to)| to);
                (key.into(), v.clone())
            })
            .collect(),
    )
}

/// An object's scalar members only, for vendors that take flat attributes.
pub fn scalars(object: &Value) -> Value {
    Value::Object(
        object
            .members()
            .iter()
            .filter(|(_, v)| v.is_scalar())
            .cloned()
            .collect(),
    )
}

/// An object without the members named in `keys`.
pub fn without(object: &Value, keys: &[&str]) -> Value {
    Value::Object(
        object
            .members()
            .iter()
            .filter(|(k, _)| !keys.contains(&k.as_str()))
            .cloned()
            .collect(),
    )
}

/// Rounds to cents, e.g. for a revenue vendors want with two decimals.
pub fn round_cents(n: f64) -> f64 {
    (n * 100.0).round() / 100.0
}

/// Seconds since the Unix epoch of an ISO 8601 date (`2024-01-31`,
/// `2024-01-31T12:00:00Z`, `2024-01-31T12:00:00.123+02:00`), or of a number
/// already in seconds or milliseconds, for vendors that want Unix seconds
/// (Intercom's `created_at`).
pub fn unix_seconds(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) if *n > 100_000_000_000.0 => Some((*n / 1000.0).floor()),
        Value::Number(n) => Some(*n),
        Value::String(s) => parse_iso(s.as_bytes()),
        _ => None,
    }
}

fn parse_iso(s: &[u8]) -> Option<f64> {
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = s.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let (y, m, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') || !(1..=12).contains(&m) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if s.len() > 10 {
        secs += num(11, 2)? * 3600 + num(14, 2)? * 60 + num(17, 2).unwrap_or(0);
        // The offset: after the seconds and any fraction.
        let rest = s.get(19..).unwrap_or_default();
        let at = rest.iter().position(|c| matches!(c, b'Z' | b'+' | b'-'));
        if let Some(at) = at
            && let Some(sign) = rest.get(at).filter(|c| **c != b'Z')
        {
            let from = 19 + at + 1;
            let offset = num(from, 2)? * 3600 + num(from + 3, 2).unwrap_or(0) * 60;
            secs += if *sign == b'+' { -offset } else { offset };
        }
    }
    Some(secs as f64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates_become_unix_seconds() {
        let s = |t: &str| unix_seconds(&Value::str(t));
        assert_eq!(s("1970-01-01"), Some(0.0));
        assert_eq!(s("2024-01-31T12:00:00Z"), Some(1_706_702_400.0));
        assert_eq!(s("2024-01-31T12:00:00.123Z"), Some(1_706_702_400.0));
        assert_eq!(s("2024-01-31T14:00:00+02:00"), Some(1_706_702_400.0));
        assert_eq!(s("2024-01-31T10:00:00-02:00"), Some(1_706_702_400.0));
        assert_eq!(s("not a date"), None);
        assert_eq!(
            unix_seconds(&Value::Number(1_706_702_400_000.0)),
            Some(1_706_702_400.0)
        );
    }

    #[test]
    fn paths_and_setters() {
        let mut v = Value::object(vec![("a", Value::object(vec![("b", Value::Number(1.0))]))]);
        assert!(v.path("a.b") == Some(&Value::Number(1.0)));
        assert!(v.path("a.c").is_none());
        v.set("a", Value::Bool(true));
        v.set("z", Value::Null);
        assert!(v.members().len() == 1 && v.get("a") == Some(&Value::Bool(true)));
    }
}

/// A queueing function a vendor's snippet defines on `window` before its
/// script loads (`gtag`, `fbq`, `hj` …): calls made before the script is
/// there are kept as `arguments` objects and replayed by the script. Only
/// JavaScript can make such a function; the device host asks the loader's.
pub struct Stub {
    /// The global the function is put in, when it is not there already.
    pub global: &'static str,
    /// Where the `arguments` go.
    pub queue: Queue,
}

pub enum Queue {
    /// A global array, created when missing (`dataLayer` for `gtag`).
    Global(&'static str),
    /// An array in a property of the function itself (`fbq.queue`, `hj.q`).
    Own(&'static str),
}

/// The vendor's script tag: its URL and any attributes its snippet sets.
pub struct Script {
    pub url: String,
    pub attributes: Vec<(&'static str, String)>,
}

impl Script {
    pub fn new(url: impl Into<String>) -> Script {
        Script {
            url: url.into(),
            attributes: Vec::new(),
        }
    }
}

/// Everything the device host does to bring a vendor up, in this order:
/// set `globals` that are missing, define `stubs`, load `script`, check that
/// `ready` (a dotted path) exists once it ran, then make the `init` calls.
pub struct Setup {
    pub globals: Vec<(&'static str, Value)>,
    pub stubs: &'static [Stub],
    pub script: Script,
    pub ready: &'static str,
    pub init: Vec<Call>,
}

/// One destination in device mode: how its vendor is loaded and what an
/// event becomes. Pure: the browser part is the client's device host.
pub trait Adapter {
    /// Queueing functions of the vendor's snippet.
    const STUBS: &'static [Stub] = &[];
    /// A dotted path that exists once the vendor's script has run; empty
    /// when a stub stands for it.
    const READY: &'static str = "";

    /// Globals the vendor's script reads, by dotted path from `window`,
    /// each set in order where the page has nothing.
    fn globals(_settings: &Value) -> Vec<(&'static str, Value)> {
        Vec::new()
    }

    fn script(settings: &Value) -> Script;
    fn init(settings: &Value) -> Vec<Call>;
    fn map(event: &Value, settings: &Value) -> Vec<Call>;

    fn setup(settings: &Value) -> Setup {
        Setup {
            globals: Self::globals(settings),
            stubs: Self::STUBS,
            script: Self::script(settings),
            ready: Self::READY,
            init: Self::init(settings),
        }
    }
}

/// What the device host asks an adapter.
pub enum Request {
    /// Settings are shared with the host, which keeps them for the page's
    /// life: asking costs no copy of them.
    Setup {
        settings: Rc<Value>,
    },
    Map {
        event: Value,
        settings: Rc<Value>,
    },
}

/// An adapter's answer.
pub enum Response {
    Setup(Setup),
    Calls(Vec<Call>),
}

impl Request {
    fn answer<A: Adapter>(self) -> Response {
        match self {
            Request::Setup { settings } => Response::Setup(A::setup(&settings)),
            Request::Map { event, settings } => Response::Calls(A::map(&event, &settings)),
        }
    }
}

/// The exchange between the device host and the adapters.
///
/// In the browser each adapter is reached only through its own export
/// (`device:<slug>`, see [`export_adapter!`]), never through a function
/// pointer, so that a bundle without the adapter can delete the export and
/// collect everything only it reached. The host puts a [`Request`] here,
/// calls the export, and takes the [`Response`] back.
pub mod exchange {
    use super::{Adapter, Request, Response};
    use std::cell::RefCell;

    thread_local! {
        static REQUEST: RefCell<Option<Request>> = const { RefCell::new(None) };
        static RESPONSE: RefCell<Option<Response>> = const { RefCell::new(None) };
    }

    pub fn put(request: Request) {
        REQUEST.with(|r| *r.borrow_mut() = Some(request));
        RESPONSE.with(|r| *r.borrow_mut() = None);
    }

    pub fn take() -> Option<Response> {
        RESPONSE.with(|r| r.borrow_mut().take())
    }

    /// What an adapter's export runs: answers the waiting request.
    pub fn serve<A: Adapter>() {
        if let Some(request) = REQUEST.with(|r| r.borrow_mut().take()) {
            let response = request.answer::<A>();
            RESPONSE.with(|r| *r.borrow_mut() = Some(response));
        }
    }
}

/// An adapter's `init` and `map`: its folder's mapping, for use inside its
/// `impl Adapter`.
#[macro_export]
macro_rules! mapped {
    () => {
        fn init(settings: &$crate::device::Value) -> Vec<$crate::device::Call> {
            super::mapping::init(settings)
        }

        fn map(
            event: &$crate::device::Value,
            settings: &$crate::device::Value,
        ) -> Vec<$crate::device::Call> {
            super::mapping::map(event, settings)
        }
    };
}

/// Exports an adapter from the browser module as `device:<slug>`; in a
/// destination's `device.rs`, after its `Adapter` impl for `Device`.
#[macro_export]
macro_rules! export_adapter {
    ($slug:ident) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        #[unsafe(export_name = concat!("device:", stringify!($slug)))]
        extern "C" fn export() {
            $crate::device::exchange::serve::<Device>();
        }
    };
}
