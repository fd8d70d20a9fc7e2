//! Per-source module selection: the browser library exports each device
//! adapter as `device:<slug>`, the only root reaching that adapter's code.
//! A source's module keeps the exports of its enabled adapters, loses the
//! others, and walrus's garbage collection drops whatever no export, start
//! function or table reaches any longer. Same input and set, same bytes.

use std::collections::BTreeSet;

use crate::{BundleError, DeviceSet};

/// The prefix of a device adapter's export name.
pub const DEVICE_EXPORT_PREFIX: &str = "device:";

fn config() -> walrus::ModuleConfig {
    let mut config = walrus::ModuleConfig::new();
    // walrus would note itself as a producer: bytes no browser needs.
    config.generate_producers_section(false);
    config
}

fn parse(wasm: &[u8]) -> Result<walrus::Module, BundleError> {
    config()
        .parse(wasm)
        .map_err(|e| BundleError::Module(format!("{e:#}")))
}

/// The slugs of the device adapters `wasm` exports.
pub(crate) fn device_slugs(wasm: &[u8]) -> Result<BTreeSet<String>, BundleError> {
    let module = parse(wasm)?;
    Ok(module
        .exports
        .iter()
        .filter_map(|e| e.name.strip_prefix(DEVICE_EXPORT_PREFIX))
        .map(str::to_string)
        .collect())
}

/// `wasm` with the device adapters of `keep` and none other, and nothing
/// unreachable. Slugs of `keep` the module does not export are not looked
/// for here: the caller checked them.
pub(crate) fn prune(wasm: &[u8], keep: &DeviceSet) -> Result<Vec<u8>, BundleError> {
    let mut module = parse(wasm)?;
    let dropped: Vec<walrus::ExportId> = module
        .exports
        .iter()
        .filter(|e| {
            e.name
                .strip_prefix(DEVICE_EXPORT_PREFIX)
                .is_some_and(|slug| !keep.contains(slug))
        })
        .map(|e| e.id())
        .collect();
    for id in dropped {
        module.exports.delete(id);
    }
    walrus::passes::gc::run(&mut module);
    Ok(module.emit_wasm())
}
