//! What the agent knows about each project: its files, revision and
//! generation, the last model that loaded, and the errors of the latest load.
//!
//! Architecture invariant: a failed load never erases the last good model.
//! A broken edit shows its errors beside the previous model, so the API (and,
//! later, the reconciler) keeps working from the last spec that was valid.
//!
//! The store is plain data with no I/O or clock of its own: the supervisor
//! feeds it load results with the current time, and the reconcile workers
//! (`crate::reconcile`) record their operations in [`ProjectState::reconcile`],
//! which keeps every transition testable.
//!
//! A project whose folder disappears is not forgotten at once: it is marked
//! deleting (with the time), so its worker can tear down what runs from the
//! last good model after a grace period, and removes it from the store when
//! that succeeded. A folder that comes back in the meantime clears the mark.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use berth_spec::compose::model::Project;
use berth_spec::diag::Diagnostic;

use crate::gitsync::status::SourceStatus;
use crate::projects::load::{LoadResult, fallback_name};
use crate::projects::scan::Known;
use crate::reconcile::status::{self as reconcile_status, ReconcileState};

/// The store as the supervisor and API handlers share it.
pub type SharedStore = Arc<tokio::sync::RwLock<Store>>;

/// The summary phase of a project (status-api.md's list, in GitLab's
/// precedence: a deletion or suspension first, then a failure, then work in
/// progress, then the health of what runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Loaded, not reconciled yet.
    Pending,
    /// A reconcile is changing things, or services are starting.
    Progressing,
    Ready,
    /// Applied, but a service is not running or not healthy.
    Degraded,
    /// The spec is invalid, or the last reconcile failed.
    Failed,
    Suspended,
    /// The folder is gone; what runs is being torn down.
    Deleting,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Pending,
        Phase::Progressing,
        Phase::Ready,
        Phase::Degraded,
        Phase::Failed,
        Phase::Suspended,
        Phase::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Progressing => "Progressing",
            Phase::Ready => "Ready",
            Phase::Degraded => "Degraded",
            Phase::Failed => "Failed",
            Phase::Suspended => "Suspended",
            Phase::Deleting => "Deleting",
        }
    }
}

/// A condition's status: Kubernetes' three values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub const ALL: [ConditionStatus; 3] = [Self::True, Self::False, Self::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }

    #[cfg(test)]
    pub fn is_true(self) -> bool {
        self == Self::True
    }
}

impl From<bool> for ConditionStatus {
    fn from(b: bool) -> Self {
        if b { Self::True } else { Self::False }
    }
}

/// A Kubernetes-style condition. `last_transition_time` moves only when
/// `status` flips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub kind: &'static str,
    pub status: ConditionStatus,
    pub reason: &'static str,
    pub message: String,
    pub last_transition_time: SystemTime,
    pub observed_generation: u64,
}

impl Condition {
    pub fn new(kind: &'static str, reason: &'static str, now: SystemTime) -> Self {
        Self {
            kind,
            status: ConditionStatus::Unknown,
            reason,
            message: String::new(),
            last_transition_time: now,
            observed_generation: 0,
        }
    }

    /// Sets every field; the transition time moves only when the status
    /// flips.
    pub fn set(
        &mut self,
        status: ConditionStatus,
        reason: &'static str,
        message: String,
        generation: u64,
        now: SystemTime,
    ) {
        if self.status != status {
            self.last_transition_time = now;
        }
        self.status = status;
        self.reason = reason;
        self.message = message;
        self.observed_generation = generation;
    }
}

/// The reasons of the `SpecValid` condition.
pub mod reason {
    pub const LOADED: &str = "Loaded";
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
    pub const NAME_CONFLICT: &str = "NameConflict";
}

