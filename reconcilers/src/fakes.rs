//! In-memory backends that behave like the real ones (feature `fakes`):
//! [`FakeHost`] implements all four traits over one shared state, so a
//! container start can check its image and a volume removal can see who
//! mounts it; [`FakeClock`] is time that moves only when told (or when the
//! executor sleeps).
//!
//! They pass the same conformance suites as the real adapters (see
//! `conformance`), and add what tests need: a log of every mutating call
//! ([`FakeHost::calls`]), injected failures ([`FakeHost::fail_next`]), a
//! simulated crash of the agent after k mutating calls
//! ([`FakeHost::crash_after`]), crash-looping services
//! ([`FakeHost::crash_loop`]) and health that turns healthy after a delay
//! ([`FakeHost::healthy_after`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::container::{BuildRequest, ContainerSpec, Mount, NetworkSpec, VolumeSpec};
use crate::error::{BackendError, ErrorKind};
use crate::execute::Clock;
use crate::observed::{
    ContainerId, ContainerState, Health, ObservedContainer, ObservedNetwork, ObservedVolume,
};
use crate::traits::{Backends, ContainerRuntime, ImageSource, NetworkStore, VolumeStore};

/// A clock for tests: starts at a fixed time, advances on `sleep`.
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<Mutex<SystemTime>>);

impl Default for FakeClock {
    fn default() -> Self {
        // 2026-01-01T00:00:00Z: any fixed time will do.
        Self::at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600))
    }
}

impl FakeClock {
    pub fn at(t: SystemTime) -> Self {
        Self(Arc::new(Mutex::new(t)))
    }

