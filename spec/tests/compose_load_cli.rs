//! compose-go's `cli/testdata` project options (shared
//! `compose-go/EXPECTATIONS.md` section 3), env_file vs environment
//! precedence (section 5) and interpolation with typed casts (section 7),
//! through `berth_spec::compose::load` with the fixtures read in place.
//! Each row is one case; each driver prints a pass count. Rows run
//! differently from the Go tests are in `CONFORMANCE_EXCEPTIONS.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "compose_load_support/mod.rs"]
mod support;

use std::path::PathBuf;

use berth_spec::compose::LoadOptions;
use support::*;

fn s(p: PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

fn inline(project: &TempProject, project_dir: PathBuf, env: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        project_directory: Some(project_dir),
        ..project.options(&["compose.yaml"], env)
    }
}

// ---- section 3: cli/testdata ---------------------------------------------

fn cli(rel: &str) -> PathBuf {
    compose_go("cli/testdata").join(rel)
}

fn simple_with(name: Option<&str>, env: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        project_name: name.map(String::from),
        ..options(&cli("simple"), &["compose.yaml"], env)
    }
}

fn cli_explicit_names() {
    for good in ["my_project", "42my_project_num"] {
        assert_eq!(load_ok(&simple_with(Some(good), &[])).project.name, good);
    }
    for bad in ["-my_project", "_my_project", "my.project", "MY_PROJECT"] {
        let err = load_err(&simple_with(Some(bad), &[]));
        assert_eq!(err.0[0].message, format!("invalid project name {bad:?}"));
    }
}

fn cli_env_names() {
    for bad in ["-my_project", "_my_project", "my.project", "MY_PROJECT"] {
        let err = load_err(&simple_with(None, &[("COMPOSE_PROJECT_NAME", bad)]));
        assert_eq!(err.0[0].message, format!("invalid project name {bad:?}"));
        assert_eq!(err.0[0].key, "COMPOSE_PROJECT_NAME");
    }
    let loaded = load_ok(&simple_with(
        None,
        &[("COMPOSE_PROJECT_NAME", "42my_project_env")],
    ));
    assert_eq!(loaded.project.name, "42my_project_env");
}

fn cli_empty_and_default_names() {
    assert_eq!(load_ok(&simple_with(Some(""), &[])).project.name, "simple");
    assert_eq!(load_ok(&simple_with(None, &[])).project.name, "simple");
    // Working dir `.` as the project directory: its own folder's name.
    let options = LoadOptions {
        project_directory: Some(PathBuf::from(".")),
        ..options(&compose_go("cli"), &["testdata/simple/compose.yaml"], &[])
    };
    assert_eq!(load_ok(&options).project.name, "cli");
    // A folder whose name normalizes to nothing.
    let p = TempProject::new(&[("___/compose.yaml", "services:\n  a:\n    image: a\n")]);
    let err = load_err(&options_for(&p.path("___"), &["compose.yaml"]));
    assert_eq!(err.0[0].message, "project name must not be empty");
}

fn options_for(dir: &std::path::Path, files: &[&str]) -> LoadOptions {
    options(dir, files, &[])
}

fn cli_unnormalized_path() {
    let loaded = load_ok(&options(&cli("UNNORMALIZED PATH"), &["compose.yaml"], &[]));
    assert_eq!(loaded.project.name, "unnormalizedpath");
}

fn cli_name_interpolated() {
    let loaded = load_ok(&options(
        &cli("simple"),
        &["compose-name.yaml"],
        &[("TEST", "expected")],
    ));
    assert_eq!(loaded.project.name, "test-expected-test");
}

fn cli_overrides() {
    let loaded = load_ok(&options(
        &cli("simple"),
        &["compose.yaml", "compose-with-overrides.yaml"],
        &[],
    ));
    assert_eq!(service(&loaded, "simple").image.as_deref(), Some("haproxy"));
}

fn cli_variables_from_dot_env() {
    let loaded = load_ok(&options(
        &cli("simple"),
        &["compose-with-variables.yaml"],
        &[],
    ));
    let port = &service(&loaded, "simple").ports[0];
    assert_eq!(port.published.as_deref(), Some("8000"));
}

fn cli_env_file_dot_env_selects_file_and_name() {
    let loaded = load_ok(&options(&cli("env-file"), &[], &[]));
    assert_eq!(loaded.project.name, "my_project_from_dot_env");
    assert!(
        loaded
            .inputs
            .contains(&cli("env-file/compose-with-env-file.yaml"))
    );
    let simple = service(&loaded, "simple");
    assert_eq!(environment(simple), pairs(&[("DEFAULT_PORT", "8080")]));
    assert_eq!(simple.ports[0].published.as_deref(), Some("8000"));
}

fn cli_env_file_explicit_file() {
    // compose-with-env-file.yaml: DEFAULT_PORT from simple-env, port 8000.
    // The Go test builds options without the `.env` step, so its name is
    // the folder's; berth always reads `.env` (see exceptions).
    let loaded = load_ok(&options(
        &cli("env-file"),
        &["compose-with-env-file.yaml"],
        &[],
    ));
    assert_eq!(loaded.project.name, "my_project_from_dot_env");
    let simple = service(&loaded, "simple");
    assert_eq!(environment(simple), pairs(&[("DEFAULT_PORT", "8080")]));
    assert_eq!(simple.ports[0].published.as_deref(), Some("8000"));
    // Without the `.env` (an empty --env-file list is the default, so give
    // one without a name): the folder's name.
    let options = LoadOptions {
        env_files: vec![PathBuf::from("simple-env")],
        ..options(&cli("env-file"), &["compose-with-env-file.yaml"], &[])
    };
    assert_eq!(load_ok(&options).project.name, "env-file");
}