#[derive(Debug, Clone)]
pub struct ProjectState {
    pub key: String,
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    /// From the last good model; a Compose-style guess from the folder name
    /// until one loads.
    pub name: String,
    pub revision: String,
    /// Starts at 1; +1 each time the revision changes.
    pub generation: u64,
    pub tracked: Vec<PathBuf>,
    pub created_at: SystemTime,
    pub last_loaded_at: SystemTime,
    /// The last model that loaded, with its warnings and provenance.
    pub last_good: Option<LastGood>,
    /// Diagnostics of the latest load; empty when it succeeded.
    pub load_errors: Vec<Diagnostic>,
    /// Set when another folder yields the same project name.
    pub conflict: Option<Diagnostic>,
    pub spec_valid: Condition,
    /// Set by `POST .../suspend`: the project is not reconciled.
    pub suspended: bool,
    /// When the folder was last seen gone; `None` while it is present.
    pub deleting_since: Option<SystemTime>,
    /// What the reconcile worker did and saw last.
    pub reconcile: ReconcileState,
    /// In git mode: the revision checked out (`main@sha1:...`) when the
    /// project's folder was last scanned.
    pub source_revision: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LastGood {
    pub project: Project,
    pub warnings: Vec<Diagnostic>,
    pub revision: String,
    pub generation: u64,
    /// In git mode: the newest revision checked out whose files are this
    /// model's (a commit that left the project's files alone moves it;
    /// a commit that broke them does not).
    pub source_revision: Option<String>,
}

impl ProjectState {
    /// Every current error: the latest load's, then a name conflict.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.load_errors.iter().chain(self.conflict.as_ref())
    }

    pub fn phase(&self) -> Phase {
        reconcile_status::phase(self)
    }

    /// The spec can be applied: it loaded at least once and no other
    /// folder claims its name.
    pub fn spec_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    pub fn model(&self) -> Option<&Project> {
        self.last_good.as_ref().map(|g| &g.project)
    }

    pub fn warnings(&self) -> &[Diagnostic] {
        self.last_good
            .as_ref()
            .map(|g| g.warnings.as_slice())
            .unwrap_or(&[])
    }

    fn desired_spec_valid(&self) -> (bool, &'static str, String) {
        if let Some(first) = self.load_errors.first() {
            (false, reason::VALIDATION_FAILED, first.to_string())
        } else if let Some(conflict) = &self.conflict {
            (false, reason::NAME_CONFLICT, conflict.to_string())
        } else {
            let services = self.model().map(|p| p.services.len()).unwrap_or(0);
            (true, reason::LOADED, format!("loaded {services} services"))
        }
    }
}

/// What applying one load did, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub key: String,
    pub name: String,
    pub ok: bool,
    pub created: bool,
    pub generation_changed: bool,
}

/// Every project by key, and whether the first scan has finished.
#[derive(Debug, Default)]
pub struct Store {
    projects: BTreeMap<String, ProjectState>,
    ready: bool,
    /// Folders of suspended projects (kept across restarts by the
    /// agent): a project loaded from one starts suspended.
    suspended_dirs: BTreeSet<PathBuf>,
    /// The git source, in git mode.
    source: Option<SourceStatus>,
}

/// A project whose folder went away.
#[derive(Debug)]
pub enum Absent {
    /// It never loaded: removed from the store.
    Forgotten { key: String, name: String },
    /// It has a model: marked deleting, to be torn down.
    Deleting { key: String, name: String },
    /// It was deleting and its folder is back.
    Returned { key: String },
}

