//! Built modules: one per set of device adapters, named by content hash,
//! compressed on first request in each encoding, kept by set and by hash.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use crate::{Encoding, content_hash};

/// Which device adapters a module keeps: slugs, sorted, without repeats,
/// so equal sets compare (and are cached) as one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceSet(Vec<String>);

impl DeviceSet {
    pub fn new<S: Into<String>>(slugs: impl IntoIterator<Item = S>) -> DeviceSet {
        let mut slugs: Vec<String> = slugs.into_iter().map(Into::into).collect();
        slugs.sort_unstable();
        slugs.dedup();
        DeviceSet(slugs)
    }

    pub fn slugs(&self) -> &[String] {
        &self.0
    }

    pub fn contains(&self, slug: &str) -> bool {
        self.0.binary_search_by(|s| s.as_str().cmp(slug)).is_ok()
    }
}

impl<S: Into<String>> FromIterator<S> for DeviceSet {
    fn from_iter<I: IntoIterator<Item = S>>(slugs: I) -> DeviceSet {
        DeviceSet::new(slugs)
    }
}

/// A built WebAssembly module, named by its content hash.
#[derive(Debug)]
pub struct Module {
    /// Hex content hash; the module is served at `/b/{hash}.wasm`.
    pub hash: String,
    pub bytes: Arc<Vec<u8>>,
    brotli: OnceLock<Arc<Vec<u8>>>,
    gzip: OnceLock<Arc<Vec<u8>>>,
}

impl Module {
    pub fn new(bytes: Vec<u8>) -> Module {
        Module {
            hash: content_hash(&bytes),
            bytes: Arc::new(bytes),
            brotli: OnceLock::new(),
            gzip: OnceLock::new(),
        }
    }

    fn slot(&self, encoding: Encoding) -> &OnceLock<Arc<Vec<u8>>> {
        match encoding {
            Encoding::Brotli => &self.brotli,
            Encoding::Gzip => &self.gzip,
        }
    }

    /// The module's bytes in `encoding` (`None`: as built) if they are at
    /// hand: costs no compression.
    pub fn cached(&self, encoding: Option<Encoding>) -> Option<Arc<Vec<u8>>> {
        match encoding {
            None => Some(self.bytes.clone()),
            Some(encoding) => self.slot(encoding).get().cloned(),
        }
    }

    /// The module's bytes in `encoding`: compressed the first time (by one
    /// caller; others asking meanwhile wait for it), then kept. Brotli at
    /// quality 11 on a module takes tens of milliseconds: call this where
    /// blocking is allowed.
    pub fn encoded(&self, encoding: Option<Encoding>) -> Arc<Vec<u8>> {
        match encoding {
            None => self.bytes.clone(),
            Some(encoding) => self
                .slot(encoding)
                .get_or_init(|| Arc::new(encoding.compress(&self.bytes)))
                .clone(),
        }
    }
}

/// A module being built for one set, or built (or the reason it could
/// not be: the same input fails the same way again).
pub(crate) type ModuleSlot = Arc<OnceLock<Result<Arc<Module>, String>>>;

/// Built modules by set. Sets that prune to the same bytes share one
/// `Module`. Bounded: the oldest set goes first. A lookup by hash scans
/// the sets, a few hundred at most: one map, so nothing can disagree.
#[derive(Debug, Default)]
pub(crate) struct ModuleCache {
    by_set: HashMap<DeviceSet, ModuleSlot>,
    order: VecDeque<DeviceSet>,
}

impl ModuleCache {
    /// The slot of `set`, made (empty) if there is none, evicting the
    /// oldest sets beyond `bound`.
    pub(crate) fn slot(&mut self, set: &DeviceSet, bound: usize) -> ModuleSlot {
        if let Some(slot) = self.by_set.get(set) {
            return slot.clone();
        }
        while self.order.len() >= bound {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.by_set.remove(&old);
        }
        let slot = ModuleSlot::default();
        self.by_set.insert(set.clone(), slot.clone());
        self.order.push_back(set.clone());
        slot
    }

    /// The built module of `set`, if it is built.
    pub(crate) fn get(&self, set: &DeviceSet) -> Option<Arc<Module>> {
        match self.by_set.get(set)?.get()? {
            Ok(module) => Some(module.clone()),
            Err(_) => None,
        }
    }

    /// The built module whose hash is `hash`.
    pub(crate) fn by_hash(&self, hash: &str) -> Option<Arc<Module>> {
        self.by_set.values().find_map(|slot| match slot.get() {
            Some(Ok(module)) if module.hash == hash => Some(module.clone()),
            _ => None,
        })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_set.len()
    }
}
