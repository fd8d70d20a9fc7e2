//! posthog-js's snippet build (`array.js`), which puts an uninitialised
//! instance in `window.posthog`.

use crate::device::{Adapter, Script, Value, setting};
use crate::export_adapter;

const SCRIPT_URL: &str = "https://us-assets.i.posthog.com/static/array.js";

pub struct Device;

impl Adapter for Device {
    const READY: &'static str = "posthog.init";

    fn script(settings: &Value) -> Script {
        Script::new(setting(settings, "scriptUrl", SCRIPT_URL))
    }

    crate::mapped!();
}

export_adapter!(posthog);
