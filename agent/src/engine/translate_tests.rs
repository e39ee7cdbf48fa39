//! Unit tests of `translate` (spec → runtime config), beside it.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_reconcilers::conformance::{Fixture, spec};
use berth_reconcilers::fakes::{FakeClock, FakeHost};
use berth_reconcilers::traits::VolumeStore;

use super::*;

fn base() -> ContainerSpec {
    let host = FakeHost::new(FakeClock::default());
    let f = Fixture {
        backends: host.backends(),
        project: "p".into(),
        image: "busybox".into(),
        command: vec!["sleep".into(), "1".into()],
        missing_image: String::new(),
        pullable: String::new(),
        not_in_registry: String::new(),
    };
    spec(&f, "web", 1)
}

fn image() -> ImageConfig {
    ImageConfig {
        env: vec!["PATH=/bin".into(), "A=image".into()],
        entrypoint: Some(vec!["/entry".into()]),
        cmd: Some(vec!["serve".into()]),
        stop_signal: Some("SIGQUIT".into()),
        ..Default::default()
    }
}

fn volumes(dir: &std::path::Path) -> Volumes {
    Volumes::new(
        dir,
        berth_runtime::Runtime::new(dir, "/nonexistent", "/bin/false"),
    )
}

#[test]
fn spec_fields_land_in_the_runtime_config() {
    let tmp = tempfile::tempdir().unwrap();
    let vols = volumes(tmp.path());
    vols.create(&berth_reconcilers::container::VolumeSpec {
        name: "p_data".into(),
        driver: None,
        driver_opts: BTreeMap::new(),
        labels: BTreeMap::new(),
    })
    .unwrap();
    let mut s = base();
    s.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]);
    s.command = Some(vec!["echo hi".into()]);
    s.env = BTreeMap::from([("A".into(), "spec".into()), ("B".into(), "2".into())]);
    s.resources.memory_limit = Some(64 << 20);
    s.resources.cpu_quota = Some(50_000);
    s.resources.cpu_period = Some(100_000);
    s.resources.cpu_shares = Some(512);
    s.resources.cpuset = Some("0".into());
    s.resources.pids_limit = Some(10);
    s.user = Some("nobody".into());
    s.working_dir = Some("/srv".into());
    s.hostname = Some("h".into());
    s.init = true;
    s.stop_grace_period = Duration::from_millis(1500);
    s.mounts = vec![
        SpecMount::Volume {
            source: Some("p_data".into()),
            target: "/data".into(),
            read_only: true,
            nocopy: false,
            subpath: None,
        },
        SpecMount::Tmpfs {
            target: "/run".into(),
            size: Some(1024),
            mode: Some(0o700),
            options: vec!["exec".into(), "uid=1000".into()],
        },
    ];
    s.group_add = vec!["audio".into()];
    s.domainname = Some("example.org".into());
    s.resources.shm_size = Some(128 << 20);
    s.resources.oom_score_adj = Some(-500);
    s.resources.memory_swappiness = Some(-1);
    s.sysctls = BTreeMap::from([("net.core.somaxconn".into(), "1024".into())]);
    s.devices = vec![berth_reconcilers::container::Device {
        source: "/dev/null".into(),
        target: "/dev/mynull".into(),
        permissions: "rw".into(),
    }];
    s.cap_add = vec!["NET_ADMIN".into()];
    s.read_only = true;
    let c = config(
        &s,
        &image(),
        vec!["/l0".into()],
        &host(&vols, &BTreeMap::new()),
    )
    .unwrap();
    assert_eq!(c.name, "p-web-1");
    assert_eq!(c.process.args, ["/bin/sh", "-c", "echo hi"]);
    assert_eq!(c.process.env, ["PATH=/bin", "A=spec", "B=2"]);
    assert_eq!(c.process.user.as_deref(), Some("nobody"));
    assert_eq!(c.process.cwd.as_deref(), Some("/srv"));
    assert_eq!(c.hostname.as_deref(), Some("h"));
    assert!(c.init);
    // The image's stop signal when the spec has none; grace rounded up.
    assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(c.stop_timeout, Some(2));
    assert_eq!(c.resources.memory, Some(64 << 20));
    assert_eq!(c.resources.nano_cpus(), 500_000_000);
    assert_eq!(c.resources.cpu_shares, Some(512));
    assert_eq!(c.resources.cpuset_cpus.as_deref(), Some("0"));
    assert_eq!(c.resources.pids_limit, Some(10));
    assert_eq!(c.network, Network::None);
    assert_eq!(c.labels["conformance"], "yes");
    assert_eq!(
        c.mounts,
        [
            Mount::Bind {
                source: tmp.path().join("volumes/p_data/_data"),
                target: "/data".into(),
                readonly: true,
                copy_up: true,
            },
            Mount::Tmpfs {
                target: "/run".into(),
                size: Some(1024),
                mode: Some(0o700),
                options: ["noexec", "nosuid", "nodev", "exec", "uid=1000"]
                    .map(String::from)
                    .to_vec(),
            },
        ]
    );
    assert_eq!(c.process.additional_groups, ["audio"]);
    assert_eq!(c.domainname.as_deref(), Some("example.org"));
    assert_eq!(c.shm_size, Some(128 << 20));
    assert_eq!(c.oom_score_adj, Some(-500));
    assert_eq!(c.resources.memory_swappiness, None, "-1 is the default");
    assert_eq!(c.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(c.devices[0].path_in_container, "/dev/mynull");
    assert_eq!(c.security.cap_add, ["NET_ADMIN"]);
    assert!(c.security.readonly_rootfs && !c.security.privileged);
}

