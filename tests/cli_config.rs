//! `berth config` and the other plain commands, end to end on the real
//! binary.

// Helpers outside #[test] fns: a failed step must fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;

use std::path::Path;
use std::process::Output;

use agent_support::{TempDir, berth_cmd};
use serde_json::Value;

const WEB_DB: &str = "services:\n  web:\n    image: nginx:1.27\n  db:\n    image: postgres:16\n";

fn config(cwd: &Path, args: &[&str]) -> Output {
    berth_cmd()
        .arg("config")
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn version_prints_the_package_version() {
    let out = berth_cmd().arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        format!("berth version {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = berth_cmd().args(["version", "--short"]).output().unwrap();
    assert_eq!(stdout(&out), format!("{}\n", env!("CARGO_PKG_VERSION")));
    let out = berth_cmd().arg("--version").output().unwrap();
    assert!(stdout(&out).starts_with("berth "));
}

#[test]
fn help_lists_only_the_commands_that_exist() {
    let out = berth_cmd().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = stdout(&out);
    for cmd in [
        "config", "agent", "version", "run", "ps", "logs", "stop", "kill", "rm", "exec", "stats",
        "inspect", "up", "down",
    ] {
        assert!(help.contains(&format!("  {cmd} ")), "{help}");
    }
    assert!(!help.contains("  shim "), "{help}");
    let out = berth_cmd().args(["config", "--help"]).output().unwrap();
    let help = stdout(&out);
    for flag in [
        "--file",
        "--project-name",
        "--project-directory",
        "--env-file",
        "--profile",
        "--format",
        "--services",
        "--volumes",
        "--networks",
        "--profiles",
        "--images",
        "--quiet",
        "--output",
    ] {
        assert!(help.contains(flag), "missing {flag} in\n{help}");
    }
}

#[test]
fn no_compose_file_anywhere_is_an_error() {
    let dir = TempDir::new("cfg-none");
    let out = config(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("no configuration file provided: not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn load_failures_exit_1_with_diagnostics_on_stderr_only() {
    let dir = TempDir::new("cfg-broken");
    dir.write(
        "compose.yaml",
        "services:\n  web:\n    image: nginx: 1.27\n",
    );
    let out = config(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(!err.trim().is_empty());
    // One diagnostic per line, no blank lines between them.
    assert!(err.lines().all(|l| !l.trim().is_empty()), "{err}");

    // A named file that does not exist fails the same way.
    let out = config(dir.path(), &["-f", "nope.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    // --output is not written when loading fails.
    let target = dir.path().join("out.yaml");
    let out = config(dir.path(), &["-o", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!target.exists());
}

#[test]
fn bad_flag_values_are_usage_errors() {
    let dir = TempDir::new("cfg-usage");
    let out = config(dir.path(), &["--format", "toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("toml"));
}

// ---- needs the compose loader -------------------------------------------

#[test]
fn prints_the_normalized_project_as_yaml_and_json() {
    let dir = TempDir::new("cfg-yaml");
    dir.write("shop/compose.yaml", WEB_DB);
    let cwd = dir.path().join("shop");
    let out = config(&cwd, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let yaml = stdout(&out);
    assert!(yaml.contains("name: shop\n"), "{yaml}");
    assert!(yaml.contains("services:\n"), "{yaml}");
    assert!(yaml.contains("image: nginx:1.27"), "{yaml}");

    let out = config(&cwd, &["--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["name"], "shop");
    assert_eq!(json["services"]["web"]["image"], "nginx:1.27");
    assert_eq!(json["services"]["db"]["image"], "postgres:16");
}

#[test]
fn list_flags_print_one_name_per_line() {
    let dir = TempDir::new("cfg-lists");
    dir.write(
        "compose.yaml",
        "services:\n  web:\n    image: nginx:1.27\n  tool:\n    build: .\n    profiles: [debug]\n\
         volumes:\n  data: {}\nnetworks:\n  front: {}\n",
    );
    let p = dir.path();
    assert_eq!(stdout(&config(p, &["--services"])), "web\n");
    assert_eq!(
        stdout(&config(p, &["--profile", "debug", "--services"])),
        "tool\nweb\n",
        "services print sorted by name, as docker compose does"
    );
    assert_eq!(stdout(&config(p, &["--volumes"])), "data\n");
    // The implicit default network is part of the normalized project.
    assert_eq!(stdout(&config(p, &["--networks"])), "default\nfront\n");
    let name = p.file_name().unwrap().to_str().unwrap().to_lowercase();
    let images = stdout(&config(p, &["--profile", "debug", "--images"]));
    assert_eq!(images, format!("{name}-tool\nnginx:1.27\n"));
}

#[test]
fn quiet_validates_and_output_writes_a_file() {
    let dir = TempDir::new("cfg-quiet");
    dir.write("compose.yaml", WEB_DB);
    let out = config(dir.path(), &["-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());

    let target = dir.path().join("rendered.json");
    let out = config(
        dir.path(),
        &["--format", "json", "-o", target.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(json["services"]["web"]["image"], "nginx:1.27");
}

#[test]
fn discovery_walks_up_and_project_flags_and_variables_apply() {
    let dir = TempDir::new("cfg-discover");
    dir.write("myapp/compose.yaml", WEB_DB);
    dir.write("myapp/other.yaml", "services:\n  api:\n    image: api:1\n");
    let deep = dir.path().join("myapp/src/deep");
    std::fs::create_dir_all(&deep).unwrap();

    // Found in a parent; named after that folder.
    let out = config(&deep, &["--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["name"], "myapp");

    // -p and COMPOSE_PROJECT_NAME.
    let out = config(&deep, &["-p", "flagname", "--format", "json"]);
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["name"], "flagname");
    let out = berth_cmd()
        .args(["config", "--format", "json"])
        .env("COMPOSE_PROJECT_NAME", "envname")
        .current_dir(&deep)
        .output()
        .unwrap();
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["name"], "envname");

    // COMPOSE_FILE, path-separator separated, relative to the current folder.
    let out = berth_cmd()
        .args(["config", "--services"])
        .env("COMPOSE_FILE", "compose.yaml:other.yaml")
        .current_dir(dir.path().join("myapp"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "api\ndb\nweb\n");

    // -f wins over COMPOSE_FILE.
    let out = berth_cmd()
        .args(["config", "--services", "-f", "other.yaml"])
        .env("COMPOSE_FILE", "compose.yaml")
        .current_dir(dir.path().join("myapp"))
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "api\n");
}

#[test]
fn an_invalid_file_is_reported_at_file_line_column() {
    let dir = TempDir::new("cfg-pos");
    let file = dir.write(
        "compose.yaml",
        "services:\n  web:\n    image: nginx: 1.27\n",
    );
    let out = config(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let first = err.lines().next().unwrap();
    let prefix = format!("{}:3:", file.display());
    assert!(first.starts_with(&prefix), "{err}");
}
