//! Compose's progress lines (` Container shop-web-1 Started`), written to
//! stderr as the plan runs: a decorator over the reconciler's backends
//! that reports each call before and after it, so every path that
//! executes a plan (up, down, stop, start, restart) reports the same way
//! with no printing in the executor.
//!
//! The format is Compose's plain progress writer (`docker compose
//! --progress plain`): one event per line, resource and name, then what
//! happens to it. It is used on terminals too: the lines are the record of
//! what changed, and a redrawn tree would hide it.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use berth_reconcilers::container::{BuildRequest, NetworkSpec, VolumeSpec};
use berth_reconcilers::observed::{
    ContainerId, ObservedContainer, ObservedNetwork, ObservedVolume,
};
use berth_reconcilers::{
    BackendError, Backends, ContainerRuntime, ContainerSpec, ImageSource, NetworkStore, VolumeStore,
};

/// Writes one progress event per line to stderr.
#[derive(Debug, Default)]
pub struct Events {
    /// Prefixed like `docker compose --dry-run`'s lines.
    pub dry_run: bool,
}

impl Events {
    /// ` Container shop-web-1 Started`.
    pub fn event(&self, resource: &str, text: &str) {
        let prefix = if self.dry_run { "DRY-RUN MODE - " } else { "" };
        // A closed stderr is no reason to stop changing containers.
        let _ = writeln!(std::io::stderr().lock(), "{prefix} {resource} {text}");
    }

    pub fn container(&self, name: &str, text: &str) {
        self.event(&format!("Container {name}"), text);
    }
}

/// The backends, reporting each mutating call as Compose does.
pub struct Progress<'a> {
    inner: Backends<'a>,
    events: &'a Events,
    /// Container names by id, from `list` and `create`: `start(id)` and
    /// friends only get the id.
    names: Mutex<HashMap<ContainerId, String>>,
}

impl<'a> Progress<'a> {
    pub fn new(inner: Backends<'a>, events: &'a Events) -> Self {
        Progress {
            inner,
            events,
            names: Mutex::new(HashMap::new()),
        }
    }

    pub fn backends(&self) -> Backends<'_> {
        Backends {
            runtime: self,
            images: self,
            volumes: self,
            networks: self,
        }
    }

    fn name_of(&self, id: &str) -> String {
        if let Some(n) = self.names.lock().ok().and_then(|m| m.get(id).cloned()) {
            return n;
        }
        let name = self
            .inner
            .runtime
            .inspect(id)
            .map(|c| c.name)
            .unwrap_or_else(|_| id.chars().take(12).collect());
        self.remember(id, &name);
        name
    }

    fn remember(&self, id: &str, name: &str) {
        if let Ok(mut m) = self.names.lock() {
            m.insert(id.to_owned(), name.to_owned());
        }
    }

    /// Reports `before`, runs `f`, reports `after` or `Error`.
    fn around<T>(
        &self,
        resource: &str,
        before: &str,
        after: &str,
        f: impl FnOnce() -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        self.events.event(resource, before);
        let result = f();
        match &result {
            Ok(_) => self.events.event(resource, after),
            Err(_) => self.events.event(resource, "Error"),
        }
        result
    }
}

impl ContainerRuntime for Progress<'_> {
    fn list(&self, project: &str) -> Result<Vec<ObservedContainer>, BackendError> {
        let list = self.inner.runtime.list(project)?;
        for c in &list {
            self.remember(&c.id, &c.name);
        }
        Ok(list)
    }

    fn inspect(&self, id: &str) -> Result<ObservedContainer, BackendError> {
        self.inner.runtime.inspect(id)
    }

    fn create(&self, spec: &ContainerSpec) -> Result<ContainerId, BackendError> {
        let resource = format!("Container {}", spec.name);
        let id = self.around(&resource, "Creating", "Created", || {
            self.inner.runtime.create(spec)
        })?;
        self.remember(&id, &spec.name);
        Ok(id)
    }

    fn start(&self, id: &str) -> Result<(), BackendError> {
        let resource = format!("Container {}", self.name_of(id));
        self.around(&resource, "Starting", "Started", || {
            self.inner.runtime.start(id)
        })
    }

    fn stop(&self, id: &str, grace: Duration, signal: Option<&str>) -> Result<(), BackendError> {
        let resource = format!("Container {}", self.name_of(id));
        self.around(&resource, "Stopping", "Stopped", || {
            self.inner.runtime.stop(id, grace, signal)
        })
    }

    fn remove(&self, id: &str) -> Result<(), BackendError> {
        let resource = format!("Container {}", self.name_of(id));
        self.around(&resource, "Removing", "Removed", || {
            self.inner.runtime.remove(id)
        })
    }

    fn create_standby(
        &self,
        spec: &ContainerSpec,
        replacing: &str,
    ) -> Result<ContainerId, BackendError> {
        let resource = format!("Container {}", spec.name);
        let id = self.around(&resource, "Creating", "Created", || {
            self.inner.runtime.create_standby(spec, replacing)
        })?;
        self.remember(&id, &spec.name);
        Ok(id)
    }

    /// ` Container shop-web-2 Serving` once the published ports and
    /// names moved to it (berth's own event: Compose has no start-first).
    fn promote(&self, id: &str, replacing: &str) -> Result<(), BackendError> {
        let resource = format!("Container {}", self.name_of(id));
        self.around(&resource, "Switching", "Serving", || {
            self.inner.runtime.promote(id, replacing)
        })
    }
}

impl ImageSource for Progress<'_> {
    fn resolve(&self, reference: &str) -> Result<Option<String>, BackendError> {
        self.inner.images.resolve(reference)
    }

    fn pull(&self, reference: &str) -> Result<String, BackendError> {
        self.around(&format!("Image {reference}"), "Pulling", "Pulled", || {
            self.inner.images.pull(reference)
        })
    }

    fn build(&self, request: &BuildRequest) -> Result<String, BackendError> {
        let resource = format!("Service {}", request.service);
        self.around(&resource, "Building", "Built", || {
            self.inner.images.build(request)
        })
    }

    fn build_stale(&self, request: &BuildRequest) -> Result<Option<String>, BackendError> {
        self.inner.images.build_stale(request)
    }
}

impl VolumeStore for Progress<'_> {
    fn list(&self) -> Result<Vec<ObservedVolume>, BackendError> {
        self.inner.volumes.list()
    }

    fn create(&self, spec: &VolumeSpec) -> Result<(), BackendError> {
        let resource = format!("Volume {:?}", spec.name);
        self.around(&resource, "Creating", "Created", || {
            self.inner.volumes.create(spec)
        })
    }

    fn remove(&self, name: &str) -> Result<(), BackendError> {
        self.around(&format!("Volume {name}"), "Removing", "Removed", || {
            self.inner.volumes.remove(name)
        })
    }
}

impl NetworkStore for Progress<'_> {
    fn list(&self) -> Result<Vec<ObservedNetwork>, BackendError> {
        self.inner.networks.list()
    }

    fn create(&self, spec: &NetworkSpec) -> Result<(), BackendError> {
        let resource = format!("Network {}", spec.name);
        self.around(&resource, "Creating", "Created", || {
            self.inner.networks.create(spec)
        })
    }

    fn remove(&self, name: &str) -> Result<(), BackendError> {
        self.around(&format!("Network {name}"), "Removing", "Removed", || {
            self.inner.networks.remove(name)
        })
    }
}
