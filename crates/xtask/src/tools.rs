//! The build's Node.js tools: binaryen's `wasm-opt` and terser, pinned
//! exactly in `web/tools/package.json` and `package-lock.json`, installed
//! with `npm ci` into `web/tools/node_modules` when that is missing or older
//! than the lock file. The vendors' browser SDKs of the device-mode tests,
//! pinned in `tests/vendor/`, are installed the same way.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run_cmd;

/// Written into `node_modules` after a successful `npm ci`: the manifest
/// and lock file it installed, to tell when they change.
const STAMP: &str = ".xtask-installed";

pub(crate) struct Tools {
    dir: PathBuf,
}

fn version(program: &str) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Node.js and npm, from Debian on a fresh machine.
fn node_and_npm(why: &str) -> Result<()> {
    if version("node").is_none() || version("npm").is_none() {
        crate::setup::apt_install(&["nodejs", "npm"])?;
    }
    let (Some(_), Some(_)) = (version("node"), version("npm")) else {
        bail!(
            "Node.js and npm are needed {why}: install them (Debian: `apt-get install nodejs npm`)"
        );
    };
    Ok(())
}

/// `npm ci` in `dir` unless its `node_modules` was installed from the
/// same `package.json` and `package-lock.json` and still holds every one
/// of `expected` (paths relative to `dir`).
fn npm_ci(dir: &Path, expected: &[&str]) -> Result<()> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .with_context(|| format!("{} is missing", dir.join(name).display()))
    };
    let wanted = [read("package.json")?, read("package-lock.json")?].concat();
    let modules = dir.join("node_modules");
    let installed = std::fs::read_to_string(modules.join(STAMP)).unwrap_or_default();
    let present = expected.iter().all(|p| dir.join(p).exists());
    if installed != wanted || !present {
        run_cmd(Command::new("npm").args([
            OsStr::new("ci"),
            OsStr::new("--prefix"),
            dir.as_os_str(),
            OsStr::new("--ignore-scripts"),
            OsStr::new("--no-audit"),
            OsStr::new("--no-fund"),
            OsStr::new("--loglevel=error"),
        ]))?;
        std::fs::write(modules.join(STAMP), wanted)?;
    }
    Ok(())
}

/// The script builds of the vendor SDKs that `mock-api` serves to the
/// device-mode tests (`tests/vendor/package.json`).
const VENDOR_SCRIPTS: [&str; 3] = [
    "node_modules/mixpanel-browser/dist/mixpanel.min.js",
    "node_modules/@amplitude/analytics-browser/lib/scripts/amplitude-min.js",
    "node_modules/posthog-js/dist/array.js",
];

/// Installs the vendors' own browser SDKs into `tests/vendor/node_modules`
/// if they are missing or stale.
pub(crate) fn install_test_vendors(root: &Path) -> Result<()> {
    node_and_npm("for the device-mode tests (the vendors' SDKs come from npm)")?;
    npm_ci(&root.join("tests/vendor"), &VENDOR_SCRIPTS)?;
    // Segment's analytics-next, which the benchmark measures against and
    // an end-to-end suite runs against Switchyard.
    npm_ci(&root.join("bench"), &[ANALYTICS_NEXT])?;
    install_test_clients(root)
}

/// Segment's own server libraries, clients of the cloud-mode end-to-end
/// suite: `@segment/analytics-node` from `tests/clients/package.json`, and
/// `segment-analytics-python` from `tests/clients/requirements.txt` into
/// `tests/clients/python` (pip's `--target`, reinstalled when the
/// requirements change).
fn install_test_clients(root: &Path) -> Result<()> {
    let dir = root.join("tests/clients");
    npm_ci(&dir, &["node_modules/@segment/analytics-node/package.json"])?;
    let wanted = std::fs::read_to_string(dir.join("requirements.txt"))
        .context("tests/clients/requirements.txt is missing")?;
    let target = dir.join("python");
    let installed = std::fs::read_to_string(target.join(STAMP)).unwrap_or_default();
    if installed != wanted || !target.join("segment/analytics").exists() {
        if version("python3").is_none() {
            crate::setup::apt_install(&["python3", "python3-pip"])?;
        }
        let _ = std::fs::remove_dir_all(&target);
        run_cmd(Command::new("python3").args([
            OsStr::new("-m"),
            OsStr::new("pip"),
            OsStr::new("install"),
            OsStr::new("--quiet"),
            OsStr::new("--disable-pip-version-check"),
            OsStr::new("--no-deps"),
            OsStr::new("--target"),
            target.as_os_str(),
            OsStr::new("-r"),
            dir.join("requirements.txt").as_os_str(),
        ]))?;
        std::fs::write(target.join(STAMP), wanted)?;
    }
    Ok(())
}

/// What `bench/`'s install provides: analytics-next's standalone build.
const ANALYTICS_NEXT: &str = "node_modules/@segment/analytics-next/dist/umd/standalone.js";

impl Tools {
    /// Installs the tools if they are missing or stale.
    pub(crate) fn install(root: &Path) -> Result<Tools> {
        // wasm-opt and terser run on Node.js.
        node_and_npm("to build the browser library (wasm-opt and terser run on Node.js)")?;
        let tools = Tools {
            dir: root.join("web/tools"),
        };
        npm_ci(
            &tools.dir,
            &[
                "node_modules/binaryen/bin/wasm-opt",
                "node_modules/terser/package.json",
            ],
        )?;
        Ok(tools)
    }

    fn wasm_opt_js(&self) -> PathBuf {
        self.dir.join("node_modules/binaryen/bin/wasm-opt")
    }

    fn node(&self, script: PathBuf, args: &[&OsStr]) -> Result<()> {
        run_cmd(Command::new("node").arg(script).args(args))
    }

    /// binaryen's `wasm-opt` (compiled to JavaScript, run on Node.js).
    pub(crate) fn wasm_opt(&self, args: &[&OsStr]) -> Result<()> {
        self.node(self.wasm_opt_js(), args)
    }

    /// Fails unless `optimised` compiles in V8 and imports and exports
    /// exactly what `reference` does.
    pub(crate) fn validate_wasm(&self, optimised: &Path, reference: &Path) -> Result<()> {
        self.node(
            self.dir.join("validate-wasm.mjs"),
            &[optimised.as_os_str(), reference.as_os_str()],
        )
    }

    /// terser, mangling and compressing, checked to keep `placeholder` and
    /// to leak no global (`web/tools/minify.mjs`).
    pub(crate) fn minify(&self, input: &Path, output: &Path, placeholder: &str) -> Result<()> {
        self.node(
            self.dir.join("minify.mjs"),
            &[
                input.as_os_str(),
                output.as_os_str(),
                OsStr::new(placeholder),
            ],
        )
    }
}
