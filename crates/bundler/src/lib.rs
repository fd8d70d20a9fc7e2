//! Builds what a page loads for one source: the loader script with the
//! source's settings inlined, and the content-hashed WebAssembly module it
//! fetches, each also compressed (brotli, gzip) for the server to pick
//! from. Input is the client as `cargo xtask build-client` left it in
//! `bundles/`. No HTTP here: the server serves what this crate builds.

use std::collections::{HashMap, VecDeque};
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

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("the browser library is not built ({path}: {cause}); run `cargo xtask build-client`")]
    Missing { path: PathBuf, cause: String },
    #[error("the loader template has no {CONFIG_PLACEHOLDER} placeholder")]
    Template,
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

/// A built WebAssembly module, named by its content hash.
#[derive(Debug, Clone)]
pub struct Module {
    /// Hex content hash; the module is served at `/b/{hash}.wasm`.
    pub hash: String,
    pub bytes: Arc<Vec<u8>>,
    brotli: Arc<Vec<u8>>,
    gzip: Arc<Vec<u8>>,
}

impl Module {
    /// The module's bytes in `encoding` (`None`: as built), compressed
    /// once when the artifacts were loaded.
    pub fn encoded(&self, encoding: Option<Encoding>) -> &Arc<Vec<u8>> {
        match encoding {
            None => &self.bytes,
            Some(Encoding::Brotli) => &self.brotli,
            Some(Encoding::Gzip) => &self.gzip,
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
    module: Module,
    loaders: Arc<Mutex<LoaderCache>>,
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
}

/// A device-mode destination as the loader is told of it. The caller
/// passes only settings that are not secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceDestination {
    pub slug: String,
    pub name: String,
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// The source-specific part of a loader.
#[derive(Debug, Clone, Default)]
pub struct SourceBundle {
    pub write_key: String,
    pub revision: i64,
    pub destinations: Vec<DeviceDestination>,
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
    /// where the settings go), and the module. Compresses the module.
    pub fn new(template: &str, wasm: Vec<u8>) -> Result<Artifacts, BundleError> {
        let (head, tail) = template
            .split_once(CONFIG_PLACEHOLDER)
            .ok_or(BundleError::Template)?;
        Ok(Artifacts {
            head: head.into(),
            tail: tail.into(),
            module: Module {
                hash: content_hash(&wasm),
                brotli: Arc::new(Encoding::Brotli.compress(&wasm)),
                gzip: Arc::new(Encoding::Gzip.compress(&wasm)),
                bytes: Arc::new(wasm),
            },
            loaders: Arc::default(),
        })
    }

    /// The module every loader built from these artifacts refers to.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Builds the loader for one source.
    pub fn loader(&self, source: &SourceBundle) -> Loader {
        let config = LoaderConfig {
            write_key: &source.write_key,
            wasm: &self.module.hash,
            revision: source.revision,
            destinations: &source.destinations,
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

    use super::*;

    fn artifacts() -> Artifacts {
        Artifacts::new(
            "!function(){let w={};var cfg=__SWITCHYARD_CONFIG__;start(cfg)}();\n",
            b"\0asm-module".to_vec(),
        )
        .unwrap()
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
        }
    }

    #[test]
    fn loader_inlines_settings_into_the_template() {
        let loader = artifacts().loader(&source("WK1"));
        let hash = content_hash(b"\0asm-module");
        assert_eq!(
            loader.js,
            [
                "!function(){let w={};var cfg={\"writeKey\":\"WK1\",\"wasm\":\"",
                &hash,
                "\",\"revision\":3,\"destinations\":[]};start(cfg)}();\n"
            ]
            .concat()
        );
    }

    #[test]
    fn write_keys_are_escaped_as_json() {
        let loader = artifacts().loader(&source("a\"b</script>"));
        assert!(loader.js.contains(r#""writeKey":"a\"b</script>""#));
    }

    #[test]
    fn device_destinations_are_inlined() {
        let mut s = source("K");
        let mut settings = serde_json::Map::new();
        settings.insert("token".into(), "abc".into());
        s.destinations.push(DeviceDestination {
            slug: "mixpanel".into(),
            name: "Mixpanel".into(),
            settings,
        });
        let js = artifacts().loader(&s).js;
        assert!(js.contains(r#""destinations":[{"slug":"mixpanel","name":"Mixpanel","settings":{"token":"abc"}}]"#), "{js}");
    }

    #[test]
    fn etag_follows_content() {
        let a = artifacts();
        assert_eq!(a.loader(&source("A")).etag, a.loader(&source("A")).etag);
        assert_ne!(a.loader(&source("A")).etag, a.loader(&source("B")).etag);
        let mut later = source("A");
        later.revision = 4;
        assert_ne!(a.loader(&source("A")).etag, a.loader(&later).etag);
    }

    #[test]
    fn template_without_placeholder_is_refused() {
        let err = Artifacts::new("(function(){})();", vec![]).unwrap_err();
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
    fn the_module_is_compressed_once_in_each_encoding() {
        let a = artifacts();
        let module = a.module();
        assert_eq!(module.encoded(None).as_slice(), b"\0asm-module");
        for encoding in [Encoding::Brotli, Encoding::Gzip] {
            let bytes = module.encoded(Some(encoding));
            assert_eq!(decompress(encoding, bytes), b"\0asm-module", "{encoding:?}");
            // Kept, not compressed again: the same bytes each time.
            assert!(Arc::ptr_eq(bytes, a.module().encoded(Some(encoding))));
        }
    }

    #[test]
    fn a_loader_is_compressed_once_and_kept_by_etag() {
        let a = artifacts();
        let loader = a.loader(&source("K"));
        for encoding in [Encoding::Brotli, Encoding::Gzip] {
            assert!(a.cached_loader(&loader, encoding).is_none());
            let first = a.compressed_loader(&loader, encoding);
            assert_eq!(decompress(encoding, &first), loader.js.as_bytes());
            // The same loader built again (same ETag) finds it, and so do
            // clones of the artifacts.
            let again = a.loader(&source("K"));
            let cached = a.clone().cached_loader(&again, encoding).unwrap();
            assert!(Arc::ptr_eq(&first, &cached));
            assert!(Arc::ptr_eq(&first, &a.compressed_loader(&again, encoding)));
        }
        // Another source's loader is another entry.
        let other = a.loader(&source("L"));
        assert!(a.cached_loader(&other, Encoding::Gzip).is_none());
        assert_eq!(
            decompress(Encoding::Gzip, &a.compressed_loader(&other, Encoding::Gzip)),
            other.js.as_bytes()
        );
    }

    #[test]
    fn the_loader_cache_is_bounded() {
        let a = artifacts();
        let first = a.loader(&source("first"));
        a.compressed_loader(&first, Encoding::Gzip);
        for i in 0..CACHED_LOADERS {
            let mut s = source("K");
            s.revision = i as i64;
            a.compressed_loader(&a.loader(&s), Encoding::Gzip);
        }
        let cache = a.loaders.lock().unwrap();
        assert_eq!(cache.entries.len(), CACHED_LOADERS);
        assert_eq!(cache.order.len(), CACHED_LOADERS);
        drop(cache);
        // The oldest went first.
        assert!(a.cached_loader(&first, Encoding::Gzip).is_none());
    }
}
