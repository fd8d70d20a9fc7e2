//! Intercom's messenger (`widget.intercom.io/widget/<app id>`): the snippet
//! defines `Intercom`, queueing in `Intercom.q` until the widget replaces it.

use crate::device::{Adapter, Queue, Script, Stub, Value};
use crate::export_adapter;

use super::mapping;

pub struct Device;

impl Adapter for Device {
    const STUBS: &'static [Stub] = &[Stub {
        global: "Intercom",
        queue: Queue::Own("q"),
    }];

    fn script(settings: &Value) -> Script {
        Script::new(mapping::script_url(settings))
    }

    crate::mapped!();
}

export_adapter!(intercom);
