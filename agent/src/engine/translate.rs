//! A runtime-level [`ContainerSpec`] into a runtime [`ContainerConfig`]:
//! the image's defaults merged with the spec's overrides by the same code
//! `berth run` uses ([`crate::containers::merge`]), mounts resolved to host
//! paths (named and anonymous volumes, the image's `VOLUME`s, tmpfs with
//! Docker's default flags, configs and secrets as copies), limits copied
//! field by field, the other options through [`super::options`].
//!
//! What the runtime cannot do yet is refused by name ([`unsupported`]),
//! never dropped: a container that silently lacks its published port or
//! capability is worse than one that is not created.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_image::ImageConfig;
use berth_reconcilers::container::{FileSource, Mount as SpecMount};
use berth_reconcilers::{BackendError, ContainerSpec, ErrorKind};
use berth_runtime::{ContainerConfig, Device, Mount, Network, ProcessConfig, Resources, Rootfs};

use super::NETWORKS_ANNOTATION;
use super::options;
use super::volumes::Volumes;
use crate::containers::{self, Overrides};

fn invalid(message: String) -> BackendError {
    BackendError::new(ErrorKind::InvalidArgument, message)
}

/// Docker's flags for every tmpfs mount; the mount's own options come
/// after them and win (`exec` undoes `noexec`).
const TMPFS_DEFAULTS: [&str; 3] = ["noexec", "nosuid", "nodev"];

/// The spec's settings the runtime has no support for yet.
pub fn unsupported(spec: &ContainerSpec) -> Vec<&'static str> {
    let bind_option = |pick: fn(&SpecMount) -> bool| spec.mounts.iter().any(pick);
    let checks: [(bool, &'static str); 10] = [
        (!spec.ports.is_empty(), "ports"),
        (spec.tty, "tty"),
        (spec.stdin_open, "stdin_open"),
        (!spec.extra_hosts.is_empty(), "extra_hosts"),
        (
            !(spec.dns.is_empty() && spec.dns_search.is_empty() && spec.dns_opt.is_empty()),
            "dns",
        ),
        (
            spec.network_mode
                .as_deref()
                .is_some_and(|m| m != "none" && m != "host"),
            "network_mode (other than none and host)",
        ),
        (
            bind_option(|m| matches!(m, SpecMount::Image { .. })),
            "image mounts",
        ),
        (
            bind_option(|m| {
                matches!(
                    m,
                    SpecMount::Bind {
                        propagation: Some(_),
                        ..
                    }
                )
            }),
            "bind propagation",
        ),
        (
            bind_option(|m| {
                matches!(
                    m,
                    SpecMount::Bind {
                        selinux: Some(_),
                        ..
                    }
                )
            }),
            "bind selinux labels",
        ),
        (
            spec.files
                .iter()
                .any(|f| matches!(f.source, FileSource::External)),
            "external configs and secrets",
        ),
    ];
    checks
        .into_iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| name)
        .collect()
}

