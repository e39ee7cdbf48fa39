//! Rollouts: what the worker does around a run so that a bad revision
//! does not stay up, and is not applied again and again.
//!
//! A reconcile whose last good model is not the revision in place is a
//! rollout ([`Target::Fresh`]): a revision record is written before it
//! runs (`revisions.rs`), and once the run succeeded the services it
//! changed go through the health gate (`gate.rs`). The gate waits across
//! reconciles ([`Target::Gating`], one a second): each repairs drift as
//! usual and looks again, so a container removed mid-gate comes back and
//! a file change abandons the gate for the next rollout. Passed: the revision
//! is `Applied` and in place. Failed: by `failure_action`, the previous
//! good revision is applied again (`rollback`, the default; only what
//! differs is touched, in dependency order, as any plan), the new one is
//! left in place as `Failed` (`pause`), or kept as `Applied` (`continue`).
//! A rolled back revision is *blocked*: later reconciles apply the
//! revision in place instead ([`Target::Blocked`]) until the files change
//! again or a reconcile is forced (`?force=true`). A rollout whose apply
//! fails (an action errors, so containers may be half replaced) is rolled
//! back the same way under `rollback`; under `pause` or `continue` the
//! worker retries it with backoff, as any failed reconcile.
//!
//! A manual rollback pins the project to a revision ([`Target::Pinned`])
//! until the files change or the project is resumed.
//!
//! The worker calls [`prepare`] before deciding, [`begin`] before a run
//! and [`after`] once its result is recorded.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use berth_spec::compose::model::Project;

use super::Shared;
use super::events_log::{InvolvedObject, NewEvent, reason};
use super::gate::{FailureAction, GateDefaults};
use super::revisions::{Pin, Revision, RevisionError, RevisionState, RevisionStore};
use crate::state::LastGood;

/// What a reconcile applies, as the rollout sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Target {
    /// Not a rollout: deletion, sweep, or revisions are not kept.
    #[default]
    None,
    /// The files' model, not yet the revision in place: a rollout.
    Fresh,
    /// The revision in place (number), repaired.
    Current(u64),
    /// The files' revision was rolled back: the one in place is kept.
    Blocked { failed: u64, in_place: u64 },
    /// A manual rollback's revision.
    Pinned(u64),
    /// The files' model, applied and waiting for its health gate
    /// (revision number): each reconcile repairs and looks again.
    Gating(u64),
}

/// The revision running now.
#[derive(Debug, Clone)]
pub struct InPlace {
    pub number: u64,
    pub digest: String,
    pub model: Project,
}

/// A revision the files still name and that was rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub number: u64,
    pub digest: String,
    pub message: String,
}

/// The health gate while it runs, for the status.
#[derive(Debug, Clone)]
pub struct GateState {
    pub revision: u64,
    pub services: Vec<String>,
    pub started_at: SystemTime,
    pub deadline: SystemTime,
    pub failure_action: FailureAction,
    pub message: String,
    /// The files' revision it gates.
    pub digest: String,
    pub machine: super::gate::Gate,
    /// The rollout's actions, for the record.
    pub actions: Vec<super::revisions::ActionRecord>,
    pub started: std::time::Instant,
}

/// A project's rollout state (in its `ReconcileState`).
#[derive(Debug, Clone, Default)]
pub struct RolloutState {
    /// The project name the revisions were read for.
    pub loaded_for: Option<String>,
    pub in_place: Option<InPlace>,
    pub blocked: Option<Blocked>,
    /// `?force=true`: apply this revision even if it is blocked.
    pub forced: Option<String>,
    pub pin: Option<(Pin, Project)>,
    /// The revisions, newest first, without their models.
    pub history: Vec<Revision>,
    pub gate: Option<GateState>,
}

impl RolloutState {
    /// The revision number of the files' model, when recorded.
    pub fn desired(&self, good: Option<&LastGood>) -> Option<u64> {
        let good = good?;
        self.history
            .iter()
            .find(|r| r.source.digest == good.revision)
            .map(|r| r.number)
    }

