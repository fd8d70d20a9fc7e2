//! gtm.js: the container reads the `dataLayer` array the page pushes to.

use crate::device::{Adapter, Call, Script, Value};
use crate::export_adapter;

use super::mapping;

pub struct Device;

impl Adapter for Device {
    fn globals(_settings: &Value) -> Vec<(&'static str, Value)> {
        vec![("dataLayer", Value::Array(Vec::new()))]
    }

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

export_adapter!(google_tag_manager);