fn cli_env_files_in_order() {
    let options = LoadOptions {
        env_files: vec![PathBuf::from(".env"), PathBuf::from("override.env")],
        ..options(&cli("env-file"), &["compose-with-env-files.yaml"], &[])
    };
    let loaded = load_ok(&options);
    let simple = service(&loaded, "simple");
    assert_eq!(environment(simple), pairs(&[("DEFAULT_PORT", "9090")]));
    assert_eq!(simple.ports[0].published.as_deref(), Some("9000"));
}

fn cli_windows_paths_on_unix() {
    // Windows-only upstream; on Unix `C:\…` is a relative path.
    let loaded = load_ok(&options(&cli("simple"), &["compose-with-paths.yaml"], &[]));
    let sources: Vec<String> = service(&loaded, "test")
        .volumes
        .iter()
        .map(|v| v.source.clone().unwrap())
        .collect();
    assert_eq!(
        sources,
        [
            s(cli("simple/C:\\docker\\project")),
            s(cli("simple/relative")),
            s(cli("simple/relative2")),
        ]
    );
}

const CLI_CASES: &[Case] = &[
    ("simple: explicit names", cli_explicit_names),
    ("simple: COMPOSE_PROJECT_NAME", cli_env_names),
    (
        "simple: empty and default names",
        cli_empty_and_default_names,
    ),
    ("UNNORMALIZED PATH", cli_unnormalized_path),
    ("simple/compose-name.yaml", cli_name_interpolated),
    ("simple/compose-with-overrides.yaml", cli_overrides),
    (
        "simple/compose-with-variables.yaml",
        cli_variables_from_dot_env,
    ),
    ("env-file/.env", cli_env_file_dot_env_selects_file_and_name),
    (
        "env-file/compose-with-env-file.yaml",
        cli_env_file_explicit_file,
    ),
    (
        "env-file/compose-with-env-files.yaml",
        cli_env_files_in_order,
    ),
    ("simple/compose-with-paths.yaml", cli_windows_paths_on_unix),
];

#[test]
fn compose_go_cli_options() {
    run_cases("compose-go cli options", CLI_CASES);
}

// ---- section 5: env_file vs environment; section 7: typed casts ---------

fn env_precedence_base() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: env\nservices:\n  base:\n    image: x\n    environment:\n      FOO: foo_from_environment\n      BAR: bar_from_environment\n      QIX:\n    env_file: base.env\n",
    )]);
    let os = [("FOO", "FOO_from_os.env"), ("QIX", "QIX_from_os.env")];
    let loaded = load_ok(&inline(&p, compose_go("types/fixtures"), &os));
    assert_eq!(
        environment(service(&loaded, "base")),
        pairs(&[
            ("BAR", "bar_from_environment"),
            ("FOO", "foo_from_environment"),
            ("INTERPOLATED_BAR", "bar_from_environment"),
            ("INTERPOLATED_FOO", "FOO_from_os.env"),
            ("INTERPOLATED_ZOT", "zot_from_base.env"),
            ("QIX", "QIX_from_os.env"),
            ("ZOT", "zot_from_base.env"),
        ])
    );
}

fn env_precedence_two_files() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: env\nservices:\n  base:\n    image: x\n    environment:\n      BAR: bar_from_environment\n    env_file: [base.env, override.env]\n",
    )]);
    let os = [("FOO", "FOO_from_os.env")];
    let loaded = load_ok(&inline(&p, compose_go("types/fixtures"), &os));
    assert_eq!(
        environment(service(&loaded, "base")),
        pairs(&[
            ("BAR", "bar_from_environment"),
            ("FOO", "foo_from_override.env"),
            ("INTERPOLATED_BAR", "bar_from_environment"),
            ("INTERPOLATED_FOO", "FOO_from_os.env"),
            ("INTERPOLATED_ZOT", "zot_from_base.env"),
            ("ZOT", "zot_from_base.env"),
        ])
    );
}

fn typed_casts_after_interpolation() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: casts\nservices:\n  servicea:\n    image: example:${USER}\n    command: $USER\n    deploy:\n      replicas: \"$count\"\n    read_only: \"$REQUIRED\"\n",
    )]);
    let env = [
        ("USER", "jenny"),
        ("FOO", "bar"),
        ("count", "5"),
        ("REQUIRED", "true"),
    ];
    let loaded = load_ok(&p.options(&["compose.yaml"], &env));
    let svc = service(&loaded, "servicea");
    assert_eq!(svc.image.as_deref(), Some("example:jenny"));
    assert_eq!(svc.command.as_deref(), Some(&["jenny".to_string()][..]));
    assert_eq!(svc.deploy.as_ref().and_then(|d| d.replicas), Some(5));
    assert!(svc.read_only);
}

fn bad_template_names_path() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: bad\nservices:\n  servicea:\n    image: ${\n",
    )]);
    let err = load_err(&p.options(&["compose.yaml"], &[]));
    let d = &err.0[0];
    assert_eq!(d.key, "services.servicea.image");
    assert_eq!((d.line, d.column), (4, 12));
    assert!(d.message.contains("invalid interpolation format"), "{d}");
    assert!(d.hint.as_deref().unwrap_or_default().contains("$$"), "{d}");
}

const ENV_CASES: &[Case] = &[
    ("types/fixtures/base.env", env_precedence_base),
    (
        "types/fixtures/base.env + override.env",
        env_precedence_two_files,
    ),
    (
        "typed casts after interpolation",
        typed_casts_after_interpolation,
    ),
    ("bad template names its path", bad_template_names_path),
];

#[test]
fn compose_go_environment_and_interpolation() {
    run_cases("compose-go environment and interpolation", ENV_CASES);
}
