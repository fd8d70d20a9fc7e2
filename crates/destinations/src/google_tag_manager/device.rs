//! gtm.js: the container reads the `dataLayer` array the page pushes to.

use crate::device::{Adapter, Script, Value};
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

    crate::mapped!();
}

export_adapter!(google_tag_manager);
