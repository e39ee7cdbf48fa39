//! RUN: one container on the berth runtime over the stage's snapshots.
//! Its output is followed from the container's json log and reported
//! line by line as it comes; once it exits, its overlayfs upper dir (the
//! step's filesystem diff) is moved out before the container is removed.

use std::fs;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use berth_runtime::{
    ContainerConfig, CreateOptions, LogConfig, Mount, Network, ProcessConfig, Rlimit, Rootfs,
    Runtime, Security, ShimEvent, new_id,
};

use crate::error::{BuildError, Result, StepAt};
use crate::network::{self, AttachedGuard, RunNetworks, StepNetwork};
use crate::request::{Event, ExtraHost, Progress};

/// What RUN runs and how.
pub struct RunSpec {
    pub lowers: Vec<PathBuf>,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub cwd: String,
    pub network: StepNetwork,
    /// What attaches the container to a bridge network.
    pub networks: Option<Arc<dyn RunNetworks>>,
    pub extra_hosts: Vec<ExtraHost>,
    /// `--security=insecure`, entitled.
    pub privileged: bool,
    pub rlimits: Vec<Rlimit>,
    pub shm_size: Option<u64>,
    pub mounts: Vec<Mount>,
    /// The step, for messages.
    pub at: StepAt,
}

/// The annotation that marks a RUN step's container.
const BUILD_ANNOTATION: (&str, &str) = ("berth.build", "run");

/// Removes RUN containers that no build runs any more: their shim is gone
/// too (killed with its builder, or the host restarted). One whose shim
/// still runs belongs to a build in progress (or is being removed by its
/// shim, whose builder died) and is left alone. Returns how many went.
pub fn remove_leftover_containers(rt: &Runtime) -> usize {
    let mut removed = 0;
    for info in rt.list(true) {
        let is_build = info
            .config
            .annotations
            .get(BUILD_ANNOTATION.0)
            .is_some_and(|v| v == BUILD_ANNOTATION.1);
        if !is_build || info.observed.shim_alive {
            continue;
        }
        match rt.remove(&info.config.id, true) {
            Ok(()) => {
                tracing::info!(container.id = %info.config.id, "removed a leftover build container");
                removed += 1;
            }
            Err(e) => {
                tracing::warn!(container.id = %info.config.id, error = %e,
                    "cannot remove a leftover build container");
            }
        }
    }
    removed
}

/// Removes the container however the step ends.
struct ContainerGuard<'a> {
    rt: &'a Runtime,
    id: String,
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.rt.remove(&self.id, true) {
            tracing::warn!(id = %self.id, error = %e, "cannot remove build container");
        }
    }
}

/// Runs the container; returns its exit code and, moved to `upper_to`,
/// its upper dir.
pub fn run(
    rt: &Runtime,
    spec: RunSpec,
    upper_to: &Path,
    progress: &dyn Progress,
    vertex: u32,
    started: Instant,
    cancel: Option<&AtomicBool>,
) -> Result<i32> {
    let id = new_id();
    let name = format!("berth-build-{}", id.get(..12).unwrap_or(&id));
    // Declared before the container's guard: dropped after it, so the
    // network goes once the container is removed, however the step ends.
    let (placed, _network_guard) = place_on_network(&spec, &id, &name)?;
    let config = ContainerConfig {
        id: id.clone(),
        name,
        labels: Default::default(),
        annotations: [(BUILD_ANNOTATION.0.to_owned(), BUILD_ANNOTATION.1.to_owned())].into(),
        rootfs: Rootfs::Layers(spec.lowers),
        process: ProcessConfig {
            args: spec.argv,
            env: spec.env,
            cwd: Some(spec.cwd),
            user: spec.user,
            tty: false,
            additional_groups: Vec::new(),
        },
        hostname: Some("buildkitsandbox".to_owned()),
        mounts: spec.mounts,
        resources: Default::default(),
        init: false,
        stop_signal: None,
        stop_timeout: None,
        log: LogConfig::default(),
        network: placed.network,
        auto_remove: false,
        etc_hosts: Some(placed.etc_hosts),
        resolv_conf: placed.resolv_conf,
        security: Security {
            privileged: spec.privileged,
            ..Security::default()
        },
        rlimits: spec.rlimits,
        sysctls: Default::default(),
        devices: Vec::new(),
        domainname: None,
        shm_size: spec.shm_size,
        oom_score_adj: None,
        hooks: Default::default(),
        healthcheck: None,
        restart_policy: Default::default(),
    };
    let created = rt.create(
        &config,
        CreateOptions {
            start: true,
            attach: false,
            // A builder killed outright (SIGKILL, a second Ctrl+C) cannot
            // remove its container: the shim then does.
            die_with_caller: true,
        },
    );
    let _guard = ContainerGuard { rt, id: id.clone() };
    let mut handle = match created {
        Ok(h) => h,
        Err(berth_runtime::Error::Start { code, message, .. }) => {
            progress.event(Event::Output {
                vertex,
                elapsed: started.elapsed(),
                line: message,
            });
            return Ok(code);
        }
        Err(e) => return Err(e.into()),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let code = loop {
            match handle.next_event() {
                Ok(Some(ShimEvent::Exited(code))) => break Ok(code),
                Ok(Some(_)) => continue,
                Ok(None) => break Err("the shim exited without reporting the exit".to_owned()),
                Err(berth_runtime::Error::Start { code, message, .. }) => {
                    break Ok(code).inspect(|_| tracing::debug!(%message, "start failed"));
                }
                Err(e) => break Err(e.to_string()),
            }
        };
        let _ = tx.send(code);
    });
    let log = rt.state_root().container(&id).log();
    let mut offset = 0u64;
    let code = loop {
        let done = rx.recv_timeout(Duration::from_millis(5));
        offset = follow(&log, offset, progress, vertex, started);
        match done {
            Ok(result) => {
                follow(&log, offset, progress, vertex, started);
                break result.map_err(|reason| {
                    BuildError::Invalid(format!("build container {id}: {reason}"))
                })?;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                    // The guard removes the container (killing it first).
                    let _ = rt.kill(&id, berth_runtime::Signal::SIGKILL);
                    return Err(BuildError::Cancelled);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(BuildError::Invalid(format!(
                    "build container {id}: lost its shim"
                )));
            }
        }
    };
    let upper = rt.state_root().container(&id).upper();
    fs::rename(&upper, upper_to).map_err(|e| BuildError::io(&upper, e))?;
    Ok(code)
}

