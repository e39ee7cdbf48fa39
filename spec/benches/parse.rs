//! In-process timing of the parsers on files that `bench/parse.sh`
//! generates: a Compose project through the whole loader (parse,
//! interpolate, merge, schema, decode, normalize, semantic checks) and a
//! Dockerfile through the tree parser and the typed layer. Prints one
//! Markdown table row per input: `| what | median ms | min ms |`.
//!
//! `BENCH_COMPOSE=path BENCH_DOCKERFILE=path cargo bench -p berth-spec --bench parse`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_spec::compose::{LoadOptions, load};
use berth_spec::dockerfile::Dockerfile;

/// The same allocator as the `berth` binary, so the figures are the CLI's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs per input; `BENCH_RUNS` overrides (1 under callgrind).
fn runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(20)
}

fn time<F: FnMut() -> bool>(mut f: F) -> Option<(Duration, Duration)> {
    let runs = runs();
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        if !f() {
            return None;
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    Some((*samples.get(runs / 2)?, *samples.first()?))
}

fn row(what: &str, result: Option<(Duration, Duration)>) {
    match result {
        Some((median, min)) => println!(
            "| {what} | {:.2} | {:.2} |",
            median.as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3
        ),
        None => println!("| {what} | failed | failed |"),
    }
}

fn main() {
    let compose = std::env::var_os("BENCH_COMPOSE").map(PathBuf::from);
    let dockerfile = std::env::var_os("BENCH_DOCKERFILE").map(PathBuf::from);
    if compose.is_none() && dockerfile.is_none() {
        eprintln!("set BENCH_COMPOSE and/or BENCH_DOCKERFILE (bench/parse.sh does)");
        return;
    }
    if let Some(file) = compose {
        let options = LoadOptions {
            working_dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
            files: vec![file.clone()],
            environment: BTreeMap::new(),
            ..LoadOptions::default()
        };
        let services = match load(&options) {
            Ok(loaded) => loaded.project.services.len(),
            Err(e) => {
                eprintln!("{e}");
                0
            }
        };
        row(
            &format!("compose load, {services} services"),
            time(|| load(&options).is_ok()),
        );
    }
    if let Some(file) = dockerfile {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let lines = text.lines().count();
        row(
            &format!("Dockerfile parse + type, {lines} lines"),
            time(|| Dockerfile::parse(&text, &file).is_ok()),
        );
    }
}
