//! Multi-file projects through the whole loader: every merge rule of
//! `merge.rs` (base file + override file), `!reset` / `!override`,
//! override-file discovery, `extends`, `include` and profiles.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "compose_load_support/mod.rs"]
mod support;

use berth_spec::compose::{LoadOptions, Loaded};
use serde_json::{Value, json};
use support::*;

/// Loads `compose.yaml` + `override.yaml` with the given service bodies
/// (indented under `services.app`), and returns `app` as JSON.
fn merged_app(base: &str, over: &str) -> Value {
    let p = TempProject::new(&[
        (
            "compose.yaml",
            &format!("name: merge\nservices:\n  app:\n    image: app\n{base}"),
        ),
        ("override.yaml", &format!("services:\n  app:\n{over}")),
    ]);
    let loaded = load_ok(&p.options(&["compose.yaml", "override.yaml"], &[]));
    let mut json = serde_json::to_value(&loaded.project).unwrap();
    // Paths are the temp folder's; keep them comparable.
    replace_paths(&mut json, &p.dir.to_string_lossy());
    json["services"]["app"].take()
}

fn replace_paths(v: &mut Value, dir: &str) {
    match v {
        Value::String(s) if s.contains(dir) => *s = s.replace(dir, "<dir>"),
        Value::Array(items) => items.iter_mut().for_each(|i| replace_paths(i, dir)),
        Value::Object(m) => m.values_mut().for_each(|i| replace_paths(i, dir)),
        _ => {}
    }
}

#[test]
fn environment_list_and_map_merge_by_name() {
    let app = merged_app(
        "    environment:\n      - A=1\n      - B=2\n",
        "    environment:\n      B: \"3\"\n      C: \"4\"\n",
    );
    assert_eq!(app["environment"], json!({"A": "1", "B": "3", "C": "4"}));
}

#[test]
fn labels_list_and_map_merge_by_name() {
    let app = merged_app(
        "    labels:\n      - a=1\n      - b=2\n",
        "    labels:\n      b: x\n      c: y\n",
    );
    assert_eq!(app["labels"], json!({"a": "1", "b": "x", "c": "y"}));
}

