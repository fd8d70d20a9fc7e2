//! The browser library's build, from Rust to what `bundles/` holds:
//!
//! 1. cargo for `wasm32-unknown-unknown` with the `wasm-release` profile:
//!    by default on nightly, rebuilding the standard library for size
//!    (`-Zbuild-std`, `optimize_for_size`, `-Cpanic=immediate-abort`),
//!    which makes the module about a fifth smaller; `--stable` builds with
//!    the pinned stable toolchain instead;
//! 2. wasm-bindgen, as a library of the exact version the client links,
//!    `no-modules` glue, into `target/switchyard-client/`;
//! 3. short names for the module's imports and exports, in the module and
//!    the glue (`names.rs`);
//! 4. binaryen's `wasm-opt -Oz` on that module, with the features rustc's
//!    output declares, checked to compile in V8 and to import and export
//!    what the glue expects: `bundles/switchyard_bg.wasm`;
//! 5. the loader template: `(function(){` + glue + `;` + `web/loader.js` +
//!    `})();`, minified by terser with the settings placeholder kept and no
//!    global leaked: `bundles/loader.js`.
//!
//! Each step's output is measured; the build prints them, then the size
//! report of what a page downloads.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use switchyard_bundler::{CONFIG_PLACEHOLDER, LOADER_FILE, WASM_FILE};

use crate::size::{Sizes, Table};
use crate::tools::Tools;
use crate::{CLIENT_PROFILE, WASM_TARGET, cargo, run_cmd, setup};

/// The toolchain the module is compiled with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Toolchain {
    /// `nightly` with the standard library rebuilt for size.
    Nightly,
    /// The stable toolchain `rust-toolchain.toml` pins.
    Stable,
}

/// The nightly toolchain the module is built with, by default: pinned to a
/// date, so the same sources give the same module on every machine. (The
/// toolchain of 2026-05-20 is rustc 1.97.0-nightly e50aa6fba 2026-05-19;
/// the one of 2026-05-19 has no wasm32 standard library to download.)
pub(crate) const NIGHTLY: &str = "nightly-2026-05-20";

/// rustflags of the nightly build: panics abort at once, with no message
/// or location formatting linked in; no reference types or multivalue, so
/// wasm-bindgen keeps JavaScript values in the glue's array rather than an
/// externref table with a shim per export (1 KB less brotli in all, the
/// module 1.1 KB smaller and the loader 0.2 KB larger).
const NIGHTLY_RUSTFLAGS: &[&str] = &[
    "-Zunstable-options",
    "-Cpanic=immediate-abort",
    "-Zlocation-detail=none",
    "-Ctarget-feature=-reference-types,-multivalue",
    // One data segment per static, which the bundler can drop with the
    // adapters that alone used it (`list_statics`).
    "-Clink-arg=--no-merge-data-segments",
];

/// wasm-opt's options besides the features: size first, repeated while it
/// still shrinks; custom sections the page does not need removed.
const WASM_OPT: &[&str] = &[
    "-Oz",
    "--converge",
    "--strip-debug",
    "--strip-producers",
    "--strip-target-features",
];

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Compiles the client; returns the module rustc wrote.
fn compile(root: &Path, toolchain: Toolchain) -> Result<PathBuf> {
    let mut cmd = match toolchain {
        Toolchain::Stable => {
            setup::wasm_target()?;
            cargo()
        }
        Toolchain::Nightly => {
            setup::nightly()?;
            let mut cmd = Command::new("rustup");
            cmd.args(["run", NIGHTLY, "cargo"])
                // Target units only (build scripts and proc macros are host
                // units); overrides RUSTFLAGS from the environment.
                .env("CARGO_ENCODED_RUSTFLAGS", NIGHTLY_RUSTFLAGS.join("\x1f"));
            cmd
        }
    };
    cmd.args([
        "build",
        "--package",
        "switchyard-client",
        "--target",
        WASM_TARGET,
        "--profile",
        CLIENT_PROFILE,
    ]);
    if toolchain == Toolchain::Nightly {
        cmd.args([
            "-Zbuild-std=std,panic_abort",
            "-Zbuild-std-features=optimize_for_size",
        ]);
    }
    run_cmd(&mut cmd)?;
    Ok(target_dir(root)
        .join(WASM_TARGET)
        .join(CLIENT_PROFILE)
        .join("switchyard_client.wasm"))
}

