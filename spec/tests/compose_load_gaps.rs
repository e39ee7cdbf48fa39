//! Loader behaviours that were known gaps, each pinned by a test: `~` in
//! paths, `.env` when discovery walks up, COMPOSE_FILE from `.env`,
//! `--env-file` paths, projects without services, the `version` warning,
//! published port clashes and ranges. (env_file interpolation order and
//! extends + include are in `compose_load_fixtures.rs` and
//! `compose_load_merge.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "compose_load_support/mod.rs"]
mod support;

use std::path::PathBuf;

use berth_spec::compose::LoadOptions;
use support::*;

#[test]
fn tilde_in_bind_mounts_and_paths() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "services:\n  app:\n    image: a\n    build: ~/src\n    volumes:\n      - ~/data:/data\n      - ~:/home/me\n      - type: bind\n        source: ~/long\n        target: /long\n      - ~other/x:/x\n    env_file:\n      - path: ~/app.env\n        required: false\n",
    )]);
    let loaded = load_ok(&p.options(&["compose.yaml"], &[("HOME", "/home/me")]));
    let app = service(&loaded, "app");
    let sources: Vec<&str> = app
        .volumes
        .iter()
        .map(|v| v.source.as_deref().unwrap())
        .collect();
    // compose-go's ExpandUser: any leading `~` is the home directory.
    assert_eq!(
        sources,
        [
            "/home/me/data",
            "/home/me",
            "/home/me/long",
            "/home/me/other/x"
        ]
    );
    assert!(app.volumes.iter().all(|v| v.kind == "bind"));
    assert_eq!(
        app.build.as_ref().unwrap().context.as_deref(),
        Some("/home/me/src")
    );
    assert_eq!(app.env_file[0].path, "/home/me/app.env");
}

#[test]
fn tilde_without_home_is_left_as_written() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "services:\n  app:\n    image: a\n    volumes:\n      - ~/data:/data\n",
    )]);
    let loaded = load_ok(&p.options(&["compose.yaml"], &[]));
    assert_eq!(
        service(&loaded, "app").volumes[0].source.as_deref(),
        Some("~/data")
    );
}

#[test]
fn dot_env_of_the_project_found_upwards_is_read_too() {
    let p = TempProject::new(&[
        (
            "compose.yaml",
            "services:\n  app:\n    image: app:${TAG}\n    environment:\n      - WHO=${WHO}\n      - WHERE=${WHERE}\n",
        ),
        (".env", "TAG=1\nWHO=project\nWHERE=project\n"),
        ("sub/deeper/.env", "WHO=cwd\n"),
    ]);
    // Run from sub/deeper: the project is found two folders up.
    let loaded = load_ok(&options(&p.path("sub/deeper"), &[], &[]));
    let app = service(&loaded, "app");
    assert_eq!(app.image.as_deref(), Some("app:1"));
    // The working dir's `.env` is read first and wins, like docker compose.
    assert_eq!(
        environment(app),
        pairs(&[("WHERE", "project"), ("WHO", "cwd")])
    );
    assert_eq!(
        loaded.project.name,
        p.dir.file_name().unwrap().to_string_lossy()
    );
    assert!(loaded.inputs.contains(&p.path(".env")));
}

#[test]
fn compose_file_from_dot_env_with_a_separator() {
    let p = TempProject::new(&[
        (
            ".env",
            "COMPOSE_FILE=base.yaml;extra/override.yaml\nCOMPOSE_PATH_SEPARATOR=;\n",
        ),
        ("base.yaml", "services:\n  app:\n    image: a\n"),
        (
            "extra/override.yaml",
            "services:\n  app:\n    image: b\n    volumes: [./data:/data]\n",
        ),
    ]);
    let loaded = load_ok(&p.options(&[], &[]));
    let app = service(&loaded, "app");
    assert_eq!(app.image.as_deref(), Some("b"));
    // Relative paths of every file resolve against the project directory,
    // the first file's folder (compose-go resolves after merging).
    assert_eq!(app.volumes[0].source.as_deref(), Some(&*p.path_str("data")));
    // The process environment wins over `.env`.
    let loaded = load_ok(&p.options(&[], &[("COMPOSE_FILE", "base.yaml")]));
    assert_eq!(service(&loaded, "app").image.as_deref(), Some("a"));
}

