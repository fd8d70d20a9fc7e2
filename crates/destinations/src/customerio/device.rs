//! Customer.io's `track.js`: the snippet starts the `_cio` queue and gives
//! the script tag `id="cio-tracker"` and the site id as `data-site-id`;
//! accounts in the EU region load `track-eu.js`.

use crate::device::{Adapter, Script, Value, setting};
use crate::export_adapter;

const SCRIPT_URL: &str = "https://assets.customer.io/assets/track.js";
const SCRIPT_URL_EU: &str = "https://assets.customer.io/assets/track-eu.js";

pub struct Device;

impl Adapter for Device {
    const READY: &'static str = "_cio.identify";

    fn globals(_settings: &Value) -> Vec<(&'static str, Value)> {
        vec![("_cio", Value::Array(Vec::new()))]
    }

    fn script(settings: &Value) -> Script {
        let default = match setting(settings, "region", "us") {
            "eu" => SCRIPT_URL_EU,
            _ => SCRIPT_URL,
        };
        Script {
            url: setting(settings, "scriptUrl", default).into(),
            attributes: vec![
                ("id", "cio-tracker".into()),
                ("data-site-id", setting(settings, "siteId", "").into()),
            ],
        }
    }

    crate::mapped!();
}

export_adapter!(customerio);
