//! mixpanel-browser's snippet build (`mixpanel-2-latest.min.js`): it needs
//! the snippet's `window.mixpanel`, an array marked with `__SV` and `_i`
//! (a plain object makes `init` throw), and defines `mixpanel.init`, which
//! puts the main instance in its place.

use crate::device::{Adapter, Script, Value, setting};
use crate::export_adapter;

const SCRIPT_URL: &str = "https://cdn.mxpnl.com/libs/mixpanel-2-latest.min.js";

pub struct Device;

impl Adapter for Device {
    const READY: &'static str = "mixpanel.init";

    fn globals(_settings: &Value) -> Vec<(&'static str, Value)> {
        vec![
            ("mixpanel", Value::Array(Vec::new())),
            ("mixpanel.__SV", Value::Number(1.2)),
            ("mixpanel._i", Value::Array(Vec::new())),
        ]
    }

    fn script(settings: &Value) -> Script {
        Script::new(setting(settings, "scriptUrl", SCRIPT_URL))
    }

    crate::mapped!();
}

export_adapter!(mixpanel);