#[test]
fn ports_short_and_long_are_one_port() {
    let app = merged_app(
        "    ports:\n      - \"8080:80\"\n      - \"9000:90\"\n",
        "    ports:\n      - target: 80\n        published: \"8080\"\n        mode: host\n      - \"7000:70\"\n",
    );
    let ports = app["ports"].as_array().unwrap();
    let summary: Vec<(String, u64, String)> = ports
        .iter()
        .map(|p| {
            (
                p["published"].as_str().unwrap().to_string(),
                p["target"].as_u64().unwrap(),
                p["mode"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("8080".into(), 80, "host".into()),
            ("9000".into(), 90, "ingress".into()),
            ("7000".into(), 70, "ingress".into()),
        ]
    );
}

#[test]
fn volumes_are_unique_by_target() {
    let app = merged_app(
        "    volumes:\n      - ./a:/data\n      - /var/log/app:/logs\n",
        "    volumes:\n      - ./b:/data:ro\n",
    );
    let volumes = app["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 2, "{volumes:?}");
    assert_eq!(volumes[0]["source"], "<dir>/b");
    assert_eq!(volumes[0]["target"], "/data");
    assert_eq!(volumes[0]["read_only"], true);
    assert_eq!(volumes[1]["source"], "/var/log/app");
}

#[test]
fn command_and_entrypoint_are_replaced() {
    let app = merged_app(
        "    command: [a, b]\n    entrypoint: [x, y]\n",
        "    command: c d\n    entrypoint: [z]\n",
    );
    assert_eq!(app["command"], json!(["c", "d"]));
    assert_eq!(app["entrypoint"], json!(["z"]));
}

#[test]
fn depends_on_list_and_map() {
    let p = TempProject::new(&[
        (
            "compose.yaml",
            "name: m\nservices:\n  app:\n    image: a\n    depends_on: [db]\n  db:\n    image: db\n  cache:\n    image: c\n",
        ),
        (
            "override.yaml",
            "services:\n  app:\n    depends_on:\n      cache:\n        condition: service_healthy\n",
        ),
    ]);
    let loaded = load_ok(&p.options(&["compose.yaml", "override.yaml"], &[]));
    let app = serde_json::to_value(service(&loaded, "app")).unwrap();
    assert_eq!(
        app["depends_on"],
        json!({
            "cache": {"condition": "service_healthy", "required": true},
            "db": {"condition": "service_started", "required": true},
        })
    );
}

#[test]
fn networks_list_and_map() {
    let p = TempProject::new(&[
        (
            "compose.yaml",
            "name: m\nservices:\n  app:\n    image: a\n    networks: [front]\nnetworks:\n  front: {}\n  back: {}\n",
        ),
        (
            "override.yaml",
            "services:\n  app:\n    networks:\n      back:\n        aliases: [api]\n",
        ),
    ]);
    let loaded = load_ok(&p.options(&["compose.yaml", "override.yaml"], &[]));
    let app = serde_json::to_value(service(&loaded, "app")).unwrap();
    assert_eq!(
        app["networks"],
        json!({"back": {"aliases": ["api"]}, "front": null})
    );
}

#[test]
fn logging_driver_change_drops_options() {
    let base = "    logging:\n      driver: syslog\n      options:\n        syslog-address: tcp://1.2.3.4:123\n";
    let app = merged_app(base, "    logging:\n      driver: json-file\n");
    assert_eq!(app["logging"], json!({"driver": "json-file"}));
    let app = merged_app(
        base,
        "    logging:\n      driver: syslog\n      options:\n        tag: web\n",
    );
    assert_eq!(
        app["logging"]["options"],
        json!({"syslog-address": "tcp://1.2.3.4:123", "tag": "web"})
    );
}

#[test]
fn ulimits_single_replaces_and_pairs_merge() {
    let app = merged_app(
        "    ulimits:\n      nofile:\n        soft: 1\n        hard: 2\n      nproc: 10\n      core:\n        soft: 1\n        hard: 2\n",
        "    ulimits:\n      nofile: 3\n      nproc:\n        soft: 4\n        hard: 5\n      core:\n        soft: 3\n        hard: 9\n",
    );
    assert_eq!(
        app["ulimits"],
        json!({"core": {"soft": 3, "hard": 9}, "nofile": 3, "nproc": {"soft": 4, "hard": 5}})
    );
}

#[test]
fn build_string_and_map() {
    let app = merged_app(
        "    build: ./app\n",
        "    build:\n      args:\n        A: \"1\"\n",
    );
    assert_eq!(app["build"]["context"], "<dir>/app");
    assert_eq!(app["build"]["args"], json!({"A": "1"}));
    assert_eq!(app["build"]["dockerfile"], "Dockerfile");
}

#[test]
fn reset_and_override_tags_in_override_files() {
    let app = merged_app(
        "    ports: [\"8080:80\"]\n    environment: [A=1]\n    command: [a]\n    labels: {x: \"1\"}\n",
        "    ports: !reset []\n    environment: !override\n      B: \"2\"\n    command: !reset null\n    labels: !override {y: \"2\"}\n",
    );
    assert!(app.get("ports").is_none(), "{app}");
    assert!(app.get("command").is_none(), "{app}");
    assert_eq!(app["environment"], json!({"B": "2"}));
    assert_eq!(app["labels"], json!({"y": "2"}));
}

#[test]
fn reset_and_override_tags_in_extends() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: m\nservices:\n  base:\n    image: a\n    command: [run]\n    environment: [A=1, B=2]\n    ports: [\"80\"]\n  app:\n    extends: base\n    command: !reset null\n    environment: !override [C=3]\n    ports: !override [\"90\"]\n",
    )]);
    let loaded = load_ok(&p.options(&["compose.yaml"], &[]));
    let app = service(&loaded, "app");
    assert_eq!(app.command, None);
    assert_eq!(environment(app), pairs(&[("C", "3")]));
    assert_eq!(app.ports.len(), 1);
    assert_eq!(app.ports[0].target, 90);
    assert_eq!(app.image.as_deref(), Some("a"));
}

