//! klaviyo.js, which defines the `klaviyo` object whose `push` takes the
//! classic `_learnq` commands.

use crate::device::{Adapter, Script, Value};
use crate::export_adapter;

use super::mapping;

pub struct Device;

impl Adapter for Device {
    const READY: &'static str = "klaviyo.push";

    fn script(settings: &Value) -> Script {
        Script::new(mapping::script_url(settings))
    }

    crate::mapped!();
}

export_adapter!(klaviyo);
