//! Test scaffolding: a [`Host`] over `berth_reconcilers::fakes::FakeHost`
//! whose container listing can be held at a gate (to make a reconcile
//! "slow" on purpose), real models from YAML, and a manager wired to a
//! fresh store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use berth_reconcilers::fakes::{FakeClock, FakeHost};
use berth_reconcilers::observed::{ContainerId, ObservedContainer};
use berth_reconcilers::{BackendError, Backends, ContainerRuntime, ContainerSpec, ExecuteOptions};
use berth_spec::compose::model::Project;

use super::host::{AGENT_DIR_LABEL, Host};
use super::{Options, Reconcilers, Shared};
use crate::metrics::Metrics;
use crate::state::{SharedStore, Store};

/// Holds `list` calls for one project until opened.
#[derive(Default)]
pub struct Gate {
    project: Mutex<Option<String>>,
    open: Mutex<bool>,
    cv: Condvar,
    /// How many `list` calls have reached the gate.
    pub entered: AtomicUsize,
}

impl Gate {
    pub fn close_for(&self, project: &str) {
        *self.project.lock().unwrap() = Some(project.to_owned());
        *self.open.lock().unwrap() = false;
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    fn pass(&self, project: &str) {
        if self.project.lock().unwrap().as_deref() != Some(project) {
            return;
        }
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
}

pub struct TestHost {
    pub fake: FakeHost,
    pub gate: Gate,
    /// The projects `labelled_projects` looks at (the fake lists by
    /// project only).
    pub names: Mutex<Vec<String>>,
}

impl TestHost {
    pub fn new() -> Arc<Self> {
        let fake = FakeHost::new(FakeClock::default());
        fake.add_image("busybox", "sha256:bb");
        Arc::new(Self {
            fake,
            gate: Gate::default(),
            names: Mutex::new(Vec::new()),
        })
    }

    /// `(name, state)` of every container.
    pub fn states(&self) -> Vec<(String, berth_reconcilers::observed::ContainerState)> {
        self.fake.container_states()
    }

    pub fn id_of(&self, project: &str, name: &str) -> String {
        self.fake
            .list(project)
            .unwrap()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name}"))
            .id
    }
}

impl ContainerRuntime for TestHost {
    fn list(&self, project: &str) -> Result<Vec<ObservedContainer>, BackendError> {
        self.gate.pass(project);
        self.fake.list(project)
    }
    fn inspect(&self, id: &str) -> Result<ObservedContainer, BackendError> {
        self.fake.inspect(id)
    }
    fn create(&self, spec: &ContainerSpec) -> Result<ContainerId, BackendError> {
        self.fake.create(spec)
    }
    fn start(&self, id: &str) -> Result<(), BackendError> {
        self.fake.start(id)
    }
    fn stop(&self, id: &str, grace: Duration, signal: Option<&str>) -> Result<(), BackendError> {
        self.fake.stop(id, grace, signal)
    }
    fn remove(&self, id: &str) -> Result<(), BackendError> {
        self.fake.remove(id)
    }
    fn create_standby(
        &self,
        spec: &ContainerSpec,
        replacing: &str,
    ) -> Result<ContainerId, BackendError> {
        self.fake.create_standby(spec, replacing)
    }
    fn promote(&self, id: &str, replacing: &str) -> Result<(), BackendError> {
        self.fake.promote(id, replacing)
    }
}

impl Host for TestHost {
    fn backends(&self) -> Backends<'_> {
        Backends {
            runtime: self,
            images: &self.fake,
            volumes: &self.fake,
            networks: &self.fake,
        }
    }

    fn labelled_projects(&self) -> Result<BTreeSet<(String, PathBuf)>, BackendError> {
        let mut out = BTreeSet::new();
        for name in self.names.lock().unwrap().iter() {
            for c in self.fake.list(name)? {
                if let Some(dir) = c.labels.get(AGENT_DIR_LABEL) {
                    out.insert((name.clone(), PathBuf::from(dir)));
                }
            }
        }
        Ok(out)
    }

    fn container_project(&self, id: &str) -> Option<String> {
        self.fake
            .inspect(id)
            .ok()
            .and_then(|c| c.project().map(str::to_owned))
    }

    fn containers_dir(&self) -> Option<PathBuf> {
        None
    }
}

/// A model loaded by the real loader from `yaml` (in a temp folder named
/// after the project).
pub fn model(name: &str, yaml: &str) -> Project {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("compose.yaml");
    std::fs::write(&file, yaml).unwrap();
    let options = berth_spec::compose::LoadOptions {
        project_directory: Some(dir.clone()),
        files: vec![file],
        working_dir: dir,
        ..Default::default()
    };
    match berth_spec::compose::load(&options) {
        Ok(loaded) => loaded.project,
        Err(d) => panic!("{yaml}: {d:?}"),
    }
}

pub fn options() -> Options {
    Options {
        dir: PathBuf::from("/srv/projects"),
        remove_orphans: true,
        delete_grace: Duration::ZERO,
        max_retry_delay: Duration::from_secs(1),
        execute: ExecuteOptions {
            wait_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(10),
            parallelism: 1,
        },
        rollout: super::rollout::RolloutOptions::default(),
    }
}

pub struct Setup {
    pub mgr: Arc<Reconcilers>,
    pub store: SharedStore,
    pub host: Arc<TestHost>,
    pub metrics: Arc<Metrics>,
}

pub fn setup(options: Options) -> Setup {
    let store: SharedStore = Arc::new(tokio::sync::RwLock::new(Store::default()));
    let host = TestHost::new();
    let metrics = Arc::new(Metrics::new());
    let mgr = Reconcilers::new(Shared {
        store: store.clone(),
        metrics: metrics.clone(),
        host: host.clone(),
        options,
        suspensions: None,
        events: Arc::new(super::events_log::EventLog::new(100, Some(metrics.clone()))),
        revisions: Arc::default(),
    });
    Setup {
        mgr,
        store,
        host,
        metrics,
    }
}

impl Setup {
    /// Loads `project` into the store at `key` (folder
    /// `/srv/projects/<key>`), as a scan would.
    pub async fn load(&self, key: &str, revision: &str, project: Project) {
        self.host.names.lock().unwrap().push(project.name.clone());
        let mut store = self.store.write().await;
        let now = std::time::SystemTime::now();
        store.apply_load(crate::state::tests::ok(key, revision, project), now);
        store.settle(now);
    }

    /// Polls until `check` holds (5 s at most).
    pub async fn until(&self, what: &str, check: impl Fn(&Store, &TestHost) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if check(&*self.store.read().await, &self.host) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; containers: {:?}",
                self.host.states()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The value of a metric line, exactly as rendered (`name{labels}`).
    pub fn metric(&self, series: &str) -> Option<f64> {
        self.metrics
            .render()
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{series} ")))
            .map(|v| v.trim().parse().unwrap())
    }
}
