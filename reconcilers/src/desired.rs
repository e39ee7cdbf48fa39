//! Desired state at the runtime's level: each service replica of a
//! [`Project`] as a [`ContainerSpec`].
//!
//! Naming follows Compose so existing tooling and habits carry over:
//! containers are `<project>-<service>-<n>` (or `container_name`), volumes
//! and networks `<project>_<key>` unless declared with `name:` or
//! `external` (the spec's normalization already filled those names in), and
//! a built image without `image:` is `<project>-<service>`.
//!
//! Where a legacy key and `deploy.resources` both set a limit, `deploy`
//! wins, as in Compose v2: `deploy.resources.limits.memory` over
//! `mem_limit`, `limits.cpus` over `cpus`, `limits.pids` over `pids_limit`,
//! `reservations.memory` over `mem_reservation`.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_spec::compose::model::{Project, Service, ServiceHook, ServiceVolume};

use crate::container::{
    ContainerSpec, Device, FileKind, FileMount, FileSource, HealthcheckSpec, HookSpec, LoggingSpec,
    Mount, NetworkAttachment, PortBinding, ResourceLimits, UlimitSpec, labels,
};
use crate::hash::HashInput;
use crate::restart::RestartPolicy;

/// Docker's default stop timeout.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);
/// CFS period used to express `cpus`.
const CPU_PERIOD: i64 = 100_000;