    pub fn advance(&self, d: Duration) {
        let mut t = lock(&self.0);
        *t += d;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        *lock(&self.0)
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the state from the others.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Which mutating call to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Start,
    Stop,
    Remove,
    Pull,
    Build,
    CreateVolume,
    RemoveVolume,
    CreateNetwork,
    RemoveNetwork,
    CreateStandby,
    Promote,
}

#[derive(Debug, Clone)]
struct FakeContainer {
    observed: ObservedContainer,
    spec: ContainerSpec,
    has_run: bool,
}

#[derive(Debug, Default)]
struct State {
    containers: BTreeMap<ContainerId, FakeContainer>,
    next_id: u64,
    /// Local images: reference -> digest.
    images: BTreeMap<String, String>,
    /// What `pull` finds: reference -> digest.
    registry: BTreeMap<String, String>,
    builds: u64,
    /// References whose build inputs "changed" (`edit_build_context`),
    /// until they are built again.
    stale_builds: BTreeMap<String, String>,
    volumes: BTreeMap<String, ObservedVolume>,
    networks: BTreeMap<String, ObservedNetwork>,
    calls: Vec<String>,
    failures: VecDeque<(Op, ErrorKind)>,
    /// Mutating calls left before the simulated crash.
    crash_budget: Option<usize>,
    crashed: bool,
    /// Service -> exit code its containers die with right after starting.
    crash_loops: BTreeMap<String, i64>,
    /// Service -> how long after start its health turns healthy.
    healthy_after: BTreeMap<String, Duration>,
    /// Services whose health is stuck at unhealthy.
    unhealthy: Vec<String>,
}

/// One machine's worth of containers, images, volumes and networks.
#[derive(Debug, Clone)]
pub struct FakeHost {
    state: Arc<Mutex<State>>,
    clock: FakeClock,
}

impl FakeHost {
    pub fn new(clock: FakeClock) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            clock,
        }
    }

    pub fn clock(&self) -> &FakeClock {
        &self.clock
    }

    /// The four traits, backed by this host.
    pub fn backends(&self) -> Backends<'_> {
        Backends {
            runtime: self,
            images: self,
            volumes: self,
            networks: self,
        }
    }

    /// Makes `reference` pullable with `digest` (a moved tag: call again).
    pub fn publish(&self, reference: &str, digest: &str) {
        lock(&self.state)
            .registry
            .insert(reference.into(), digest.into());
    }

    /// As if the build context of `reference`'s service was edited.
    pub fn edit_build_context(&self, reference: &str) {
        lock(&self.state).stale_builds.insert(
            reference.into(),
            format!("the build context changed since {reference} was built"),
        );
    }

    /// Puts an image in the local store directly.
    pub fn add_image(&self, reference: &str, digest: &str) {
        lock(&self.state)
            .images
            .insert(reference.into(), digest.into());
    }

    pub fn remove_image(&self, reference: &str) {
        lock(&self.state).images.remove(reference);
    }

    /// Every mutating call so far, as `"op target"`.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.state).calls.clone()
    }

    pub fn clear_calls(&self) {
        lock(&self.state).calls.clear();
    }

    /// The next `op` fails with `kind`.
    pub fn fail_next(&self, op: Op, kind: ErrorKind) {
        lock(&self.state).failures.push_back((op, kind));
    }

    /// After `k` more mutating calls, every call fails `Unavailable`, as if
    /// the agent had been killed there; [`FakeHost::recover`] restarts it.
    /// The machine's state stays as the k calls left it.
    pub fn crash_after(&self, k: usize) {
        let mut s = lock(&self.state);
        s.crash_budget = Some(k);
        s.crashed = false;
    }

    pub fn recover(&self) {
        let mut s = lock(&self.state);
        s.crash_budget = None;
        s.crashed = false;
    }

    /// Containers of `service` exit with `code` as soon as they start.
    pub fn crash_loop(&self, service: &str, code: i64) {
        lock(&self.state).crash_loops.insert(service.into(), code);
    }

    pub fn stop_crash_loop(&self, service: &str) {
        lock(&self.state).crash_loops.remove(service);
    }

    /// Containers of `service` with a healthcheck report `starting` for
    /// `delay` after they start, then healthy (default: healthy at once).
    pub fn healthy_after(&self, service: &str, delay: Duration) {
        lock(&self.state)
            .healthy_after
            .insert(service.into(), delay);
    }

    /// Containers of `service` with a healthcheck report unhealthy.
    pub fn make_unhealthy(&self, service: &str) {
        lock(&self.state).unhealthy.push(service.into());
    }

    /// A running container exits on its own (not through `stop`).
    pub fn exit(&self, name: &str, code: i64) {
        let now = self.clock.now();
        let mut s = lock(&self.state);
        if let Some(c) = s.containers.values_mut().find(|c| c.observed.name == name) {
            c.observed.state = ContainerState::Exited(code);
            c.observed.finished_at = Some(now);
            c.observed.manually_stopped = false;
        }
    }

    /// Removes a container behind the agent's back (drift).
    pub fn delete_container(&self, name: &str) {
        lock(&self.state)
            .containers
            .retain(|_, c| c.observed.name != name);
    }

    /// Adds a container as another tool would have (adoption tests).
    pub fn insert_container(&self, observed: ObservedContainer, spec: ContainerSpec) {
        let mut s = lock(&self.state);
        s.containers.insert(
            observed.id.clone(),
            FakeContainer {
                observed,
                spec,
                has_run: true,
            },
        );
    }

    /// The spec a container was created from.
    pub fn spec_of(&self, name: &str) -> Option<ContainerSpec> {
        lock(&self.state)
            .containers
            .values()
            .find(|c| c.observed.name == name)
            .map(|c| c.spec.clone())
    }

    /// Container names with their states, sorted by name.
    pub fn container_states(&self) -> Vec<(String, ContainerState)> {
        let s = lock(&self.state);
        let mut out: Vec<(String, ContainerState)> = s
            .containers
            .values()
            .map(|c| (c.observed.name.clone(), c.observed.state))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn volume_names(&self) -> Vec<String> {
        lock(&self.state).volumes.keys().cloned().collect()
    }

    pub fn network_names(&self) -> Vec<String> {
        lock(&self.state).networks.keys().cloned().collect()
    }

    /// Counts a mutating call against the crash budget and the injected
    /// failures; logs it.
    fn enter(&self, s: &mut State, op: Op, target: &str) -> Result<(), BackendError> {
        if s.crashed {
            return Err(BackendError::unavailable("the agent crashed"));
        }
        if let Some(budget) = s.crash_budget.as_mut() {
            if *budget == 0 {
                s.crashed = true;
                return Err(BackendError::unavailable("the agent crashed"));
            }
            *budget -= 1;
        }
        if let Some(pos) = s.failures.iter().position(|(o, _)| *o == op) {
            if let Some((_, kind)) = s.failures.remove(pos) {
                return Err(BackendError::new(
                    kind,
                    format!("injected failure of {op:?} {target}"),
                ));
            }
        }
        s.calls.push(format!("{} {target}", op_name(op)));
        Ok(())
    }

    fn view(&self, s: &State, c: &FakeContainer) -> ObservedContainer {
        let mut o = c.observed.clone();
        let service = o.service().unwrap_or_default().to_string();
        let probes = c.spec.healthcheck.as_ref().is_some_and(|h| h.is_enabled());
        o.health = match o.state {
            ContainerState::Running if probes => {
                let delay = s.healthy_after.get(&service).copied().unwrap_or_default();
                let since = o.started_at.unwrap_or(SystemTime::UNIX_EPOCH);
                if s.unhealthy.contains(&service) {
                    Health::Unhealthy
                } else if self.clock.now() >= since + delay {
                    Health::Healthy
                } else {
                    Health::Starting
                }
            }
            _ => Health::None,
        };
        o
    }

    /// `create` and `create_standby`.
    fn create_as(&self, spec: &ContainerSpec, op: Op) -> Result<ContainerId, BackendError> {
        let mut s = lock(&self.state);
        self.enter(&mut s, op, &spec.name)?;
        if s.containers.values().any(|c| c.observed.name == spec.name) {
            return Err(BackendError::already_exists(format!(
                "container name {} is in use",
                spec.name
            )));
        }
        s.next_id += 1;
        let id = format!("{:012x}", s.next_id);
        let observed = ObservedContainer {
            id: id.clone(),
            name: spec.name.clone(),
            labels: spec.labels.clone(),
            image: spec.image.clone(),
            state: ContainerState::Created,
            health: Health::None,
            restart_count: 0,
            started_at: None,
            finished_at: None,
            manually_stopped: false,
            restart_policy_applied: false,
            last_exit_code: None,
            error: None,
            standby: op == Op::CreateStandby,
        };
        s.containers.insert(
            id.clone(),
            FakeContainer {
                observed,
                spec: spec.clone(),
                has_run: false,
            },
        );
        Ok(id)
    }

    fn find<'s>(s: &'s mut State, id: &str) -> Result<&'s mut FakeContainer, BackendError> {
        s.containers
            .get_mut(id)
            .ok_or_else(|| BackendError::not_found(format!("no such container {id}")))
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Create => "create",
        Op::Start => "start",
        Op::Stop => "stop",
        Op::Remove => "remove",
        Op::Pull => "pull",
        Op::Build => "build",
        Op::CreateVolume => "create-volume",
        Op::RemoveVolume => "remove-volume",
        Op::CreateNetwork => "create-network",
        Op::RemoveNetwork => "remove-network",
        Op::CreateStandby => "create-standby",
        Op::Promote => "promote",
    }
}

