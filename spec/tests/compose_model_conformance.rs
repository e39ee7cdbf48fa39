//! Real-world compose files from the shared conformance set must validate
//! against the schema and decode without error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use berth_spec::compose::{decode, schema};
use berth_spec::yaml::{PathSeg, display_path};

/// Validates and decodes one file; returns the problems found.
fn check(path: &Path) -> Vec<String> {
    let v = common::load_yaml(path);
    let mut problems: Vec<String> = schema::validate(&v)
        .iter()
        .map(|e| format!("schema: {e}"))
        .collect();
    if let Err(errs) = decode::decode(v) {
        problems.extend(errs.iter().map(|e| format!("decode: {e}")));
    }
    problems
}

fn compose_file(dir: &Path) -> Option<PathBuf> {
    [
        "compose.yaml",
        "compose.yml",
        "docker-compose.yaml",
        "docker-compose.yml",
    ]
    .iter()
    .map(|n| dir.join(n))
    .find(|p| p.is_file())
}

#[test]
fn vendored_schema_is_the_shared_one() {
    let shared = std::fs::read(common::conformance_dir().join("compose-spec.json")).unwrap();
    let vendored = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/compose-spec.json"
    ))
    .unwrap();
    assert!(
        shared == vendored,
        "spec/schema/compose-spec.json differs from ../shared/conformance/compose/compose-spec.json; copy it again"
    );
}

#[test]
fn awesome_compose_validates_and_decodes() {
    let root = common::conformance_dir().join("awesome-compose");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut total = 0;
    let mut failures = Vec::new();
    for dir in &dirs {
        let Some(file) = compose_file(dir) else {
            continue;
        };
        total += 1;
        let problems = check(&file);
        if !problems.is_empty() {
            failures.push(format!("{}:\n  {}", file.display(), problems.join("\n  ")));
        }
    }
    println!(
        "awesome-compose: {}/{total} validate and decode",
        total - failures.len()
    );
    assert!(
        total >= 39,
        "expected at least 39 awesome-compose samples, found {total}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn other_samples_validate_and_decode() {
    let dir = common::conformance_dir();
    let files = [
        "dockersamples-nginx-node-redis/compose.yml",
        "compose-go/loader/full-example.yml",
    ];
    for f in files {
        let problems = check(&dir.join(f));
        assert!(problems.is_empty(), "{f}:\n{}", problems.join("\n"));
    }
    println!(
        "samples: {}/{} validate and decode",
        files.len(),
        files.len()
    );
}

/// compose-go's TestValidateVariables: `${...}` placeholders in typed
/// positions pass the schema as is. Decoding them (without interpolation)
/// must fail, precisely, at each typed position.
#[test]
fn using_variables_validates_and_decode_names_each_typed_path() {
    let v = common::load_yaml(
        &common::conformance_dir().join("compose-go/schema/using-variables.yaml"),
    );
    let violations = schema::validate(&v);
    assert!(violations.is_empty(), "{violations:?}");
    let errs = decode::decode(v).expect_err("placeholders are not typed values");
    let paths: Vec<String> = errs.iter().map(|e| display_path(&e.path)).collect();
    for want in [
        "services.foo.deploy",
        "services.foo.healthcheck",
        "services.foo.ports[0]",
        "services.foo.privileged",
        "services.foo.read_only",
        "services.foo.stop_grace_period",
        "services.foo.tty",
        "services.foo.ulimits",
        "networks.external-network.external",
    ] {
        assert!(
            paths.iter().any(|p| p.starts_with(want)),
            "no decode error under {want}; got:\n{}",
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // Every error names a real key path.
    assert!(
        errs.iter()
            .all(|e| matches!(e.path.first(), Some(PathSeg::Key(_))))
    );
    for e in &errs {
        println!("  {e}");
    }
    println!(
        "using-variables: validates; decode reports {} typed placeholders",
        errs.len()
    );
}
