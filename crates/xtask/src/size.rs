//! The browser library's size report: loader + glue + wasm, raw, gzip and
//! brotli, as a page downloads them.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

fn gzip(bytes: &[u8]) -> Result<usize> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes)?;
    Ok(enc.finish()?.len())
}

fn brotli(bytes: &[u8]) -> Result<usize> {
    let mut out = Vec::new();
    {
        let mut enc = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        enc.write_all(bytes)?;
    }
    Ok(out.len())
}

/// Formats the report for the artifacts in `dir`.
pub(crate) fn report(dir: &Path) -> Result<String> {
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .with_context(|| format!("{} missing: run `cargo xtask build-client`", name))
    };
    let glue = read("switchyard.js")?;
    let loader = read("loader.js")?;
    let wasm = read("switchyard_bg.wasm")?;
    // What a page downloads as the script: glue and loader, served together.
    let script = [glue.as_slice(), loader.as_slice()].concat();
    let mut rows = vec![
        ("loader + glue (js)", script.clone()),
        ("wasm", wasm.clone()),
    ];
    rows.push(("total", [script, wasm].concat()));
    let mut out = String::from("browser library size    raw      gzip     brotli\n");
    for (name, bytes) in rows {
        out.push_str(&format!(
            "{:<22} {:>7}  {:>7}  {:>7}\n",
            name,
            bytes.len(),
            gzip(&bytes)?,
            brotli(&bytes)?
        ));
    }
    Ok(out)
}