/// The resolved name of a network key.
pub fn network_name(project: &Project, key: &str) -> String {
    project
        .networks
        .get(key)
        .and_then(|n| n.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

/// The resolved name of a volume key.
pub fn volume_name(project: &Project, key: &str) -> String {
    project
        .volumes
        .get(key)
        .and_then(|v| v.name.clone())
        .unwrap_or_else(|| format!("{}_{key}", project.name))
}

/// The image a service runs: `image:`, or `<project>-<service>` when it
/// only builds.
pub fn image_reference(project: &str, service_name: &str, service: &Service) -> String {
    service
        .image
        .clone()
        .unwrap_or_else(|| format!("{project}-{service_name}"))
}

/// The builder's input for a service: its `build:` section, tagged
/// `reference`, with the project's definitions of the secrets it names.
pub fn build_request(
    project: &Project,
    service_name: &str,
    reference: &str,
    build: &berth_spec::compose::model::BuildConfig,
) -> crate::container::BuildRequest {
    let secrets = build
        .secrets
        .iter()
        .filter_map(|s| {
            let def = project.secrets.get(&s.source)?;
            Some((s.source.clone(), def.clone()))
        })
        .collect();
    let service_images = build
        .additional_contexts
        .values()
        .filter_map(|v| v.strip_prefix("service:"))
        .filter_map(|name| {
            let service = project.services.get(name)?;
            Some((
                name.to_string(),
                image_reference(&project.name, name, service),
            ))
        })
        .collect();
    crate::container::BuildRequest {
        service: service_name.to_string(),
        reference: reference.to_string(),
        build: build.clone(),
        secrets,
        service_images,
    }
}

/// How many replicas a service wants: `scale`, else `deploy.replicas`,
/// else 1 (`deploy.mode: global` is one per machine: 1). Negative counts
/// are 0.
pub fn replicas(service: &Service) -> u32 {
    let deploy = service.deploy.as_ref();
    if deploy.and_then(|d| d.mode.as_deref()) == Some("global") {
        return 1;
    }
    let n = service
        .scale
        .or_else(|| deploy.and_then(|d| d.replicas))
        .unwrap_or(1);
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// The container name of replica `number`.
pub fn container_name(project: &str, service_name: &str, service: &Service, number: u32) -> String {
    match &service.container_name {
        Some(name) => name.clone(),
        None => format!("{project}-{service_name}-{number}"),
    }
}

/// Replica `number` of a service. `image_digest` is the local digest of
/// its image when known (see [`ContainerSpec::image_digest`]).
pub fn container_spec(
    project: &Project,
    service_name: &str,
    service: &Service,
    number: u32,
    image_digest: Option<&str>,
    file_digests: &BTreeMap<String, String>,
) -> ContainerSpec {
    let hash_input = HashInput::new(project, service, file_digests);
    let mut labels: BTreeMap<String, String> = service
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(labels::PROJECT.into(), project.name.clone());
    labels.insert(labels::SERVICE.into(), service_name.into());
    labels.insert(labels::NUMBER.into(), number.to_string());
    labels.insert(labels::ONEOFF.into(), "False".into());
    labels.insert(labels::CONFIG_HASH.into(), hash_input.hash(image_digest));
    labels.insert(labels::CONFIG_KEYS.into(), hash_input.keys_label());
    if let Some(digest) = image_digest {
        labels.insert(labels::IMAGE_DIGEST.into(), digest.into());
    }
    ContainerSpec {
        name: container_name(&project.name, service_name, service, number),
        project: project.name.clone(),
        service: service_name.into(),
        number,
        image: image_reference(&project.name, service_name, service),
        image_digest: image_digest.map(str::to_string),
        entrypoint: service.entrypoint.clone(),
        command: service.command.clone(),
        env: service
            .environment
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect(),
        mounts: mounts(project, service),
        files: files(project, service),
        ports: service
            .ports
            .iter()
            .map(|p| PortBinding {
                container_port: p.target,
                protocol: p.protocol.clone(),
                host_ip: p.host_ip.clone(),
                host_port: p.published.clone(),
            })
            .collect(),
        networks: networks(project, service_name, service),
        network_mode: service.network_mode.clone(),
        mac_address: service.mac_address.clone(),
        links: links(service),
        resources: resources(service),
        ulimits: service
            .ulimits
            .iter()
            .map(|(name, u)| {
                let (soft, hard) = u.soft_hard();
                UlimitSpec {
                    name: name.clone(),
                    soft,
                    hard,
                }
            })
            .collect(),
        user: service.user.clone(),
        working_dir: service.working_dir.clone(),
        hostname: service.hostname.clone(),
        domainname: service.domainname.clone(),
        read_only: service.read_only,
        privileged: service.privileged,
        tty: service.tty,
        stdin_open: service.stdin_open,
        cap_add: service.cap_add.clone(),
        cap_drop: service.cap_drop.clone(),
        init: service.init.unwrap_or(false),
        sysctls: service
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        extra_hosts: service
            .extra_hosts
            .iter()
            .flat_map(|(host, ips)| ips.iter().map(move |ip| (host.clone(), ip.clone())))
            .collect(),
        dns: service.dns.clone(),
        dns_search: service.dns_search.clone(),
        dns_opt: service.dns_opt.clone(),
        devices: service
            .devices
            .iter()
            .map(|d| Device {
                source: d.source.clone(),
                target: d.target.clone().unwrap_or_else(|| d.source.clone()),
                permissions: d.permissions.clone().unwrap_or_else(|| "rwm".into()),
            })
            .collect(),
        security_opt: service.security_opt.clone(),
        group_add: service.group_add.clone(),
        stop_signal: service.stop_signal.clone(),
        stop_grace_period: service
            .stop_grace_period
            .map_or(DEFAULT_STOP_GRACE, |d| d.0),
        restart: RestartPolicy::from_service(service),
        healthcheck: healthcheck(service),
        logging: service.logging.as_ref().map(|l| LoggingSpec {
            driver: l.driver.clone(),
            options: l
                .options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }),
        post_start: service.post_start.iter().map(hook).collect(),
        pre_stop: service.pre_stop.iter().map(hook).collect(),
        labels,
        hash_input: Some(hash_input),
    }
}

fn mounts(project: &Project, service: &Service) -> Vec<Mount> {
    let mut out: Vec<Mount> = service
        .volumes
        .iter()
        .filter_map(|v| mount(project, v))
        .collect();
    // `tmpfs: [/run, "/tmp:size=64m,mode=1777,noexec"]`
    for entry in &service.tmpfs {
        let (target, options) = entry.split_once(':').unwrap_or((entry.as_str(), ""));
        let mut size = None;
        let mut mode = None;
        let mut rest = Vec::new();
        for option in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let parsed_size = option.strip_prefix("size=").and_then(|s| {
                berth_spec::units::parse_bytes(s)
                    .ok()
                    .and_then(|b| i64::try_from(b).ok())
            });
            let parsed_mode = option
                .strip_prefix("mode=")
                .and_then(|m| u32::from_str_radix(m, 8).ok());
            match (parsed_size, parsed_mode) {
                (Some(s), _) => size = Some(s),
                (_, Some(m)) => mode = Some(m),
                // Anything else (or a size or mode that does not parse)
                // goes to the runtime as written, which refuses what it
                // does not know by name.
                _ => rest.push(option.to_string()),
            }
        }
        out.push(Mount::Tmpfs {
            target: target.into(),
            size,
            mode,
            options: rest,
        });
    }
    out
}

fn hook(h: &ServiceHook) -> HookSpec {
    HookSpec {
        command: h.command.clone().unwrap_or_default(),
        user: h.user.clone(),
        privileged: h.privileged,
        working_dir: h.working_dir.clone(),
        env: h
            .environment
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect(),
    }
}

fn mount(project: &Project, v: &ServiceVolume) -> Option<Mount> {
    let target = v.target.clone();
    Some(match v.kind.as_str() {
        "bind" => Mount::Bind {
            source: v.source.clone().unwrap_or_default(),
            target,
            read_only: v.read_only,
            // The long syntax defaults to creating the host path too.
            create_host_path: v.bind.as_ref().is_none_or(|b| b.create_host_path),
            propagation: v.bind.as_ref().and_then(|b| b.propagation.clone()),
            selinux: v.bind.as_ref().and_then(|b| b.selinux.clone()),
        },
        "volume" => Mount::Volume {
            source: v.source.as_ref().map(|key| volume_name(project, key)),
            target,
            read_only: v.read_only,
            nocopy: v.volume.as_ref().is_some_and(|o| o.nocopy),
            subpath: v.volume.as_ref().and_then(|o| o.subpath.clone()),
        },
        "tmpfs" => Mount::Tmpfs {
            target,
            size: v.tmpfs.as_ref().and_then(|t| t.size).map(|s| s.0),
            mode: v.tmpfs.as_ref().and_then(|t| t.mode),
            options: if v.read_only {
                vec!["ro".to_string()]
            } else {
                Vec::new()
            },
        },
        "image" => Mount::Image {
            source: v.source.clone().unwrap_or_default(),
            target,
            subpath: v.image.as_ref().and_then(|o| o.subpath.clone()),
        },
        // npipe and cluster volumes have no meaning on this runtime.
        _ => return None,
    })
}

fn files(project: &Project, service: &Service) -> Vec<FileMount> {
    let mut out = Vec::new();
    for (kind, refs, defs) in [
        (FileKind::Config, &service.configs, &project.configs),
        (FileKind::Secret, &service.secrets, &project.secrets),
    ] {
        for r in refs {
            let def = defs.get(&r.source);
            let source = match def {
                Some(d) if d.external => FileSource::External,
                Some(d) => match (&d.file, &d.content, &d.environment) {
                    (Some(f), _, _) => FileSource::File(f.clone()),
                    (None, Some(c), _) => FileSource::Content(c.clone()),
                    (None, None, Some(e)) => FileSource::Environment(e.clone()),
                    (None, None, None) => FileSource::External,
                },
                None => FileSource::External,
            };
            let target = match (kind, r.target.as_deref()) {
                (_, Some(t)) if t.starts_with('/') => t.to_string(),
                (FileKind::Secret, Some(t)) => format!("/run/secrets/{t}"),
                (FileKind::Secret, None) => format!("/run/secrets/{}", r.source),
                (FileKind::Config, Some(t)) => format!("/{t}"),
                (FileKind::Config, None) => format!("/{}", r.source),
            };
            out.push(FileMount {
                kind,
                name: def
                    .and_then(|d| d.name.clone())
                    .unwrap_or_else(|| format!("{}_{}", project.name, r.source)),
                source,
                target,
                uid: r.uid.clone(),
                gid: r.gid.clone(),
                mode: r.mode,
            });
        }
    }
    out
}

/// `links: [db, db:database]` and `external_links: [c, c:alias]`: (alias,
/// target); without an alias the target's own name.
fn links(service: &Service) -> Vec<(String, String)> {
    service
        .links
        .iter()
        .chain(&service.external_links)
        .map(|l| match l.split_once(':') {
            Some((target, alias)) => (alias.to_owned(), target.to_owned()),
            None => (l.clone(), l.clone()),
        })
        .collect()
}

fn networks(project: &Project, service_name: &str, service: &Service) -> Vec<NetworkAttachment> {
    if service.network_mode.is_some() {
        return Vec::new();
    }
    service
        .networks
        .iter()
        .map(|(key, attachment)| {
            let mut aliases = vec![service_name.to_string()];
            let a = attachment.clone().unwrap_or_default();
            aliases.extend(a.aliases.iter().filter(|x| *x != service_name).cloned());
            NetworkAttachment {
                name: network_name(project, key),
                aliases,
                ipv4_address: a.ipv4_address,
                ipv6_address: a.ipv6_address,
                mac_address: a.mac_address,
                priority: a.priority,
                gw_priority: a.gw_priority,
                link_local_ips: a.link_local_ips,
                interface_name: a.interface_name,
            }
        })
        .collect()
}

fn resources(service: &Service) -> ResourceLimits {
    let res = service.deploy.as_ref().map(|d| &d.resources);
    let limits = res.and_then(|r| r.limits.as_ref());
    let reservations = res.and_then(|r| r.reservations.as_ref());
    let cpus = limits.and_then(|l| l.cpus).or(service.cpus);
    let (cpu_quota, cpu_period) = match cpus {
        Some(c) if c > 0.0 => {
            let period = service.cpu_period.unwrap_or(CPU_PERIOD);
            (Some((c * period as f64).round() as i64), Some(period))
        }
        _ => (service.cpu_quota, service.cpu_period),
    };
    ResourceLimits {
        memory_limit: limits
            .and_then(|l| l.memory)
            .or(service.mem_limit)
            .map(|b| b.0),
        memory_reservation: reservations
            .and_then(|r| r.memory)
            .or(service.mem_reservation)
            .map(|b| b.0),
        memory_swap: service.memswap_limit.map(|b| b.0),
        memory_swappiness: service.mem_swappiness,
        cpu_quota,
        cpu_period,
        cpu_shares: service.cpu_shares,
        cpuset: service.cpuset.clone(),
        pids_limit: limits.and_then(|l| l.pids).or(service.pids_limit),
        shm_size: service.shm_size.map(|b| b.0),
        oom_kill_disable: service.oom_kill_disable,
        oom_score_adj: service.oom_score_adj,
    }
}

fn healthcheck(service: &Service) -> Option<HealthcheckSpec> {
    let h = service.healthcheck.as_ref()?;
    let test = if h.disable {
        vec!["NONE".to_string()]
    } else {
        // Empty: keep the image's test, override only the timings.
        h.test.clone().unwrap_or_default()
    };
    Some(HealthcheckSpec {
        test,
        interval: h.interval.map(|d| d.0),
        timeout: h.timeout.map(|d| d.0),
        retries: h.retries,
        start_period: h.start_period.map(|d| d.0),
        start_interval: h.start_interval.map(|d| d.0),
    })
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
