//! @amplitude/analytics-browser's script build, which defines
//! `window.amplitude`.

use crate::device::{Adapter, Script, Value, setting};
use crate::export_adapter;

const SCRIPT_URL: &str = "https://cdn.amplitude.com/libs/analytics-browser-2.11.1-min.js.gz";

pub struct Device;

impl Adapter for Device {
    const READY: &'static str = "amplitude.init";

    fn script(settings: &Value) -> Script {
        Script::new(setting(settings, "scriptUrl", SCRIPT_URL))
    }

    crate::mapped!();
}

export_adapter!(amplitude);
