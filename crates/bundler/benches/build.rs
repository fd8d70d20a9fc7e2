//! What building a source's module costs, on the browser library in
//! `bundles/` (`cargo xtask build-client` first):
//!
//! ```text
//! cargo bench -p switchyard-bundler
//! ```
//!
//! For 0, 1, 3 and every device adapter enabled: the build of a new set
//! (prune, emit, hash; median of many, against the 20 ms budget), the
//! module's size raw, gzip and brotli, and each compression's time, which
//! the server spends once per module and encoding, on first request.
//! Adapters are taken in the module's (alphabetical) order. Run by
//! `cargo test --benches`, it measures once, as a smoke test.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchyard_bundler::{Artifacts, DeviceSet, Encoding, LOADER_FILE, WASM_FILE};

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (builds, compressions) = if benching { (51, 7) } else { (1, 1) };
    let dir = std::env::var_os("SWITCHYARD_BUNDLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bundles"));
    let read = |name: &str| {
        std::fs::read(dir.join(name)).unwrap_or_else(|e| {
            eprintln!(
                "{}: {e}; run `cargo xtask build-client`",
                dir.join(name).display()
            );
            std::process::exit(1)
        })
    };
    let template = String::from_utf8_lossy(&read(LOADER_FILE)).into_owned();
    let wasm = read(WASM_FILE);
    let fresh = || Artifacts::new(&template, wasm.clone()).expect("the built artifacts load");

    let adapters: Vec<String> = fresh().adapters().iter().cloned().collect();
    println!(
        "module {}: {} bytes, {} device adapters{}",
        dir.join(WASM_FILE).display(),
        wasm.len(),
        adapters.len(),
        if adapters.is_empty() {
            String::new()
        } else {
            [" (", &adapters.join(", "), ")"].concat()
        }
    );
    println!(
        "{:>9} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "adapters", "build", "raw", "gzip", "brotli", "gzip time", "br time"
    );
    let mut counts = vec![0, 1, 3, adapters.len()];
    counts.retain(|&n| n <= adapters.len());
    counts.dedup();
    for n in counts {
        let set = DeviceSet::new(adapters[..n].iter().cloned());
        // A new set each time: fresh artifacts, nothing cached.
        let mut times = Vec::with_capacity(builds);
        let mut module = None;
        for _ in 0..builds {
            let artifacts = fresh();
            let start = Instant::now();
            let built = artifacts.module(&set).expect("the module prunes");
            times.push(start.elapsed());
            module = Some(built);
        }
        let module = module.expect("built at least once");
        let compress = |encoding: Encoding| {
            let mut times = Vec::with_capacity(compressions);
            let mut size = 0;
            for _ in 0..compressions {
                let start = Instant::now();
                size = encoding.compress(&module.bytes).len();
                times.push(start.elapsed());
            }
            (size, median(times))
        };
        let (gzip, gzip_time) = compress(Encoding::Gzip);
        let (brotli, brotli_time) = compress(Encoding::Brotli);
        let label = if n == adapters.len() && n > 0 {
            [&n.to_string(), " (all)"].concat()
        } else {
            n.to_string()
        };
        println!(
            "{:>9} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10}",
            label,
            ms(median(times)),
            module.bytes.len(),
            gzip,
            brotli,
            ms(gzip_time),
            ms(brotli_time)
        );
    }
    println!("budget: build of a new set ≤ 20 ms");
}