impl ContainerRuntime for FakeHost {
    fn list(&self, project: &str) -> Result<Vec<ObservedContainer>, BackendError> {
        let s = lock(&self.state);
        if s.crashed {
            return Err(BackendError::unavailable("the agent crashed"));
        }
        Ok(s.containers
            .values()
            .filter(|c| c.observed.project() == Some(project))
            .map(|c| self.view(&s, c))
            .collect())
    }

    fn inspect(&self, id: &str) -> Result<ObservedContainer, BackendError> {
        let s = lock(&self.state);
        s.containers
            .get(id)
            .map(|c| self.view(&s, c))
            .ok_or_else(|| BackendError::not_found(format!("no such container {id}")))
    }

    fn create(&self, spec: &ContainerSpec) -> Result<ContainerId, BackendError> {
        self.create_as(spec, Op::Create)
    }

    fn create_standby(
        &self,
        spec: &ContainerSpec,
        replacing: &str,
    ) -> Result<ContainerId, BackendError> {
        if !lock(&self.state).containers.contains_key(replacing) {
            tracing::debug!(replacing, "standby for a container that is gone");
        }
        self.create_as(spec, Op::CreateStandby)
    }

    fn promote(&self, id: &str, replacing: &str) -> Result<(), BackendError> {
        let mut s = lock(&self.state);
        let name = Self::find(&mut s, id)?.observed.name.clone();
        self.enter(&mut s, Op::Promote, &name)?;
        Self::find(&mut s, id)?.observed.standby = false;
        if let Some(old) = s.containers.get_mut(replacing) {
            old.observed.standby = true;
        }
        Ok(())
    }

    fn start(&self, id: &str) -> Result<(), BackendError> {
        let now = self.clock.now();
        let mut s = lock(&self.state);
        let name = Self::find(&mut s, id)?.observed.name.clone();
        self.enter(&mut s, Op::Start, &name)?;
        let crash = {
            let c = Self::find(&mut s, id)?;
            c.observed.service().map(str::to_string)
        }
        .and_then(|svc| s.crash_loops.get(&svc).copied());
        let image = Self::find(&mut s, id)?.spec.image.clone();
        if !s.images.contains_key(&image) {
            return Err(BackendError::not_found(format!("no such image {image}")));
        }
        let c = Self::find(&mut s, id)?;
        if c.observed.is_running() {
            return Ok(());
        }
        if c.has_run {
            c.observed.restart_count += 1;
        }
        c.has_run = true;
        c.observed.started_at = Some(now);
        c.observed.manually_stopped = false;
        match crash {
            Some(code) => {
                c.observed.state = ContainerState::Exited(code);
                c.observed.finished_at = Some(now);
            }
            None => {
                c.observed.state = ContainerState::Running;
                c.observed.finished_at = None;
            }
        }
        Ok(())
    }