    /// Whether the pin still holds for the files' `revision`.
    fn pin_holds(&self, revision: &str) -> Option<(u64, &Project)> {
        self.pin
            .as_ref()
            .filter(|(pin, _)| pin.files_digest == revision)
            .map(|(pin, model)| (pin.number, model))
    }
}

/// The rollout's options, from the agent's flags.
#[derive(Debug, Clone)]
pub struct RolloutOptions {
    /// `<root>/agent/projects`; `None`: no revisions, no gate.
    pub dir: Option<PathBuf>,
    pub keep: usize,
    pub gate: GateDefaults,
}

impl Default for RolloutOptions {
    fn default() -> Self {
        Self {
            dir: None,
            keep: super::revisions::DEFAULT_KEEP,
            gate: GateDefaults::default(),
        }
    }
}

/// Every project's revision store, opened on first use.
#[derive(Default)]
pub struct Revisions {
    stores: Mutex<HashMap<String, RevisionStore>>,
}

impl Revisions {
    /// Runs `f` on the project's store (blocking I/O: call from a
    /// blocking thread).
    pub fn with<T>(
        &self,
        options: &RolloutOptions,
        name: &str,
        f: impl FnOnce(&mut RevisionStore) -> Result<T, RevisionError>,
    ) -> Result<T, RevisionError> {
        let Some(dir) = &options.dir else {
            return Err(RevisionError::BadName(
                "revisions are not kept by this agent".into(),
            ));
        };
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        if !stores.contains_key(name) {
            let store = RevisionStore::open(dir, name, options.keep)?;
            stores.insert(name.to_owned(), store);
        }
        match stores.get_mut(name) {
            Some(store) => f(store),
            None => Err(RevisionError::BadName(name.to_owned())),
        }
    }
}

/// The models stripped: what the status keeps.
pub fn summaries(store: &RevisionStore) -> Vec<Revision> {
    store
        .list()
        .map(|r| Revision {
            model: Project::default(),
            ..r.clone()
        })
        .collect()
}

fn in_place_of(store: &RevisionStore) -> Option<InPlace> {
    store.in_place().map(|r| InPlace {
        number: r.number,
        digest: r.source.digest.clone(),
        model: r.model.clone(),
    })
}

/// What a reconcile of `good` applies: the pinned revision, the revision
/// in place when the files' one was rolled back, or the files' model.
pub fn target<'a>(r: &'a RolloutState, good: &'a LastGood) -> (Target, &'a Project, &'a str) {
    if let Some((number, model)) = r.pin_holds(&good.revision) {
        let digest = r
            .history
            .iter()
            .find(|h| h.number == number)
            .map_or(good.revision.as_str(), |h| h.source.digest.as_str());
        return (Target::Pinned(number), model, digest);
    }
    if let Some(gate) = &r.gate
        && gate.digest == good.revision
    {
        return (Target::Gating(gate.revision), &good.project, &good.revision);
    }
    let Some(in_place) = &r.in_place else {
        return (Target::Fresh, &good.project, &good.revision);
    };
    if in_place.digest == good.revision {
        return (
            Target::Current(in_place.number),
            &good.project,
            &good.revision,
        );
    }
    if let Some(blocked) = &r.blocked
        && blocked.digest == good.revision
        && r.forced.as_deref() != Some(good.revision.as_str())
    {
        return (
            Target::Blocked {
                failed: blocked.number,
                in_place: in_place.number,
            },
            &in_place.model,
            &in_place.digest,
        );
    }
    (Target::Fresh, &good.project, &good.revision)
}

