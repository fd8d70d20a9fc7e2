//! @amplitude/analytics-browser's script build, which defines
//! `window.amplitude`.

use crate::device::{Adapter, Call, Script, Value, setting};
use crate::export_adapter;

use super::mapping;

const SCRIPT_URL: &str = "https://cdn.amplitude.com/libs/analytics-browser-2.11.1-min.js.gz";

pub struct Device;

impl Adapter for Device {
    const READY: &'static str = "amplitude.init";

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

export_adapter!(amplitude);