    fn stop(&self, id: &str, _grace: Duration, _signal: Option<&str>) -> Result<(), BackendError> {
        let now = self.clock.now();
        let mut s = lock(&self.state);
        let name = Self::find(&mut s, id)?.observed.name.clone();
        self.enter(&mut s, Op::Stop, &name)?;
        let c = Self::find(&mut s, id)?;
        if c.observed.is_running() {
            // Stopped by signal: 143 for SIGTERM, as Docker reports it.
            c.observed.state = ContainerState::Exited(143);
            c.observed.finished_at = Some(now);
            c.observed.manually_stopped = true;
        }
        Ok(())
    }

    fn remove(&self, id: &str) -> Result<(), BackendError> {
        let mut s = lock(&self.state);
        let name = Self::find(&mut s, id)?.observed.name.clone();
        self.enter(&mut s, Op::Remove, &name)?;
        if Self::find(&mut s, id)?.observed.is_running() {
            return Err(BackendError::failed_precondition(format!(
                "container {name} is running: stop it first"
            )));
        }
        s.containers.remove(id);
        Ok(())
    }
}

impl ImageSource for FakeHost {
    fn resolve(&self, reference: &str) -> Result<Option<String>, BackendError> {
        let s = lock(&self.state);
        if s.crashed {
            return Err(BackendError::unavailable("the agent crashed"));
        }
        Ok(s.images.get(reference).cloned())
    }

    fn pull(&self, reference: &str) -> Result<String, BackendError> {
        let mut s = lock(&self.state);
        self.enter(&mut s, Op::Pull, reference)?;
        let digest = s.registry.get(reference).cloned().ok_or_else(|| {
            BackendError::not_found(format!("{reference} is not in the registry"))
        })?;
        s.images.insert(reference.into(), digest.clone());
        Ok(digest)
    }

    fn build(&self, request: &BuildRequest) -> Result<String, BackendError> {
        let mut s = lock(&self.state);
        self.enter(&mut s, Op::Build, &request.reference)?;
        s.builds += 1;
        let digest = format!("sha256:{:064x}", 0xb111d000 + s.builds);
        s.images.insert(request.reference.clone(), digest.clone());
        s.stale_builds.remove(&request.reference);
        Ok(digest)
    }

    fn build_stale(&self, request: &BuildRequest) -> Result<Option<String>, BackendError> {
        Ok(lock(&self.state)
            .stale_builds
            .get(&request.reference)
            .cloned())
    }
}

impl VolumeStore for FakeHost {
    fn list(&self) -> Result<Vec<ObservedVolume>, BackendError> {
        Ok(lock(&self.state).volumes.values().cloned().collect())
    }

    fn create(&self, spec: &VolumeSpec) -> Result<(), BackendError> {
        let mut s = lock(&self.state);
        self.enter(&mut s, Op::CreateVolume, &spec.name)?;
        if s.volumes.contains_key(&spec.name) {
            return Err(BackendError::already_exists(format!(
                "volume {}",
                spec.name
            )));
        }
        s.volumes.insert(
            spec.name.clone(),
            ObservedVolume {
                name: spec.name.clone(),
                labels: spec.labels.clone(),
            },
        );
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<(), BackendError> {
        let mut s = lock(&self.state);
        self.enter(&mut s, Op::RemoveVolume, name)?;
        if !s.volumes.contains_key(name) {
            return Err(BackendError::not_found(format!("volume {name}")));
        }
        let in_use = s.containers.values().any(|c| {
            c.spec
                .mounts
                .iter()
                .any(|m| matches!(m, Mount::Volume { source: Some(v), .. } if v == name))
        });
        if in_use {
            return Err(BackendError::failed_precondition(format!(
                "volume {name} is in use"
            )));
        }
        s.volumes.remove(name);
        Ok(())
    }
}

impl NetworkStore for FakeHost {
    fn list(&self) -> Result<Vec<ObservedNetwork>, BackendError> {
        Ok(lock(&self.state).networks.values().cloned().collect())
    }

    fn create(&self, spec: &NetworkSpec) -> Result<(), BackendError> {
        let mut s = lock(&self.state);
        self.enter(&mut s, Op::CreateNetwork, &spec.name)?;
        if s.networks.contains_key(&spec.name) {
            return Err(BackendError::already_exists(format!(
                "network {}",
                spec.name
            )));
        }
        s.networks.insert(
            spec.name.clone(),
            ObservedNetwork {
                name: spec.name.clone(),
                labels: spec.labels.clone(),
            },
        );
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<(), BackendError> {
        let mut s = lock(&self.state);
        self.enter(&mut s, Op::RemoveNetwork, name)?;
        if !s.networks.contains_key(name) {
            return Err(BackendError::not_found(format!("network {name}")));
        }
        let in_use = s
            .containers
            .values()
            .any(|c| c.observed.is_running() && c.spec.networks.iter().any(|n| n.name == name));
        if in_use {
            return Err(BackendError::failed_precondition(format!(
                "network {name} has running containers"
            )));
        }
        s.networks.remove(name);
        Ok(())
    }
}