/// The features a module's `target_features` section says it uses, as
/// wasm-opt's `--enable-*` options.
fn wasm_opt_features(module: &[u8]) -> Result<Vec<String>> {
    fn leb(bytes: &[u8], at: &mut usize) -> Result<usize> {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let byte = *bytes.get(*at).context("truncated module")?;
            *at += 1;
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 28 {
                bail!("malformed LEB128 in module");
            }
        }
    }
    fn name<'a>(bytes: &'a [u8], at: &mut usize) -> Result<&'a str> {
        let len = leb(bytes, at)?;
        let s = bytes.get(*at..*at + len).context("truncated module")?;
        *at += len;
        Ok(std::str::from_utf8(s)?)
    }
    if module.get(..4) != Some(b"\0asm".as_slice()) {
        bail!("not a WebAssembly module");
    }
    let mut at = 8;
    while at < module.len() {
        let id = module[at];
        at += 1;
        let len = leb(module, &mut at)?;
        let end = at + len;
        if id == 0 {
            let mut p = at;
            if name(module, &mut p)? == "target_features" {
                let mut flags = Vec::new();
                for _ in 0..leb(module, &mut p)? {
                    let prefix = *module.get(p).context("truncated module")?;
                    p += 1;
                    let feature = name(module, &mut p)?;
                    if prefix != b'+' {
                        continue;
                    }
                    // binaryen's names, where they differ from LLVM's.
                    let flag = match feature {
                        "atomics" => "threads",
                        "nontrapping-fptoint" => "nontrapping-float-to-int",
                        "simd128" => "simd",
                        other => other,
                    };
                    flags.push(["--enable-", flag].concat());
                }
                return Ok(flags);
            }
        }
        at = end;
    }
    bail!("rustc's module has no target_features section: cannot tell wasm-opt its features")
}

