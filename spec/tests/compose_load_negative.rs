//! Negative golden tests: each folder under `tests/golden/compose/negative/`
//! is a project (its `compose.yaml`, plus `.env` or other files it needs)
//! that must fail to load. `expected_error` holds the exact text of every
//! diagnostic, one per line (`file:line:col: key: message (hint: ...)`),
//! with the case folder written as `${CASE_DIR}`. Regenerate with
//! `BERTH_UPDATE_GOLDEN=1` and check each position by eye.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "compose_load_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use berth_spec::compose::load;
use support::*;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/compose/negative");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn actual_errors(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap();
    // Discovery from the case folder, as `berth config` run there does.
    match load(&options(&dir, &[], &[])) {
        Ok(loaded) => format!(
            "UNEXPECTED SUCCESS\n{}",
            serde_norway::to_string(&loaded.project).unwrap()
        ),
        Err(d) => {
            let mut text = show(&d).replace(&*dir.to_string_lossy(), "${CASE_DIR}");
            text.push('\n');
            text
        }
    }
}

#[test]
fn negative_cases_fail_with_exact_diagnostics() {
    let update = std::env::var_os("BERTH_UPDATE_GOLDEN").is_some();
    let cases = cases();
    assert!(
        cases.len() >= 18,
        "expected the negative cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for dir in &cases {
        let actual = actual_errors(dir);
        let path = dir.join("expected_error");
        if update {
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                dir.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    println!(
        "negative cases: {}/{} match",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "rerun with BERTH_UPDATE_GOLDEN=1 and review the diff:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_negative_case_is_an_error_at_a_position() {
    // Each expected line names the case's file with a line and column,
    // except an empty file, which has no spot to point at.
    let no_position = ["empty-file"];
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(dir.join("expected_error")).unwrap();
        assert!(!text.trim().is_empty(), "{name}: empty expected_error");
        for line in text.lines() {
            assert!(!line.contains("warning:"), "{name}: {line}");
            if no_position.contains(&name.as_str()) {
                continue;
            }
            let rest = line
                .strip_prefix("${CASE_DIR}/")
                .unwrap_or_else(|| panic!("{name}: not in the case folder: {line}"));
            let mut parts = rest.splitn(4, ':');
            let (_file, l, c) = (parts.next(), parts.next(), parts.next());
            assert!(
                l.and_then(|l| l.parse::<u32>().ok()).is_some_and(|l| l > 0)
                    && c.and_then(|c| c.parse::<u32>().ok()).is_some_and(|c| c > 0),
                "{name}: no line:column in {line}"
            );
        }
    }
}

#[test]
fn name_key_is_normalized_not_rejected() {
    // `name:` in the file is normalized (compose-go); only explicit names
    // (-p, COMPOSE_PROJECT_NAME) are validated.
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: My.Project_1\nservices:\n  web:\n    image: nginx\n",
    )]);
    let loaded = load_ok(&p.options(&[], &[]));
    assert_eq!(loaded.project.name, "myproject_1");
}
