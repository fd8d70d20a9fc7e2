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
    prune_data(&mut module);
    Ok(module.emit_wasm())
}

/// The addresses the module's code and globals name: every 32-bit constant
/// (and both halves of every 64-bit one, which can be a pointer and a
/// length stored at once), and every memory access's static offset.
fn code_addresses(module: &walrus::Module) -> BTreeSet<u32> {
    use walrus::ir::{Instr, Value, Visitor};
    struct Addresses(BTreeSet<u32>);
    impl<'a> Visitor<'a> for Addresses {
        fn visit_instr(&mut self, instr: &'a Instr, _: &'a walrus::InstrLocId) {
            match instr {
                Instr::Const(c) => match c.value {
                    Value::I32(v) => {
                        self.0.insert(v as u32);
                    }
                    Value::I64(v) => {
                        self.0.insert(v as u32);
                        self.0.insert((v >> 32) as u32);
                    }
                    _ => {}
                },
                Instr::Load(walrus::ir::Load { arg, .. })
                | Instr::Store(walrus::ir::Store { arg, .. })
                | Instr::LoadSimd(walrus::ir::LoadSimd { arg, .. })
                | Instr::AtomicRmw(walrus::ir::AtomicRmw { arg, .. })
                | Instr::Cmpxchg(walrus::ir::Cmpxchg { arg, .. })
                | Instr::AtomicNotify(walrus::ir::AtomicNotify { arg, .. })
                | Instr::AtomicWait(walrus::ir::AtomicWait { arg, .. }) => {
                    self.0.insert(arg.offset as u32);
                }
                _ => {}
            }
        }
    }
    let mut found = Addresses(BTreeSet::new());
    for (_, f) in module.funcs.iter_local() {
        walrus::ir::dfs_in_order(&mut found, f, f.entry_block());
    }
    for g in module.globals.iter() {
        if let walrus::GlobalKind::Local(walrus::ConstExpr::Value(Value::I32(v))) = g.kind {
            found.0.insert(v as u32);
        }
    }
    found.0
}

/// The custom section in which the build lists the module's statics, as
/// the linker laid them out (one data segment each): `(start, end)` pairs,
/// little-endian `u32`s. wasm-opt splits and trims segments, so only this
/// list says which bytes belong together; the bundler removes it.
pub const STATICS_SECTION: &str = "switchyard:statics";

/// `(start, end)` of each static, sorted, from the build's list.
fn statics(module: &mut walrus::Module) -> Option<Vec<(u32, u32)>> {
    let section = module.customs.remove_raw(STATICS_SECTION)?;
    let words: Vec<u32> = section
        .data
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    let mut spans: Vec<(u32, u32)> = words.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    spans.sort();
    Some(spans)
}

/// Drops the data of statics nothing left in the module points into, and
/// merges what stays into as few segments as the gaps between them allow.
///
/// The library is linked with one data segment per static
/// (`--no-merge-data-segments`) and the build lists them
/// ([`STATICS_SECTION`]), so a pruned adapter's strings and tables can go.
/// A static stays if an address the remaining code names (a constant, an
/// access's offset) or any 4 bytes of a static that stays (a pointer)
/// falls within it or just past its end. Conservative: a number that
/// happens to look like an address keeps a static, never the other way
/// round; a module without the list keeps all its data.
fn prune_data(module: &mut walrus::Module) {
    let Some(spans) = statics(module) else {
        return;
    };
    let mut segments: Vec<(u32, walrus::DataId)> = Vec::new();
    let mut memory = None;
    for d in module.data.iter() {
        match &d.kind {
            walrus::DataKind::Active {
                memory: m,
                offset: walrus::ConstExpr::Value(walrus::ir::Value::I32(at)),
            } => {
                segments.push((*at as u32, d.id()));
                memory = Some(*m);
            }
            // Placed by a global, or passive: leave the data as it is.
            _ => return,
        }
    }
    let Some(memory) = memory else {
        return;
    };
    segments.sort();
    // The initial memory, to read the statics' bytes from.
    let base = segments[0].0;
    let mut image: Vec<u8> = Vec::new();
    for (at, id) in &segments {
        let value = &module.data.get(*id).value;
        let from = (*at - base) as usize;
        if image.len() < from + value.len() {
            image.resize(from + value.len(), 0);
        }
        image[from..from + value.len()].copy_from_slice(value);
    }
    let bytes_of = |(start, end): (u32, u32)| -> &[u8] {
        let from = (start.saturating_sub(base) as usize).min(image.len());
        let to = (end.saturating_sub(base) as usize).clamp(from, image.len());
        &image[from..to]
    };

    let mut live = vec![false; spans.len()];
    let mut pending: Vec<u32> = code_addresses(module).into_iter().collect();
    while let Some(address) = pending.pop() {
        // The static the address falls in, and one that ends exactly there
        // (a slice's end pointer).
        let upto = spans.partition_point(|(start, _)| *start <= address);
        for i in (0..upto).rev() {
            let (start, end) = spans[i];
            if end < address {
                break;
            }
            if !live[i] {
                live[i] = true;
                pending.extend(
                    bytes_of(spans[i])
                        .windows(4)
                        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])),
                );
            }
            if start < address {
                break;
            }
        }
    }

    // A segment stays if it holds bytes of a static that stays, or of no
    // static the list names.
    let overlaps = |(start, end): (u32, u32)| -> Vec<usize> {
        let first = spans.partition_point(|(_, e)| *e <= start);
        (first..spans.len())
            .take_while(|i| spans[*i].0 < end)
            .collect()
    };
    const GAP: u32 = 8;
    let mut merged: Vec<(u32, Vec<u8>)> = Vec::new();
    for (at, id) in &segments {
        let value = &module.data.get(*id).value;
        let end = *at + value.len() as u32;
        let owners = overlaps((*at, end));
        if !owners.is_empty() && owners.iter().all(|i| !live[*i]) {
            continue;
        }
        // Merged across gaps of a few zero bytes: a segment's header costs
        // about as much.
        match merged.last_mut() {
            Some((start, bytes))
                if *at >= *start + bytes.len() as u32
                    && *at - (*start + bytes.len() as u32) <= GAP =>
            {
                bytes.resize((*at - *start) as usize, 0);
                bytes.extend_from_slice(value);
            }
            _ => merged.push((*at, value.clone())),
        }
    }
    for (_, id) in &segments {
        module.data.delete(*id);
        module.memories.get_mut(memory).data_segments.remove(id);
    }
    for (at, value) in merged {
        let id = module.data.add(
            walrus::DataKind::Active {
                memory,
                offset: walrus::ConstExpr::Value(walrus::ir::Value::I32(at as i32)),
            },
            value,
        );
        module.memories.get_mut(memory).data_segments.insert(id);
    }
}

