//! compose-go's `loader/full-example.yml` through the whole loader
//! (EXPECTATIONS section 1): canonical YAML and JSON goldens under
//! `tests/golden/compose/load/`, with the fixture folder written as
//! `${FIXTURE_DIR}` so they do not depend on the machine, plus explicit
//! checks of every expectation. Regenerate with `BERTH_UPDATE_GOLDEN=1`.
//!
//! The file names services and networks it never defines, so it is loaded
//! like compose-go's test does, without the consistency checks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "compose_load_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use berth_spec::compose::Loaded;
use support::*;

const HOME: &str = "/home/berth-test";

fn fixture_dir() -> PathBuf {
    compose_go("loader")
}

fn full_example() -> Loaded {
    load_unchecked_ok(&options(
        &fixture_dir(),
        &["full-example.yml"],
        &[
            ("HOME", HOME),
            ("BAR", "this is a secret"),
            ("QUX", "qux_from_environment"),
        ],
    ))
}

fn check_golden(name: &str, actual: &str) {
    let actual = actual.replace(&*fixture_dir().to_string_lossy(), "${FIXTURE_DIR}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/compose/load")
        .join(name);
    if std::env::var_os("BERTH_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BERTH_UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(
        expected,
        actual,
        "{} differs; rerun with BERTH_UPDATE_GOLDEN=1 and review the diff",
        path.display()
    );
}

#[test]
fn full_example_golden_yaml() {
    let yaml = serde_norway::to_string(&full_example().project).unwrap();
    check_golden("full-example.yaml", &yaml);
}

#[test]
fn full_example_golden_json() {
    let json = serde_json::to_string_pretty(&full_example().project).unwrap() + "\n";
    check_golden("full-example.json", &json);
}

fn at(rel: &str) -> String {
    let dir = fixture_dir();
    let path = if rel.is_empty() { dir } else { dir.join(rel) };
    path.to_string_lossy().into_owned()
}

#[test]
fn full_example_expectations() {
    let loaded = full_example();
    let project = &loaded.project;
    let json = serde_json::to_value(project).unwrap();
    let foo = &json["services"]["foo"];
    let bar = &json["services"]["bar"];

    assert_eq!(project.name, "full_example_project_name");
    // ${COMPOSE_PROJECT_NAME} in a build tag.
    assert_eq!(
        foo["build"]["tags"][2], "full_example_project_name:1.0.0",
        "{}",
        foo["build"]["tags"]
    );

    // Short forms become long forms.
    assert_eq!(
        foo["command"],
        serde_json::json!(["bundle", "exec", "thin", "-p", "3000"])
    );
    assert_eq!(foo["configs"][0], serde_json::json!({"source": "config1"}));
    assert_eq!(foo["secrets"][0]["source"], "secret1");
    assert_eq!(foo["annotations"]["com.example.foo"], "bar");
    assert_eq!(foo["build"]["labels"]["FOO"], "BAR");
    assert_eq!(
        foo["depends_on"]["db"],
        serde_json::json!({"condition": "service_started", "required": true})
    );

    // Relative paths made absolute against the working dir; `~` expanded.
    assert_eq!(foo["build"]["context"], at("dir"));
    assert_eq!(foo["build"]["additional_contexts"]["foo"], at("bar"));
    let sources: Vec<&str> = foo["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["source"].as_str())
        .collect();
    assert_eq!(
        sources,
        [
            "/opt/data",
            &at(""),
            &at("static"),
            &format!("{HOME}/configs"),
            "datavolume",
            &at("opt"),
        ]
    );
    assert_eq!(json["configs"]["config1"]["file"], at("config_data"));
    assert_eq!(
        json["configs"]["config4"]["file"],
        format!("{HOME}/config_data")
    );
    assert_eq!(json["secrets"]["secret1"]["file"], at("secret_data"));
    assert_eq!(json["secrets"]["secret5"]["file"], "/abs/secret_data");
    // A build with only dockerfile_inline builds in the working dir.
    assert_eq!(bar["build"]["context"], at(""));
    assert!(bar["build"].get("dockerfile").is_none());

    // Sizes as integers (decimal strings), durations in Go syntax.
    let resources = &foo["deploy"]["resources"];
    assert_eq!(resources["limits"]["memory"], "52428800");
    assert_eq!(resources["reservations"]["memory"], "20971520");
    assert_eq!(foo["deploy"]["update_config"]["monitor"], "1m0s");
    assert_eq!(foo["deploy"]["restart_policy"]["window"], "2m0s");
    assert_eq!(foo["stop_grace_period"], "20s");
    assert_eq!(foo["healthcheck"]["interval"], "10s");

    // env_file merge: example1.env then example2.env, `environment:` wins,
    // a bare key from the process environment.
    assert_eq!(
        foo["environment"],
        serde_json::json!({
            "BAR": "bar_from_env_file_2",
            "BAZ": "baz_from_service_def",
            "ENV.WITH.DOT": "ok",
            "ENV_WITH_UNDERSCORE": "ok",
            "FOO": "foo_from_env_file",
            "QUX": "qux_from_environment",
        })
    );
    assert_eq!(
        foo["env_file"],
        serde_json::json!([
            {"path": at("example1.env"), "required": true},
            {"path": at("example2.env"), "required": false},
        ])
    );

    // Every file read is an input (for the revision hash).
    for input in [
        "full-example.yml",
        "example1.env",
        "example2.env",
        "example1.label",
        "example2.label",
    ] {
        assert!(
            loaded.inputs.contains(&fixture_dir().join(input)),
            "{input} missing from {:?}",
            loaded.inputs
        );
    }
}

#[test]
fn full_example_fails_the_consistency_checks() {
    // With the checks on, the dangling references are reported, each at
    // the entry that names it.
    let err = berth_spec::compose::load(&options(
        &fixture_dir(),
        &["full-example.yml"],
        &[("HOME", HOME)],
    ))
    .unwrap_err();
    let text = show(&err);
    assert!(
        text.contains(
            "services.foo.depends_on[0]: service \"foo\" depends on undefined service \"db\""
        ),
        "{text}"
    );
    assert!(
        text.contains("undefined network \"other-other-network\""),
        "{text}"
    );
}
