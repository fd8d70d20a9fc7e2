//! The browser library's size: raw, gzip and brotli, measured with the
//! compression the server uses. The report measures what a page downloads:
//! the loader as served (the template with a typical source's settings
//! inlined) and the module, each compressed on its own.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use switchyard_bundler::{Artifacts, Encoding, SourceBundle};

/// The budget for what a page downloads, brotli.
pub(crate) const BUDGET_BROTLI: usize = 16 * 1024;

#[derive(Clone, Copy, Default)]
pub(crate) struct Sizes {
    pub raw: usize,
    pub gzip: usize,
    pub brotli: usize,
}

impl Sizes {
    pub(crate) fn of(bytes: &[u8]) -> Sizes {
        Sizes {
            raw: bytes.len(),
            gzip: Encoding::Gzip.compress(bytes).len(),
            brotli: Encoding::Brotli.compress(bytes).len(),
        }
    }

    pub(crate) fn of_file(path: &Path) -> Result<Sizes> {
        let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        Ok(Sizes::of(&bytes))
    }
}

impl std::ops::Add for Sizes {
    type Output = Sizes;
    fn add(self, o: Sizes) -> Sizes {
        Sizes {
            raw: self.raw + o.raw,
            gzip: self.gzip + o.gzip,
            brotli: self.brotli + o.brotli,
        }
    }
}

/// Rows of sizes under a title.
pub(crate) struct Table {
    title: String,
    rows: Vec<(String, Sizes)>,
}

impl Table {
    pub(crate) fn new(title: impl Into<String>) -> Table {
        Table {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, name: impl Into<String>, sizes: Sizes) {
        self.rows.push((name.into(), sizes));
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|(n, _)| n.len())
            .chain([self.title.len()])
            .max()
            .unwrap_or(0);
        writeln!(
            f,
            "{:<width$}  {:>7}  {:>7}  {:>7}",
            self.title, "raw", "gzip", "brotli"
        )?;
        for (name, s) in &self.rows {
            writeln!(
                f,
                "{:<width$}  {:>7}  {:>7}  {:>7}",
                name, s.raw, s.gzip, s.brotli
            )?;
        }
        Ok(())
    }
}

/// A typical source: a write key as the store makes them (32 letters and
/// digits), no device-mode destination.
fn typical_source() -> SourceBundle {
    SourceBundle {
        write_key: "Zx4bT9qLmN2vR7cKpW3sYh8dJf6gA1eU".into(),
        revision: 1,
        destinations: vec![],
        unbundled: vec![],
    }
}

/// The report for the artifacts in `dir`, with the bytes the server sends.
pub(crate) fn report(dir: &Path) -> Result<String> {
    let artifacts = Artifacts::load(dir)?;
    let core = artifacts.module(&artifacts.select(std::iter::empty::<&str>()).set)?;
    let loader = artifacts.loader(&typical_source(), &core);
    let served = |identity: &[u8], encoded: &dyn Fn(Encoding) -> usize| Sizes {
        raw: identity.len(),
        gzip: encoded(Encoding::Gzip),
        brotli: encoded(Encoding::Brotli),
    };
    let js = served(loader.js.as_bytes(), &|e| {
        artifacts.compressed_loader(&loader, e).len()
    });
    let wasm_of = |slugs: &[&str]| -> Result<Sizes> {
        let module = artifacts.module(&artifacts.select(slugs.iter().copied()).set)?;
        Ok(served(module.bytes.as_slice(), &|e| {
            module.encoded(Some(e)).len()
        }))
    };
    let wasm = wasm_of(&[])?;
    let total = js + wasm;
    let mut table = Table::new("browser library, as a page downloads it");
    table.row("loader (js, as served)", js);
    table.row("wasm", wasm);
    table.row("total (each compressed on its own)", total);
    let verdict = if total.brotli <= BUDGET_BROTLI {
        format!("{} left", BUDGET_BROTLI - total.brotli)
    } else {
        format!("{} over", total.brotli - BUDGET_BROTLI)
    };
    // The module with device adapters: what each adds, and sets of 1, 3
    // and all of them.
    let all: Vec<&str> = artifacts.adapters().iter().map(String::as_str).collect();
    let mut adapters = Table::new("wasm with device adapters (each compressed on its own)");
    for set in [&all[..all.len().min(1)], &all[..all.len().min(3)], &all[..]] {
        let name = if set.len() == all.len() {
            format!("all {} adapters", set.len())
        } else {
            set.join(", ")
        };
        adapters.row(name, wasm_of(set)?);
    }
    // Alone, an adapter also brings the helpers adapters share; beside the
    // others, only its own code.
    let everything = wasm_of(&all)?;
    let mut alone = Vec::new();
    let mut beside = Vec::new();
    for slug in &all {
        let with = wasm_of(&[slug])?;
        alone.push(format!(
            "{slug} +{}",
            with.brotli.saturating_sub(wasm.brotli)
        ));
        let others: Vec<&str> = all.iter().copied().filter(|s| s != slug).collect();
        let without = wasm_of(&others)?;
        beside.push(format!(
            "{slug} +{}",
            everything.brotli.saturating_sub(without.brotli)
        ));
    }
    Ok(format!(
        "{table}budget: {BUDGET_BROTLI} bytes brotli; total {}: {verdict}\n\n{adapters}\
         each adapter alone adds (brotli bytes): {}\n\
         each adapter beside all the others adds: {}\n",
        total.brotli,
        alone.join(", "),
        beside.join(", ")
    ))
}
