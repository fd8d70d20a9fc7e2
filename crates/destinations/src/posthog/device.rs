//! posthog-js's snippet build (`array.js`), which puts an uninitialised
//! instance in `window.posthog`.

use crate::device::{Adapter, Call, Script, Value, setting};
use crate::export_adapter;

use super::mapping;

const SCRIPT_URL: &str = "https://us-assets.i.posthog.com/static/array.js";

pub struct Device;

impl Adapter for Device {
    const READY: &'static str = "posthog.init";

    fn script(settings: &Value) -> Script {
        Script::new(setting(settings, "scriptUrl", SCRIPT_URL))
    }

    fn init(settings: &Value) -> Vec<Call> {
        mapping::init(settings)
    }

    fn map(event: &Value, settings: &Value) -> Vec<Call> {
        mapping::map(event, settings)
    }
}

export_adapter!(posthog);
