//! Builds what a page loads for one source: the loader script with the
//! source's settings inlined, and the content-hashed WebAssembly module it
//! fetches, holding only the device adapters the source has enabled
//! (`prune`), each also compressed (brotli, gzip) for the server to pick
//! from. Input is the client as `cargo xtask build-client` left it in
//! `bundles/`. No HTTP here: the server serves what this crate builds.

mod module;
mod prune;

pub use module::{DeviceSet, Module};
pub use prune::{DEVICE_EXPORT_PREFIX, STATICS_SECTION};

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// File names `cargo xtask build-client` writes: the loader template
/// (already wrapped and minified) and the module.
pub const WASM_FILE: &str = "switchyard_bg.wasm";
pub const LOADER_FILE: &str = "loader.js";

/// The placeholder in the loader template that receives the settings: a
/// free global identifier, so a minifier leaves it as it is.
pub const CONFIG_PLACEHOLDER: &str = "__SWITCHYARD_CONFIG__";

/// How many compressed loaders are kept (one per ETag and encoding; a
/// loader is a few KB compressed, so this bounds the cache to a few MB).
const CACHED_LOADERS: usize = 2048;

/// How many sets of device adapters keep their built module (a module is
/// under 100 KB, and as much again compressed).
const CACHED_MODULES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("the browser library is not built ({path}: {cause}); run `cargo xtask build-client`")]
    Missing { path: PathBuf, cause: String },
    #[error("the loader template has no {CONFIG_PLACEHOLDER} placeholder")]
    Template,
    #[error("the browser library's module cannot be read or rewritten: {0}")]
    Module(String),
    #[error("the browser library has no device adapter `{0}` (no export `device:{0}`)")]
    NoAdapter(String),
}

/// A compressed form of an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Brotli, quality 11.
    Brotli,
    /// Gzip, level 9.
    Gzip,
}

impl Encoding {
    /// The name HTTP uses for it (`Content-Encoding`).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// Compresses `bytes`, at the highest setting: artifacts are
    /// compressed once and served many times.
    pub fn compress(self, bytes: &[u8]) -> Vec<u8> {
        const IN_MEMORY: &str = "compressing into memory cannot fail";
        match self {
            Encoding::Brotli => {
                let mut out = Vec::with_capacity(bytes.len() / 2);
                {
                    let mut enc = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
                    enc.write_all(bytes).expect(IN_MEMORY);
                }
                out
            }
            Encoding::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(bytes.len() / 2),
                    flate2::Compression::best(),
                );
                enc.write_all(bytes).expect(IN_MEMORY);
                enc.finish().expect(IN_MEMORY)
            }
        }
    }
}

/// A compressed loader, or the place where it will be once compressed.
type Slot = Arc<OnceLock<Arc<Vec<u8>>>>;

/// Compressed loaders by ETag and encoding, oldest evicted first. Each
/// entry is compressed once: a request that finds the entry being filled
/// waits for it rather than compressing the same loader again.
#[derive(Debug, Default)]
struct LoaderCache {
    entries: HashMap<(String, Encoding), Slot>,
    order: VecDeque<(String, Encoding)>,
}

/// The client's built artifacts, loaded once.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// The loader template (wasm-bindgen's glue and `web/loader.js` in one
    /// function scope, minified), split at the settings placeholder.
    head: Arc<str>,
    tail: Arc<str>,
    /// The module as built, with every device adapter: the input of each
    /// source's module, never served itself.
    wasm: Arc<Vec<u8>>,
    /// The device adapters `wasm` exports.
    adapters: Arc<BTreeSet<String>>,
    modules: Arc<Mutex<module::ModuleCache>>,
    loaders: Arc<Mutex<LoaderCache>>,
}

/// A requested set of device adapters, split by whether the module has
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The adapters the module exports: what a module can be built for.
    pub set: DeviceSet,
    /// Requested slugs the module has no adapter for, sorted.
    pub missing: Vec<String>,
}

