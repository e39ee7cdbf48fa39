//! Helpers shared by the `compose_load_*` tests: where the shared fixtures
//! are, building [`LoadOptions`], temporary project folders, and running a
//! table of cases with a pass count.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_spec::compose::{LoadOptions, Loaded, load, load_unchecked, model::Service};
use berth_spec::diag::Diagnostics;

/// `../shared/conformance/compose`, read in place.
pub fn conformance() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/compose"
    ));
    assert!(
        dir.is_dir(),
        "the shared conformance fixtures are missing: expected {} (they live outside the repository, next to it)",
        dir.display()
    );
    // Canonical, so paths in results compare equal to ones built here.
    dir.canonicalize().unwrap_or(dir)
}

/// `compose-go/<rel>` inside the fixtures.
pub fn compose_go(rel: &str) -> PathBuf {
    conformance().join("compose-go").join(rel)
}

pub fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Options for `files` (relative to `working_dir`) with `environment`.
pub fn options(working_dir: &Path, files: &[&str], environment: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        working_dir: working_dir.to_path_buf(),
        files: files.iter().map(PathBuf::from).collect(),
        environment: env(environment),
        ..LoadOptions::default()
    }
}

pub fn show(d: &Diagnostics) -> String {
    d.0.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads and fails the test with every diagnostic when loading fails.
pub fn load_ok(options: &LoadOptions) -> Loaded {
    load(options).unwrap_or_else(|d| panic!("expected the project to load:\n{}", show(&d)))
}

/// Loads without the consistency checks (compose-go's SkipConsistencyCheck).
pub fn load_unchecked_ok(options: &LoadOptions) -> Loaded {
    load_unchecked(options)
        .unwrap_or_else(|d| panic!("expected the project to load:\n{}", show(&d)))
}

/// Loads and returns the diagnostics of a load that must fail.
pub fn load_err(options: &LoadOptions) -> Diagnostics {
    match load(options) {
        Ok(loaded) => panic!(
            "expected the load to fail, got:\n{}",
            serde_json::to_string_pretty(&loaded.project).unwrap_or_default()
        ),
        Err(d) => d,
    }
}

pub fn service<'a>(loaded: &'a Loaded, name: &str) -> &'a Service {
    loaded.project.services.get(name).unwrap_or_else(|| {
        panic!(
            "no service {name:?} in {:?}",
            loaded.project.services.keys()
        )
    })
}

/// A service's environment with every value set, as `(key, value)` pairs.
pub fn environment(service: &Service) -> Vec<(String, String)> {
    service
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().unwrap_or_else(|| "<unset>".into())))
        .collect()
}

pub fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    v.sort();
    v
}

/// A folder under the system temp dir with the given files, removed when
/// dropped. Paths are canonical so they compare with loader output.
pub struct TempProject {
    pub dir: PathBuf,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TempProject {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("berth-load-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let project = Self { dir };
        for (path, text) in files {
            project.write(path, text);
        }
        project
    }

    pub fn write(&self, path: &str, text: &str) {
        let full = self.dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(full, text).unwrap();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn path_str(&self, rel: &str) -> String {
        self.path(rel).to_string_lossy().into_owned()
    }

    /// Options loading `files` from this folder (the working dir).
    pub fn options(&self, files: &[&str], environment: &[(&str, &str)]) -> LoadOptions {
        options(&self.dir, files, environment)
    }
}

impl Drop for TempProject {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A named check in a table of cases.
pub type Case = (&'static str, fn());

/// Runs every case, prints `<title>: passed/total`, and fails naming the
/// cases that failed (each with its own panic message above).
pub fn run_cases(title: &str, cases: &[Case]) {
    let mut failed = Vec::new();
    for (name, case) in cases {
        if catch_unwind(AssertUnwindSafe(case)).is_err() {
            eprintln!("FAILED: {name}");
            failed.push(*name);
        }
    }
    let passed = cases.len() - failed.len();
    println!("{title}: {passed}/{}", cases.len());
    assert!(failed.is_empty(), "{title}: failed cases: {failed:?}");
}
