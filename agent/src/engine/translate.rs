//! A runtime-level [`ContainerSpec`] into a runtime [`ContainerConfig`]:
//! the image's defaults merged with the spec's overrides by the same code
//! `berth run` uses ([`crate::containers::merge`]), mounts resolved to host
//! paths, limits copied field by field.
//!
//! What the runtime cannot do yet is refused by name ([`unsupported`]),
//! never dropped: a container that silently lacks its published port or
//! capability is worse than one that is not created.

use std::path::PathBuf;

use berth_image::ImageConfig;
use berth_reconcilers::container::{FileSource, Mount as SpecMount};
use berth_reconcilers::{BackendError, ContainerSpec, ErrorKind};
use berth_runtime::{ContainerConfig, LogConfig, Mount, Network, ProcessConfig, Resources, Rootfs};

use super::NETWORKS_ANNOTATION;
use super::volumes::Volumes;
use crate::containers::{self, Overrides};

fn invalid(message: String) -> BackendError {
    BackendError::new(ErrorKind::InvalidArgument, message)
}

/// The spec's settings the runtime has no support for yet.
pub fn unsupported(spec: &ContainerSpec) -> Vec<&'static str> {
    let r = &spec.resources;
    let checks: [(bool, &'static str); 22] = [
        (!spec.ports.is_empty(), "ports"),
        (!spec.ulimits.is_empty(), "ulimits"),
        (spec.domainname.is_some(), "domainname"),
        (spec.read_only, "read_only"),
        (spec.privileged, "privileged"),
        (spec.tty, "tty"),
        (spec.stdin_open, "stdin_open"),
        (!spec.cap_add.is_empty(), "cap_add"),
        (!spec.cap_drop.is_empty(), "cap_drop"),
        (!spec.sysctls.is_empty(), "sysctls"),
        (!spec.extra_hosts.is_empty(), "extra_hosts"),
        (
            !(spec.dns.is_empty() && spec.dns_search.is_empty() && spec.dns_opt.is_empty()),
            "dns",
        ),
        (!spec.devices.is_empty(), "devices"),
        (!spec.security_opt.is_empty(), "security_opt"),
        (!spec.group_add.is_empty(), "group_add"),
        (r.memory_swappiness.is_some(), "mem_swappiness"),
        (r.shm_size.is_some(), "shm_size"),
        (r.oom_kill_disable, "oom_kill_disable"),
        (r.oom_score_adj.is_some(), "oom_score_adj"),
        (
            spec.network_mode
                .as_deref()
                .is_some_and(|m| m != "none" && m != "host"),
            "network_mode (other than none and host)",
        ),
        (
            spec.mounts.iter().any(|m| match m {
                SpecMount::Volume { source, .. } => source.is_none(),
                SpecMount::Image { .. } => true,
                SpecMount::Bind {
                    propagation,
                    selinux,
                    ..
                } => propagation.is_some() || selinux.is_some(),
                SpecMount::Tmpfs { .. } => false,
            }),
            "anonymous volumes, image mounts, bind propagation and selinux labels",
        ),
        (
            spec.files.iter().any(|f| {
                !matches!(f.source, FileSource::File(_))
                    || f.uid.is_some()
                    || f.gid.is_some()
                    || f.mode.is_some()
            }),
            "configs and secrets other than plain files",
        ),
    ];
    checks
        .into_iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| name)
        .collect()
}

