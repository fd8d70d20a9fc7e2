//! Installs what building and testing need on a fresh machine. Each step
//! checks first, so a second run costs nothing.

use std::process::Command;

use anyhow::{Context, Result};

use crate::run_cmd;

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The wasm-bindgen test runner must match the `wasm-bindgen` crate exactly.
const WASM_BINDGEN_VERSION: &str = "0.2.130";

pub(crate) fn wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to add the wasm32 target")?;
    if !String::from_utf8_lossy(&installed.stdout).contains(crate::WASM_TARGET) {
        run_cmd(Command::new("rustup").args(["target", "add", crate::WASM_TARGET]))?;
    }
    Ok(())
}

/// What the nightly build of the browser library needs: the pinned, dated
/// nightly toolchain itself (installed if missing; never silently replaced
/// by another one, which would give another module), its `rust-src` (for
/// `-Zbuild-std`) and its wasm32 target.
pub(crate) fn nightly() -> Result<()> {
    let nightly = crate::client::NIGHTLY;
    let toolchains = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .context("rustup is needed to build the browser library")?;
    // `nightly-2026-05-20-<host>`, and not a later date that shares the
    // prefix.
    let pinned = |line: &str| {
        line.strip_prefix(nightly)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
    };
    if !String::from_utf8_lossy(&toolchains.stdout)
        .lines()
        .any(pinned)
    {
        // A fresh machine: install it, as the project's set-up does for
        // everything else it needs.
        run_cmd(Command::new("rustup").args([
            "toolchain",
            "install",
            nightly,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
            "--target",
            crate::WASM_TARGET,
        ]))
        .context(
            "the browser library is built with a pinned nightly toolchain (the standard \
             library rebuilt for size); `cargo xtask build-client --stable` builds the larger \
             stable module without it",
        )?;
    }
    let installed = |what: &str| -> Result<String> {
        let out = Command::new("rustup")
            .args([what, "list", "--installed", "--toolchain", nightly])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    if !installed("component")?
        .lines()
        .any(|l| l.starts_with("rust-src"))
    {
        run_cmd(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            nightly,
        ]))?;
    }
    if !installed("target")?
        .lines()
        .any(|l| l == crate::WASM_TARGET)
    {
        run_cmd(Command::new("rustup").args([
            "target",
            "add",
            crate::WASM_TARGET,
            "--toolchain",
            nightly,
        ]))?;
    }
    Ok(())
}

/// Debian packages the tests use: Chromium and its driver for browser
/// tests, Postgres for the store's second backend.
fn debian_packages() -> Result<()> {
    let postgres = std::fs::read_dir("/usr/lib/postgresql")
        .map(|mut d| d.any(|e| e.is_ok_and(|e| e.path().join("bin/initdb").exists())))
        .unwrap_or(false);
    let mut missing = Vec::new();
    if !std::path::Path::new(CHROMIUM).exists() {
        missing.push("chromium");
    }
    if !std::path::Path::new(CHROMEDRIVER).exists() {
        missing.push("chromium-driver");
    }
    if !postgres {
        missing.push("postgresql");
    }
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)
}

/// Installs Debian packages (as root, as this project's machines run).
pub(crate) fn apt_install(packages: &[&str]) -> Result<()> {
    run_cmd(Command::new("apt-get").args(["update", "-qq"]))?;
    run_cmd(
        Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn test_runner() -> Result<()> {
    let current = Command::new("wasm-bindgen-test-runner")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if current.contains(WASM_BINDGEN_VERSION) {
        return Ok(());
    }
    // `--locked` is left out on purpose: one of the CLI's locked dependency
    // versions is not available from the registry mirror.
    run_cmd(crate::cargo().args([
        "install",
        "wasm-bindgen-cli",
        "--version",
        &["=", WASM_BINDGEN_VERSION].concat(),
    ]))
}

pub(crate) fn test_tools() -> Result<()> {
    wasm_target()?;
    debian_packages()?;
    test_runner()
}
