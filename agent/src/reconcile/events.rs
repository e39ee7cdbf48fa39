//! Container events: the runtime writes each container's `state.json` at
//! every transition (created, running, exited) and removes the folder with
//! the container, so watching `<root>/containers` tells the agent at once
//! when a container exits on its own, is stopped or removed by hand, or
//! comes back. The owning project's worker gets an `event` trigger: a
//! crashed container is restarted as its `restart:` policy says (with the
//! planner's backoff) instead of at the next resync, and the status shows
//! the exit right away.
//!
//! Only `state.json` (and a container folder itself) counts: logs are
//! written into the same folders far more often and mean nothing here.
//! The agent's own actions cause events too; the reconcile they trigger
//! finds nothing to do. A lost event stream (queue overflow, watch error)
//! triggers every project, as the periodic resync would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_full::notify::event::{AccessKind, AccessMode, ModifyKind};
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache};
use tokio::sync::mpsc;

use super::{Reconcilers, Trigger};

/// How long events are collected before they are handed on: a start or a
/// stop writes `state.json` more than once.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Keeps the watcher alive; dropping it ends the events.
pub struct ContainerEvents {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

#[derive(Debug, PartialEq, Eq)]
enum Batch {
    /// Containers (ids) whose state changed.
    Changed(BTreeSet<String>),
    /// Events were lost: look at everything.
    Lost(String),
}

impl Reconcilers {
    /// Watches `containers` (the runtime's folder of containers, created
    /// when missing) and triggers the projects whose containers change.
    pub fn watch_containers(
        self: &Arc<Self>,
        containers: &Path,
    ) -> anyhow::Result<ContainerEvents> {
        std::fs::create_dir_all(containers)?;
        let (tx, rx) = mpsc::channel(64);
        let dir = containers.to_path_buf();
        let handler = move |result: DebounceEventResult| {
            if let Some(batch) = classify(&dir, result) {
                // Full: batches are queued already and a later one will
                // arrive; losing this one would lose its ids, so say so.
                if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(batch) {
                    let _ = tx.try_send(Batch::Lost("container event queue full".into()));
                }
            }
        };
        let mut debouncer = notify_debouncer_full::new_debouncer(DEBOUNCE, None, handler)?;
        debouncer.watch(containers, RecursiveMode::Recursive)?;
        tokio::spawn(self.clone().dispatch_events(rx));
        Ok(ContainerEvents {
            _debouncer: debouncer,
        })
    }

    async fn dispatch_events(self: Arc<Self>, mut rx: mpsc::Receiver<Batch>) {
        // Project of each container seen, so a removal (whose config is
        // gone by the time the event arrives) still finds its project.
        let mut owners: BTreeMap<String, String> = BTreeMap::new();
        while let Some(first) = rx.recv().await {
            let mut ids = BTreeSet::new();
            let mut lost = None;
            for batch in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                match batch {
                    Batch::Changed(more) => ids.extend(more),
                    Batch::Lost(why) => lost = Some(why),
                }
            }
            let host = self.shared.host.clone();
            let lookups: Vec<(String, Option<String>)> = {
                let ids: Vec<String> = ids.into_iter().collect();
                tokio::task::spawn_blocking(move || {
                    ids.into_iter()
                        .map(|id| {
                            let project = host.container_project(&id);
                            (id, project)
                        })
                        .collect()
                })
                .await
                .unwrap_or_default()
            };
            let mut projects = BTreeSet::new();
            let mut unknown = false;
            for (id, project) in lookups {
                match project.or_else(|| owners.get(&id).cloned()) {
                    Some(p) => {
                        owners.insert(id, p.clone());
                        projects.insert(p);
                    }
                    // Not one of ours, or gone before we ever saw it.
                    None => unknown = true,
                }
            }
            let store = self.shared.store.read().await;
            let keys: Vec<String> = match &lost {
                Some(why) => {
                    tracing::warn!(reason = %why, "container events lost; reconciling every project");
                    store.keys()
                }
                None => store
                    .projects()
                    .filter(|p| projects.contains(&p.name))
                    .map(|p| p.key.clone())
                    .collect(),
            };
            drop(store);
            if unknown && lost.is_none() {
                tracing::debug!("a container event for a container of no known project");
            }
            for key in keys {
                tracing::debug!(key, "container event");
                self.trigger(&key, Trigger::Event);
            }
            // Forget ids whose folders are gone for good.
            if owners.len() > 4096 {
                owners.clear();
            }
        }
    }
}