/// The config for `spec` on `layers` of an image whose config is `image`.
/// The caller annotates it with the image (reference and id).
pub fn config(
    spec: &ContainerSpec,
    image: &ImageConfig,
    layers: Vec<PathBuf>,
    volumes: &Volumes,
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
    let r = &spec.resources;
    let non_negative = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    let resources = Resources {
        memory: r.memory_limit,
        memory_reservation: r.memory_reservation,
        memory_swap: r.memory_swap,
        cpu_quota: r.cpu_quota,
        cpu_period: non_negative(r.cpu_period),
        cpu_shares: non_negative(r.cpu_shares),
        cpuset_cpus: r.cpuset.clone(),
        cpuset_mems: None,
        pids_limit: r.pids_limit,
    };
    let network = match spec.network_mode.as_deref() {
        Some("host") => Network::Host,
        // No bridges yet: every container (on any network) gets its own
        // namespace with only `lo`; see `networks`.
        _ => Network::None,
    };
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
        },
        hostname: spec.hostname.clone(),
        mounts: mounts(spec, volumes)?,
        resources,
        init: spec.init,
        stop_signal: merged.stop_signal,
        // Whole seconds, rounded up: a 1.5 s grace must not become 1 s.
        stop_timeout: Some(spec.stop_grace_period.as_millis().div_ceil(1000) as u64),
        log: LogConfig::default(),
        network,
        auto_remove: false,
        healthcheck: healthcheck(spec, image)?,
        restart_policy: crate::healthcheck::restart_policy(&spec.restart)
            .map_err(|e| invalid(format!("container {}: {e:#}", spec.name)))?,
    };
    if spec.network_mode.is_none() && !spec.networks.is_empty() {
        let names: Vec<&str> = spec.networks.iter().map(|n| n.name.as_str()).collect();
        config
            .annotations
            .insert(NETWORKS_ANNOTATION.to_owned(), names.join(","));
    }
    Ok(config)
}

/// The image's healthcheck under the service's `healthcheck:`, merged as
/// Docker merges them.
fn healthcheck(
    spec: &ContainerSpec,
    image: &ImageConfig,
) -> Result<Option<berth_runtime::Healthcheck>, BackendError> {
    let user = spec
        .healthcheck
        .as_ref()
        .map(crate::healthcheck::HealthOverride::from_spec)
        .transpose()
        .map_err(|e| invalid(format!("container {}: {e:#}", spec.name)))?;
    Ok(crate::healthcheck::merge(
        image.healthcheck.as_ref(),
        image.shell.as_deref(),
        user.as_ref(),
    ))
}

fn mounts(spec: &ContainerSpec, volumes: &Volumes) -> Result<Vec<Mount>, BackendError> {
    let mut out = Vec::new();
    for m in &spec.mounts {
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
                }
            }
            SpecMount::Volume {
                source: Some(name),
                target,
                read_only,
                subpath,
                ..
            } => {
                let mut source = volumes.mount_source(name)?;
                if let Some(sub) = subpath {
                    // Relative and without `..`: a subpath must stay inside
                    // the volume.
                    let p = std::path::Path::new(sub);
                    if p.is_absolute()
                        || p.components()
                            .any(|c| matches!(c, std::path::Component::ParentDir))
                    {
                        return Err(invalid(format!("invalid volume subpath {sub:?}")));
                    }
                    source = source.join(p);
                }
                Mount::Bind {
                    source,
                    target: target.clone(),
                    readonly: *read_only,
                }
            }
            SpecMount::Tmpfs { target, size, mode } => Mount::Tmpfs {
                target: target.clone(),
                size: size.and_then(|s| u64::try_from(s).ok()),
                mode: *mode,
            },
            // Refused by `unsupported` before we get here.
            SpecMount::Volume { source: None, .. } | SpecMount::Image { .. } => {
                return Err(invalid(format!(
                    "unsupported mount at {} in {}",
                    m.target(),
                    spec.name
                )));
            }
        });
    }
    for f in &spec.files {
        if let FileSource::File(path) = &f.source {
            out.push(Mount::Bind {
                source: PathBuf::from(path),
                target: f.target.clone(),
                readonly: true,
            });
        }
    }
    Ok(out)
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
            },
        ];
        let c = config(&s, &image(), vec!["/l0".into()], &vols).unwrap();
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
                },
                Mount::Tmpfs {
                    target: "/run".into(),
                    size: Some(1024),
                    mode: Some(0o700),
                },
            ]
        );
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
        s.cap_add.push("NET_ADMIN".into());
        let err = config(&s, &image(), Vec::new(), &volumes(tmp.path())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            err.message,
            "container p-web-1: not supported by berth's runtime yet: ports, cap_add"
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
        let err = config(&s, &image(), Vec::new(), &volumes(tmp.path())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
