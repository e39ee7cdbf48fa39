//! What the agent knows about each project: its files, revision and
//! generation, the last model that loaded, and the errors of the latest load.
//!
//! Architecture invariant: a failed load never erases the last good model.
//! A broken edit shows its errors beside the previous model, so the API (and,
//! later, the reconciler) keeps working from the last spec that was valid.
//!
//! The store is plain data with no I/O or clock of its own: the supervisor
//! feeds it load results with the current time, which keeps every
//! transition testable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use berth_spec::compose::model::Project;
use berth_spec::diag::Diagnostic;

use crate::projects::load::{LoadResult, fallback_name};
use crate::projects::scan::Known;

/// The store as the supervisor and API handlers share it.
pub type SharedStore = Arc<tokio::sync::RwLock<Store>>;

/// The summary phase of a project (a subset of status-api.md's phases; the
/// rest need containers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Ready,
    Failed,
}

impl Phase {
    pub const ALL: [Phase; 2] = [Phase::Ready, Phase::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ready => "Ready",
            Phase::Failed => "Failed",
        }
    }
}

/// A Kubernetes-style condition. `last_transition_time` moves only when
/// `status` flips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub kind: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
    pub last_transition_time: SystemTime,
    pub observed_generation: u64,
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
}

#[derive(Debug, Clone)]
pub struct LastGood {
    pub project: Project,
    pub warnings: Vec<Diagnostic>,
    pub revision: String,
    pub generation: u64,
}

impl ProjectState {
    /// Every current error: the latest load's, then a name conflict.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.load_errors.iter().chain(self.conflict.as_ref())
    }

    pub fn phase(&self) -> Phase {
        if self.errors().next().is_none() {
            Phase::Ready
        } else {
            Phase::Failed
        }
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
}

/// The result of looking a project up by name.
pub enum Lookup<'a> {
    Found(&'a ProjectState),
    NotFound,
    /// Several folders use the name; their keys.
    Ambiguous(Vec<&'a str>),
}

impl Store {
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
                    kind: "SpecValid",
                    status: false,
                    reason: reason::VALIDATION_FAILED,
                    message: String::new(),
                    last_transition_time: now,
                    observed_generation: 0,
                },
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

    /// Forgets projects whose folder is gone; returns them.
    pub fn retain_present(&mut self, present: &[String]) -> Vec<ProjectState> {
        let gone: Vec<String> = self
            .projects
            .keys()
            .filter(|k| !present.contains(k))
            .cloned()
            .collect();
        gone.iter()
            .filter_map(|k| self.projects.remove(k))
            .collect()
    }

    /// Recomputes the cross-project facts (name conflicts) and every
    /// condition, after a batch of changes.
    pub fn settle(&mut self, now: SystemTime) {
        let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in self.projects.values().filter(|p| p.last_good.is_some()) {
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
            let c = &mut p.spec_valid;
            if c.status != status {
                c.last_transition_time = now;
            }
            c.status = status;
            c.reason = reason;
            c.message = message;
            c.observed_generation = p.generation;
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