/// What the loader of one source is told, inlined as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct LoaderConfig<'a> {
    #[serde(rename = "writeKey")]
    pub write_key: &'a str,
    /// Content hash of the module to fetch.
    pub wasm: &'a str,
    /// The source's revision this loader was built for.
    pub revision: i64,
    /// Enabled device-mode destinations and their settings.
    pub destinations: &'a [DeviceDestination],
    /// Names of the destinations the server delivers to (enabled
    /// cloud-mode connections), for each event's `_metadata.unbundled`.
    pub unbundled: &'a [String],
}

/// A device-mode destination as the loader is told of it. The caller
/// passes only settings that are not secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceDestination {
    pub slug: String,
    pub name: String,
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// The consent categories the destination needs: the page's consent
    /// preferences must allow each before it loads or gets an event.
    pub categories: Vec<String>,
}

/// The source-specific part of a loader.
#[derive(Debug, Clone, Default)]
pub struct SourceBundle {
    pub write_key: String,
    pub revision: i64,
    pub destinations: Vec<DeviceDestination>,
    /// Catalog names of the enabled cloud-mode destinations.
    pub unbundled: Vec<String>,
}

/// One source's loader script.
#[derive(Debug, Clone)]
pub struct Loader {
    pub js: String,
    /// Strong ETag of `js`.
    pub etag: String,
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, BundleError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| BundleError::Missing {
        path,
        cause: e.to_string(),
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// First 16 bytes of SHA-256, hex: a content hash for file names and ETags.
pub fn content_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes)[..16])
}

impl Artifacts {
    /// Loads the artifacts from a `bundles/` directory.
    pub fn load(dir: &Path) -> Result<Artifacts, BundleError> {
        let template = String::from_utf8_lossy(&read(dir, LOADER_FILE)?).into_owned();
        let wasm = read(dir, WASM_FILE)?;
        Artifacts::new(&template, wasm)
    }

    /// From the loader template, as `cargo xtask build-client` writes it
    /// (one function scope holding glue and loader, with the placeholder
    /// where the settings go), and the module, which is read to list its
    /// device adapters. Builds no module yet.
    pub fn new(template: &str, wasm: Vec<u8>) -> Result<Artifacts, BundleError> {
        let (head, tail) = template
            .split_once(CONFIG_PLACEHOLDER)
            .ok_or(BundleError::Template)?;
        Ok(Artifacts {
            head: head.into(),
            tail: tail.into(),
            adapters: Arc::new(prune::device_slugs(&wasm)?),
            wasm: Arc::new(wasm),
            modules: Arc::default(),
            loaders: Arc::default(),
        })
    }

    /// The module as built, every device adapter in it.
    pub fn full_module(&self) -> &[u8] {
        &self.wasm
    }

    /// The slugs of the device adapters the module exports.
    pub fn adapters(&self) -> &BTreeSet<String> {
        &self.adapters
    }

    /// Splits requested slugs into the set a module can be built for and
    /// those the module has no adapter for.
    pub fn select<S: AsRef<str>>(&self, slugs: impl IntoIterator<Item = S>) -> Selection {
        let (known, missing): (Vec<S>, Vec<S>) = slugs
            .into_iter()
            .partition(|s| self.adapters.contains(s.as_ref()));
        let missing = DeviceSet::new(missing.iter().map(|s| s.as_ref().to_string()));
        Selection {
            set: DeviceSet::new(known.iter().map(|s| s.as_ref().to_string())),
            missing: missing.slugs().to_vec(),
        }
    }

    /// The module of `set`, if it is built: costs nothing.
    pub fn cached_module(&self, set: &DeviceSet) -> Option<Arc<Module>> {
        self.modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(set)
    }

