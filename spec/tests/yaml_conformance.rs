//! Every Compose YAML file in the shared conformance corpus (awesome-compose,
//! compose-go loader/cli/schema testdata, ...) must parse, except the few
//! listed in `EXPECTED_FAILURES`. Files are read in place.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_spec::yaml::{self, Value};

/// Files that are meant to be empty: (path suffix, why).
const EXPECTED_EMPTY: &[(&str, &str)] = &[(
    "compose-go/loader/testdata/empty.yaml",
    "TestEmptyFile: the loader must report `empty compose file`, so the tree is Null",
)];

/// Files that must fail to parse: (path suffix, why). None at the moment.
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/compose")
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(path);
        }
    }
}

fn listed(path: &Path, list: &[(&str, &str)]) -> bool {
    let shown = path.to_string_lossy();
    list.iter().any(|(suffix, _)| shown.ends_with(suffix))
}

#[test]
fn conformance_corpus_parses() {
    let root = corpus_root();
    assert!(
        root.is_dir(),
        "conformance corpus missing at {} (expected /work/shared/conformance/compose)",
        root.display()
    );
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    assert!(files.len() > 50, "only {} YAML files found", files.len());

    let mut problems = Vec::new();
    let (mut parsed, mut empty, mut failed_as_expected) = (0, 0, 0);
    for file in &files {
        let text = match fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{}: unreadable: {e}", file.display()));
                continue;
            }
        };
        let result = yaml::parse(&text, Arc::from(file.as_path()));
        match (result, listed(file, EXPECTED_FAILURES)) {
            (Ok(node), false) => {
                let is_empty = node.value == Value::Null;
                match (is_empty, listed(file, EXPECTED_EMPTY)) {
                    (true, true) => empty += 1,
                    (false, false) => parsed += 1,
                    (true, false) => {
                        problems.push(format!("{}: unexpectedly empty", file.display()))
                    }
                    (false, true) => {
                        problems.push(format!("{}: expected to be empty", file.display()))
                    }
                }
            }
            (Err(d), false) => problems.push(d.to_string()),
            (Ok(_), true) => problems.push(format!(
                "{}: parsed but is listed as failing",
                file.display()
            )),
            (Err(_), true) => failed_as_expected += 1,
        }
    }
    println!(
        "yaml conformance: {} files, {parsed} parsed, {empty} empty as expected, {failed_as_expected} failed as expected, {} problems",
        files.len(),
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
