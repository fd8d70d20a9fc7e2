//! Builds what a page loads for one source: the loader script with the
//! source's settings inlined, and the content-hashed WebAssembly module it
//! fetches. Input is the client as `cargo xtask build-client` left it in
//! `bundles/`. No HTTP here: the server serves what this crate builds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// File names `cargo xtask build-client` writes.
pub const GLUE_FILE: &str = "switchyard.js";
pub const WASM_FILE: &str = "switchyard_bg.wasm";
pub const LOADER_FILE: &str = "loader.js";

/// The placeholder in the loader template that receives the settings.
const CONFIG_PLACEHOLDER: &str = "__SWITCHYARD_CONFIG__";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("the browser library is not built ({path}: {cause}); run `cargo xtask build-client`")]
    Missing { path: PathBuf, cause: String },
    #[error("the loader template has no {CONFIG_PLACEHOLDER} placeholder")]
    Template,
}

/// A built WebAssembly module, named by its content hash.
#[derive(Debug, Clone)]
pub struct Module {
    /// Hex content hash; the module is served at `/b/{hash}.wasm`.
    pub hash: String,
    pub bytes: Arc<Vec<u8>>,
}

/// The client's built artifacts, loaded once.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// wasm-bindgen's glue (no-modules form) followed by the loader
    /// template, up to the settings placeholder.
    head: Arc<str>,
    tail: Arc<str>,
    module: Module,
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
        let glue = String::from_utf8_lossy(&read(dir, GLUE_FILE)?).into_owned();
        let loader = String::from_utf8_lossy(&read(dir, LOADER_FILE)?).into_owned();
        let wasm = read(dir, WASM_FILE)?;
        Artifacts::new(&glue, &loader, wasm)
    }

    pub fn new(glue: &str, loader: &str, wasm: Vec<u8>) -> Result<Artifacts, BundleError> {
        let (before, after) = loader
            .split_once(CONFIG_PLACEHOLDER)
            .ok_or(BundleError::Template)?;
        // The glue declares `wasm_bindgen` at its top level; one function
        // scope around glue and loader keeps the page's globals clean.
        let head = ["(function(){", glue, ";\n", before].concat();
        let tail = [after, "})();\n"].concat();
        Ok(Artifacts {
            head: head.into(),
            tail: tail.into(),
            module: Module {
                hash: content_hash(&wasm),
                bytes: Arc::new(wasm),
            },
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifacts() -> Artifacts {
        Artifacts::new(
            "let wasm_bindgen = {};",
            "var cfg = __SWITCHYARD_CONFIG__; start(cfg);",
            b"\0asm-module".to_vec(),
        )
        .unwrap()
    }

    fn source(write_key: &str) -> SourceBundle {
        SourceBundle {
            write_key: write_key.into(),
            revision: 3,
            destinations: vec![],
        }
    }

    #[test]
    fn loader_inlines_settings_and_wraps_the_glue() {
        let loader = artifacts().loader(&source("WK1"));
        let hash = content_hash(b"\0asm-module");
        assert_eq!(
            loader.js,
            [
                "(function(){let wasm_bindgen = {};;\nvar cfg = {\"writeKey\":\"WK1\",\"wasm\":\"",
                &hash,
                "\",\"revision\":3,\"destinations\":[]}; start(cfg);})();\n"
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
        let err = Artifacts::new("", "no placeholder", vec![]).unwrap_err();
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
}
