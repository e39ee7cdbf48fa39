//! Golden tests for the YAML tree: `golden/yaml/<case>/input.yaml` must
//! parse to `expected.json` (a dump with spans and tags), and
//! `golden/yaml/negative/<case>/input.yaml` must fail with exactly the
//! Diagnostic text in `expected_error`. Run with `BERTH_UPDATE_GOLDEN=1` to
//! rewrite the expectations after a deliberate change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_spec::yaml::{self, Node, Value};
use serde_json::{Value as J, json};

fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/yaml")
}

fn updating() -> bool {
    std::env::var_os("BERTH_UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

fn at(span: &yaml::Span) -> J {
    J::String(format!("{}:{}", span.line, span.column))
}

fn float(f: f64) -> J {
    if f.is_nan() {
        J::String("NaN".into())
    } else if f.is_infinite() {
        J::String(if f > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else {
        json!(f)
    }
}

/// The tree as JSON, with every node's and key's position and any tag.
fn dump(node: &Node) -> J {
    let mut obj = serde_json::Map::new();
    obj.insert("at".into(), at(&node.span));
    if let Some(tag) = node.tag {
        obj.insert("tag".into(), J::String(format!("{tag:?}").to_lowercase()));
    }
    let (kind, value) = match &node.value {
        Value::Null => ("null", J::Null),
        Value::Bool(b) => ("bool", J::Bool(*b)),
        Value::Int(i) => ("int", json!(i)),
        Value::Float(f) => ("float", float(*f)),
        Value::String(s) => ("str", J::String(s.clone())),
        Value::Seq(items) => ("seq", J::Array(items.iter().map(dump).collect())),
        Value::Map(entries) => (
            "map",
            J::Array(
                entries
                    .iter()
                    .map(|e| json!({"key": e.key, "key_at": at(&e.key_span), "value": dump(&e.value)}))
                    .collect(),
            ),
        ),
    };
    obj.insert(kind.into(), value);
    J::Object(obj)
}

fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("input.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn parse_case(dir: &Path) -> Result<Node, berth_spec::diag::Diagnostic> {
    let text = fs::read_to_string(dir.join("input.yaml")).expect("read input.yaml");
    yaml::parse(&text, Arc::from(Path::new("input.yaml")))
}

fn check(dir: &Path, file: &str, actual: &str, failures: &mut Vec<String>) {
    let path = dir.join(file);
    if updating() {
        fs::write(&path, actual).expect("write golden file");
        return;
    }
    match fs::read_to_string(&path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => failures.push(format!(
            "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        )),
        Err(e) => failures.push(format!(
            "{}: {e} (run with BERTH_UPDATE_GOLDEN=1 to create it)",
            path.display()
        )),
    }
}

#[test]
fn golden_trees() {
    let mut failures = Vec::new();
    let dirs = case_dirs(&golden_root());
    assert!(!dirs.is_empty(), "no golden cases found");
    for dir in &dirs {
        match parse_case(dir) {
            Ok(node) => {
                let text = serde_json::to_string_pretty(&dump(&node)).expect("json") + "\n";
                check(dir, "expected.json", &text, &mut failures);
            }
            Err(d) => failures.push(format!("{}: unexpected error: {d}", dir.display())),
        }
    }
    println!(
        "yaml golden trees: {} cases, {} failed",
        dirs.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn golden_errors() {
    let mut failures = Vec::new();
    let dirs = case_dirs(&golden_root().join("negative"));
    assert!(!dirs.is_empty(), "no negative golden cases found");
    for dir in &dirs {
        match parse_case(dir) {
            Ok(node) => failures.push(format!(
                "{}: parsed but should fail: {}",
                dir.display(),
                dump(&node)
            )),
            Err(d) => check(dir, "expected_error", &format!("{d}\n"), &mut failures),
        }
    }
    println!(
        "yaml golden errors: {} cases, {} failed",
        dirs.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
