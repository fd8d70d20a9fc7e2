//! `cargo xtask bench-client [--loads N] [--runs N] [--calls N]`: builds the
//! browser library, installs analytics-next from `bench/package-lock.json`
//! if it is missing, then runs `tests/src/bin/bench-client.rs` (optimised,
//! like the server it starts), which measures both libraries in headless
//! Chromium and prints the table. `cargo xtask bench-server`: ingest and
//! cloud delivery, with `wrk` (`tests/src/bin/bench-server.rs`).

use std::path::Path;

use anyhow::Result;

use crate::{build_client, cargo, run_cmd};

pub(crate) fn client(root: &Path, args: &[String]) -> Result<()> {
    build_client(root)?;
    crate::tools::install_test_vendors(root)?;
    run_cmd(
        cargo()
            .args([
                "run",
                "--release",
                "--package",
                "switchyard-tests",
                "--bin",
                "bench-client",
                "--",
            ])
            .args(args),
    )
}

/// `cargo xtask bench-server`: installs `wrk` and nginx when missing, builds the
/// release server and `tests/src/bin/bench-server.rs`, and runs the
/// latter, which prints the table.
pub(crate) fn server() -> Result<()> {
    if std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_err()
    {
        crate::setup::apt_install(&["wrk"])?;
    }
    // nginx serves the same loader bytes from a file: the yardstick for
    // what a cached loader should cost.
    if std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_err()
    {
        crate::setup::apt_install(&["nginx-light"])?;
    }
    run_cmd(cargo().args([
        "build",
        "--release",
        "--package",
        "switchyard-server",
        "--package",
        "switchyard-tests",
        "--bin",
        "switchyard",
        "--bin",
        "bench-server",
    ]))?;
    run_cmd(cargo().args([
        "run",
        "--release",
        "--package",
        "switchyard-tests",
        "--bin",
        "bench-server",
    ]))
}