/// The result of looking a project up by name.
pub enum Lookup<'a> {
    Found(&'a ProjectState),
    NotFound,
    /// Several folders use the name; their keys.
    Ambiguous(Vec<&'a str>),
}

impl Store {
    /// A store whose projects from these folders start suspended.
    pub fn with_suspended(dirs: BTreeSet<PathBuf>) -> Self {
        Self {
            suspended_dirs: dirs,
            ..Self::default()
        }
    }

    pub fn suspended_dirs(&self) -> &BTreeSet<PathBuf> {
        &self.suspended_dirs
    }

    /// Suspends or resumes the project at `key`; `false` if there is none.
    pub fn set_suspended(&mut self, key: &str, suspended: bool) -> bool {
        let Some(p) = self.projects.get_mut(key) else {
            return false;
        };
        p.suspended = suspended;
        if suspended {
            self.suspended_dirs.insert(p.dir.clone());
        } else {
            self.suspended_dirs.remove(&p.dir);
        }
        true
    }

    pub fn set_source(&mut self, source: SourceStatus) {
        self.source = Some(source);
    }

    pub fn source(&self) -> Option<&SourceStatus> {
        self.source.as_ref()
    }

    pub fn source_mut(&mut self) -> Option<&mut SourceStatus> {
        self.source.as_mut()
    }

    /// After a scan in git mode: every project present was read at the
    /// revision checked out, and so was the model of each whose files
    /// load as they are (a broken one keeps its model's older revision).
    pub fn tag_source_revision(&mut self, present: &[String]) {
        let Some(revision) = self.source.as_ref().and_then(|s| s.revision.clone()) else {
            return;
        };
        for key in present {
            let Some(p) = self.projects.get_mut(key) else {
                continue;
            };
            p.source_revision = Some(revision.clone());
            let loads = p.load_errors.is_empty();
            if let Some(good) = &mut p.last_good
                && loads
                && good.revision == p.revision
            {
                good.source_revision = Some(revision.clone());
                // What runs is these files, so it is this commit's too
                // (as Flux says of a commit that left a Kustomization's
                // files alone).
                if p.reconcile.last_applied_revision.as_deref() == Some(good.revision.as_str()) {
                    p.reconcile.last_applied_source_revision = Some(revision.clone());
                }
            }
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    pub fn mark_ready(&mut self) {
        self.ready = true;
    }

    /// Projects sorted by key.
    pub fn projects(&self) -> impl Iterator<Item = &ProjectState> {
        self.projects.values()
    }

    pub fn get(&self, key: &str) -> Option<&ProjectState> {
        self.projects.get(key)
    }

    pub fn find_by_name(&self, name: &str) -> Lookup<'_> {
        let matches: Vec<_> = self.projects().filter(|p| p.name == name).collect();
        match matches.as_slice() {
            [] => Lookup::NotFound,
            [one] => Lookup::Found(one),
            many => Lookup::Ambiguous(many.iter().map(|p| p.key.as_str()).collect()),
        }
    }

    /// What a scan needs to tell changed projects from unchanged ones.
    pub fn known(&self) -> BTreeMap<String, Known> {
        self.projects
            .iter()
            .map(|(key, p)| {
                let known = Known {
                    files: p.files.clone(),
                    tracked: p.tracked.clone(),
                    revision: p.revision.clone(),
                };
                (key.clone(), known)
            })
            .collect()
    }

    /// Records a load. A failure keeps the last good model and its warnings.
    /// Call [`Self::settle`] after a batch of loads and removals.
    pub fn apply_load(&mut self, result: LoadResult, now: SystemTime) -> Applied {
        let LoadResult {
            source,
            outcome,
            tracked,
            revision,
            ..
        } = result;
        let created = !self.projects.contains_key(&source.key);
        let suspended = self.suspended_dirs.contains(&source.dir);
        let state = self
            .projects
            .entry(source.key.clone())
            .or_insert_with(|| ProjectState {
                key: source.key.clone(),
                dir: source.dir.clone(),
                files: Vec::new(),
                name: fallback_name(&source),
                revision: String::new(),
                generation: 0,
                tracked: Vec::new(),
                created_at: now,
                last_loaded_at: now,
                last_good: None,
                load_errors: Vec::new(),
                conflict: None,
                spec_valid: Condition {
                    status: ConditionStatus::False,
                    ..Condition::new("SpecValid", reason::VALIDATION_FAILED, now)
                },
                suspended,
                deleting_since: None,
                reconcile: ReconcileState::new(now),
                source_revision: None,
            });
        let generation_changed = created || state.revision != revision;
        if generation_changed {
            state.generation += 1;
        }
        state.dir = source.dir;
        state.files = source.files;
        state.tracked = tracked;
        state.revision = revision;
        state.last_loaded_at = now;
        state.deleting_since = None;
        let ok = outcome.is_ok();
        match outcome {
            Ok(loaded) => {
                state.name = loaded.project.name.clone();
                state.load_errors.clear();
                state.last_good = Some(LastGood {
                    project: loaded.project,
                    warnings: loaded.warnings,
                    revision: state.revision.clone(),
                    generation: state.generation,
                    source_revision: None,
                });
            }
            Err(diagnostics) => state.load_errors = diagnostics.0,
        }
        Applied {
            key: state.key.clone(),
            name: state.name.clone(),
            ok,
            created,
            generation_changed,
        }
    }

    /// Handles the projects whose folder is gone. One that never loaded has
    /// nothing running under a name we know: it is forgotten at once. One
    /// with a model is marked deleting (once), for its worker to tear down.
    /// One marked deleting whose folder is back is unmarked.
    pub fn mark_absent(&mut self, present: &[String], now: SystemTime) -> Vec<Absent> {
        let mut out = Vec::new();
        for (key, p) in &mut self.projects {
            if p.deleting_since.is_some() && present.contains(key) {
                p.deleting_since = None;
                out.push(Absent::Returned { key: key.clone() });
            }
        }
        let gone: Vec<String> = self
            .projects
            .keys()
            .filter(|k| !present.contains(k))
            .cloned()
            .collect();
        for key in gone {
            let Some(p) = self.projects.get_mut(&key) else {
                continue;
            };
            if p.last_good.is_none() {
                if let Some(p) = self.projects.remove(&key) {
                    out.push(Absent::Forgotten { key, name: p.name });
                }
            } else if p.deleting_since.is_none() {
                p.deleting_since = Some(now);
                out.push(Absent::Deleting {
                    key: key.clone(),
                    name: p.name.clone(),
                });
            }
        }
        out
    }

    /// Forgets a project (after its teardown).
    pub fn remove(&mut self, key: &str) -> Option<ProjectState> {
        self.projects.remove(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut ProjectState> {
        self.projects.get_mut(key)
    }

    /// Keys of every project, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.projects.keys().cloned().collect()
    }

    /// Recomputes the cross-project facts (name conflicts) and every
    /// condition, after a batch of changes.
    ///
    /// A project whose folder is gone claims no name: a present folder
    /// that uses the same name owns it, and the gone one is then forgotten
    /// without a teardown (it would remove the other's containers).
    pub fn settle(&mut self, now: SystemTime) {
        let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let claims = |p: &ProjectState| p.last_good.is_some() && p.deleting_since.is_none();
        for p in self.projects.values().filter(|p| claims(p)) {
            by_name
                .entry(p.name.clone())
                .or_default()
                .push(p.key.clone());
        }
        for p in self.projects.values_mut() {
            let others: Vec<&str> = by_name
                .get(&p.name)
                .into_iter()
                .flatten()
                .filter(|k| **k != p.key && p.last_good.is_some())
                .map(String::as_str)
                .collect();
            p.conflict = (!others.is_empty()).then(|| {
                let mut d = Diagnostic::error(format!(
                    "project name {:?} is also used by {}",
                    p.name,
                    others.join(", ")
                ))
                .key("name")
                .hint("give each project a distinct top-level `name:`");
                if let Some(first) = p.files.first() {
                    d = d.in_file(first.clone());
                }
                d
            });
            let (status, reason, message) = p.desired_spec_valid();
            let generation = p.generation;
            p.spec_valid
                .set(status.into(), reason, message, generation, now);
            reconcile_status::refresh_conditions(p, now);
        }
    }

    /// Counts per phase, every phase present.
    pub fn phase_counts(&self) -> BTreeMap<Phase, usize> {
        let mut counts: BTreeMap<Phase, usize> = Phase::ALL.iter().map(|p| (*p, 0)).collect();
        for p in self.projects() {
            *counts.entry(p.phase()).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
pub(crate) mod tests;
