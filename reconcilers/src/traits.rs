//! The seams to the machine: [`ContainerRuntime`], [`ImageSource`],
//! [`VolumeStore`] and [`NetworkStore`]. The reconciler reaches the runtime,
//! the image store and the network only through these, so its logic runs
//! against the in-memory fakes (`fakes`, feature `fakes`) in tests, and every
//! implementation, real or fake, must pass the same suites
//! (`conformance`).
//!
//! All methods are synchronous and take `&self`: implementations keep their
//! own locking, so an executor may call them from several threads, one per
//! action of a wave. An async agent wraps calls in `spawn_blocking`.
//!
//! Errors are [`BackendError`]s whose [`crate::ErrorKind`] the reconciler
//! branches on (NotFound, AlreadyExists, FailedPrecondition...), never their
//! messages.

use std::time::Duration;

use crate::container::{BuildRequest, ContainerSpec, NetworkSpec, VolumeSpec};
use crate::error::BackendError;
use crate::observed::{ContainerId, ObservedContainer, ObservedNetwork, ObservedVolume};

/// Containers: create from a [`ContainerSpec`], start, stop, remove.
///
/// Lifecycle: `create` makes a container in state `Created` under a name
/// that is unique on the machine (a second `create` with the same name
/// fails with `AlreadyExists`, whatever the first one's state). `start` runs
/// it (`Running`); starting a running container succeeds and does nothing;
/// starting one whose image is gone fails with `NotFound` (an implementation
/// may instead refuse the `create`, with the same kind). A start of a
/// container that ran before counts one restart in `restart_count`. The
/// process may then exit on its own (`Exited(code)`). `stop` sends the stop
/// signal, waits up to `grace`, then kills; stopping a container that is not
/// running succeeds. `remove` deletes a container that is not running;
/// removing a running one fails with `FailedPrecondition`, removing a
/// missing one with `NotFound`. `list` reports a project's containers (by
/// the `com.docker.compose.project` label) with their labels as created.
pub trait ContainerRuntime: Send + Sync {
    fn list(&self, project: &str) -> Result<Vec<ObservedContainer>, BackendError>;
    fn inspect(&self, id: &str) -> Result<ObservedContainer, BackendError>;
    fn create(&self, spec: &ContainerSpec) -> Result<ContainerId, BackendError>;
    fn start(&self, id: &str) -> Result<(), BackendError>;
    fn stop(&self, id: &str, grace: Duration, signal: Option<&str>) -> Result<(), BackendError>;
    fn remove(&self, id: &str) -> Result<(), BackendError>;
    /// Start-first replacement, first step: creates `spec` as `create`
    /// does, but out of service: its published ports are reserved and not
    /// forwarded, its names are not in DNS, until [`Self::promote`]. Its
    /// ports may be those `replacing` publishes (that container hands them
    /// over at the promotion). The container reports `standby` until then.
    fn create_standby(
        &self,
        spec: &ContainerSpec,
        replacing: &str,
    ) -> Result<ContainerId, BackendError>;
    /// Second step: puts `id` in service and `replacing` out of it in one
    /// step, so no connection attempt finds the port closed: the published
    /// ports lead to `id`, the DNS names answer with its addresses.
    /// `replacing` keeps running (and reports `standby`) until stopped; a
    /// `replacing` that is gone already is no error.
    fn promote(&self, id: &str, replacing: &str) -> Result<(), BackendError>;
}

/// Images by reference, as services name them.
///
/// Lifecycle: `resolve` says whether the reference is present locally and
/// with which manifest digest (`Ok(None)` when absent: absence is not an
/// error). `pull` fetches it (`NotFound` when the registry has no such
/// image) and returns the digest now stored under the reference; pulling
/// again returns the registry's current digest, which differs when the tag
/// moved. `build` builds a service's `build:` section, tags the result
/// `request.reference` and returns its digest; `build_stale` says when
/// that section's inputs changed since. After a successful `pull` or
/// `build`, `resolve` returns the same digest.
pub trait ImageSource: Send + Sync {
    fn resolve(&self, reference: &str) -> Result<Option<String>, BackendError>;
    fn pull(&self, reference: &str) -> Result<String, BackendError>;
    fn build(&self, request: &BuildRequest) -> Result<String, BackendError>;
    /// Why the local image of a service with `build:` no longer matches
    /// what its build reads (the Dockerfile, the context, the `build:`
    /// section), if it does not: it is then built again (reason
    /// `BuildContextChanged`). `None` also when the image was not built
    /// from this section (loaded, tagged by hand) or is missing.
    fn build_stale(&self, request: &BuildRequest) -> Result<Option<String>, BackendError> {
        let _ = request;
        Ok(None)
    }
}

/// Named volumes.
///
/// Lifecycle: `create` makes a volume under a machine-unique name with the
/// given labels (`AlreadyExists` if the name is taken); `list` reports all
/// volumes with their labels; `remove` deletes one (`NotFound` if absent,
/// `FailedPrecondition` while any container, running or not, mounts it).
pub trait VolumeStore: Send + Sync {
    fn list(&self) -> Result<Vec<ObservedVolume>, BackendError>;
    fn create(&self, spec: &VolumeSpec) -> Result<(), BackendError>;
    fn remove(&self, name: &str) -> Result<(), BackendError>;
}

/// Networks.
///
/// Lifecycle: `create` makes a network under a machine-unique name
/// (`AlreadyExists` if taken); containers join the networks their spec
/// names when they start; `list` reports all networks with their labels;
/// `remove` deletes one (`NotFound` if absent, `FailedPrecondition` while a
/// running container is attached).
pub trait NetworkStore: Send + Sync {
    fn list(&self) -> Result<Vec<ObservedNetwork>, BackendError>;
    fn create(&self, spec: &NetworkSpec) -> Result<(), BackendError>;
    fn remove(&self, name: &str) -> Result<(), BackendError>;
}

/// The four backends an executor drives.
#[derive(Clone, Copy)]
pub struct Backends<'a> {
    pub runtime: &'a dyn ContainerRuntime,
    pub images: &'a dyn ImageSource,
    pub volumes: &'a dyn VolumeStore,
    pub networks: &'a dyn NetworkStore,
}
