//! fbevents.js: Facebook's snippet defines `fbq`, queueing its `arguments`
//! in `fbq.queue` until fbevents.js sets `fbq.callMethod`.

use crate::device::{Adapter, Queue, Script, Stub, Value, setting};
use crate::export_adapter;

const SCRIPT_URL: &str = "https://connect.facebook.net/en_US/fbevents.js";

pub struct Device;

impl Adapter for Device {
    const STUBS: &'static [Stub] = &[Stub {
        global: "fbq",
        queue: Queue::Own("queue"),
    }];

    fn script(settings: &Value) -> Script {
        Script::new(setting(settings, "scriptUrl", SCRIPT_URL))
    }

    crate::mapped!();
}

export_adapter!(facebook_pixel);