#[cfg(test)]
mod tests {
    use walrus::{ConstExpr, DataKind, FunctionBuilder, ModuleConfig, ValType, ir::Value};

    use super::*;

    /// A module with a memory and statics: the core's string at 1024 (its
    /// bytes point to a table at 1040, which ends with zeros that wasm-opt
    /// would trim), an adapter's string at 2048 that only its export
    /// names, and the build's list of the statics.
    fn module_with_statics() -> Vec<u8> {
        let mut m = walrus::Module::with_config(ModuleConfig::new());
        let memory = m.memories.add_local(false, false, 1, None, None);
        let add = |m: &mut walrus::Module, at: i32, bytes: &[u8]| {
            let id = m.data.add(
                DataKind::Active {
                    memory,
                    offset: ConstExpr::Value(Value::I32(at)),
                },
                bytes.to_vec(),
            );
            m.memories.get_mut(memory).data_segments.insert(id);
        };
        add(&mut m, 1024, &[b'c', b'o', b'r', b'e', 0x10, 0x04, 0, 0]);
        add(&mut m, 1040, &[1, 2, 3, 4]);
        add(&mut m, 2048, b"adapter");
        for (name, at) in [("start", 1024), ("device:a", 2048)] {
            let mut b = FunctionBuilder::new(&mut m.types, &[], &[ValType::I32]);
            b.func_body().i32_const(at);
            let f = b.finish(vec![], &mut m.funcs);
            m.exports.add(name, f);
        }
        let list: Vec<u8> = [(1024u32, 1032u32), (1040, 1052), (2048, 2055)]
            .iter()
            .flat_map(|(s, e)| [s.to_le_bytes(), e.to_le_bytes()])
            .flatten()
            .collect();
        m.customs.add(walrus::RawCustomSection {
            name: STATICS_SECTION.into(),
            data: list,
        });
        m.emit_wasm()
    }

    fn data(wasm: &[u8]) -> Vec<(i32, Vec<u8>)> {
        let m = walrus::Module::from_buffer(wasm).unwrap();
        assert!(
            m.customs.iter().all(|(_, c)| c.name() != STATICS_SECTION),
            "the list of statics is not served"
        );
        let mut out: Vec<(i32, Vec<u8>)> = m
            .data
            .iter()
            .map(|d| match d.kind {
                DataKind::Active {
                    offset: ConstExpr::Value(Value::I32(at)),
                    ..
                } => (at, d.value.clone()),
                _ => panic!("only active data"),
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_pruned_adapters_statics_go_and_what_the_core_reaches_stays_merged() {
        let wasm = module_with_statics();
        let core = data(&prune(&wasm, &DeviceSet::default()).unwrap());
        // The core's string and the table it points to, merged across the
        // 8 zero bytes between them; the adapter's string is gone.
        let mut merged = b"core\x10\x04\0\0".to_vec();
        merged.extend([0; 8]);
        merged.extend([1, 2, 3, 4]);
        assert_eq!(core, vec![(1024, merged.clone())]);
        let with = data(&prune(&wasm, &DeviceSet::new(["a"])).unwrap());
        assert_eq!(with, vec![(1024, merged), (2048, b"adapter".to_vec())]);
        // The same input gives the same bytes.
        assert_eq!(
            prune(&wasm, &DeviceSet::default()).unwrap(),
            prune(&wasm, &DeviceSet::default()).unwrap()
        );
    }
}
