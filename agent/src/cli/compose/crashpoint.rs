//! Crash injection for the reliability test (debug builds only): with
//! `BERTH_TEST_CRASH_AFTER=K`, the process SIGKILLs itself right after the
//! K-th call into the backends returns, the way `kill -9` or a power cut
//! would stop it between two steps of a plan. `tests/compose_crash.rs`
//! runs `up -d` for K = 1, 2, ... and checks that the next `up -d`
//! converges with nothing leaked.
//!
//! Release builds compile none of this: the variable does nothing there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_reconcilers::container::{BuildRequest, NetworkSpec, VolumeSpec};
use berth_reconcilers::observed::{
    ContainerId, ObservedContainer, ObservedNetwork, ObservedVolume,
};
use berth_reconcilers::{
    BackendError, Backends, ContainerRuntime, ContainerSpec, ImageSource, NetworkStore, VolumeStore,
};

pub const VARIABLE: &str = "BERTH_TEST_CRASH_AFTER";

/// The backends, counting calls down to a SIGKILL.
pub struct CrashAfter<'a> {
    inner: Backends<'a>,
    left: AtomicUsize,
}

impl<'a> CrashAfter<'a> {
    /// `None` unless the variable holds a positive count.
    pub fn from_env(inner: Backends<'a>) -> Option<Self> {
        let k: usize = std::env::var(VARIABLE).ok()?.parse().ok()?;
        (k > 0).then(|| CrashAfter {
            inner,
            left: AtomicUsize::new(k),
        })
    }

    pub fn backends(&self) -> Backends<'_> {
        Backends {
            runtime: self,
            images: self,
            volumes: self,
            networks: self,
        }
    }

    fn tick<T>(&self, result: T) -> T {
        if self.left.fetch_sub(1, Ordering::SeqCst) == 1 {
            tracing::debug!("{VARIABLE}: killing this process");
            // SIGKILL, not abort or exit: nothing may run after it, no
            // destructor, no flush, exactly as with `kill -9`.
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        result
    }
}

impl ContainerRuntime for CrashAfter<'_> {
    fn list(&self, project: &str) -> Result<Vec<ObservedContainer>, BackendError> {
        self.tick(self.inner.runtime.list(project))
    }

    fn inspect(&self, id: &str) -> Result<ObservedContainer, BackendError> {
        self.tick(self.inner.runtime.inspect(id))
    }

    fn create(&self, spec: &ContainerSpec) -> Result<ContainerId, BackendError> {
        self.tick(self.inner.runtime.create(spec))
    }

    fn start(&self, id: &str) -> Result<(), BackendError> {
        self.tick(self.inner.runtime.start(id))
    }

    fn stop(&self, id: &str, grace: Duration, signal: Option<&str>) -> Result<(), BackendError> {
        self.tick(self.inner.runtime.stop(id, grace, signal))
    }

    fn remove(&self, id: &str) -> Result<(), BackendError> {
        self.tick(self.inner.runtime.remove(id))
    }

    fn create_standby(
        &self,
        spec: &ContainerSpec,
        replacing: &str,
    ) -> Result<ContainerId, BackendError> {
        self.tick(self.inner.runtime.create_standby(spec, replacing))
    }

    fn promote(&self, id: &str, replacing: &str) -> Result<(), BackendError> {
        self.tick(self.inner.runtime.promote(id, replacing))
    }
}

impl ImageSource for CrashAfter<'_> {
    fn resolve(&self, reference: &str) -> Result<Option<String>, BackendError> {
        self.tick(self.inner.images.resolve(reference))
    }

    fn pull(&self, reference: &str) -> Result<String, BackendError> {
        self.tick(self.inner.images.pull(reference))
    }

    fn build(&self, request: &BuildRequest) -> Result<String, BackendError> {
        self.tick(self.inner.images.build(request))
    }

    fn build_stale(&self, request: &BuildRequest) -> Result<Option<String>, BackendError> {
        self.tick(self.inner.images.build_stale(request))
    }
}

impl VolumeStore for CrashAfter<'_> {
    fn list(&self) -> Result<Vec<ObservedVolume>, BackendError> {
        self.tick(self.inner.volumes.list())
    }

    fn create(&self, spec: &VolumeSpec) -> Result<(), BackendError> {
        self.tick(self.inner.volumes.create(spec))
    }

    fn remove(&self, name: &str) -> Result<(), BackendError> {
        self.tick(self.inner.volumes.remove(name))
    }
}

impl NetworkStore for CrashAfter<'_> {
    fn list(&self) -> Result<Vec<ObservedNetwork>, BackendError> {
        self.tick(self.inner.networks.list())
    }

    fn create(&self, spec: &NetworkSpec) -> Result<(), BackendError> {
        self.tick(self.inner.networks.create(spec))
    }

    fn remove(&self, name: &str) -> Result<(), BackendError> {
        self.tick(self.inner.networks.remove(name))
    }
}
