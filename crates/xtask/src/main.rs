//! `cargo xtask <command>`: the project's own build and test driver.
//!
//! - `build-client [--stable]`: builds the browser library for
//!   `wasm32-unknown-unknown` (on nightly with the standard library rebuilt
//!   for size, or on stable), runs wasm-bindgen (as a library, the exact
//!   version the client links), wasm-opt and terser, writes `bundles/` and
//!   prints the size report (`client.rs`).
//! - `run`: sets up what running needs, builds the client, starts
//!   `switchyard serve` with the demo.
//! - `test`: sets up what the tests need (Chromium, chromedriver, the
//!   wasm-bindgen test runner, the vendor SDKs of the device-mode tests),
//!   then runs every gate and every test.

mod bench;
mod client;
mod names;
mod setup;
mod size;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const CLIENT_PROFILE: &str = "wasm-release";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("build-client") => {
            let toolchain = match args.get(1).map(String::as_str) {
                None => client::Toolchain::Nightly,
                Some("--stable") => client::Toolchain::Stable,
                Some(other) => bail!("build-client: unknown option {other} (only --stable)"),
            };
            client::build(&root, toolchain).map(drop)
        }
        Some("size") => size::report(&root).map(|r| println!("{r}")),
        Some("run") => run(&root, &args[1..]),
        Some("test") => test(&root),
        Some("bench-client") => bench::client(&root, &args[1..]),
        Some("bench-server") => bench::server(),
        _ => {
            eprintln!(
                "usage: cargo xtask <build-client [--stable] | size | run [serve flags] | test | bench-client | bench-server>\n\
                 \n  build-client  build the browser library into bundles/ and print its size\n  \
                 \x20             (--stable: with the stable toolchain, a larger module)\n  \
                 size          print the size report of bundles/, against the committed one\n  \
                 run           set up, build, and start `switchyard serve` with the demo\n  \
                 test          set up, then run every gate and every test\n  \
                 bench-client  measure the library against analytics-next 1.84.3 side by side\n  \
                 bench-server  measure ingest and cloud delivery with wrk and print one table"
            );
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs a command, failing with its command line if it fails.
pub(crate) fn run_cmd(cmd: &mut Command) -> Result<()> {
    let line = format!("{cmd:?}");
    eprintln!("$ {}", line.replace('"', ""));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {line}"))?;
    if !status.success() {
        bail!("failed ({status}): {line}");
    }
    Ok(())
}

/// The stand-in tracking API of the in-browser tests
/// (`tests/src/bin/mock-api.rs`), stopped when dropped.
struct MockApi {
    child: std::process::Child,
    origin: String,
}

impl MockApi {
    fn start() -> Result<MockApi> {
        run_cmd(cargo().args([
            "build",
            "--package",
            "switchyard-tests",
            "--bin",
            "mock-api",
        ]))?;
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        let mut child = Command::new(target_dir.join("debug/mock-api"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("cannot start mock-api")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("mock-api has no stdout")?;
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let origin = line.trim().to_string();
        if !origin.starts_with("http://") {
            let _ = child.kill();
            bail!("mock-api did not print its origin: {line:?}");
        }
        Ok(MockApi { child, origin })
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Builds the browser library into `bundles/`.
fn build_client(root: &Path) -> Result<PathBuf> {
    client::build(root, client::Toolchain::Nightly)
}

fn run(root: &Path, serve_args: &[String]) -> Result<()> {
    build_client(root)?;
    run_cmd(
        cargo()
            .args([
                "run",
                "--release",
                "--package",
                "switchyard-server",
                "--",
                "serve",
                // The demo page and its source, for a first look.
                "--demo",
            ])
            .args(serve_args),
    )
}

fn test(root: &Path) -> Result<()> {
    setup::test_tools()?;
    run_cmd(cargo().args(["fmt", "--all", "--check"]))?;
    run_cmd(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run_cmd(cargo().args([
        "clippy",
        "--package",
        "switchyard-client",
        "--target",
        WASM_TARGET,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    build_client(root)?;
    // The vendors' own SDKs, which mock-api serves to the device-mode
    // end-to-end tests.
    tools::install_test_vendors(root)?;
    run_cmd(cargo().args(["test", "--workspace"]))?;
    // In-browser unit tests: wasm-bindgen-test in headless Chromium,
    // against a stand-in tracking API that fails on purpose.
    let mock = MockApi::start()?;
    run_cmd(
        cargo()
            .args([
                "test",
                "--package",
                "switchyard-client",
                "--target",
                WASM_TARGET,
            ])
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
                "wasm-bindgen-test-runner",
            )
            .env("CHROMEDRIVER", setup::CHROMEDRIVER)
            .env("SWITCHYARD_TEST_API", &mock.origin),
    )?;
    drop(mock);
    println!("xtask test: every gate and every test passed");
    Ok(())
}
