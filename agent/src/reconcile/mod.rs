//! Reconciling: one worker per project keeps what runs equal to the
//! project's last good model.
//!
//! Lifecycle. The supervisor loads projects into the store and calls
//! [`Reconcilers::trigger`] with why ([`Trigger`]): a file change, the
//! periodic resync, the folder going away, the agent starting. The API
//! adds manual triggers (optionally waiting for the result), suspend and
//! resume. The first trigger for a project starts its worker (`worker`);
//! triggers arriving while it runs coalesce into one more reconcile
//! (`queue`). A reconcile reads the store, decides (apply the last good
//! model, tear down a deleted project after a grace period, or skip a
//! suspended, ambiguous or never-valid one), and runs `run::run` on a
//! blocking thread. The worker ends when its project leaves the store.
//!
//! Why blocking threads: the runtime calls fork-and-exec a shim per
//! container (`Runtime::create` spawns `berth shim` with `Command`, a
//! fork immediately followed by exec in the child), wait on stops and
//! sleep between polls. None of them forks without exec, unshares or
//! setns's in this process (that happens in the shim, a fresh
//! single-threaded process), so they are safe from a multithreaded agent;
//! they only must not block tokio's workers.
//!
//! Ownership. The agent owns the projects under its folder: what a person
//! changes by hand (a container stopped with `berth stop`, removed with
//! `berth rm`) is drift, logged as a warning with its reason and undone at
//! the next resync. To keep a project down, suspend it or move its folder
//! away. The sweep (`sweep`) extends that to projects the agent deployed
//! but no longer sees (their folder went away while it was down, or their
//! `name:` changed): found by [`host::AGENT_DIR_LABEL`], torn down after
//! the grace period.

pub mod digests;
pub mod events;
pub mod events_log;
pub mod gate;
pub mod host;
mod queue;
pub mod revisions;
pub mod rollout;
mod rollout_after;
mod rollout_events;
mod rollout_records;
mod run;
pub mod status;
mod sweep;
#[cfg(test)]
pub(crate) mod testing;
pub mod trigger;
mod worker;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use berth_reconcilers::ExecuteOptions;
use tokio::sync::oneshot;

use crate::metrics::Metrics;
use crate::state::{ProjectState, SharedStore};
pub use host::Host;
use queue::Queue;
use status::OperationState;
pub use trigger::Trigger;

/// How the agent reconciles.
#[derive(Debug, Clone)]
pub struct Options {
    /// The watched folder: the sweep only looks at projects deployed from
    /// under it.
    pub dir: PathBuf,
    /// Remove containers of services no longer declared (`--keep-orphans`
    /// turns it off).
    pub remove_orphans: bool,
    /// How long a project's folder must stay gone before it is torn down:
    /// an editor's or git's rename dance must not take an app down.
    pub delete_grace: Duration,
    /// The longest wait between retries of a failing reconcile.
    pub max_retry_delay: Duration,
    pub execute: ExecuteOptions,
    /// Revisions and the health gate (`rollout.rs`).
    pub rollout: rollout::RolloutOptions,
}

/// The answer to a waiting trigger (`?wait=true`).
#[derive(Debug, Clone)]
pub struct Finished {
    pub operation: Option<OperationState>,
    /// Why nothing ran, when nothing did.
    pub skipped: Option<String>,
}

impl Finished {
    fn skipped(why: &str) -> Self {
        Self {
            operation: None,
            skipped: Some(why.to_owned()),
        }
    }

    fn of(p: &ProjectState) -> Self {
        Self {
            operation: p.reconcile.operation.clone(),
            skipped: None,
        }
    }
}

/// What workers share.
pub struct Shared {
    pub store: SharedStore,
    pub metrics: Arc<Metrics>,
    pub host: Arc<dyn Host>,
    pub options: Options,
    /// Where suspensions are kept across restarts; `None` in tests.
    pub suspensions: Option<PathBuf>,
    /// The events the API serves (`events_log.rs`).
    pub events: Arc<events_log::EventLog>,
    /// Every project's revision history, opened on first use.
    pub revisions: Arc<rollout::Revisions>,
}

/// The workers, by project key.
pub struct Reconcilers {
    shared: Arc<Shared>,
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    /// Projects the sweep is tearing down (by name), so one is not
    /// started twice.
    ghosts: Mutex<BTreeSet<String>>,
}

impl Reconcilers {
    pub fn new(shared: Shared) -> Arc<Self> {
        Arc::new(Self {
            shared: Arc::new(shared),
            queues: Mutex::new(HashMap::new()),
            ghosts: Mutex::new(BTreeSet::new()),
        })
    }

    fn queues(&self) -> MutexGuard<'_, HashMap<String, Arc<Queue>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for a reconcile of the project at `key`.
    pub fn trigger(self: &Arc<Self>, key: &str, trigger: Trigger) {
        self.push(key, trigger, None);
    }