#[test]
fn env_file_option_is_relative_to_the_working_dir() {
    let p = TempProject::new(&[
        (
            "project/compose.yaml",
            "services:\n  app:\n    image: app:${TAG}\n",
        ),
        ("project/.env", "TAG=from-project-dot-env\n"),
        ("config/app.env", "TAG=from-env-file\n"),
    ]);
    let options = LoadOptions {
        env_files: vec![PathBuf::from("config/app.env")],
        ..p.options(&["project/compose.yaml"], &[])
    };
    let loaded = load_ok(&options);
    assert_eq!(
        service(&loaded, "app").image.as_deref(),
        Some("app:from-env-file")
    );
    assert!(loaded.inputs.contains(&p.path("config/app.env")));
    // A missing --env-file is an error naming it.
    let options = LoadOptions {
        env_files: vec![PathBuf::from("config/nope.env")],
        ..p.options(&["project/compose.yaml"], &[])
    };
    let err = load_err(&options);
    assert_eq!(err.0[0].file, p.path("config/nope.env"));
}

#[test]
fn a_project_without_services_loads() {
    for text in ["volumes:\n  data: {}\n", "name: x\nservices: {}\n"] {
        let p = TempProject::new(&[("compose.yaml", text)]);
        let loaded = load_ok(&p.options(&[], &[]));
        assert!(loaded.project.services.is_empty(), "{text}");
        let yaml = serde_norway::to_string(&loaded.project).unwrap();
        assert!(yaml.contains("services: {}"), "{yaml}");
    }
    // `services:` with nothing after it is null, which the schema rejects
    // (docker compose: "services must be a mapping").
    let p = TempProject::new(&[("compose.yaml", "services:\nnetworks:\n  front: {}\n")]);
    let err = load_err(&p.options(&[], &[]));
    assert_eq!(err.0[0].message, "must be a mapping, got null");
    assert_eq!(err.0[0].key, "services");
    // An empty override file next to a real one is fine.
    let p = TempProject::new(&[
        ("compose.yaml", "services:\n  app:\n    image: a\n"),
        ("compose.override.yaml", "# nothing yet\n"),
    ]);
    assert_eq!(load_ok(&p.options(&[], &[])).project.services.len(), 1);
}

#[test]
fn version_warning_once_per_file() {
    let p = TempProject::new(&[
        (
            "compose.yaml",
            "version: \"3.8\"\nservices:\n  app:\n    image: a\n",
        ),
        (
            "compose.override.yaml",
            "services:\n  app:\n    image: b\nversion: \"3\"\n",
        ),
    ]);
    let loaded = load_ok(&p.options(&[], &[]));
    let warnings: Vec<String> = loaded
        .warnings
        .iter()
        .filter(|w| w.key == "version")
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        warnings,
        [
            format!(
                "{}:1:1: warning: version: the attribute `version` is obsolete, it will be ignored (hint: remove it to avoid potential confusion)",
                p.path_str("compose.yaml")
            ),
            format!(
                "{}:4:1: warning: version: the attribute `version` is obsolete, it will be ignored (hint: remove it to avoid potential confusion)",
                p.path_str("compose.override.yaml")
            ),
        ]
    );
}

#[test]
fn unset_variable_is_a_warning_not_an_error() {
    let p = TempProject::new(&[("compose.yaml", "services:\n  app:\n    image: a:${TAG}\n")]);
    let loaded = load_ok(&p.options(&[], &[]));
    assert_eq!(service(&loaded, "app").image.as_deref(), Some("a:"));
    let w = &loaded.warnings[0];
    assert_eq!(
        w.message,
        "variable TAG is not set, defaulting to a blank string"
    );
    assert_eq!((w.line, w.column), (3, 12));
}