/// The container paths that get an anonymous volume: the spec's `volumes:
/// [/path]` entries, then the image's `VOLUME`s that no mount of the spec
/// (of any kind) or config/secret already covers.
pub fn anonymous_targets(spec: &ContainerSpec, image: &ImageConfig) -> Vec<String> {
    let clean = |t: &str| {
        let t = t.trim_end_matches('/');
        if t.is_empty() {
            "/".to_owned()
        } else {
            t.to_owned()
        }
    };
    let mut out: Vec<String> = spec
        .mounts
        .iter()
        .filter_map(|m| match m {
            SpecMount::Volume {
                source: None,
                target,
                ..
            } => Some(clean(target)),
            _ => None,
        })
        .collect();
    let covered: Vec<String> = spec
        .mounts
        .iter()
        .map(|m| clean(m.target()))
        .chain(spec.files.iter().map(|f| clean(&f.target)))
        .collect();
    for v in &image.volumes {
        let v = clean(v);
        if !covered.contains(&v) && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// What a translation needs to know of the machine.
pub struct Host<'a> {
    pub volumes: &'a Volumes,
    /// The volume for each of [`anonymous_targets`], by target.
    pub anonymous: &'a BTreeMap<String, String>,
    /// The runtime's cgroups are v2 (some v1-only limits then warn).
    pub cgroup_v2: bool,
}

/// The config for `spec` on `layers` of an image whose config is `image`.
/// The caller annotates it with the image (reference and id).
pub fn config(
    spec: &ContainerSpec,
    image: &ImageConfig,
    layers: Vec<PathBuf>,
    host: &Host<'_>,
) -> Result<ContainerConfig, BackendError> {
    let missing = unsupported(spec);
    if !missing.is_empty() {
        return Err(invalid(format!(
            "container {}: not supported by berth's runtime yet: {}",
            spec.name,
            missing.join(", ")
        )));
    }
    let merged = containers::merge(
        image,
        Overrides {
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.command.clone(),
            env: spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            workdir: spec.working_dir.clone(),
            user: spec.user.clone(),
            stop_signal: spec.stop_signal.clone(),
            labels: spec.labels.clone(),
        },
    )
    .map_err(|e| invalid(format!("container {}: {e:#}", spec.name)))?;
    let network = match spec.network_mode.as_deref() {
        Some("host") => Network::Host,
        // No bridges yet: every container (on any network) gets its own
        // namespace with only `lo`; see `networks`.
        _ => Network::None,
    };
    let mut mounts = mounts(spec, host.volumes, host.anonymous)?;
    mounts.extend(options::files(spec)?);
    let mut config = ContainerConfig {
        id: berth_runtime::new_id(),
        name: spec.name.clone(),
        labels: merged.labels,
        annotations: Default::default(),
        rootfs: Rootfs::Layers(layers),
        process: ProcessConfig {
            args: merged.args,
            env: merged.env,
            cwd: merged.cwd,
            user: merged.user,
            tty: false,
            additional_groups: spec.group_add.clone(),
        },
        hostname: spec.hostname.clone(),
        mounts,
        resources: resources(spec, host.cgroup_v2),
        init: spec.init,
        stop_signal: merged.stop_signal,
        // Whole seconds, rounded up: a 1.5 s grace must not become 1 s.
        stop_timeout: Some(spec.stop_grace_period.as_millis().div_ceil(1000) as u64),
        log: options::logging(spec)?,
        network,
        auto_remove: false,
        security: options::security(spec)?,
        rlimits: options::rlimits(spec),
        sysctls: spec.sysctls.clone(),
        devices: spec
            .devices
            .iter()
            .map(|d| Device {
                path_on_host: PathBuf::from(&d.source),
                path_in_container: d.target.clone(),
                permissions: d.permissions.clone(),
            })
            .collect(),
        domainname: spec.domainname.clone().filter(|d| !d.is_empty()),
        shm_size: spec
            .resources
            .shm_size
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0),
        oom_score_adj: spec
            .resources
            .oom_score_adj
            .map(|s| i32::try_from(s).unwrap_or(if s < 0 { i32::MIN } else { i32::MAX })),
        hooks: options::hooks(spec)?,
    };
    if spec.network_mode.is_none() && !spec.networks.is_empty() {
        let names: Vec<&str> = spec.networks.iter().map(|n| n.name.as_str()).collect();
        config
            .annotations
            .insert(NETWORKS_ANNOTATION.to_owned(), names.join(","));
    }
    Ok(config)
}

/// cgroup limits; the v1-only ones warn on a v2 host, as Docker does.
fn resources(spec: &ContainerSpec, v2: bool) -> Resources {
    let r = &spec.resources;
    let non_negative = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    let out = Resources {
        memory: r.memory_limit,
        memory_reservation: r.memory_reservation,
        memory_swap: r.memory_swap,
        cpu_quota: r.cpu_quota,
        cpu_period: non_negative(r.cpu_period),
        cpu_shares: non_negative(r.cpu_shares),
        cpuset_cpus: r.cpuset.clone(),
        cpuset_mems: None,
        pids_limit: r.pids_limit,
        // -1 is Docker's "the default".
        memory_swappiness: non_negative(r.memory_swappiness),
        oom_kill_disable: r.oom_kill_disable,
    };
    let warn = |what: &str| {
        tracing::warn!(service = %spec.service, container = %spec.name, "service {}: {what}", spec.service);
    };
    if out.oom_kill_disable && v2 {
        warn(
            "oom_kill_disable has no effect on cgroup v2 (the kernel has no such switch there): discarded",
        );
    } else if out.oom_kill_disable && out.memory.is_none() {
        warn(
            "oom_kill_disable without a memory limit: the container may take all of the host's memory",
        );
    }
    if out.memory_swappiness.is_some() && v2 {
        warn("mem_swappiness has no effect on cgroup v2: discarded");
    }
    out
}

