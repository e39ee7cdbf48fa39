use serde_json::json;

use super::*;
use crate::container::{FileKind, FileSource};
use crate::restart::RestartCondition;

fn project(value: serde_json::Value) -> Project {
    serde_json::from_value(value).unwrap()
}

fn spec_of(p: &Project, service: &str, number: u32) -> ContainerSpec {
    container_spec(
        p,
        service,
        &p.services[service],
        number,
        Some("sha256:abc"),
        &BTreeMap::new(),
    )
}

#[test]
fn names_and_labels_follow_compose() {
    let p = project(json!({
        "name": "shop",
        "services": {"web": {"image": "nginx", "labels": {"team": "a"}}}
    }));
    let spec = spec_of(&p, "web", 2);
    assert_eq!(spec.name, "shop-web-2");
    assert_eq!(spec.image, "nginx");
    let fixed: Vec<(&str, &str)> = spec
        .labels
        .iter()
        .filter(|(k, _)| !k.starts_with("berth.config"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fixed,
        [
            ("berth.image-digest", "sha256:abc"),
            ("com.docker.compose.container-number", "2"),
            ("com.docker.compose.oneoff", "False"),
            ("com.docker.compose.project", "shop"),
            ("com.docker.compose.service", "web"),
            ("team", "a"),
        ]
    );
    assert!(spec.labels["berth.config-hash"].starts_with("sha256:"));
    assert!(spec.labels["berth.config-keys"].starts_with("image="));
    // Every replica shares the hash.
    assert_eq!(spec.config_hash(), spec_of(&p, "web", 1).config_hash());
}

#[test]
fn container_name_and_built_image_names() {
    let p = project(json!({
        "name": "shop",
        "services": {"app": {"build": {"context": "/src"}, "container_name": "the-app"}}
    }));
    let spec = spec_of(&p, "app", 1);
    assert_eq!(spec.name, "the-app");
    assert_eq!(spec.image, "shop-app");
}

#[test]
fn replicas_come_from_scale_then_deploy() {
    let s = |v: serde_json::Value| -> Service { serde_json::from_value(v).unwrap() };
    assert_eq!(replicas(&s(json!({}))), 1);
    assert_eq!(replicas(&s(json!({"deploy": {"replicas": 3}}))), 3);
    assert_eq!(
        replicas(&s(json!({"scale": 2, "deploy": {"replicas": 3}}))),
        2
    );
    assert_eq!(replicas(&s(json!({"deploy": {"replicas": 0}}))), 0);
    assert_eq!(
        replicas(&s(json!({"deploy": {"mode": "global", "replicas": 5}}))),
        1
    );
}

#[test]
fn deploy_resources_win_over_legacy_keys() {
    let p = project(json!({
        "name": "p",
        "services": {
            "legacy": {"image": "x", "mem_limit": "256m", "mem_reservation": "64m", "cpus": 1.5,
                       "pids_limit": 100, "memswap_limit": "512m", "cpu_shares": 512, "cpuset": "0,1"},
            "both": {"image": "x", "mem_limit": "256m", "cpus": 1.5, "pids_limit": 100,
                     "deploy": {"resources": {"limits": {"memory": "1g", "cpus": "0.5", "pids": 50},
                                              "reservations": {"memory": "128m"}}}},
            "quota": {"image": "x", "cpu_quota": 20000, "cpu_period": 50000},
        }
    }));
    let legacy = spec_of(&p, "legacy", 1).resources;
    assert_eq!(
        legacy,
        ResourceLimits {
            memory_limit: Some(256 << 20),
            memory_reservation: Some(64 << 20),
            memory_swap: Some(512 << 20),
            cpu_quota: Some(150_000),
            cpu_period: Some(100_000),
            cpu_shares: Some(512),
            cpuset: Some("0,1".into()),
            pids_limit: Some(100),
            ..ResourceLimits::default()
        }
    );
    let both = spec_of(&p, "both", 1).resources;
    assert_eq!(both.memory_limit, Some(1 << 30));
    assert_eq!(both.memory_reservation, Some(128 << 20));
    assert_eq!(
        (both.cpu_quota, both.cpu_period),
        (Some(50_000), Some(100_000))
    );
    assert_eq!(both.pids_limit, Some(50));
    let quota = spec_of(&p, "quota", 1).resources;
    assert_eq!(
        (quota.cpu_quota, quota.cpu_period),
        (Some(20_000), Some(50_000))
    );
}

#[test]
fn mounts_files_ports_and_networks_are_resolved() {
    let p = project(json!({
        "name": "shop",
        "services": {"web": {
            "image": "nginx",
            "volumes": [
                {"type": "bind", "source": "/srv/site", "target": "/usr/share/nginx/html", "read_only": true},
                {"type": "volume", "source": "cache", "target": "/cache"},
                {"type": "volume", "source": "ext", "target": "/ext"},
                {"type": "volume", "target": "/anon"},
                {"type": "tmpfs", "target": "/run", "tmpfs": {"size": "64m"}}
            ],
            "tmpfs": ["/tmp:size=1m,mode=1777"],
            "ports": [{"target": 80, "published": "8080", "host_ip": "127.0.0.1"}],
            "networks": {"front": {"aliases": ["www"]}, "back": null},
            "secrets": [{"source": "token"}, {"source": "key", "target": "api.key", "mode": 256}],
            "configs": [{"source": "site"}],
        }},
        "volumes": {"cache": {"name": "shop_cache"}, "ext": {"external": true, "name": "ext"}},
        "networks": {"front": {"name": "shop_front"}, "back": {"name": "shared", "external": true}},
        "secrets": {"token": {"file": "/run/token", "name": "shop_token"}, "key": {"environment": "API_KEY", "name": "shop_key"}},
        "configs": {"site": {"content": "hello", "name": "shop_site"}},
    }));
    let spec = spec_of(&p, "web", 1);
    assert_eq!(
        spec.mounts,
        [
            Mount::Bind {
                source: "/srv/site".into(),
                target: "/usr/share/nginx/html".into(),
                read_only: true,
                create_host_path: true,
                propagation: None,
                selinux: None
            },
            Mount::Volume {
                source: Some("shop_cache".into()),
                target: "/cache".into(),
                read_only: false,
                nocopy: false,
                subpath: None
            },
            Mount::Volume {
                source: Some("ext".into()),
                target: "/ext".into(),
                read_only: false,
                nocopy: false,
                subpath: None
            },
            Mount::Volume {
                source: None,
                target: "/anon".into(),
                read_only: false,
                nocopy: false,
                subpath: None
            },
            Mount::Tmpfs {
                target: "/run".into(),
                size: Some(64 << 20),
                mode: None,
                options: vec![],
            },
            Mount::Tmpfs {
                target: "/tmp".into(),
                size: Some(1 << 20),
                mode: Some(0o1777),
                options: vec![],
            },
        ]
    );
    assert_eq!(
        spec.ports,
        [PortBinding {
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: Some("127.0.0.1".into()),
            host_port: Some("8080".into())
        }]
    );
    let nets: Vec<(&str, Vec<&str>)> = spec
        .networks
        .iter()
        .map(|n| {
            (
                n.name.as_str(),
                n.aliases.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    // In the order the service lists them.
    assert_eq!(
        nets,
        [("shop_front", vec!["web", "www"]), ("shared", vec!["web"])]
    );
    let files: Vec<(FileKind, &str, &FileSource, Option<u32>)> = spec
        .files
        .iter()
        .map(|f| (f.kind, f.target.as_str(), &f.source, f.mode))
        .collect();
    assert_eq!(
        files,
        [
            (
                FileKind::Config,
                "/site",
                &FileSource::Content("hello".into()),
                None
            ),
            (
                FileKind::Secret,
                "/run/secrets/token",
                &FileSource::File("/run/token".into()),
                None
            ),
            (
                FileKind::Secret,
                "/run/secrets/api.key",
                &FileSource::Environment("API_KEY".into()),
                Some(256)
            ),
        ]
    );
}

#[test]
fn process_settings_are_carried_over() {
    let p = project(json!({
        "name": "p",
        "services": {"s": {
            "image": "x",
            "entrypoint": ["/init"],
            "command": [],
            "environment": {"A": "1", "UNSET": null},
            "user": "1000:1000", "working_dir": "/app", "hostname": "box", "read_only": true,
            "cap_add": ["NET_ADMIN"], "cap_drop": ["ALL"], "init": true,
            "sysctls": {"net.core.somaxconn": "1024"},
            "ulimits": {"nofile": {"soft": 1024, "hard": 2048}, "nproc": 512},
            "stop_signal": "SIGQUIT", "stop_grace_period": "30s",
            "restart": "on-failure:5",
            "healthcheck": {"test": ["CMD", "true"], "interval": "5s", "retries": 3},
            "extra_hosts": ["db=10.0.0.2"],
        }}
    }));
    let spec = spec_of(&p, "s", 1);
    assert_eq!(spec.entrypoint, Some(vec!["/init".to_string()]));
    assert_eq!(spec.command, Some(vec![]), "cleared, not inherited");
    assert_eq!(
        spec.env,
        BTreeMap::from([("A".to_string(), "1".to_string())])
    );
    assert_eq!(spec.user.as_deref(), Some("1000:1000"));
    assert_eq!(spec.working_dir.as_deref(), Some("/app"));
    assert_eq!(spec.hostname.as_deref(), Some("box"));
    assert!(spec.read_only && spec.init);
    assert_eq!(
        (spec.cap_add.clone(), spec.cap_drop.clone()),
        (vec!["NET_ADMIN".to_string()], vec!["ALL".to_string()])
    );
    assert_eq!(spec.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(
        spec.ulimits,
        [
            UlimitSpec {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            },
            UlimitSpec {
                name: "nproc".into(),
                soft: 512,
                hard: 512
            },
        ]
    );
    assert_eq!(spec.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(spec.stop_grace_period, Duration::from_secs(30));
    assert_eq!(spec.restart.condition, RestartCondition::OnFailure);
    assert_eq!(spec.restart.max_attempts, Some(5));
    let hc = spec.healthcheck.unwrap();
    assert_eq!(hc.test, ["CMD", "true"]);
    assert_eq!(
        (hc.interval, hc.retries),
        (Some(Duration::from_secs(5)), Some(3))
    );
    assert_eq!(
        spec.extra_hosts,
        [("db".to_string(), "10.0.0.2".to_string())]
    );
    let defaults = spec_of(
        &project(json!({"name": "p", "services": {"s": {"image": "x"}}})),
        "s",
        1,
    );
    assert_eq!(defaults.stop_grace_period, DEFAULT_STOP_GRACE);
    assert_eq!(defaults.restart.condition, RestartCondition::No);
    assert_eq!((defaults.entrypoint, defaults.command), (None, None));
}

#[test]
fn a_disabled_healthcheck_turns_off_the_images() {
    let p = project(
        json!({"name": "p", "services": {"s": {"image": "x", "healthcheck": {"disable": true}}}}),
    );
    let hc = spec_of(&p, "s", 1).healthcheck.unwrap();
    assert_eq!(hc.test, ["NONE"]);
    assert!(!hc.is_enabled());
}

#[test]
fn the_executor_finishes_the_hash_once_the_digest_is_known() {
    let p = project(json!({"name": "p", "services": {"s": {"image": "x"}}}));
    let pending = container_spec(&p, "s", &p.services["s"], 1, None, &BTreeMap::new());
    assert!(!pending.labels.contains_key(labels::IMAGE_DIGEST));
    let finished = pending.with_image_digest("sha256:abc");
    assert_eq!(finished.labels, spec_of(&p, "s", 1).labels);
}

#[test]
fn tmpfs_options_hooks_and_logging_are_kept() {
    let p = project(json!({
        "name": "shop",
        "services": {"web": {
            "image": "nginx",
            "tmpfs": ["/run:rw,noexec,size=64k,uid=1000", "/cache"],
            "volumes": [{"type": "tmpfs", "target": "/ro", "read_only": true}],
            "logging": {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}},
            "post_start": [{"command": "echo hi", "user": "root", "privileged": true,
                            "working_dir": "/tmp", "environment": {"A": "1", "UNSET": null}}],
            "pre_stop": [{"command": ["sh", "-c", "sleep 1"]}],
        }},
    }));
    let spec = spec_of(&p, "web", 1);
    assert_eq!(
        spec.mounts,
        [
            Mount::Tmpfs {
                target: "/ro".into(),
                size: None,
                mode: None,
                options: vec!["ro".into()],
            },
            Mount::Tmpfs {
                target: "/run".into(),
                size: Some(64 << 10),
                mode: None,
                options: vec!["rw".into(), "noexec".into(), "uid=1000".into()],
            },
            Mount::Tmpfs {
                target: "/cache".into(),
                size: None,
                mode: None,
                options: vec![],
            },
        ]
    );
    let logging = spec.logging.as_ref().unwrap();
    assert_eq!(logging.driver.as_deref(), Some("json-file"));
    assert_eq!(logging.options["max-size"], "10m");
    assert_eq!(
        spec.post_start,
        [HookSpec {
            command: vec!["echo".into(), "hi".into()],
            user: Some("root".into()),
            privileged: true,
            working_dir: Some("/tmp".into()),
            env: BTreeMap::from([("A".into(), "1".into())]),
        }]
    );
    assert_eq!(spec.pre_stop[0].command, ["sh", "-c", "sleep 1"]);
    // Hooks and logging are part of the service: editing them recreates.
    let mut edited = p.clone();
    edited.services["web"].pre_stop.clear();
    assert_ne!(spec_of(&edited, "web", 1).config_hash(), spec.config_hash());
}
