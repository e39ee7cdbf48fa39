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
#[path = "translate_tests.rs"]
mod tests;