    /// The module keeping the device adapters of `set` and no other:
    /// pruned and hashed the first time (by one caller; others asking
    /// meanwhile wait for it, within the 20 ms a build is allowed), then
    /// kept, shared by every source with the same set. Compression waits
    /// for the first request in each encoding ([`Module::encoded`]). A
    /// slug the module has no adapter for is an error: [`Self::select`]
    /// first.
    pub fn module(&self, set: &DeviceSet) -> Result<Arc<Module>, BundleError> {
        if let Some(slug) = set.slugs().iter().find(|s| !self.adapters.contains(*s)) {
            return Err(BundleError::NoAdapter(slug.clone()));
        }
        let slot = self
            .modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .slot(set, CACHED_MODULES);
        let built = slot.get_or_init(|| {
            let bytes = prune::prune(&self.wasm, set).map_err(|e| e.to_string())?;
            let module = Module::new(bytes);
            // Another set that pruned to the same bytes: share its module.
            let cache = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            Ok(cache
                .by_hash(&module.hash)
                .unwrap_or_else(|| Arc::new(module)))
        });
        built.clone().map_err(BundleError::Module)
    }

    /// A built module by its hash, as `/b/{hash}.wasm` names it.
    pub fn module_by_hash(&self, hash: &str) -> Option<Arc<Module>> {
        self.modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_hash(hash)
    }

    /// Builds the loader for one source, which fetches `module`.
    pub fn loader(&self, source: &SourceBundle, module: &Module) -> Loader {
        let config = LoaderConfig {
            write_key: &source.write_key,
            wasm: &module.hash,
            revision: source.revision,
            destinations: &source.destinations,
            unbundled: &source.unbundled,
        };
        // Serialising a struct of strings cannot fail.
        let json = serde_json::to_string(&config).unwrap_or_default();
        let js = [&*self.head, &json, &*self.tail].concat();
        let etag = ["\"", &content_hash(js.as_bytes()), "\""].concat();
        Loader { js, etag }
    }

    /// The loader compressed in `encoding`, if it already is: costs no
    /// compression.
    pub fn cached_loader(&self, loader: &Loader, encoding: Encoding) -> Option<Arc<Vec<u8>>> {
        let cache = self.loaders.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entries
            .get(&(loader.etag.clone(), encoding))
            .and_then(|slot| slot.get().cloned())
    }