/// Where a RUN container's network is and what its `/etc` files say.
struct Placed {
    network: Network,
    etc_hosts: String,
    resolv_conf: Option<String>,
}

/// Attaches the container to its bridge network (the guard detaches it)
/// or leaves it on none or the host's, and writes its `/etc/hosts` and
/// `/etc/resolv.conf` as BuildKit does.
fn place_on_network(
    spec: &RunSpec,
    id: &str,
    name: &str,
) -> Result<(Placed, Option<AttachedGuard>)> {
    let step_error = |message: String| BuildError::Step {
        at: spec.at.clone(),
        message,
    };
    let mut guard = None;
    let (network, gateway, network_resolv) = match &spec.network {
        StepNetwork::None => (Network::None, None, None),
        StepNetwork::Host => (Network::Host, None, None),
        StepNetwork::Bridge(wanted) => {
            let Some(networks) = spec.networks.clone() else {
                return Err(step_error(format!(
                    "network {}: this builder has no bridge networks to attach RUN steps to",
                    spec.network.describe()
                )));
            };
            let attached = networks.attach(id, name, wanted.as_deref()).map_err(|e| {
                step_error(format!(
                    "cannot attach the RUN container to the {} network: {e} (RUN --network=none, or building with --network none, runs it without one)",
                    spec.network.describe()
                ))
            })?;
            guard = Some(AttachedGuard {
                networks,
                container_id: id.to_owned(),
            });
            (
                Network::Join(attached.netns),
                Some(attached.gateway),
                attached.resolv_conf,
            )
        }
    };
    let etc_hosts =
        network::hosts_file(&spec.extra_hosts, gateway, &spec.network).map_err(step_error)?;
    let resolv_conf = match spec.network {
        // The runtime copies the host's file as it is.
        StepNetwork::Host => None,
        StepNetwork::None | StepNetwork::Bridge(_) => Some(network_resolv.unwrap_or_else(|| {
            let read = |p: &str| fs::read_to_string(p).ok();
            network::resolv_conf(
                &read("/etc/resolv.conf").unwrap_or_default(),
                read("/run/systemd/resolve/resolv.conf").as_deref(),
            )
        })),
    };
    Ok((
        Placed {
            network,
            etc_hosts,
            resolv_conf,
        },
        guard,
    ))
}

/// Reports the complete log lines after `offset`; returns the new offset.
fn follow(log: &Path, offset: u64, progress: &dyn Progress, vertex: u32, started: Instant) -> u64 {
    let Ok(mut f) = fs::File::open(log) else {
        return offset;
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut reader = BufReader::new(f);
    let mut offset = offset;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(n) if n > 0 && line.last() == Some(&b'\n') => {
                offset += n as u64;
                if let Ok(e) = serde_json::from_slice::<berth_runtime::logs::LogEntry>(&line) {
                    progress.event(Event::Output {
                        vertex,
                        elapsed: started.elapsed(),
                        line: e.log.trim_end_matches('\n').to_owned(),
                    });
                }
            }
            _ => return offset,
        }
    }
}