    /// Asks for a reconcile and returns where its result will arrive. The
    /// reconcile that answers starts after this call.
    pub fn request(self: &Arc<Self>, key: &str, trigger: Trigger) -> oneshot::Receiver<Finished> {
        let (tx, rx) = oneshot::channel();
        self.push(key, trigger, Some(tx));
        rx
    }

    fn push(
        self: &Arc<Self>,
        key: &str,
        trigger: Trigger,
        waiter: Option<oneshot::Sender<Finished>>,
    ) {
        let mut waiter = waiter;
        // At most twice: a worker may close its queue between our lookup
        // and our push; the second attempt starts a fresh worker.
        for _ in 0..2 {
            let queue = {
                let mut queues = self.queues();
                queues
                    .entry(key.to_owned())
                    .or_insert_with(|| {
                        let queue = Arc::new(Queue::default());
                        let worker =
                            worker::run_worker(self.clone(), key.to_owned(), queue.clone());
                        tokio::spawn(worker);
                        queue
                    })
                    .clone()
            };
            match queue.push(trigger, waiter) {
                Ok(()) => return,
                Err(back) => {
                    waiter = back;
                    let mut queues = self.queues();
                    if queues.get(key).is_some_and(|q| Arc::ptr_eq(q, &queue)) {
                        queues.remove(key);
                    }
                }
            }
        }
        tracing::error!(key, "could not hand a trigger to the project's worker");
    }

    /// A worker ends: forget its queue, and pass on anything that arrived
    /// while it was deciding to stop (a folder that came back).
    fn retire(self: &Arc<Self>, key: &str, queue: &Arc<Queue>) {
        {
            let mut queues = self.queues();
            if queues.get(key).is_some_and(|q| Arc::ptr_eq(q, queue)) {
                queues.remove(key);
            }
        }
        if let Some(left) = queue.close() {
            let mut waiters = left.waiters.into_iter();
            let first = waiters.next();
            self.push(key, left.trigger, first);
            for w in waiters {
                self.push(key, left.trigger, Some(w));
            }
        }
    }

    /// Stops accepting triggers; workers end after their current run.
    pub fn shutdown(&self) {
        let queues: Vec<Arc<Queue>> = self.queues().drain().map(|(_, q)| q).collect();
        for q in queues {
            drop(q.close());
        }
    }

    /// Sets or clears a project's suspension, remembers it across
    /// restarts, and triggers a reconcile so the status says so at once
    /// (and a resumed project converges at once).
    pub async fn set_suspended(
        self: &Arc<Self>,
        key: &str,
        suspended: bool,
    ) -> std::io::Result<()> {
        let dirs = {
            let mut store = self.shared.store.write().await;
            store.set_suspended(key, suspended);
            store.suspended_dirs().clone()
        };
        if let Some(path) = self.shared.suspensions.clone() {
            tokio::task::spawn_blocking(move || save_suspended(&path, &dirs))
                .await
                .map_err(std::io::Error::other)??;
        }
        tracing::info!(key, suspended, "suspension changed");
        if !suspended {
            // Resuming also lifts a manual rollback's pin, and gives a
            // health gate interrupted by the suspension its full time.
            self.unpin(key).await;
            let mut store = self.shared.store.write().await;
            if let Some(gate) = store
                .get_mut(key)
                .and_then(|p| p.reconcile.rollout.gate.as_mut())
            {
                let now = SystemTime::now();
                gate.machine = gate.machine.restarted(std::time::Instant::now());
                gate.deadline = now
                    + (gate
                        .deadline
                        .duration_since(gate.started_at)
                        .unwrap_or_default());
                gate.started_at = now;
            }
        }
        self.trigger(key, Trigger::Manual);
        Ok(())
    }

    /// The events served by the API.
    pub fn events(&self) -> &Arc<events_log::EventLog> {
        &self.shared.events
    }

    /// Lifts a manual rollback's pin, if any.
    pub async fn unpin(&self, key: &str) {
        let name = {
            let mut store = self.shared.store.write().await;
            let Some(p) = store.get_mut(key) else { return };
            if p.reconcile.rollout.pin.take().is_none() {
                return;
            }
            tracing::info!(project = %p.name, "the manual rollback's pin is lifted");
            p.name.clone()
        };
        rollout::clear_pin_file(&self.shared, &name).await;
    }

    /// `?force=true`: apply the files' revision even when it was rolled
    /// back, and lift a pin.
    pub async fn force(&self, key: &str) {
        self.unpin(key).await;
        let mut store = self.shared.store.write().await;
        if let Some(p) = store.get_mut(key) {
            p.reconcile.rollout.forced = p.last_good.as_ref().map(|g| g.revision.clone());
            p.reconcile.rollout.blocked = None;
        }
    }

    /// The project's revisions, newest first, with their models (`None`
    /// when the agent keeps none).
    pub async fn history(&self, name: &str) -> Option<Result<Vec<revisions::Revision>, String>> {
        let options = self.shared.options.rollout.clone();
        options.dir.as_ref()?;
        let revisions = self.shared.revisions.clone();
        let name = name.to_owned();
        let task = tokio::task::spawn_blocking(move || {
            revisions
                .with(&options, &name, |s| Ok(s.list().cloned().collect()))
                .map_err(|e| e.to_string())
        });
        Some(task.await.unwrap_or_else(|e| Err(e.to_string())))
    }

