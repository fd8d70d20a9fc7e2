//! klaviyo.js, which defines the `klaviyo` object whose `push` takes the
//! classic `_learnq` commands.

use crate::device::{Adapter, Call, Script, Value};
use crate::export_adapter;

use super::mapping;

pub struct Device;

impl Adapter for Device {
    const READY: &'static str = "klaviyo.push";

    fn script(settings: &Value) -> Script {
        Script::new(mapping::script_url(settings))
    }

    fn init(settings: &Value) -> Vec<Call> {
        mapping::init(settings)
    }

    fn map(event: &Value, settings: &Value) -> Vec<Call> {
        mapping::map(event, settings)
    }
}

export_adapter!(klaviyo);