/// Before deciding: read the project's revisions (once per name), drop a
/// pin or block the files no longer match, and report the manifest's
/// state as an event.
pub async fn prepare(shared: &Shared, key: &str) {
    let (name, loaded, manifest) = {
        let store = shared.store.read().await;
        let Some(p) = store.get(key) else { return };
        let manifest = match p.load_errors.first() {
            Some(first) => Some(Err((first.to_string(), p.load_errors.len()))),
            None => p.last_good.as_ref().map(|_| Ok(())),
        };
        (
            p.name.clone(),
            p.reconcile.rollout.loaded_for.clone(),
            manifest,
        )
    };
    let object = InvolvedObject::project(&name);
    match manifest {
        Some(Err((first, count))) => {
            shared.events.emit(NewEvent::warning(
                reason::MANIFEST_INVALID,
                object,
                format!(
                    "{count} error(s) in the compose files; the last good model is kept: {first}"
                ),
            ));
        }
        Some(Ok(())) => {
            shared.events.recover(
                &[reason::MANIFEST_INVALID],
                NewEvent::normal(
                    reason::MANIFEST_VALID,
                    object,
                    "the compose files are valid again".into(),
                ),
            );
        }
        None => {}
    }
    if shared.options.rollout.dir.is_none() || loaded.as_deref() == Some(name.as_str()) {
        tidy(shared, key).await;
        return;
    }
    let revisions = shared.revisions.clone();
    let options = shared.options.rollout.clone();
    let read_name = name.clone();
    let read = tokio::task::spawn_blocking(move || {
        let pin = options
            .dir
            .as_deref()
            .and_then(|d| super::revisions::load_pin(d, &read_name));
        revisions.with(&options, &read_name, |s| {
            let pin = pin.and_then(|pin| Some((pin.clone(), s.get(pin.number)?.model.clone())));
            let blocked = s
                .latest()
                .filter(|r| r.state == RevisionState::RolledBack)
                .map(|r| Blocked {
                    number: r.number,
                    digest: r.source.digest.clone(),
                    message: r.message.clone(),
                });
            Ok((in_place_of(s), blocked, pin, summaries(s)))
        })
    })
    .await;
    let mut store = shared.store.write().await;
    let Some(p) = store.get_mut(key) else { return };
    let r = &mut p.reconcile.rollout;
    match read {
        Ok(Ok((in_place, blocked, pin, history))) => {
            r.in_place = in_place;
            r.blocked = blocked;
            r.pin = pin;
            r.history = history;
        }
        Ok(Err(e)) => {
            tracing::warn!(project = %name, error = %e, "cannot read the project's revisions; starting a new history")
        }
        Err(e) => tracing::warn!(project = %name, error = %e, "reading revisions failed"),
    }
    r.loaded_for = Some(name);
    drop(store);
    tidy(shared, key).await;
}

/// A pin or block whose files changed since no longer holds.
async fn tidy(shared: &Shared, key: &str) {
    let stale_pin = {
        let mut store = shared.store.write().await;
        let Some(p) = store.get_mut(key) else { return };
        let Some(revision) = p.last_good.as_ref().map(|g| g.revision.clone()) else {
            return;
        };
        let r = &mut p.reconcile.rollout;
        if r.blocked.as_ref().is_some_and(|b| b.digest != revision) {
            r.blocked = None;
        }
        if r.forced.as_ref().is_some_and(|f| *f != revision) {
            r.forced = None;
        }
        let stale = r
            .pin
            .as_ref()
            .is_some_and(|(pin, _)| pin.files_digest != revision);
        if stale {
            r.pin = None;
            tracing::info!(project = %p.name, "the files changed: the manual rollback's pin is lifted");
        }
        stale.then(|| p.name.clone())
    };
    if let Some(name) = stale_pin {
        clear_pin_file(shared, &name).await;
    }
}

pub async fn clear_pin_file(shared: &Shared, name: &str) {
    let Some(dir) = shared.options.rollout.dir.clone() else {
        return;
    };
    let name = name.to_owned();
    let done =
        tokio::task::spawn_blocking(move || super::revisions::save_pin(&dir, &name, None)).await;
    if let Ok(Err(e)) = done {
        tracing::warn!(error = %e, "cannot remove the rollback pin");
    }
}

pub use super::rollout_after::{After, Runner, abandon_gate, after, check_files};
pub use super::rollout_records::begin;
