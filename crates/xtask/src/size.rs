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

/// The committed report, which each new one is compared with; a commit
/// that changes the library's size updates it.
pub(crate) const REPORT_FILE: &str = "bundles/size-report.txt";

/// A report's figures: one line per row, `name<TAB>raw<TAB>gzip<TAB>brotli`,
/// in the order the report prints them.
#[derive(Default)]
pub(crate) struct Figures(Vec<(String, Sizes)>);

impl Figures {
    fn push(&mut self, name: impl Into<String>, sizes: Sizes) {
        self.0.push((name.into(), sizes));
    }

    fn get(&self, name: &str) -> Option<Sizes> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, s)| *s)
    }

    pub(crate) fn parse(text: &str) -> Figures {
        let mut figures = Figures::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let fields: Vec<&str> = line.split('\t').collect();
            if let [name, raw, gzip, brotli] = fields[..]
                && let (Ok(raw), Ok(gzip), Ok(brotli)) = (raw.parse(), gzip.parse(), brotli.parse())
            {
                figures.push(name, Sizes { raw, gzip, brotli });
            }
        }
        figures
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::from(
            "# The browser library's size (cargo xtask size): name, raw, gzip, brotli bytes;\n\
             # each file compressed on its own; an adapter's row is what it adds to the module.\n",
        );
        for (name, s) in &self.0 {
            out.push_str(&format!("{name}\t{}\t{}\t{}\n", s.raw, s.gzip, s.brotli));
        }
        out
    }
}

/// A signed difference, `+12` or `-340`, or `new` without a previous figure.
fn delta(now: usize, before: Option<usize>) -> String {
    match before {
        None => "new".into(),
        Some(b) if now >= b => format!("+{}", now - b),
        Some(b) => format!("-{}", b - now),
    }
}

/// What a module with some adapters adds to the core module: the
/// difference of each figure.
fn minus(a: Sizes, b: Sizes) -> Sizes {
    Sizes {
        raw: a.raw.saturating_sub(b.raw),
        gzip: a.gzip.saturating_sub(b.gzip),
        brotli: a.brotli.saturating_sub(b.brotli),
    }
}

/// Measures the artifacts in `dir`, with the bytes the server sends.
pub(crate) fn measure(dir: &Path) -> Result<Figures> {
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
    let mut figures = Figures::default();
    figures.push("loader", js);
    figures.push("module", wasm);
    figures.push("total", js + wasm);
    // Alone, an adapter also brings the helpers adapters share; beside the
    // others, only its own code.
    let all: Vec<&str> = artifacts.adapters().iter().map(String::as_str).collect();
    let everything = wasm_of(&all)?;
    figures.push(format!("module, all {} adapters", all.len()), everything);
    for slug in &all {
        figures.push(format!("{slug} alone"), minus(wasm_of(&[slug])?, wasm));
    }
    for slug in &all {
        let others: Vec<&str> = all.iter().copied().filter(|s| s != slug).collect();
        figures.push(
            format!("{slug} beside the others"),
            minus(everything, wasm_of(&others)?),
        );
    }
    Ok(figures)
}

/// The report of `now` against the committed figures `before`.
pub(crate) fn render(now: &Figures, before: &Figures) -> String {
    let width = now.0.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = format!(
        "{:<width$}  {:>7}  {:>7}  {:>7}  {:>7}  {:>7}\n",
        "browser library, as a page downloads it", "raw", "gzip", "brotli", "Δraw", "Δbrotli"
    );
    for (name, s) in &now.0 {
        let was = before.get(name);
        out.push_str(&format!(
            "{:<width$}  {:>7}  {:>7}  {:>7}  {:>7}  {:>7}\n",
            name,
            s.raw,
            s.gzip,
            s.brotli,
            delta(s.raw, was.map(|w| w.raw)),
            delta(s.brotli, was.map(|w| w.brotli)),
        ));
    }
    let total = now.get("total").unwrap_or_default().brotli;
    let verdict = if total <= BUDGET_BROTLI {
        format!("{} left", BUDGET_BROTLI - total)
    } else {
        format!("{} over", total - BUDGET_BROTLI)
    };
    out.push_str(&format!(
        "budget: {BUDGET_BROTLI} bytes brotli; total {total}: {verdict}; \
         Δ against the committed {REPORT_FILE}\n"
    ));
    out
}

/// The committed report: the file as the last commit has it (`git show`),
/// or as the work tree has it where git cannot tell.
fn committed(root: &Path) -> Figures {
    let shown = std::process::Command::new("git")
        .args(["show", &["HEAD:", REPORT_FILE].concat()])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let text = shown
        .or_else(|| std::fs::read_to_string(root.join(REPORT_FILE)).ok())
        .unwrap_or_default();
    Figures::parse(&text)
}

/// Measures `bundles/`, writes the figures to the report file (for the
/// next commit) and returns the report against the committed one.
pub(crate) fn report(root: &Path) -> Result<String> {
    let now = measure(&root.join("bundles"))?;
    let before = committed(root);
    std::fs::write(root.join(REPORT_FILE), now.render())?;
    Ok(render(&now, &before))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_round_trip_and_deltas_are_signed() {
        let mut f = Figures::default();
        f.push(
            "loader",
            Sizes {
                raw: 10,
                gzip: 8,
                brotli: 7,
            },
        );
        f.push(
            "mixpanel alone",
            Sizes {
                raw: 3,
                gzip: 2,
                brotli: 1,
            },
        );
        let back = Figures::parse(&f.render());
        assert_eq!(back.0.len(), 2);
        assert_eq!(back.get("mixpanel alone").unwrap().brotli, 1);
        assert_eq!(delta(5, Some(7)), "-2");
        assert_eq!(delta(7, Some(5)), "+2");
        assert_eq!(delta(7, None), "new");
        let report = render(&f, &Figures::parse("loader\t12\t9\t9\n"));
        assert!(report.contains("-2"), "{report}");
        assert!(report.contains("new"), "{report}");
    }
}