#[test]
fn override_file_is_discovered() {
    let p = TempProject::new(&[
        ("compose.yaml", "services:\n  app:\n    image: a\n"),
        (
            "compose.override.yaml",
            "services:\n  app:\n    image: b\n    environment: [X=1]\n",
        ),
    ]);
    let loaded = load_ok(&p.options(&[], &[]));
    let app = service(&loaded, "app");
    assert_eq!(app.image.as_deref(), Some("b"));
    assert_eq!(environment(app), pairs(&[("X", "1")]));
    assert!(loaded.inputs.contains(&p.path("compose.override.yaml")));
}

// ---- extends --------------------------------------------------------------

#[test]
fn extends_in_the_same_file_and_chains() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: m\nservices:\n  root:\n    image: r\n    environment: [A=1]\n  mid:\n    extends: root\n    environment: [B=2]\n  leaf:\n    extends:\n      service: mid\n    environment: [C=3]\n    hostname: leaf\n",
    )]);
    let loaded = load_ok(&p.options(&["compose.yaml"], &[]));
    let leaf = service(&loaded, "leaf");
    assert_eq!(leaf.image.as_deref(), Some("r"));
    assert_eq!(leaf.hostname.as_deref(), Some("leaf"));
    assert_eq!(
        environment(leaf),
        pairs(&[("A", "1"), ("B", "2"), ("C", "3")])
    );
}

#[test]
fn extends_other_file_paths_are_that_files() {
    let p = TempProject::new(&[
        (
            "compose.yaml",
            "name: m\nservices:\n  app:\n    extends:\n      file: lib/base.yaml\n      service: web\n    volumes: [./mine:/mine]\n",
        ),
        (
            "lib/base.yaml",
            "services:\n  web:\n    build: ./src\n    env_file: web.env\n    volumes: [./data:/data]\n",
        ),
        ("lib/web.env", "FROM_LIB=1\n"),
    ]);
    let loaded = load_ok(&p.options(&["compose.yaml"], &[]));
    let app = service(&loaded, "app");
    assert_eq!(
        app.build.as_ref().unwrap().context.as_deref(),
        Some(&*p.path_str("lib/src"))
    );
    assert_eq!(app.env_file[0].path, p.path_str("lib/web.env"));
    assert_eq!(environment(app), pairs(&[("FROM_LIB", "1")]));
    let sources: Vec<String> = app
        .volumes
        .iter()
        .map(|v| v.source.clone().unwrap())
        .collect();
    assert_eq!(sources, [p.path_str("lib/data"), p.path_str("mine")]);
    assert!(loaded.inputs.contains(&p.path("lib/base.yaml")));
}

#[test]
fn extends_cycle_names_the_chain() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    extends: b\n  b:\n    extends: c\n  c:\n    extends: a\n",
    )]);
    let err = load_err(&p.options(&["compose.yaml"], &[]));
    assert_eq!(err.0.len(), 1, "one cycle, one error:\n{}", show(&err));
    let d = &err.0[0];
    assert_eq!(d.message, "circular reference in extends: a -> b -> c -> a");
    assert_eq!(d.file, p.path("compose.yaml"));
    assert_eq!(d.key, "services.a.extends");
    assert_eq!((d.line, d.column), (4, 14));
}

#[test]
fn extends_a_service_from_an_included_file() {
    let p = TempProject::new(&[
        (
            "compose.yaml",
            "name: m\ninclude: [lib/compose.yaml]\nservices:\n  app:\n    extends: lib\n    environment: [B=2]\n",
        ),
        (
            "lib/compose.yaml",
            "services:\n  lib:\n    image: lib\n    environment: [A=1]\n    volumes: [./x:/x]\n",
        ),
    ]);
    let loaded = load_ok(&p.options(&["compose.yaml"], &[]));
    let app = service(&loaded, "app");
    assert_eq!(app.image.as_deref(), Some("lib"));
    assert_eq!(environment(app), pairs(&[("A", "1"), ("B", "2")]));
    assert_eq!(
        app.volumes[0].source.as_deref(),
        Some(&*p.path_str("lib/x"))
    );
}

// ---- include --------------------------------------------------------------

