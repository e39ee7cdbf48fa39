//! [`ContainerRuntime`] over [`berth_runtime::Runtime`].
//!
//! A container's project, service and number are its labels, so `list`
//! is a filter over every container under the root. Health, "stopped by
//! the user" and the restarts of the restart policy come from the
//! runtime's state (its shim probes and restarts); the restarts the
//! engine itself makes (a `start` of a container that ran before) are
//! counted beside the container (`sidecar`), so `restart_count` covers the
//! container's whole life.

use std::time::{Duration, SystemTime};

use berth_image::Store;
use berth_reconcilers::observed::{ContainerId, ContainerState, Health, ObservedContainer};
use berth_reconcilers::{BackendError, ContainerRuntime, ContainerSpec};
use berth_runtime::{
    ContainerConfig, ContainerInfo, CreateOptions, HealthStatus, HookKind, Runtime, Status,
};

use berth_net::Net;

use super::attach;
use super::error::from_runtime;
use super::networks::from_net;
use super::sidecar::{self, Sidecar};
use super::translate;
use super::volumes::Volumes;
use crate::containers;

pub struct Containers {
    runtime: Runtime,
    store: Store,
    volumes: Volumes,
    net: Net,
}

/// Every container's config, read directly: a container being created has
/// its config before its state, and users of a volume or network must
/// count from that moment.
pub fn container_configs(rt: &Runtime) -> Vec<ContainerConfig> {
    rt.ids()
        .into_iter()
        .filter_map(|id| std::fs::read(rt.state_root().container(&id).config()).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect()
}

fn time(t: Option<&str>) -> Option<SystemTime> {
    t.and_then(|t| humantime::parse_rfc3339_weak(t).ok())
}

/// The runtime's view in the reconciler's terms. `standby` is the
/// network endpoint's flag when the container has one.
fn observed(info: ContainerInfo, record: Sidecar, standby: Option<bool>) -> ObservedContainer {
    let state = match info.observed.status.as_str() {
        "creating" | "created" => ContainerState::Created,
        "running" => ContainerState::Running,
        "restarting" => ContainerState::Restarting,
        "exited" => ContainerState::Exited(i64::from(info.state.exit_code.unwrap_or(-1))),
        "dead" => ContainerState::Dead,
        _ => ContainerState::Unknown,
    };
    let error = info
        .state
        .error
        .clone()
        .or_else(|| info.state.oom_killed.then(|| "OOMKilled".to_owned()))
        .or(info.observed.reason.clone());
    ObservedContainer {
        id: info.config.id.clone(),
        name: info.config.name.clone(),
        image: containers::image_of(&info.config)
            .map(|(name, _)| name.to_owned())
            .unwrap_or_default(),
        labels: info.config.labels,
        state,
        health: match info.state.health.as_ref().map(|h| h.status) {
            None => Health::None,
            Some(HealthStatus::Starting) => Health::Starting,
            Some(HealthStatus::Healthy) => Health::Healthy,
            Some(HealthStatus::Unhealthy) => Health::Unhealthy,
        },
        restart_count: record.restart_count + info.state.restart_count,
        started_at: time(info.state.started_at.as_deref()),
        finished_at: time(info.state.finished_at.as_deref()),
        manually_stopped: info.state.manually_stopped,
        // The shim recorded this exit, after asking the restart policy,
        // in this boot (a host restart is Docker's daemon restart: the
        // policy is asked again).
        restart_policy_applied: info.observed.status == "exited"
            && info.state.status == Status::Exited
            && !info.observed.from_earlier_boot,
        last_exit_code: info.state.exit_code.map(i64::from),
        error,
        standby: standby.unwrap_or(record.standby),
    }
}

impl Containers {
    pub fn new(runtime: Runtime, store: Store, volumes: Volumes, net: Net) -> Self {
        Containers {
            runtime,
            store,
            volumes,
            net,
        }
    }

    fn info(&self, id: &str) -> Result<ContainerInfo, BackendError> {
        self.runtime.inspect(id).map_err(from_runtime)
    }

    /// A create killed between the network attach and the runtime's
    /// create leaves an endpoint (bound namespace, addresses, ports) with
    /// no container. Names are unique, so one under the name about to be
    /// created is that replica's leftover: released before the new one.
    fn drop_orphan_endpoints(&self, name: &str) {
        let Ok(endpoints) = self.net.endpoints() else {
            return;
        };
        // "No container" is what the runtime says, not whether a folder
        // exists: a create killed half-way leaves a folder the runtime
        // does not list (and clears later), whose endpoint is as orphaned.
        for ep in endpoints.iter().filter(|ep| {
            ep.container_name == name && self.runtime.inspect(&ep.container_id).is_err()
        }) {
            tracing::info!(container = %name, id = %ep.container_id, "releasing the networking of a container that was never created");
            if let Err(e) = self.net.detach(&ep.container_id) {
                tracing::warn!(container = %name, error = %e, "cannot release a leftover endpoint");
            }
        }
    }

    /// `create`, out of service when `replacing` is given (see
    /// `attach::prepare`).
    fn create_with(
        &self,
        spec: &ContainerSpec,
        replacing: Option<&str>,
    ) -> Result<ContainerId, BackendError> {
        match self.store.image(&spec.image) {
            Ok(_) => {}
            Err(e) if e.kind() == berth_image::ErrorKind::NotFound => {
                return Err(BackendError::not_found(format!(
                    "no such image: {}: import or load it first",
                    spec.image
                ))
                .with_source(e));
            }
            Err(e) => return Err(super::error::from_image(e)),
        }
        let prepared = containers::prepare_image(&self.store, &spec.image).map_err(|e| {
            BackendError::new(berth_reconcilers::ErrorKind::Internal, format!("{e:#}"))
        })?;
        let targets = translate::anonymous_targets(spec, prepared.image.config());
        let mut anonymous = match replacing.and_then(|id| self.runtime.inspect(id).ok()) {
            Some(old) => self.volumes.inherit_anonymous(&old.config, &targets)?,
            None => std::collections::BTreeMap::new(),
        };
        let rest: Vec<String> = targets
            .iter()
            .filter(|t| !anonymous.contains_key(*t))
            .cloned()
            .collect();
        anonymous.extend(self.volumes.anonymous_for(spec, &rest)?);
        let mut config = translate::config(
            spec,
            prepared.image.config(),
            prepared.layers.clone(),
            &translate::Host {
                volumes: &self.volumes,
                anonymous: &anonymous,
                cgroup_v2: self.runtime.cgroup_v2(),
            },
        )?;
        containers::annotate(&mut config, &spec.image, &prepared.image.id);
        self.drop_orphan_endpoints(&spec.name);
        let undo = attach::prepare(&self.net, &self.runtime, spec, &mut config, replacing)?;
        let created = self.runtime.create(
            &config,
            CreateOptions {
                start: false,
                attach: false,
                die_with_caller: false,
            },
        );
        // config.json (which names the image) is on disk now, or the
        // create failed: either way `rmi` and GC may look.
        drop(prepared.lease);
        if let Err(e) = created {
            if matches!(undo, attach::Undo::Detach) {
                let _ = self.net.detach(&config.id);
            }
            return Err(from_runtime(e));
        }
        Ok(config.id)
    }
}

impl ContainerRuntime for Containers {
    fn list(&self, project: &str) -> Result<Vec<ObservedContainer>, BackendError> {
        let standby: std::collections::HashMap<String, bool> = self
            .net
            .endpoints()
            .map_err(from_net)?
            .into_iter()
            .map(|ep| (ep.container_id, ep.standby))
            .collect();
        let mut out: Vec<ObservedContainer> = self
            .runtime
            .list(true)
            .into_iter()
            .filter(|i| {
                i.config
                    .labels
                    .get(berth_reconcilers::labels::PROJECT)
                    .map(String::as_str)
                    == Some(project)
            })
            .map(|i| {
                let record = sidecar::load(&self.runtime, &i.config.id);
                let standby = standby.get(&i.config.id).copied();
                observed(i, record, standby)
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn inspect(&self, id: &str) -> Result<ObservedContainer, BackendError> {
        let info = self.info(id)?;
        let record = sidecar::load(&self.runtime, &info.config.id);
        let standby = self
            .net
            .endpoint(&info.config.id)
            .map_err(from_net)?
            .map(|ep| ep.standby);
        Ok(observed(info, record, standby))
    }

    /// The image is resolved and unpacked as `berth run` does it
    /// ([`containers::prepare_image`]); a missing one is `NotFound` here,
    /// before anything is created.
    fn create(&self, spec: &ContainerSpec) -> Result<ContainerId, BackendError> {
        self.create_with(spec, None)
    }

    /// As `create`, joined to its networks out of service (`attach`), and
    /// recorded as standby for a container with no network.
    fn create_standby(
        &self,
        spec: &ContainerSpec,
        replacing: &str,
    ) -> Result<ContainerId, BackendError> {
        let replacing = self
            .info(replacing)
            .map_or_else(|_| replacing.to_owned(), |i| i.config.id);
        let id = self.create_with(spec, Some(&replacing))?;
        let mut record = sidecar::load(&self.runtime, &id);
        record.standby = true;
        if let Err(e) = sidecar::save(&self.runtime, &id, record) {
            let _ = self.runtime.remove(&id, true);
            let _ = self.net.detach(&id);
            return Err(e);
        }
        Ok(id)
    }

    /// The traffic switch is the network's (`Net::promote`: one nftables
    /// transaction, then the DNS records); the records beside the two
    /// containers follow.
    fn promote(&self, id: &str, replacing: &str) -> Result<(), BackendError> {
        let info = self.info(id)?;
        let old = self.info(replacing).ok().map(|i| i.config.id);
        self.net
            .promote(&info.config.id, old.as_deref().unwrap_or(replacing))
            .map_err(from_net)?;
        let records = (|| {
            let mut record = sidecar::load(&self.runtime, &info.config.id);
            record.standby = false;
            sidecar::save(&self.runtime, &info.config.id, record)?;
            if let Some(number) = info.config.labels.get(berth_reconcilers::labels::NUMBER) {
                self.volumes.adopt_anonymous(&info.config, number)?;
            }
            if let Some(old) = &old {
                let mut record = sidecar::load(&self.runtime, old);
                record.standby = true;
                sidecar::save(&self.runtime, old, record)?;
            }
            Ok::<(), BackendError>(())
        })();
        match records {
            // With an endpoint, its flag decides the traffic and what is
            // reported, and the traffic has moved: failing now would have
            // the new container removed while it serves.
            Err(e) if self.net.endpoint(&info.config.id).ok().flatten().is_some() => {
                tracing::warn!(container = %info.config.name, error = %e, "in service, but its records could not be updated");
                Ok(())
            }
            other => other,
        }
    }

    /// Idempotent on a running container, and on one its shim is about
    /// to restart. A start of a container that ran before counts one
    /// restart; the runtime starts it afresh (its own restart count and
    /// "manually stopped" cleared, as `docker start` does), so its restarts
    /// so far are folded into the engine's count first. The `post_start`
    /// hooks run once the container runs; a failing one fails the start
    /// (the container keeps running, as with Compose).
    fn start(&self, id: &str) -> Result<(), BackendError> {
        let info = self.info(id)?;
        if info.observed.status == "restarting"
            || (info.observed.container_alive && info.observed.status != "created")
        {
            return Ok(());
        }
        let ran_before = info.state.started_at.is_some() || info.observed.status == "exited";
        let mut record = sidecar::load(&self.runtime, &info.config.id);
        // After a reboot the namespace, bridge and rules are gone while
        // the files remain: rebuilt before the container joins them.
        self.net.ensure(&info.config.id).map_err(from_net)?;
        // Its ports were freed when it stopped: taken again first, so a
        // port someone took meanwhile fails the start before it runs.
        self.net
            .set_running(&info.config.id, true)
            .map_err(from_net)?;
        if let Err(e) = self.runtime.start(&info.config.id) {
            if let Err(e) = self.net.set_running(&info.config.id, false) {
                tracing::warn!(container = %info.config.name, error = %e, "cannot release the ports of a container that did not start");
            }
            return Err(from_runtime(e));
        }
        if ran_before {
            record.restart_count += 1 + info.state.restart_count;
        }
        sidecar::save(&self.runtime, &info.config.id, record)?;
        if !info.config.hooks.post_start.is_empty() {
            self.runtime
                .run_hooks(&info.config.id, HookKind::PostStart, None)
                .map_err(|e| {
                    let name = info.config.name.clone();
                    let mut b = from_runtime(e);
                    b.message = format!("container {name}: {}", b.message);
                    b
                })?;
        }
        Ok(())
    }

    /// The runtime's stop records "manually stopped" with the exit (its
    /// shim hears of the stop before the signal), so no observer sees
    /// the exit without the flag, and the shim does not restart it.
    /// `signal` overrides the container's stop signal: it is sent first,
    /// then the runtime's stop waits out the grace period (sending the
    /// configured signal too, which is the same one unless a caller
    /// overrides it).
    fn stop(&self, id: &str, grace: Duration, signal: Option<&str>) -> Result<(), BackendError> {
        let info = self.info(id)?;
        if info.observed.status == "restarting" {
            self.runtime
                .stop(&info.config.id, Some(grace))
                .map_err(from_runtime)?;
            return self
                .net
                .set_running(&info.config.id, false)
                .map_err(from_net);
        }
        if !info.observed.container_alive {
            return self
                .net
                .set_running(&info.config.id, false)
                .map_err(from_net);
        }
        // `pre_stop` hooks first, within the grace period; one that fails
        // or overruns does not keep the container from stopping. (A
        // created container never ran: nothing to prepare for.)
        if !info.config.hooks.pre_stop.is_empty() && info.observed.status == "running" {
            if let Err(e) = self
                .runtime
                .run_hooks(&info.config.id, HookKind::PreStop, Some(grace))
            {
                tracing::warn!(container = %info.config.name, error = %e, "pre_stop hook failed; stopping anyway");
            }
        }
        if let Some(s) = signal
            && info.config.stop_signal.as_deref() != Some(s)
        {
            let sig = berth_runtime::parse_signal(s).map_err(from_runtime)?;
            match self.runtime.kill(&info.config.id, sig) {
                Ok(()) => {}
                Err(e) if e.kind() == berth_runtime::ErrorKind::InvalidState => {}
                Err(e) => return Err(from_runtime(e)),
            }
        }
        self.runtime
            .stop(&info.config.id, Some(grace))
            .map_err(from_runtime)?;
        self.net
            .set_running(&info.config.id, false)
            .map_err(from_net)
    }

    /// A running container is refused; a created one (its pid 1 waits for
    /// `start`) or an exited one is removed, as `docker rm` does without
    /// `-f`.
    fn remove(&self, id: &str) -> Result<(), BackendError> {
        let info = self.info(id)?;
        if matches!(
            info.observed.status.as_str(),
            "running" | "restarting" | "unknown"
        ) {
            return Err(BackendError::failed_precondition(format!(
                "container {} is {}: stop it first",
                info.config.name, info.observed.status
            )));
        }
        self.runtime
            .remove(&info.config.id, true)
            .map_err(from_runtime)?;
        self.net.detach(&info.config.id).map_err(from_net)
    }
}