    /// The loader compressed in `encoding`: compressed the first time (by
    /// one caller; others asking meanwhile wait for it), then kept, keyed
    /// by its ETag. Brotli at quality 11 takes milliseconds: call this
    /// where blocking is allowed.
    pub fn compressed_loader(&self, loader: &Loader, encoding: Encoding) -> Arc<Vec<u8>> {
        let slot = {
            let mut cache = self.loaders.lock().unwrap_or_else(|e| e.into_inner());
            let key = (loader.etag.clone(), encoding);
            match cache.entries.get(&key) {
                Some(slot) => slot.clone(),
                None => {
                    while cache.order.len() >= CACHED_LOADERS {
                        if let Some(old) = cache.order.pop_front() {
                            cache.entries.remove(&old);
                        }
                    }
                    let slot = Arc::new(OnceLock::new());
                    cache.entries.insert(key.clone(), slot.clone());
                    cache.order.push_back(key);
                    slot
                }
            }
        };
        slot.get_or_init(|| Arc::new(encoding.compress(loader.js.as_bytes())))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use walrus::{FunctionBuilder, Module as Wasm, ModuleConfig, ValType};

    use super::*;

    /// A module shaped like the browser library: a core export, and one
    /// export per device adapter, each the only root of its own function;
    /// both adapters also reach a function they share, and everything
    /// reaches the core's helper.
    fn synthetic_module(adapters: &[&str]) -> Vec<u8> {
        let mut m = Wasm::with_config(ModuleConfig::new());
        let func = |m: &mut Wasm, name: &str, callees: &[walrus::FunctionId]| {
            let mut b = FunctionBuilder::new(&mut m.types, &[], &[ValType::I32]);
            b.name(name.to_string());
            let mut body = b.func_body();
            body.i32_const(name.len() as i32);
            for &callee in callees {
                body.call(callee).binop(walrus::ir::BinaryOp::I32Add);
            }
            b.finish(vec![], &mut m.funcs)
        };
        let helper = func(&mut m, "core_helper", &[]);
        let core = func(&mut m, "core_start", &[helper]);
        m.exports.add("start", core);
        let shared = func(&mut m, "adapters_shared", &[helper]);
        for slug in adapters {
            let own = func(&mut m, &["adapter_", slug, "_only"].concat(), &[helper]);
            let root = func(&mut m, &["adapter_", slug].concat(), &[own, shared]);
            m.exports.add(&[DEVICE_EXPORT_PREFIX, slug].concat(), root);
        }
        m.emit_wasm()
    }

    /// Export names and function names of a module, which must be valid
    /// (walrus validates what it reads).
    fn contents(wasm: &[u8]) -> (Vec<String>, Vec<String>) {
        let m = Wasm::from_buffer(wasm).expect("a valid module");
        let mut exports: Vec<String> = m.exports.iter().map(|e| e.name.clone()).collect();
        let mut funcs: Vec<String> = m.funcs.iter().filter_map(|f| f.name.clone()).collect();
        exports.sort();
        funcs.sort();
        (exports, funcs)
    }

    const TEMPLATE: &str = "!function(){let w={};var cfg=__SWITCHYARD_CONFIG__;start(cfg)}();\n";

    fn artifacts_with(adapters: &[&str]) -> Artifacts {
        Artifacts::new(TEMPLATE, synthetic_module(adapters)).unwrap()
    }

    fn artifacts() -> Artifacts {
        artifacts_with(&["a", "b"])
    }

    fn set(slugs: &[&str]) -> DeviceSet {
        DeviceSet::new(slugs.iter().copied())
    }

    fn decompress(encoding: Encoding, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match encoding {
            Encoding::Brotli => brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .unwrap(),
            Encoding::Gzip => flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap(),
        };
        out
    }

    fn source(write_key: &str) -> SourceBundle {
        SourceBundle {
            write_key: write_key.into(),
            revision: 3,
            destinations: vec![],
            unbundled: vec![],
        }
    }

    fn loader(a: &Artifacts, source: &SourceBundle) -> Loader {
        a.loader(source, &a.module(&DeviceSet::default()).unwrap())
    }

    #[test]
    fn the_adapters_are_the_device_exports() {
        let a = artifacts_with(&["mixpanel", "google_analytics_4"]);
        let adapters: Vec<&str> = a.adapters().iter().map(String::as_str).collect();
        assert_eq!(adapters, ["google_analytics_4", "mixpanel"]);
        assert!(artifacts_with(&[]).adapters().is_empty());
    }

    #[test]
    fn a_pruned_module_keeps_the_enabled_adapters_and_nothing_of_the_others() {
        let a = artifacts();
        let only_a = a.module(&set(&["a"])).unwrap();
        let (exports, funcs) = contents(&only_a.bytes);
        assert_eq!(exports, ["device:a", "start"]);
        assert_eq!(
            funcs,
            [
                "adapter_a",
                "adapter_a_only",
                "adapters_shared",
                "core_helper",
                "core_start"
            ]
        );

        let (exports, funcs) = contents(&a.module(&set(&[])).unwrap().bytes);
        assert_eq!(exports, ["start"]);
        assert_eq!(funcs, ["core_helper", "core_start"]);

        let (exports, funcs) = contents(&a.module(&set(&["b", "a"])).unwrap().bytes);
        assert_eq!(exports, ["device:a", "device:b", "start"]);
        assert_eq!(funcs.len(), 7, "{funcs:?}");
        assert!(a.module(&set(&[])).unwrap().bytes.len() < only_a.bytes.len());
    }

    #[test]
    fn pruning_is_deterministic() {
        for slugs in [&[][..], &["a"], &["b"], &["a", "b"]] {
            // Separate artifacts: nothing cached is shared.
            let first = artifacts().module(&set(slugs)).unwrap();
            let second = artifacts().module(&set(slugs)).unwrap();
            assert_eq!(first.bytes, second.bytes, "{slugs:?}");
            assert_eq!(first.hash, second.hash);
            assert_eq!(first.hash, content_hash(&first.bytes));
        }
        let a = artifacts();
        let hashes: BTreeSet<String> = [&[][..], &["a"], &["b"], &["a", "b"]]
            .iter()
            .map(|s| a.module(&set(s)).unwrap().hash.clone())
            .collect();
        assert_eq!(hashes.len(), 4, "each set has its own module");
    }

    #[test]
    fn equal_sets_share_one_module() {
        let a = artifacts();
        assert!(a.cached_module(&set(&["a", "b"])).is_none());
        let first = a.module(&DeviceSet::new(["b", "a", "b"])).unwrap();
        let again = a.clone().module(&set(&["a", "b"])).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert!(Arc::ptr_eq(
            &first,
            &a.cached_module(&set(&["a", "b"])).unwrap()
        ));
        assert!(Arc::ptr_eq(&first, &a.module_by_hash(&first.hash).unwrap()));
        assert!(
            a.module_by_hash("0123456789abcdef0123456789abcdef")
                .is_none()
        );
        // Not built before it was asked for.
        assert!(a.cached_module(&set(&["a"])).is_none());
        assert_eq!(a.modules.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_set_naming_a_missing_adapter_is_split_and_refused() {
        let a = artifacts();
        let selection = a.select(["b", "nope", "a", "nope", "zzz"]);
        assert_eq!(selection.set, set(&["a", "b"]));
        assert_eq!(selection.missing, ["nope", "zzz"]);
        let err = a.module(&set(&["a", "nope"])).unwrap_err();
        assert!(err.to_string().contains("device:nope"), "{err}");
        assert!(a.cached_module(&set(&["a", "nope"])).is_none());
    }

    #[test]
    fn a_module_walrus_cannot_read_is_refused_on_load() {
        let err = Artifacts::new(TEMPLATE, b"\0asm-module".to_vec()).unwrap_err();
        assert!(matches!(err, BundleError::Module(_)), "{err}");
    }

    #[test]
    fn the_module_cache_is_bounded() {
        // Nine adapters: 512 sets, more than the bound.
        let names: Vec<String> = (0..9).map(|i| i.to_string()).collect();
        let a = artifacts_with(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let subset = |mask: usize| {
            DeviceSet::new(
                (0..9)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| names[i].clone()),
            )
        };
        let first = a.module(&subset(1)).unwrap();
        for mask in 2..=CACHED_MODULES + 1 {
            a.module(&subset(mask)).unwrap();
        }
        assert_eq!(a.modules.lock().unwrap().len(), CACHED_MODULES);
        // The oldest went first; built again, it is the same bytes.
        assert!(a.cached_module(&subset(1)).is_none());
        assert!(a.module_by_hash(&first.hash).is_none());
        assert!(a.cached_module(&subset(2)).is_some());
        assert_eq!(a.module(&subset(1)).unwrap().hash, first.hash);
    }

    #[test]
    fn loader_inlines_settings_into_the_template() {
        let a = artifacts();
        let hash = a.module(&DeviceSet::default()).unwrap().hash.clone();
        assert_eq!(
            loader(&a, &source("WK1")).js,
            [
                "!function(){let w={};var cfg={\"writeKey\":\"WK1\",\"wasm\":\"",
                &hash,
                "\",\"revision\":3,\"destinations\":[],\"unbundled\":[]};start(cfg)}();\n"
            ]
            .concat()
        );
    }

    #[test]
    fn the_loader_names_its_sets_module() {
        let a = artifacts();
        let module = a.module(&set(&["a"])).unwrap();
        let js = a.loader(&source("K"), &module).js;
        assert!(
            js.contains(&["\"wasm\":\"", &module.hash, "\""].concat()),
            "{js}"
        );
        let other = loader(&a, &source("K"));
        assert_ne!(other.etag, a.loader(&source("K"), &module).etag);
    }

    #[test]
    fn write_keys_are_escaped_as_json() {
        let a = artifacts();
        let js = loader(&a, &source("a\"b</script>")).js;
        assert!(js.contains(r#""writeKey":"a\"b</script>""#));
    }

    #[test]
    fn device_destinations_and_unbundled_names_are_inlined() {
        let mut s = source("K");
        let mut settings = serde_json::Map::new();
        settings.insert("token".into(), "abc".into());
        s.destinations.push(DeviceDestination {
            slug: "mixpanel".into(),
            name: "Mixpanel".into(),
            settings,
            categories: vec!["Analytics".into()],
        });
        s.unbundled = vec!["Slack".into(), "Webhook".into()];
        let js = loader(&artifacts(), &s).js;
        assert!(js.contains(r#""destinations":[{"slug":"mixpanel","name":"Mixpanel","settings":{"token":"abc"},"categories":["Analytics"]}],"unbundled":["Slack","Webhook"]"#), "{js}");
    }

    #[test]
    fn etag_follows_content() {
        let a = artifacts();
        let etag = |s: &SourceBundle| loader(&a, s).etag;
        assert_eq!(etag(&source("A")), etag(&source("A")));
        assert_ne!(etag(&source("A")), etag(&source("B")));
        let mut later = source("A");
        later.revision = 4;
        assert_ne!(etag(&source("A")), etag(&later));
    }

    #[test]
    fn template_without_placeholder_is_refused() {
        let err = Artifacts::new("(function(){})();", synthetic_module(&[])).unwrap_err();
        assert!(err.to_string().contains("placeholder"));
    }

    #[test]
    fn missing_artifacts_say_how_to_build_them() {
        let dir = tempfile::tempdir().unwrap();
        let err = Artifacts::load(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("cargo xtask build-client"),
            "{err}"
        );
    }

    #[test]
    fn a_module_is_compressed_once_in_each_encoding_when_first_asked() {
        let a = artifacts();
        let module = a.module(&set(&["a"])).unwrap();
        assert_eq!(module.cached(None).unwrap(), module.bytes);
        assert!(Arc::ptr_eq(&module.encoded(None), &module.bytes));
        for encoding in [Encoding::Brotli, Encoding::Gzip] {
            assert!(module.cached(Some(encoding)).is_none(), "{encoding:?}");
            let bytes = module.encoded(Some(encoding));
            assert_eq!(decompress(encoding, &bytes), *module.bytes, "{encoding:?}");
            // Kept, not compressed again: the same bytes each time, for
            // every source with this set.
            let again = a.module(&set(&["a"])).unwrap();
            assert!(Arc::ptr_eq(&bytes, &again.cached(Some(encoding)).unwrap()));
            assert!(Arc::ptr_eq(&bytes, &again.encoded(Some(encoding))));
        }
    }

    #[test]
    fn a_loader_is_compressed_once_and_kept_by_etag() {
        let a = artifacts();
        let loader = |s: &SourceBundle| super::tests::loader(&a, s);
        let first_loader = loader(&source("K"));
        for encoding in [Encoding::Brotli, Encoding::Gzip] {
            assert!(a.cached_loader(&first_loader, encoding).is_none());
            let first = a.compressed_loader(&first_loader, encoding);
            assert_eq!(decompress(encoding, &first), first_loader.js.as_bytes());
            // The same loader built again (same ETag) finds it, and so do
            // clones of the artifacts.
            let again = loader(&source("K"));
            let cached = a.clone().cached_loader(&again, encoding).unwrap();
            assert!(Arc::ptr_eq(&first, &cached));
            assert!(Arc::ptr_eq(&first, &a.compressed_loader(&again, encoding)));
        }
        // Another source's loader is another entry.
        let other = loader(&source("L"));
        assert!(a.cached_loader(&other, Encoding::Gzip).is_none());
        assert_eq!(
            decompress(Encoding::Gzip, &a.compressed_loader(&other, Encoding::Gzip)),
            other.js.as_bytes()
        );
    }

    #[test]
    fn the_loader_cache_is_bounded() {
        let a = artifacts();
        let first = loader(&a, &source("first"));
        a.compressed_loader(&first, Encoding::Gzip);
        for i in 0..CACHED_LOADERS {
            let mut s = source("K");
            s.revision = i as i64;
            a.compressed_loader(&loader(&a, &s), Encoding::Gzip);
        }
        let cache = a.loaders.lock().unwrap();
        assert_eq!(cache.entries.len(), CACHED_LOADERS);
        assert_eq!(cache.order.len(), CACHED_LOADERS);
        drop(cache);
        // The oldest went first.
        assert!(a.cached_loader(&first, Encoding::Gzip).is_none());
    }
}
