//! The sweep: projects an agent deployed from under `--dir` that no folder
//! declares any more. Two ways to get there that the workers cannot see: a
//! folder deleted while the agent was down, and a project whose `name:`
//! changed (its old containers carry the old name). Found by the
//! [`AGENT_DIR_LABEL`](super::host::AGENT_DIR_LABEL) on their containers,
//! torn down (containers and networks; volumes kept) once they have stayed
//! unclaimed for the deletion grace period.
//!
//! A project is left alone while any folder's last good model uses its
//! name (a folder moved within `--dir` adopts its containers), and while
//! the folder it came from holds a project that never loaded (its name is
//! unknown, and a broken file must never take down what runs).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use berth_spec::compose::model::Project;

use super::Reconcilers;
use super::run::{self, Job};
use super::status::OperationKind;
use super::trigger::Trigger;
use crate::state::Store;

/// Whether the store leaves `(name, dir)` unclaimed.
pub(super) fn unclaimed(store: &Store, name: &str, dir: &Path) -> bool {
    let claimed = store
        .projects()
        .any(|p| p.last_good.as_ref().is_some_and(|g| g.project.name == name));
    let unknown_at_dir = store
        .projects()
        .any(|p| p.dir == dir && p.last_good.is_none());
    !claimed && !unknown_at_dir
}

impl Reconcilers {
    /// Looks for unclaimed projects and schedules their teardown. Returns
    /// at once; the work runs on its own tasks.
    pub fn sweep(self: &Arc<Self>) {
        let mgr = self.clone();
        tokio::spawn(async move {
            let host = mgr.shared.host.clone();
            let found = match tokio::task::spawn_blocking(move || host.labelled_projects()).await {
                Ok(Ok(found)) => found,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "sweep: cannot list containers");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sweep: the listing task failed");
                    return;
                }
            };
            let root = &mgr.shared.options.dir;
            let candidates: Vec<(String, PathBuf)> = {
                let store = mgr.shared.store.read().await;
                found
                    .into_iter()
                    .filter(|(_, dir)| dir.starts_with(root))
                    .filter(|(name, dir)| unclaimed(&store, name, dir))
                    .collect()
            };
            for (name, dir) in candidates {
                let fresh = mgr
                    .ghosts
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name.clone());
                if fresh {
                    tokio::spawn(mgr.clone().prune(name, dir));
                }
            }
        });
    }

    /// Waits out the grace period, checks again, and tears the project
    /// down.
    async fn prune(self: Arc<Self>, name: String, dir: PathBuf) {
        let grace = self.shared.options.delete_grace;
        tracing::info!(project = %name, dir = %dir.display(), grace_ms = grace.as_millis() as u64,
            "sweep: no folder declares this project any more; tearing it down after the grace period");
        tokio::time::sleep(grace).await;
        let still = unclaimed(&*self.shared.store.read().await, &name, &dir);
        if still {
            self.prune_now(&name, &dir).await;
        } else {
            tracing::info!(project = %name, "sweep: the project is claimed again; left alone");
        }
        self.ghosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name);
    }

    async fn prune_now(&self, name: &str, dir: &Path) {
        let span = tracing::info_span!("reconcile", project = %name, trigger = "prune", operation = "Delete");
        let job = Job {
            kind: OperationKind::Delete,
            project: Project {
                name: name.to_owned(),
                ..Project::default()
            },
            dir: dir.to_path_buf(),
            remove_orphans: true,
            trigger: Trigger::Deletion,
            rollout: super::rollout::Target::None,
        };
        let host = self.shared.host.clone();
        let exec = self.shared.options.execute.clone();
        let started = Instant::now();
        let task = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                run::run(
                    &*host,
                    &job,
                    &berth_reconcilers::SystemClock,
                    &exec,
                    &mut |_| {},
                )
            })
        });
        let result = match task.await {
            Ok(r) => r.error.map(|(_, m)| m),
            Err(e) => Some(e.to_string()),
        };
        let elapsed = started.elapsed();
        let outcome = if result.is_some() {
            "failure"
        } else {
            "success"
        };
        self.shared
            .metrics
            .reconciled(name, outcome, "prune", elapsed);
        match result {
            None => tracing::info!(project = %name, "sweep: project torn down; named volumes kept"),
            Some(e) => {
                tracing::warn!(project = %name, error = %e, "sweep: teardown failed; the next sweep tries again")
            }
        }
    }
}