    /// Pins the project at `key` to revision `to` (by default the last
    /// good one before the revision in place) and waits for the
    /// reconcile that applies it. `Err((status, message))`: 404 when
    /// there is no such revision, 409 when it cannot be applied.
    pub async fn rollback(
        self: &Arc<Self>,
        key: &str,
        to: Option<u64>,
    ) -> Result<(u64, Option<u64>, oneshot::Receiver<Finished>), (u16, String)> {
        let Some(dir) = self.shared.options.rollout.dir.clone() else {
            return Err((409, "this agent keeps no revisions".into()));
        };
        rollout::prepare(&self.shared, key).await;
        let (name, files_digest, in_place) = {
            let store = self.shared.store.read().await;
            let p = store
                .get(key)
                .ok_or((404, format!("project {key:?} not found")))?;
            let files = p.last_good.as_ref().map(|g| g.revision.clone()).ok_or((
                409,
                "the project never loaded: nothing to roll back".to_owned(),
            ))?;
            (
                p.name.clone(),
                files,
                p.reconcile.rollout.in_place.as_ref().map(|i| i.number),
            )
        };
        let options = self.shared.options.rollout.clone();
        let revisions = self.shared.revisions.clone();
        let lookup_name = name.clone();
        let found = tokio::task::spawn_blocking(move || {
            revisions.with(&options, &lookup_name, |s| {
                let target = match to {
                    Some(n) => s.get(n),
                    None => s.previous_good(in_place.unwrap_or(0)),
                };
                Ok(target.cloned())
            })
        })
        .await
        .map_err(|e| (500, e.to_string()))?
        .map_err(|e| (500, e.to_string()))?;
        let Some(revision) = found else {
            return Err(match to {
                Some(n) => (
                    404,
                    format!(
                        "project {name:?} has no revision {n} (see GET /api/v1/projects/{name}/history)"
                    ),
                ),
                None => (
                    409,
                    format!("project {name:?} has no earlier applied revision to roll back to"),
                ),
            });
        };
        rollout::check_files(&self.shared, &name, revision.number, &revision.model)
            .await
            .map_err(|e| (409, e))?;
        rollout::abandon_gate(&self.shared, key, &name, "a manual rollback came first").await;
        let pin = revisions::Pin {
            number: revision.number,
            files_digest,
            at: crate::timefmt::rfc3339(SystemTime::now()),
        };
        let saved = pin.clone();
        let pin_name = name.clone();
        tokio::task::spawn_blocking(move || revisions::save_pin(&dir, &pin_name, Some(&saved)))
            .await
            .map_err(|e| (500, e.to_string()))?
            .map_err(|e| (500, format!("cannot save the pin: {e}")))?;
        {
            let mut store = self.shared.store.write().await;
            if let Some(p) = store.get_mut(key) {
                p.reconcile.rollout.pin = Some((pin, revision.model.clone()));
            }
        }
        tracing::info!(project = %name, to = revision.number, from = ?in_place, "manual rollback requested");
        Ok((
            revision.number,
            in_place,
            self.request(key, Trigger::Manual),
        ))
    }

    /// Observes the project now (not as of its last reconcile): every
    /// service's status against the last good model. For health probes.
    pub async fn observe_now(
        &self,
        key: &str,
    ) -> Option<Result<Vec<berth_reconcilers::status::ServiceStatus>, String>> {
        let model = {
            let store = self.shared.store.read().await;
            store.get(key)?.model()?.clone()
        };
        let host = self.shared.host.clone();
        let task = tokio::task::spawn_blocking(move || {
            let options = berth_reconcilers::PlanOptions {
                file_digests: digests::file_digests(&model),
                now: SystemTime::now(),
                ..Default::default()
            };
            berth_reconcilers::observe(&model, host.backends())
                .map(|observed| {
                    berth_reconcilers::status::summarize(&model, &observed, None, None, &options)
                })
                .map_err(|e| e.to_string())
        });
        Some(task.await.unwrap_or_else(|e| Err(e.to_string())))
    }
}

/// Reads the suspended project folders saved by [`save_suspended`];
/// nothing when the file is absent or unreadable (said in the log).
pub fn load_suspended(path: &std::path::Path) -> BTreeSet<PathBuf> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<Vec<PathBuf>>(&bytes) {
            Ok(dirs) => dirs.into_iter().collect(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable list of suspended projects");
                BTreeSet::new()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the list of suspended projects");
            BTreeSet::new()
        }
    }
}

/// Writes the list atomically (temp file, fsync, rename).
fn save_suspended(path: &std::path::Path, dirs: &BTreeSet<PathBuf>) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let bytes = serde_json::to_vec_pretty(dirs).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod rollout_tests;
