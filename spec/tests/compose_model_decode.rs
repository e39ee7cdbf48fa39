//! Decoding: short syntax to long, every error collected with its path,
//! warnings, the canonical form round trip, and coerce on node trees.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::sync::Arc;

use berth_spec::compose::decode::{coerce, decode, decode_with_warnings};
use berth_spec::compose::model::{Project, Ulimit};
use berth_spec::yaml::{Entry, Node, PathSeg, Span, Value, display_path};
use serde_json::json;

fn yaml(text: &str) -> serde_json::Value {
    common::yaml_to_json(text).unwrap()
}

fn ok(text: &str) -> Project {
    decode(yaml(text)).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn errors(text: &str) -> Vec<String> {
    decode(yaml(text))
        .expect_err("should fail")
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn short_syntaxes_become_long() {
    let p = ok(r#"
services:
  web:
    build: ./web
    command: bundle exec thin -p 3000
    entrypoint: ""
    environment: [A=1, B, C=]
    labels: [x=1, y]
    depends_on: [db]
    env_file: .env
    networks: [front]
    secrets: [token]
    extra_hosts: ["h1:10.0.0.1", "h2=::1"]
    sysctls: [net.core.somaxconn=1024]
    healthcheck: {test: curl -f http://localhost, interval: 90s}
    ulimits: {nofile: 1024, nproc: {soft: 1, hard: 2}}
    mem_limit: 512m
    shm_size: 64M
    cpus: "1.5"
    tty: "yes"
    stop_grace_period: 1m30s
    gpus: all
    devices: ["/dev/fuse"]
    extends: base
  db:
    image: postgres
"#);
    let web = &p.services["web"];
    assert_eq!(
        web.build.as_ref().unwrap().context.as_deref(),
        Some("./web")
    );
    assert_eq!(
        web.command.as_ref().unwrap(),
        &["bundle", "exec", "thin", "-p", "3000"]
    );
    assert_eq!(web.entrypoint.as_ref().unwrap(), &Vec::<String>::new());
    assert_eq!(web.environment["A"].as_deref(), Some("1"));
    assert_eq!(web.environment["B"], None);
    assert_eq!(web.environment["C"].as_deref(), Some(""));
    assert_eq!(web.labels["y"], "");
    assert_eq!(web.depends_on["db"].condition, "service_started");
    assert!(web.depends_on["db"].required);
    assert_eq!(web.env_file[0].path, ".env");
    assert!(web.env_file[0].required);
    assert_eq!(web.networks["front"], None);
    assert_eq!(web.secrets[0].source, "token");
    assert_eq!(web.extra_hosts["h2"], vec!["::1".to_string()]);
    assert_eq!(web.sysctls["net.core.somaxconn"], "1024");
    let hc = web.healthcheck.as_ref().unwrap();
    assert_eq!(
        hc.test.as_ref().unwrap(),
        &["CMD-SHELL", "curl -f http://localhost"]
    );
    assert_eq!(hc.interval.unwrap().to_string(), "1m30s");
    assert_eq!(web.ulimits["nofile"], Ulimit::Single(1024));
    assert_eq!(web.ulimits["nproc"], Ulimit::Range { soft: 1, hard: 2 });
    assert_eq!(web.mem_limit.unwrap().0, 512 * 1024 * 1024);
    assert_eq!(web.shm_size.unwrap().0, 64 * 1024 * 1024);
    assert_eq!(web.cpus, Some(1.5));
    assert!(web.tty);
    assert_eq!(web.stop_grace_period.unwrap().to_string(), "1m30s");
    assert_eq!(web.gpus[0].count, Some(-1));
    assert_eq!(web.devices[0].target.as_deref(), Some("/dev/fuse"));
    assert_eq!(web.devices[0].permissions.as_deref(), Some("rwm"));
    assert_eq!(web.extends.as_ref().unwrap().service, "base");
}

#[test]
fn canonical_output_round_trips() {
    let v =
        common::load_yaml(&common::conformance_dir().join("compose-go/loader/full-example.yml"));
    let p = decode(v).unwrap();
    let json = serde_json::to_value(&p).unwrap();
    let back: Project = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, p);
    let yaml = serde_norway::to_string(&p).unwrap();
    let back: Project = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(back, p);
    // And decode accepts its own output.
    assert_eq!(decode(json).unwrap(), p);
}

#[test]
fn every_bad_key_is_reported_with_its_path() {
    let errs = errors(
        r#"
services:
  web:
    ports: ["80:80", "99999:80", {target: 80, published: 8080, bogus: 1}]
    tty: maybe
    mem_limit: 12q
    volumes:
      - type: tmpfs
        target: /t
        tmpfs: {size: huge}
  db:
    stop_grace_period: 10
    command: "echo 'unclosed"
networks:
  front: {external: sometimes}
"#,
    );
    let want = [
        "services.web.ports[1]: invalid port \"99999:80\": invalid host port 99999",
        "services.web.tty: invalid boolean \"maybe\"",
        "services.web.mem_limit: invalid size \"12q\"",
        "services.web.volumes[0].tmpfs.size: invalid size \"huge\"",
        "services.db.stop_grace_period: invalid duration 10",
        "services.db.command: invalid command line string",
        "networks.front.external: invalid boolean \"sometimes\"",
    ];
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing {w:?} in {errs:#?}"
        );
    }
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
}

#[test]
fn long_syntax_errors_keep_their_exact_path() {
    let errs =
        decode(json!({"services": {"web": {"secrets": ["a", {"source": "b", "mode": "9z"}]}}}))
            .unwrap_err();
    assert_eq!(display_path(&errs[0].path), "services.web.secrets[1].mode");
    assert_eq!(errs[0].message, "invalid file mode \"9z\"");
    assert!(errs[0].hint.is_some());
}

#[test]
fn obsolete_version_is_a_warning_and_legacy_external_name_is_moved() {
    let d = decode_with_warnings(yaml(
        "version: '3.8'\nservices: {}\nvolumes:\n  v:\n    external:\n      name: real\n",
    ))
    .unwrap();
    assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
    assert_eq!(display_path(&d.warnings[0].path), "version");
    assert!(d.warnings[0].message.contains("obsolete"));
    let v = &d.project.volumes["v"];
    assert!(v.external);
    assert_eq!(v.name.as_deref(), Some("real"));
}

#[test]
fn unknown_keys_and_bad_shapes_are_errors() {
    let errs = errors("services:\n  web:\n    imagee: x\nservics: {}\n");
    assert!(
        errs.iter()
            .any(|e| e.contains("services.web: additional property \"imagee\" is not allowed")),
        "{errs:?}"
    );
    assert!(errs.iter().any(|e| e.contains("servics: additional property \"servics\" is not allowed (hint: did you mean \"services\"?)")), "{errs:?}");
    assert!(decode(json!([1, 2])).is_err());
    assert!(decode(json!(null)).is_ok());
}

#[test]
fn ports_long_and_numeric_forms() {
    let p = ok(
        "services:\n  w:\n    ports:\n      - 3000\n      - target: '80'\n        published: 8080\n        protocol: UDP\n        x-note: hi\n",
    );
    let ports = &p.services["w"].ports;
    assert_eq!(ports[0].target, 3000);
    assert_eq!(ports[0].published, None);
    assert_eq!(ports[1].target, 80);
    assert_eq!(ports[1].published.as_deref(), Some("8080"));
    assert_eq!(ports[1].protocol, "udp");
    assert_eq!(ports[1].mode, "ingress");
    assert_eq!(ports[1].extensions["x-note"], json!("hi"));
}

#[test]
fn bind_block_defaults_create_host_path_to_true() {
    let p = ok(
        "services:\n  w:\n    volumes:\n      - {type: bind, source: ./a, target: /a, bind: {propagation: rshared}}\n      - {type: bind, source: ./b, target: /b}\n",
    );
    let v = &p.services["w"].volumes;
    assert!(v[0].bind.as_ref().unwrap().create_host_path);
    assert!(v[1].bind.is_none());
}

// ---- coerce -----------------------------------------------------------

fn node(v: &serde_json::Value, line: &mut u32) -> Node {
    *line += 1;
    let span = Span::new(Arc::from(Path::new("compose.yaml")), *line, 1);
    let value = match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .unwrap_or(Value::Float(n.as_f64().unwrap())),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Seq(a.iter().map(|i| node(i, line)).collect()),
        serde_json::Value::Object(m) => Value::Map(
            m.iter()
                .map(|(k, v)| Entry {
                    key: k.clone(),
                    key_span: Span::new(Arc::from(Path::new("compose.yaml")), *line + 1, 1),
                    value: node(v, line),
                })
                .collect(),
        ),
    };
    Node::new(value, span)
}

#[test]
fn coerce_casts_interpolated_strings_at_typed_paths() {
    let mut line = 0;
    let mut root = node(
        &json!({"services": {"web": {
            "tty": "true", "privileged": "off", "init": "Y",
            "deploy": {"replicas": "3", "resources": {"limits": {"cpus": "0.5", "memory": "512m"}}},
            "mem_limit": "1024", "shm_size": "64m", "healthcheck": {"retries": "5"},
            "ports": [{"target": "80", "published": "8080"}, "8080:80"],
            "secrets": [{"source": "s", "mode": "0440"}],
            "ulimits": {"nofile": "1024", "nproc": {"soft": "1", "hard": "2"}},
            "image": "true", "environment": {"A": "1"}
        }}, "networks": {"n": {"external": "yes"}}}),
        &mut line,
    );
    let errs = coerce(&mut root);
    assert!(errs.is_empty(), "{errs:?}");
    let j = root.to_json();
    let web = &j["services"]["web"];
    assert_eq!(web["tty"], json!(true));
    assert_eq!(web["privileged"], json!(false));
    assert_eq!(web["init"], json!(true));
    assert_eq!(web["deploy"]["replicas"], json!(3));
    assert_eq!(web["deploy"]["resources"]["limits"]["cpus"], json!(0.5));
    assert_eq!(
        web["deploy"]["resources"]["limits"]["memory"],
        json!("512m")
    );
    assert_eq!(web["mem_limit"], json!(1024));
    assert_eq!(web["shm_size"], json!("64m"));
    assert_eq!(web["healthcheck"]["retries"], json!(5));
    assert_eq!(web["ports"][0]["target"], json!(80));
    assert_eq!(web["ports"][0]["published"], json!("8080"));
    assert_eq!(web["ports"][1], json!("8080:80"));
    assert_eq!(web["secrets"][0]["mode"], json!("0440"));
    assert_eq!(web["ulimits"]["nofile"], json!(1024));
    assert_eq!(web["ulimits"]["nproc"]["soft"], json!(1));
    assert_eq!(web["image"], json!("true"));
    assert_eq!(web["environment"]["A"], json!("1"));
    assert_eq!(j["networks"]["n"]["external"], json!(true));
    // The coerced document validates and decodes.
    assert!(berth_spec::compose::schema::validate(&j).is_empty());
    let p = decode(j).unwrap();
    assert_eq!(p.services["web"].secrets[0].mode, Some(0o440));
}

#[test]
fn coerce_reports_bad_values_at_their_span() {
    let mut line = 0;
    let mut root = node(
        &json!({"services": {"web": {"tty": "maybe", "deploy": {"replicas": "three"}}}}),
        &mut line,
    );
    let errs = coerce(&mut root);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(
        errs[0].message,
        "invalid boolean \"maybe\" for services.web.tty"
    );
    assert_eq!(errs[0].key, "services.web.tty");
    assert_eq!(errs[0].hint.as_deref(), Some("use true or false"));
    assert!(errs[0].line > 0);
    assert_eq!(
        errs[1].message,
        "invalid integer \"three\" for services.web.deploy.replicas"
    );
    // Errors from decode and validate map back onto the node tree too.
    let path = vec![
        PathSeg::Key("services".into()),
        PathSeg::Key("web".into()),
        PathSeg::Key("tty".into()),
    ];
    assert_eq!(root.locate(&path).line, errs[0].line);
}

/// Odd shapes everywhere must give errors, never a panic.
#[test]
fn odd_input_never_panics() {
    let odd = [
        json!(null),
        json!(1),
        json!("x"),
        json!([]),
        json!(true),
        json!({}),
        json!([[]]),
        json!({"a": null}),
        json!(-1),
        json!(1.5),
        json!("80:80:80:80"),
        json!({"x-": []}),
    ];
    let keys = [
        "build",
        "command",
        "entrypoint",
        "environment",
        "labels",
        "depends_on",
        "env_file",
        "networks",
        "secrets",
        "configs",
        "extra_hosts",
        "sysctls",
        "healthcheck",
        "ulimits",
        "mem_limit",
        "shm_size",
        "cpus",
        "tty",
        "stop_grace_period",
        "gpus",
        "devices",
        "extends",
        "ports",
        "volumes",
        "deploy",
        "develop",
        "logging",
        "blkio_config",
        "provider",
        "models",
        "post_start",
        "pre_start",
        "label_file",
        "dns",
        "tmpfs",
        "cpu_rt_period",
        "expose",
        "annotations",
        "x-ext",
    ];
    for k in keys {
        for v in &odd {
            let doc = json!({"services": {"s": {k: v}}, "volumes": {"v": v}, "networks": {"n": v}, "include": [v]});
            let _ = decode(doc.clone());
            let _ = berth_spec::compose::schema::validate(&doc);
        }
    }
}