/// The container ids a debounced batch is about.
fn classify(containers: &Path, result: DebounceEventResult) -> Option<Batch> {
    match result {
        Ok(events) => {
            if events.iter().any(|e| e.need_rescan()) {
                return Some(Batch::Lost("event queue overflow".into()));
            }
            let ids: BTreeSet<String> = events
                .iter()
                .filter(|e| is_change(&e.kind))
                .flat_map(|e| e.paths.iter())
                .filter_map(|p| container_of(containers, p))
                .collect();
            (!ids.is_empty()).then_some(Batch::Changed(ids))
        }
        Err(errors) => Some(Batch::Lost(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

/// Whether an event changes something. Reads matter most here: every
/// observation opens and reads every `state.json`, and counting those
/// would make each reconcile trigger the next.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => false,
        _ => true,
    }
}

/// `<containers>/<id>/state.json` or `<containers>/<id>` → the id.
fn container_of(containers: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(containers).ok()?;
    let parts: Vec<&str> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => n.to_str(),
            _ => None,
        })
        .collect();
    match parts.as_slice() {
        [id] | [id, "state.json"] => Some((*id).to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_state_files_and_container_folders_count() {
        let dir = Path::new("/var/lib/berth/containers");
        let id = |p: &str| container_of(dir, &dir.join(p));
        assert_eq!(id("abc/state.json").as_deref(), Some("abc"));
        assert_eq!(id("abc").as_deref(), Some("abc"));
        assert_eq!(id("abc/container.log"), None);
        assert_eq!(id("abc/state.json.tmp"), None);
        assert_eq!(id("abc/rootfs/etc/state.json"), None);
        assert_eq!(
            container_of(dir, Path::new("/elsewhere/abc/state.json")),
            None
        );
    }

    #[test]
    fn reads_and_metadata_are_not_changes() {
        use notify_debouncer_full::notify::event::{
            CreateKind, MetadataKind, RemoveKind, RenameMode,
        };
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!is_change(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::AccessTime
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Remove(RemoveKind::Folder)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_state_change_triggers_the_owning_project() {
        use crate::reconcile::testing::{model, options, setup};
        let t = setup(options());
        t.load(
            "shop",
            "r1",
            model("shop", "services:\n  web:\n    image: busybox\n"),
        )
        .await;
        t.mgr.request("shop", Trigger::Initial).await.unwrap();
        let id = t.host.id_of("shop", "shop-web-1");
        let tmp = tempfile::tempdir().unwrap();
        let _events = t.mgr.watch_containers(tmp.path()).unwrap();
        // The container exits on its own, and its shim records it.
        t.host.fake.exit("shop-web-1", 1);
        std::fs::create_dir(tmp.path().join(&id)).unwrap();
        std::fs::write(tmp.path().join(&id).join("state.json"), "{}").unwrap();
        t.until("an event-triggered reconcile", |s, _| {
            s.get("shop")
                .and_then(|p| p.reconcile.operation.as_ref())
                .is_some_and(|o| o.trigger == Trigger::Event && o.finished_at.is_some())
        })
        .await;
        let store = t.store.read().await;
        let p = store.get("shop").unwrap();
        assert_eq!(
            p.phase(),
            crate::state::Phase::Degraded,
            "the exit is seen at once"
        );
    }
}