#[test]
fn include_uses_its_own_dot_env_and_folder() {
    let p = TempProject::new(&[
        (
            "compose.yaml",
            "name: m\ninclude:\n  - sub/compose.yaml\nservices:\n  app:\n    image: app:${TAG:-main}\n",
        ),
        (
            "sub/compose.yaml",
            "services:\n  db:\n    image: postgres:${TAG}\n    build: .\n",
        ),
        ("sub/.env", "TAG=16\n"),
    ]);
    let loaded = load_ok(&p.options(&["compose.yaml"], &[]));
    assert_eq!(service(&loaded, "db").image.as_deref(), Some("postgres:16"));
    assert_eq!(
        service(&loaded, "db")
            .build
            .as_ref()
            .unwrap()
            .context
            .as_deref(),
        Some(&*p.path_str("sub"))
    );
    // The included project's `.env` does not leak into the includer.
    assert_eq!(service(&loaded, "app").image.as_deref(), Some("app:main"));
    // The caller's environment wins over the included `.env`.
    let loaded = load_ok(&p.options(&["compose.yaml"], &[("TAG", "17")]));
    assert_eq!(service(&loaded, "db").image.as_deref(), Some("postgres:17"));
}

#[test]
fn include_env_file_and_project_directory() {
    let p = TempProject::new(&[
        (
            "compose.yaml",
            "name: m\ninclude:\n  - path: parts/db.yaml\n    env_file: parts/db.env\n    project_directory: data\n",
        ),
        (
            "parts/db.yaml",
            "services:\n  db:\n    image: postgres:${PG}\n    volumes: [./pg:/var/lib/postgresql]\n",
        ),
        ("parts/db.env", "PG=15\n"),
    ]);
    let loaded = load_ok(&p.options(&["compose.yaml"], &[]));
    let db = service(&loaded, "db");
    assert_eq!(db.image.as_deref(), Some("postgres:15"));
    assert_eq!(
        db.volumes[0].source.as_deref(),
        Some(&*p.path_str("data/pg"))
    );
}

#[test]
fn two_included_files_may_not_conflict() {
    let p = TempProject::new(&[
        (
            "compose.yaml",
            "name: m\ninclude: [a.yaml, b.yaml]\nservices:\n  app:\n    image: app\n",
        ),
        ("a.yaml", "services:\n  db:\n    image: postgres\n"),
        ("b.yaml", "services:\n  db:\n    image: mysql\n"),
    ]);
    let err = load_err(&p.options(&["compose.yaml"], &[]));
    let d = &err.0[0];
    assert_eq!(
        d.message,
        format!(
            "imported compose file {} defines conflicting services \"db\"",
            p.path_str("b.yaml")
        )
    );
    assert_eq!((d.file.clone(), d.line, d.column), (p.path("b.yaml"), 2, 3));
}

#[test]
fn the_including_file_overrides_an_included_service() {
    let p = TempProject::new(&[
        (
            "compose.yaml",
            "name: m\ninclude: [db.yaml]\nservices:\n  db:\n    environment: [B=2]\n    ports: [\"5432:5432\"]\n",
        ),
        (
            "db.yaml",
            "services:\n  db:\n    image: postgres\n    environment: [A=1]\n",
        ),
    ]);
    let loaded = load_ok(&p.options(&["compose.yaml"], &[]));
    let db = service(&loaded, "db");
    assert_eq!(db.image.as_deref(), Some("postgres"));
    assert_eq!(environment(db), pairs(&[("A", "1"), ("B", "2")]));
    assert_eq!(db.ports.len(), 1);
}

#[test]
fn include_cycle_is_detected() {
    let p = TempProject::new(&[
        (
            "compose.yaml",
            "include: [a.yaml]\nservices:\n  x:\n    image: x\n",
        ),
        (
            "a.yaml",
            "include: [b.yaml]\nservices:\n  a:\n    image: a\n",
        ),
        (
            "b.yaml",
            "include: [a.yaml]\nservices:\n  b:\n    image: b\n",
        ),
    ]);
    let err = load_err(&p.options(&["compose.yaml"], &[]));
    let d = &err.0[0];
    assert!(d.message.starts_with("include cycle detected"), "{d}");
    assert!(d.message.ends_with("a.yaml"), "{d}");
    // At the entry that closes the loop: b.yaml's `a.yaml`.
    assert_eq!(
        (d.file.clone(), d.line, d.column),
        (p.path("b.yaml"), 1, 11)
    );
}

