//! Golden tests for the typed Dockerfile layer.
//!
//! `tests/golden/dockerfile/<case>/Dockerfile` -> `expected`: a JSON dump of
//! the typed [`Dockerfile`], the stages each `--target` needs and the
//! expanded FROM bases. `tests/golden/dockerfile/negative/<case>/Dockerfile`
//! -> `expected_error`: the diagnostics, one per line, as displayed.
//! Run with `BERTH_UPDATE_GOLDEN=1` to rewrite the expected files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use berth_spec::dockerfile::Dockerfile;
use serde_json::json;

fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/dockerfile")
}

fn updating() -> bool {
    std::env::var("BERTH_UPDATE_GOLDEN").is_ok_and(|v| v == "1")
}

fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn check(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if updating() {
        fs::write(path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "{}\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        ));
    }
}

/// Build arguments the golden cases see: none, so defaults apply.
fn no_build_args(_: &str) -> Option<String> {
    None
}

fn render(df: &Dockerfile) -> String {
    let mut targets = serde_json::Map::new();
    let default = df
        .target_stages(None, &no_build_args)
        .map_err(|d| d.to_string());
    targets.insert("(default)".into(), json!(default));
    for stage in &df.stages {
        if let Some(name) = &stage.name {
            let needed = df
                .target_stages(Some(name), &no_build_args)
                .map_err(|d| d.to_string());
            targets.insert(name.clone(), json!(needed));
        }
    }
    let bases: Vec<_> = df
        .stages
        .iter()
        .map(|s| {
            json!(
                df.expanded_base(s, &no_build_args)
                    .map_err(|e| e.to_string())
            )
        })
        .collect();
    let warnings: Vec<String> = df.warnings.iter().map(ToString::to_string).collect();
    let out = json!({
        "dockerfile": df,
        "warnings_displayed": warnings,
        "target_stages": targets,
        "expanded_bases": bases,
    });
    serde_json::to_string_pretty(&out).unwrap() + "\n"
}

#[test]
fn golden_dockerfiles() {
    let dirs = case_dirs(&golden_root());
    assert!(
        dirs.len() >= 8,
        "golden cases missing under {}",
        golden_root().display()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let text = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let actual = match Dockerfile::parse(&text, Path::new("Dockerfile")) {
            Ok(df) => render(&df),
            Err(e) => format!("unexpected error:\n{e}\n"),
        };
        check(&dir.join("expected"), &actual, &mut failures);
    }
    println!(
        "dockerfile golden cases: {}/{} passed",
        dirs.len() - failures.len(),
        dirs.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn golden_negative_dockerfiles() {
    let dirs = case_dirs(&golden_root().join("negative"));
    assert!(dirs.len() >= 8, "negative golden cases missing");
    let mut failures = Vec::new();
    for dir in &dirs {
        let text = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let actual = match Dockerfile::parse(&text, Path::new("Dockerfile")) {
            Ok(_) => "unexpectedly parsed\n".to_string(),
            Err(e) => format!("{e}\n"),
        };
        check(&dir.join("expected_error"), &actual, &mut failures);
    }
    println!(
        "dockerfile negative golden cases: {}/{} passed",
        dirs.len() - failures.len(),
        dirs.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
