//! gtag.js: Google's snippet defines `gtag`, which pushes its `arguments`
//! to `dataLayer`; gtag.js reads that queue.

use crate::device::{Adapter, Queue, Script, Stub, Value};
use crate::export_adapter;

use super::mapping;

pub struct Device;

impl Adapter for Device {
    const STUBS: &'static [Stub] = &[Stub {
        global: "gtag",
        queue: Queue::Global("dataLayer"),
    }];

    fn script(settings: &Value) -> Script {
        Script::new(mapping::script_url(settings))
    }

    crate::mapped!();
}

export_adapter!(google_analytics_4);