// ---- profiles -------------------------------------------------------------

const PROFILES: &str = "name: p\nservices:\n  web:\n    image: web\n  debug:\n    image: busybox\n    profiles: [debug]\n  admin:\n    image: adminer\n    profiles: [tools, admin]\n";

fn with_profiles(p: &TempProject, profiles: &[&str], env: &[(&str, &str)]) -> Loaded {
    let options = LoadOptions {
        profiles: profiles.iter().map(|s| s.to_string()).collect(),
        ..p.options(&["compose.yaml"], env)
    };
    load_ok(&options)
}

fn names(loaded: &Loaded) -> Vec<String> {
    let mut v: Vec<String> = loaded.project.services.keys().cloned().collect();
    v.sort();
    v
}

#[test]
fn profiles_select_services() {
    let p = TempProject::new(&[("compose.yaml", PROFILES)]);
    assert_eq!(names(&with_profiles(&p, &[], &[])), ["web"]);
    assert_eq!(names(&with_profiles(&p, &["debug"], &[])), ["debug", "web"]);
    assert_eq!(
        names(&with_profiles(
            &p,
            &[],
            &[("COMPOSE_PROFILES", "tools,debug")]
        )),
        ["admin", "debug", "web"]
    );
    // `--profile` replaces COMPOSE_PROFILES.
    assert_eq!(
        names(&with_profiles(
            &p,
            &["admin"],
            &[("COMPOSE_PROFILES", "debug")]
        )),
        ["admin", "web"]
    );
    assert_eq!(
        names(&with_profiles(&p, &["*"], &[])),
        ["admin", "debug", "web"]
    );
    // COMPOSE_PROFILES from `.env`.
    p.write(".env", "COMPOSE_PROFILES=debug\n");
    assert_eq!(names(&with_profiles(&p, &[], &[])), ["debug", "web"]);
}

#[test]
fn depending_on_a_disabled_service_names_its_profile() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: p\nservices:\n  web:\n    image: web\n    depends_on: [debug]\n  debug:\n    image: busybox\n    profiles: [debug]\n",
    )]);
    let err = load_err(&p.options(&["compose.yaml"], &[]));
    let d = &err.0[0];
    assert_eq!(
        d.message,
        "service \"web\" depends on undefined service \"debug\""
    );
    assert!(
        d.hint.as_deref().unwrap().contains("--profile debug"),
        "{d}"
    );
    assert_eq!(
        (d.line, d.column, d.key.as_str()),
        (5, 18, "services.web.depends_on[0]")
    );
}

#[test]
fn optional_dependency_on_a_disabled_service_is_dropped() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: p\nservices:\n  web:\n    image: web\n    depends_on:\n      debug:\n        condition: service_started\n        required: false\n  debug:\n    image: busybox\n    profiles: [debug]\n",
    )]);
    let loaded = load_ok(&p.options(&["compose.yaml"], &[]));
    assert!(service(&loaded, "web").depends_on.is_empty());
    let w = loaded
        .warnings
        .iter()
        .find(|w| w.key == "services.web.depends_on.debug")
        .expect("a warning about the dropped dependency");
    assert!(w.message.contains("debug"), "{w}");
}

#[test]
fn documents_of_one_file_merge_in_order() {
    let p = TempProject::new(&[(
        "compose.yaml",
        "name: multi\nservices:\n  web:\n    image: web:1\n    environment: [A=1]\n---\nservices:\n  web:\n    image: web:2\n    environment: [B=2]\n  db:\n    image: db\n",
    )]);
    let loaded = load_ok(&p.options(&["compose.yaml"], &[]));
    let web = &loaded.project.services["web"];
    assert_eq!(
        web.image.as_deref(),
        Some("web:2"),
        "the later document wins"
    );
    let env: Vec<(&str, Option<&str>)> = web
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect();
    assert_eq!(env, vec![("A", Some("1")), ("B", Some("2"))]);
    assert!(loaded.project.services.contains_key("db"));
}
