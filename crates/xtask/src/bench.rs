//! `cargo xtask bench-client [--loads N] [--runs N] [--calls N]`: builds the
//! browser library, installs analytics-next from `bench/package-lock.json`
//! if it is missing, then runs `tests/src/bin/bench-client.rs` (optimised,
//! like the server it starts), which measures both libraries in headless
//! Chromium and prints the table.

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
