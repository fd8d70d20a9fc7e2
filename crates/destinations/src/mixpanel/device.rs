//! mixpanel-browser's snippet build (`mixpanel-2-latest.min.js`): it needs
//! the snippet's `window.mixpanel`, an array marked with `__SV` and `_i`
//! (a plain object makes `init` throw), and defines `mixpanel.init`, which
//! puts the main instance in its place.

use crate::device::{Adapter, Call, Script, Value, setting};
use crate::export_adapter;

use super::mapping;

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

    fn init(settings: &Value) -> Vec<Call> {
        mapping::init(settings)
    }

    fn map(event: &Value, settings: &Value) -> Vec<Call> {
        mapping::map(event, settings)
    }
}

export_adapter!(mixpanel);