fn mounts(
    spec: &ContainerSpec,
    volumes: &Volumes,
    anonymous: &BTreeMap<String, String>,
) -> Result<Vec<Mount>, BackendError> {
    let anonymous_source = |target: &str| -> Result<PathBuf, BackendError> {
        let clean = target.trim_end_matches('/');
        let name = anonymous.get(clean).ok_or_else(|| {
            BackendError::new(
                ErrorKind::Internal,
                format!(
                    "no anonymous volume was prepared for {target} in {}",
                    spec.name
                ),
            )
        })?;
        volumes.mount_source(name)
    };
    let mut out = Vec::new();
    let mut mounted: Vec<String> = Vec::new();
    for m in &spec.mounts {
        mounted.push(m.target().trim_end_matches('/').to_owned());
        out.push(match m {
            SpecMount::Bind {
                source,
                target,
                read_only,
                create_host_path,
                ..
            } => {
                let path = PathBuf::from(source);
                if !path.exists() {
                    if !create_host_path {
                        return Err(BackendError::not_found(format!(
                            "bind source {source} does not exist"
                        )));
                    }
                    std::fs::create_dir_all(&path)
                        .map_err(|e| super::error::io("create", &path, e))?;
                }
                Mount::Bind {
                    source: path,
                    target: target.clone(),
                    readonly: *read_only,
                    copy_up: false,
                }
            }
            SpecMount::Volume {
                source,
                target,
                read_only,
                nocopy,
                subpath,
            } => {
                let data = match source {
                    Some(name) => volumes.mount_source(name)?,
                    None => anonymous_source(target)?,
                };
                let source = match subpath {
                    Some(sub) => volume_subpath(&data, sub, spec)?,
                    None => data,
                };
                Mount::Bind {
                    source,
                    target: target.clone(),
                    readonly: *read_only,
                    // Docker copies into a volume's root only.
                    copy_up: !*nocopy && subpath.is_none(),
                }
            }
            SpecMount::Tmpfs {
                target,
                size,
                mode,
                options,
            } => Mount::Tmpfs {
                target: target.clone(),
                size: size.and_then(|s| u64::try_from(s).ok()).filter(|s| *s > 0),
                mode: *mode,
                options: TMPFS_DEFAULTS
                    .iter()
                    .map(|o| o.to_string())
                    .chain(options.iter().cloned())
                    .collect(),
            },
            // Refused by `unsupported` before we get here.
            SpecMount::Image { .. } => {
                return Err(invalid(format!(
                    "unsupported mount at {} in {}",
                    m.target(),
                    spec.name
                )));
            }
        });
    }
    // The image's VOLUMEs that no declared mount replaced.
    for target in anonymous.keys() {
        if !mounted.contains(target) {
            out.push(Mount::Bind {
                source: anonymous_source(target)?,
                target: target.clone(),
                readonly: false,
                copy_up: true,
            });
        }
    }
    Ok(out)
}

/// A volume's `subpath`: relative, inside the volume even through symlinks
/// in it, and existing (as Docker requires).
fn volume_subpath(
    data: &std::path::Path,
    sub: &str,
    spec: &ContainerSpec,
) -> Result<PathBuf, BackendError> {
    let p = std::path::Path::new(sub);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(invalid(format!(
            "container {}: invalid volume subpath {sub:?}: it must be relative and stay inside the volume",
            spec.name
        )));
    }
    let resolved = berth_runtime::secure_join(data, sub).map_err(|e| {
        invalid(format!(
            "container {}: volume subpath {sub:?}: {e}",
            spec.name
        ))
    })?;
    if !resolved.exists() {
        return Err(invalid(format!(
            "container {}: volume subpath {sub:?} does not exist in the volume ({})",
            spec.name,
            data.display()
        )));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
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
}
