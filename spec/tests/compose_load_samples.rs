//! Real-world and upstream Compose files must load through the whole loader
//! as projects: every awesome-compose sample (with its `.env`), Docker's
//! nginx-node-redis sample, and every compose-go `loader/testdata` and
//! `cli/testdata` file that is not a negative case. Each is loaded from its
//! own folder with an empty process environment (the samples that use
//! variables get them from their `.env`).
//!
//! Files that cannot load are listed in `CONFORMANCE_EXCEPTIONS.md` and
//! asserted below to fail with exactly that reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "compose_load_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use berth_spec::compose::{Loaded, load};
use support::*;

/// Loads `file` from its folder with `env` as the whole environment.
fn load_file(file: &Path, env: &[(&str, &str)]) -> Result<Loaded, String> {
    let dir = file.parent().unwrap();
    let name = file.file_name().unwrap().to_str().unwrap();
    load(&options(dir, &[name], env)).map_err(|d| show(&d))
}

/// The variables a testdata file needs, as its Go test passes them.
const FILE_ENV: &[(&str, &[(&str, &str)])] = &[(
    "cli/testdata/simple/compose-name.yaml",
    &[("TEST", "expected")],
)];

/// Warnings other than the obsolete `version`: an unset variable means
/// the sample was not given what it needs.
fn unexpected_warnings(loaded: &Loaded) -> Vec<String> {
    loaded
        .warnings
        .iter()
        .filter(|w| w.key != "version")
        .map(ToString::to_string)
        .collect()
}

fn compose_file_in(dir: &Path) -> Option<PathBuf> {
    ["compose.yaml", "compose.yml"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

#[test]
fn awesome_compose_samples_load() {
    let root = conformance().join("awesome-compose");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 39, "expected the 39 awesome-compose samples");
    let mut failures = Vec::new();
    for dir in &dirs {
        let file =
            compose_file_in(dir).unwrap_or_else(|| panic!("{}: no compose.y*ml", dir.display()));
        // Discovery from the folder, as `berth config` run there does.
        match load(&options(dir, &[], &[])) {
            Ok(loaded) => {
                let warnings = unexpected_warnings(&loaded);
                let folder = dir.file_name().unwrap().to_string_lossy().to_lowercase();
                if !warnings.is_empty() {
                    failures.push(format!("{}: {}", file.display(), warnings.join("\n")));
                } else if loaded.project.services.is_empty() {
                    failures.push(format!("{}: no services", file.display()));
                } else if loaded.project.name != folder {
                    failures.push(format!("{}: name {}", file.display(), loaded.project.name));
                }
            }
            Err(e) => failures.push(format!("{}:\n{e}", file.display())),
        }
    }
    println!(
        "awesome-compose: {}/{} load",
        dirs.len() - failures.len(),
        dirs.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn awesome_compose_variables_come_from_dot_env() {
    let root = conformance().join("awesome-compose");
    let loaded = load(&options(&root.join("postgresql-pgadmin"), &[], &[])).unwrap();
    let env = environment(service(&loaded, "postgres"));
    assert!(
        env.contains(&("POSTGRES_USER".into(), "yourUser".into())),
        "{env:?}"
    );
    // The process environment wins over `.env`.
    let loaded = load(&options(
        &root.join("postgresql-pgadmin"),
        &[],
        &[("POSTGRES_USER", "admin")],
    ))
    .unwrap();
    let env = environment(service(&loaded, "postgres"));
    assert!(
        env.contains(&("POSTGRES_USER".into(), "admin".into())),
        "{env:?}"
    );
}

#[test]
fn nginx_node_redis_loads() {
    let file = conformance().join("dockersamples-nginx-node-redis/compose.yml");
    let loaded = load_file(&file, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(unexpected_warnings(&loaded).is_empty());
    let mut names: Vec<&String> = loaded.project.services.keys().collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    println!("dockersamples-nginx-node-redis: 1/1 load");
}

/// Negative fixtures (EXPECTATIONS section 2) and the files that cannot
/// load on their own, each with the start of the message it must fail
/// with. The second group is in CONFORMANCE_EXCEPTIONS.md.
const EXPECTED_FAILURES: &[(&str, &str)] = &[
    ("loader/testdata/empty.yaml", "empty compose file"),
    (
        "loader/testdata/compose-include-cycle.yaml",
        "include cycle detected",
    ),
    (
        "loader/testdata/compose-depends-on-cycle.yaml",
        "dependency cycle detected",
    ),
    (
        "loader/testdata/compose-depends-on-self.yaml",
        "dependency cycle detected",
    ),
    (
        "loader/testdata/compose-depends-on-profile-no-cycle.yaml",
        "dependency cycle detected",
    ),
    // Exceptions: only meant to be extended / included / remote-loaded.
    (
        "loader/testdata/extends/base.yaml",
        "must be a mapping, got null",
    ),
    ("loader/testdata/include/dir/compose.yaml", "env file "),
    (
        "loader/testdata/remote/cycle/compose.yaml",
        "cannot read file",
    ),
    (
        "loader/testdata/remote/cycle/compose-cycle.yaml",
        "cannot read file",
    ),
    (
        "loader/testdata/remote/nested/compose.yaml",
        "cannot read file",
    ),
];

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[test]
fn compose_go_testdata_files_load() {
    let base = compose_go("");
    let mut files = Vec::new();
    yaml_files(&base.join("loader/testdata"), &mut files);
    yaml_files(&base.join("cli/testdata"), &mut files);
    files.sort();
    let mut loaded_count = 0;
    let mut expected_failures = 0;
    let mut problems = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&base)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let expected = EXPECTED_FAILURES.iter().find(|(f, _)| *f == rel);
        let env = FILE_ENV
            .iter()
            .find(|(f, _)| *f == rel)
            .map_or(&[][..], |(_, env)| *env);
        match (load_file(file, env), expected) {
            (Ok(loaded), None) => {
                let warnings = unexpected_warnings(&loaded);
                if warnings.is_empty() {
                    loaded_count += 1;
                } else {
                    problems.push(format!("{rel}: {}", warnings.join("\n")));
                }
            }
            (Err(e), Some((_, reason))) => {
                let first = e.lines().next().unwrap_or_default();
                if first.contains(&format!(": {reason}")) || first.starts_with(reason) {
                    expected_failures += 1;
                } else {
                    problems.push(format!("{rel}: fails, but not with {reason:?}:\n{e}"));
                }
            }
            (Ok(_), Some((_, reason))) => {
                problems.push(format!("{rel}: loads, expected to fail with {reason:?}"))
            }
            (Err(e), None) => problems.push(format!("{rel}:\n{e}")),
        }
    }
    let should_load = files.len() - EXPECTED_FAILURES.len();
    println!(
        "compose-go testdata: {loaded_count}/{should_load} load, {expected_failures}/{} fail as expected",
        EXPECTED_FAILURES.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert_eq!(loaded_count + expected_failures, files.len());
}
