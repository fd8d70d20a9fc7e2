//! Crisp's chatbox loader (`client.crisp.chat/l.js`): the snippet sets
//! `$crisp` to an array, where commands queue, and `CRISP_WEBSITE_ID`.
//!
//! `l.js` only starts the chatbox: it loads Crisp's client script on its
//! own, after its load event, and that client replaces the array with the
//! `$crisp` object (`push`, `get`, `is`), running the commands queued so
//! far. Nothing new is on `window` when `l.js` has run, so there is no
//! global to check; the array stands for the chatbox until it is there.

use crate::device::{Adapter, Script, Value, setting};
use crate::export_adapter;

const SCRIPT_URL: &str = "https://client.crisp.chat/l.js";

pub struct Device;

impl Adapter for Device {
    fn globals(settings: &Value) -> Vec<(&'static str, Value)> {
        vec![
            ("$crisp", Value::Array(Vec::new())),
            (
                "CRISP_WEBSITE_ID",
                Value::str(setting(settings, "websiteId", "")),
            ),
        ]
    }

    fn script(settings: &Value) -> Script {
        Script::new(setting(settings, "scriptUrl", SCRIPT_URL))
    }

    crate::mapped!();
}

export_adapter!(crisp);