/// Appends to `module` the custom section in which the bundler finds the
/// statics as the linker laid them out (`linked`: one data segment each,
/// before wasm-opt split and trimmed them), so it can drop those only
/// pruned adapters used.
fn list_statics(linked: &Path, module: &Path) -> Result<()> {
    let linked = walrus::Module::from_file(linked).context("walrus cannot read the module")?;
    let mut spans: Vec<(u32, u32)> = Vec::new();
    for d in linked.data.iter() {
        if let walrus::DataKind::Active {
            offset: walrus::ConstExpr::Value(walrus::ir::Value::I32(at)),
            ..
        } = d.kind
        {
            spans.push((at as u32, at as u32 + d.value.len() as u32));
        }
    }
    spans.sort();
    let name = switchyard_bundler::STATICS_SECTION.as_bytes();
    let payload: Vec<u8> = spans
        .iter()
        .flat_map(|(start, end)| [start.to_le_bytes(), end.to_le_bytes()])
        .flatten()
        .collect();
    let mut contents = leb128(name.len());
    contents.extend_from_slice(name);
    contents.extend(payload);
    let mut section = vec![0u8];
    section.extend(leb128(contents.len()));
    section.extend(contents);
    let mut bytes = std::fs::read(module)?;
    bytes.extend(section);
    std::fs::write(module, bytes)?;
    Ok(())
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Builds the browser library into `bundles/`; prints each step's sizes
/// and the size report.
pub(crate) fn build(root: &Path, toolchain: Toolchain) -> Result<PathBuf> {
    let module = compile(root, toolchain)?;
    let work = target_dir(root).join("switchyard-client");
    std::fs::create_dir_all(&work)?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&module)
        .out_name("switchyard")
        .no_modules(true)?
        .typescript(false)
        .remove_producers_section(true)
        .remove_name_section(true)
        .generate(&work)
        .context("wasm-bindgen")?;
    let glue = work.join("switchyard.js");
    let bindgen_wasm = work.join("switchyard_bg.wasm");
    let tools = Tools::install(root)?;

    // Short import and export names, in the module and the glue.
    let short_wasm = work.join("switchyard_bg.short.wasm");
    let glue_js = std::fs::read_to_string(&glue)?;
    let short_glue = crate::names::shorten(&bindgen_wasm, &short_wasm, &glue_js)?;

    let out = root.join("bundles");
    std::fs::create_dir_all(&out)?;
    let wasm = out.join(WASM_FILE);
    let features = wasm_opt_features(&std::fs::read(&module)?)?;
    let mut args: Vec<&OsStr> = WASM_OPT.iter().map(OsStr::new).collect();
    args.extend(features.iter().map(OsStr::new));
    args.extend([short_wasm.as_os_str(), OsStr::new("-o"), wasm.as_os_str()]);
    tools.wasm_opt(&args)?;
    tools.validate_wasm(&wasm, &short_wasm)?;
    list_statics(&short_wasm, &wasm)?;

    // One function scope around glue and loader: the glue declares
    // `wasm_bindgen` at its top level, and the page gains no globals.
    let vendor_js = std::fs::read_to_string(root.join("web/vendor.js"))?;
    let loader_js = std::fs::read_to_string(root.join("web/loader.js"))?;
    let wrap = |glue: &str| {
        [
            "(function(){",
            glue,
            ";\n",
            &vendor_js,
            "\n",
            &loader_js,
            "})();\n",
        ]
        .concat()
    };
    let wrapped = work.join("loader.wrapped.js");
    std::fs::write(&wrapped, wrap(&short_glue))?;
    let loader = out.join(LOADER_FILE);
    tools.minify(&wrapped, &loader, CONFIG_PLACEHOLDER)?;
    // The glue used to be served from here; it is inside the loader now.
    let _ = std::fs::remove_file(out.join("switchyard.js"));

    let compiler = match toolchain {
        Toolchain::Nightly => format!("{NIGHTLY}, build-std"),
        Toolchain::Stable => "stable".into(),
    };
    let mut steps = Table::new(format!("build steps ({compiler})"));
    steps.row("wasm: rustc + wasm-bindgen", Sizes::of_file(&bindgen_wasm)?);
    steps.row(
        "wasm: + short import/export names",
        Sizes::of_file(&short_wasm)?,
    );
    steps.row("wasm: + wasm-opt -Oz", Sizes::of_file(&wasm)?);
    steps.row(
        "js: glue + loader, wrapped",
        Sizes::of(wrap(&glue_js).as_bytes()),
    );
    steps.row("js: + short wasm names", Sizes::of_file(&wrapped)?);
    steps.row("js: + terser", Sizes::of_file(&loader)?);
    println!("{steps}");
    println!("{}", crate::size::report(root)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_come_from_the_target_features_section() {
        let mut section = vec![0u8];
        let payload: Vec<u8> = [
            &[15u8][..],
            b"target_features",
            &[3],
            &[b'+', 19],
            b"nontrapping-fptoint",
            &[b'-', 7],
            b"atomics",
            &[b'+', 8],
            b"sign-ext",
        ]
        .concat();
        section.push(payload.len() as u8);
        section.extend(payload);
        let module = [b"\0asm\x01\0\0\0".as_slice(), &[1, 1, 0], &section].concat();
        assert_eq!(
            wasm_opt_features(&module).unwrap(),
            ["--enable-nontrapping-float-to-int", "--enable-sign-ext"]
        );
        let bare = b"\0asm\x01\0\0\0".to_vec();
        assert!(wasm_opt_features(&bare).is_err());
    }
}