fn host<'a>(vols: &'a Volumes, anonymous: &'a BTreeMap<String, String>) -> Host<'a> {
    Host {
        volumes: vols,
        anonymous,
        cgroup_v2: false,
    }
}

#[test]
fn anonymous_volumes_and_image_volumes() {
    let tmp = tempfile::tempdir().unwrap();
    let vols = volumes(tmp.path());
    let mut s = base();
    s.mounts = vec![
        SpecMount::Volume {
            source: None,
            target: "/data/".into(),
            read_only: false,
            nocopy: true,
            subpath: None,
        },
        SpecMount::Tmpfs {
            target: "/cache".into(),
            size: None,
            mode: None,
            options: vec![],
        },
    ];
    let img = ImageConfig {
        volumes: vec!["/cache".into(), "/var/lib/db".into(), "/data".into()],
        ..image()
    };
    // The spec's anonymous volume, then the image's not covered by a
    // mount.
    assert_eq!(anonymous_targets(&s, &img), ["/data", "/var/lib/db"]);
    let anonymous = vols
        .anonymous_for(&s, &anonymous_targets(&s, &img))
        .unwrap();
    assert_eq!(anonymous.len(), 2);
    let c = config(&s, &img, vec!["/l0".into()], &host(&vols, &anonymous)).unwrap();
    let binds: Vec<(String, bool)> = c
        .mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Bind {
                target, copy_up, ..
            } => Some((target.clone(), *copy_up)),
            _ => None,
        })
        .collect();
    assert_eq!(
        binds,
        [
            ("/data/".to_string(), false),
            ("/var/lib/db".to_string(), true)
        ],
        "nocopy is kept; image volumes are copied up"
    );
    // The same replica gets the same volumes back; another replica
    // gets its own.
    assert_eq!(
        vols.anonymous_for(&s, &anonymous_targets(&s, &img))
            .unwrap(),
        anonymous
    );
    let mut other = s.clone();
    other.number = 2;
    other.name = "p-web-2".into();
    let theirs = vols
        .anonymous_for(&other, &anonymous_targets(&other, &img))
        .unwrap();
    assert!(theirs.values().all(|v| !anonymous.values().any(|a| a == v)));
    let labels = &vols
        .list()
        .unwrap()
        .into_iter()
        .find(|v| v.name == anonymous["/data"])
        .unwrap()
        .labels;
    assert_eq!(labels["com.docker.compose.project"], "p");
    assert_eq!(labels["com.docker.compose.service"], "web");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(labels["berth.volume.target"], "/data");
    assert!(labels.contains_key("com.docker.volume.anonymous"));
}

#[test]
fn volume_subpaths_stay_inside_and_must_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let vols = volumes(tmp.path());
    vols.create(&berth_reconcilers::container::VolumeSpec {
        name: "p_data".into(),
        driver: None,
        driver_opts: BTreeMap::new(),
        labels: BTreeMap::new(),
    })
    .unwrap();
    let data = tmp.path().join("volumes/p_data/_data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::os::unix::fs::symlink("/etc", data.join("escape")).unwrap();
    let with = |sub: &str| {
        let mut s = base();
        s.mounts = vec![SpecMount::Volume {
            source: Some("p_data".into()),
            target: "/d".into(),
            read_only: false,
            nocopy: false,
            subpath: Some(sub.into()),
        }];
        config(&s, &image(), vec![], &host(&vols, &BTreeMap::new()))
    };
    match &with("sub").unwrap().mounts[0] {
        Mount::Bind {
            source, copy_up, ..
        } => {
            assert_eq!(*source, data.join("sub"));
            assert!(!copy_up);
        }
        other => panic!("{other:?}"),
    }
    assert!(with("../x").is_err());
    assert!(
        with("missing")
            .unwrap_err()
            .message
            .contains("does not exist")
    );
    // A symlink in the volume resolves inside it, never to the host.
    let err = with("escape/passwd").unwrap_err();
    assert!(err.message.contains("does not exist"), "{}", err.message);
}

#[test]
fn unsupported_settings_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = base();
    s.ports.push(berth_reconcilers::container::PortBinding {
        container_port: 80,
        protocol: "tcp".into(),
        host_ip: None,
        host_port: Some("8080".into()),
    });
    s.dns.push("1.1.1.1".into());
    let vols = volumes(tmp.path());
    let err = config(&s, &image(), Vec::new(), &host(&vols, &BTreeMap::new())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        err.message,
        "container p-web-1: not supported by berth's runtime yet: ports, dns"
    );
    // A volume that was never created is NotFound, for the executor.
    let mut s = base();
    s.mounts.push(SpecMount::Volume {
        source: Some("p_missing".into()),
        target: "/d".into(),
        read_only: false,
        nocopy: false,
        subpath: None,
    });
    let err = config(&s, &image(), Vec::new(), &host(&vols, &BTreeMap::new())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}
