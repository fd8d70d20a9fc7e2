//! Hotjar's `hotjar-<id>.js`: the snippet sets `_hjSettings` (site id and
//! snippet version) and defines `hj`, queueing in `hj.q`.

use crate::device::{Adapter, Queue, Script, Stub, Value, setting};
use crate::export_adapter;

use super::mapping;

pub struct Device;

impl Adapter for Device {
    const STUBS: &'static [Stub] = &[Stub {
        global: "hj",
        queue: Queue::Own("q"),
    }];

    fn globals(settings: &Value) -> Vec<(&'static str, Value)> {
        // The site id is digits (the manifest's pattern); Hotjar's snippet
        // writes it as a number.
        let id = setting(settings, "siteId", "")
            .bytes()
            .try_fold(0f64, |n, b| b.is_ascii_digit().then(|| n * 10.0 + f64::from(b - b'0')))
            .map_or(Value::Null, Value::Number);
        vec![(
            "_hjSettings",
            Value::object(vec![("hjid", id), ("hjsv", Value::Number(6.0))]),
        )]
    }

    fn script(settings: &Value) -> Script {
        Script::new(mapping::script_url(settings))
    }

    crate::mapped!();
}

export_adapter!(hotjar);