fn port_clash(services: &str) -> Option<String> {
    let p = TempProject::new(&[("compose.yaml", &format!("services:\n{services}"))]);
    match berth_spec::compose::load(&p.options(&[], &[])) {
        Ok(_) => None,
        Err(d) => Some(
            d.0.iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    }
}

#[test]
fn published_ports_clash_when_one_side_has_no_host_ip() {
    let clash = port_clash(
        "  a:\n    image: a\n    ports: [\"127.0.0.1:8080:80\"]\n  b:\n    image: b\n    ports: [\"8080:81\"]\n",
    );
    assert_eq!(
        clash.as_deref(),
        Some("7:13: host port *:8080/tcp of service \"b\" is already published by service \"a\"")
    );
    let clash = port_clash(
        "  a:\n    image: a\n    ports: [\"8080:80\"]\n  b:\n    image: b\n    ports: [\"127.0.0.1:8080:81\"]\n",
    );
    assert!(clash.is_some());
    let clash = port_clash(
        "  a:\n    image: a\n    ports: [\"0.0.0.0:8080:80\"]\n  b:\n    image: b\n    ports:\n      - target: 81\n        published: \"8080\"\n        host_ip: \"::\"\n",
    );
    assert!(clash.is_some(), "0.0.0.0 and :: both mean every address");
    // Different addresses, or protocols, do not clash.
    assert_eq!(
        port_clash(
            "  a:\n    image: a\n    ports: [\"127.0.0.1:8080:80\"]\n  b:\n    image: b\n    ports: [\"127.0.0.2:8080:80\"]\n"
        ),
        None
    );
    assert_eq!(
        port_clash(
            "  a:\n    image: a\n    ports: [\"53:53/udp\"]\n  b:\n    image: b\n    ports: [\"53:53/tcp\"]\n"
        ),
        None
    );
}

#[test]
fn published_port_ranges() {
    // A host range for one container port, with replicas: fine.
    assert_eq!(
        port_clash("  a:\n    image: a\n    scale: 3\n    ports: [\"8000-8002:80\"]\n"),
        None
    );
    // Overlapping ranges across services clash on the first shared port;
    // the error points at the item that expands to it.
    let clash = port_clash(
        "  a:\n    image: a\n    ports: [\"9000-9002:7000-7002\"]\n  b:\n    image: b\n    ports:\n      - \"5000:5000\"\n      - \"9002-9004:80-82\"\n",
    );
    assert_eq!(
        clash.as_deref(),
        Some("9:9: host port *:9002/tcp of service \"b\" is already published by service \"a\"")
    );
    // Adjacent ranges do not.
    assert_eq!(
        port_clash(
            "  a:\n    image: a\n    ports: [\"9000-9002:7000-7002\"]\n  b:\n    image: b\n    ports: [\"9003-9004:80-81\"]\n"
        ),
        None
    );
    // One fixed host port with several replicas cannot work.
    let clash = port_clash("  a:\n    image: a\n    scale: 2\n    ports: [\"8080:80\"]\n").unwrap();
    assert!(
        clash.starts_with("5:13: service \"a\" publishes host port 8080 but asks for 2 replicas"),
        "{clash}"
    );
}

/// Regression: `volumes_from: [container:NAME]` names a container, not a
/// service, and must not be reported as an undefined service; a service
/// name with `:ro` is still checked.
#[test]
fn volumes_from_a_container_is_not_an_undefined_service() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: vf\nservices:\n  app:\n    image: a\n    volumes_from:\n      - container:legacy-data\n      - store:ro\n  store:\n    image: s\n",
    )]);
    let loaded = load_ok(&p.options(&["compose.yaml"], &[]));
    assert_eq!(
        loaded.project.services["app"].volumes_from,
        ["container:legacy-data", "store:ro"]
    );
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: vf\nservices:\n  app:\n    image: a\n    volumes_from: [\"nope:ro\"]\n",
    )]);
    let errors = show(&load_err(&p.options(&["compose.yaml"], &[])));
    assert!(
        errors.contains("service \"app\" depends on undefined service \"nope\""),
        "{errors}"
    );
}
