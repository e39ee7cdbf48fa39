//! The agent's events: what it did and what went wrong, shaped like Flux's
//! (Kubernetes) events, kept in a bounded in-memory ring and streamed to
//! `GET /api/v1/events` subscribers.
//!
//! Deduplication, so a repeating problem is one event and not a flood:
//! a `Warning` is keyed by project, reason and object; while the key is
//! active (seen and not recovered), the same warning again only bumps the
//! stored event's `count` and `lastTimestamp` (and is not streamed again).
//! [`EventLog::recover`] ends a problem: when any warning of the given
//! reasons is active for that project and object, it emits one `Normal`
//! event (the recovery) and clears the suppression, so the next occurrence
//! is news again. `Normal` events that are not recoveries are never
//! merged: each says something happened.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::timefmt::rfc3339;

/// How many events the ring keeps by default.
pub const DEFAULT_CAPACITY: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// What an event is about (Kubernetes' `involvedObject`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct InvolvedObject {
    /// `Project`, `Service`, `Container` or `Source`.
    pub kind: &'static str,
    pub project: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl InvolvedObject {
    pub fn project(project: &str) -> Self {
        Self {
            kind: "Project",
            project: project.to_owned(),
            ..Self::default()
        }
    }

    /// The git source (`project` empty: it concerns every project).
    pub fn source() -> Self {
        Self {
            kind: "Source",
            ..Self::default()
        }
    }

    pub fn service(project: &str, service: &str) -> Self {
        Self {
            kind: "Service",
            project: project.to_owned(),
            service: Some(service.to_owned()),
            container: None,
        }
    }

    pub fn container(project: &str, service: Option<&str>, container: &str) -> Self {
        Self {
            kind: "Container",
            project: project.to_owned(),
            service: service.map(str::to_owned),
            container: Some(container.to_owned()),
        }
    }
}

/// One event, as the API sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Increasing; `?since=` takes it. A repeat of a suppressed warning
    /// gives the stored event a new one (so `since` finds the update).
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub reason: String,
    pub message: String,
    pub involved_object: InvolvedObject,
    /// The project revision (`sha256:` of its files) or history number
    /// (`rev-N`) it concerns, when one does.
    pub revision: Option<String>,
    pub source: EventSource,
    /// How many times it happened while suppressed (1: once).
    pub count: u64,
    pub first_timestamp: String,
    /// The last occurrence (Flux's `timestamp`).
    pub timestamp: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSource {
    pub component: &'static str,
}

/// What a caller reports.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventType,
    pub reason: &'static str,
    pub message: String,
    pub object: InvolvedObject,
    pub revision: Option<String>,
}

impl NewEvent {
    pub fn normal(reason: &'static str, object: InvolvedObject, message: String) -> Self {
        Self {
            kind: EventType::Normal,
            reason,
            message,
            object,
            revision: None,
        }
    }

    pub fn warning(reason: &'static str, object: InvolvedObject, message: String) -> Self {
        Self {
            kind: EventType::Warning,
            reason,
            message,
            object,
            revision: None,
        }
    }

    pub fn revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(revision.into());
        self
    }
}

/// What [`Ring::record`] did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new event (stream it).
    New(u64),
    /// A repeat of an active warning: its count went up.
    Repeat { id: u64, count: u64 },
}

type Key = (String, &'static str, InvolvedObject);

/// The ring and the dedupe state, without locking or clock: every rule
/// is tested on this.
#[derive(Debug)]
pub struct Ring {
    capacity: usize,
    next_id: u64,
    events: VecDeque<Event>,
    /// Active warnings: key -> the stored event's id.
    active: BTreeMap<Key, u64>,
}

impl Ring {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            next_id: 1,
            events: VecDeque::new(),
            active: BTreeMap::new(),
        }
    }

    fn key(e: &NewEvent) -> Key {
        (e.object.project.clone(), e.reason, e.object.clone())
    }

    pub fn record(&mut self, e: NewEvent, now: SystemTime) -> (Recorded, Event) {
        let at = rfc3339(now);
        let id = self.next_id;
        self.next_id += 1;
        if e.kind == EventType::Warning {
            let key = Self::key(&e);
            if let Some(old) = self.active.get(&key).copied()
                && let Some(pos) = self.events.iter().position(|x| x.id == old)
                && let Some(mut stored) = self.events.remove(pos)
            {
                stored.id = id;
                stored.count += 1;
                stored.timestamp = at;
                stored.message = e.message;
                if e.revision.is_some() {
                    stored.revision = e.revision;
                }
                self.active.insert(key, id);
                let count = stored.count;
                self.events.push_back(stored.clone());
                return (Recorded::Repeat { id, count }, stored);
            }
            self.active.insert(key, id);
        }
        let event = Event {
            id,
            kind: e.kind,
            reason: e.reason.to_owned(),
            message: e.message,
            involved_object: e.object,
            revision: e.revision,
            source: EventSource {
                component: "berth-agent",
            },
            count: 1,
            first_timestamp: at.clone(),
            timestamp: at,
        };
        self.events.push_back(event.clone());
        while self.events.len() > self.capacity {
            if let Some(gone) = self.events.pop_front() {
                // A warning pushed out of the ring is no longer suppressed:
                // there is nothing left to count it on.
                self.active.retain(|_, id| *id != gone.id);
            }
        }
        (Recorded::New(id), event)
    }

    /// Whether a warning with `reason` is active for `object`.
    #[cfg(test)]
    pub fn is_active(&self, reason: &'static str, object: &InvolvedObject) -> bool {
        self.active
            .contains_key(&(object.project.clone(), reason, object.clone()))
    }

    /// Clears the warnings of `reasons` for `object`; returns whether any
    /// was active (so the caller emits the recovery once).
    pub fn clear(&mut self, reasons: &[&'static str], object: &InvolvedObject) -> bool {
        let mut any = false;
        for reason in reasons {
            any |= self
                .active
                .remove(&(object.project.clone(), reason, object.clone()))
                .is_some();
        }
        any
    }

    /// Clears every warning of a project whose object matches `pred`
    /// (containers that are gone).
    pub fn clear_where(&mut self, project: &str, pred: impl Fn(&InvolvedObject) -> bool) {
        self.active.retain(|(p, _, o), _| p != project || !pred(o));
    }

    /// Events with an id above `since` (or at/after a time), oldest first.
    pub fn since(&self, since: &Since, project: Option<&str>) -> Vec<Event> {
        self.events
            .iter()
            .filter(|e| since.admits(e))
            .filter(|e| project.is_none_or(|p| e.involved_object.project == p))
            .cloned()
            .collect()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.events.len()
    }
}

/// `?since=`: an event id, or an RFC 3339 time (events whose last
/// occurrence is at or after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    All,
    Id(u64),
    Time(String),
}

impl Since {
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            return Ok(Self::All);
        };
        if let Ok(id) = text.parse::<u64>() {
            return Ok(Self::Id(id));
        }
        let t = humantime::parse_rfc3339_weak(text)
            .map_err(|e| format!("since={text:?}: {e}; give an event id or an RFC 3339 time"))?;
        Ok(Self::Time(rfc3339(t)))
    }

    pub fn admits(&self, e: &Event) -> bool {
        match self {
            Self::All => true,
            Self::Id(id) => e.id > *id,
            // Same format and zone: text order is time order.
            Self::Time(t) => e.timestamp.as_str() >= t.as_str(),
        }
    }
}

/// The shared log: a ring behind a lock, a broadcast for streams, and
/// counters by type and reason for the metrics.
pub struct EventLog {
    ring: Mutex<Ring>,
    stream: broadcast::Sender<Event>,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl EventLog {
    pub fn new(capacity: usize, metrics: Option<std::sync::Arc<crate::metrics::Metrics>>) -> Self {
        let (stream, _) = broadcast::channel(256);
        Self {
            ring: Mutex::new(Ring::new(capacity)),
            stream,
            metrics,
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an event (or counts a repeat) and streams what is new.
    pub fn emit(&self, e: NewEvent) -> Recorded {
        let kind = e.kind;
        let reason = e.reason;
        let (recorded, event) = self.ring().record(e, SystemTime::now());
        if let Some(m) = &self.metrics {
            m.event(kind.as_str(), reason);
        }
        if let Recorded::New(_) = recorded {
            match kind {
                EventType::Warning => tracing::warn!(
                    reason = %event.reason,
                    project = %event.involved_object.project,
                    message = %event.message,
                    "event"
                ),
                EventType::Normal => tracing::info!(
                    reason = %event.reason,
                    project = %event.involved_object.project,
                    message = %event.message,
                    "event"
                ),
            }
            // No subscriber is fine.
            let _ = self.stream.send(event);
        }
        recorded
    }

    /// Ends the problems `reasons` of `object`: when one was active,
    /// emits `recovered` (a Normal event) once.
    pub fn recover(&self, reasons: &[&'static str], recovered: NewEvent) -> bool {
        let was = self.ring().clear(reasons, &recovered.object);
        if was {
            self.emit(recovered);
        }
        was
    }

    pub fn clear_where(&self, project: &str, pred: impl Fn(&InvolvedObject) -> bool) {
        self.ring().clear_where(project, pred);
    }

    pub fn since(&self, since: &Since, project: Option<&str>) -> Vec<Event> {
        self.ring().since(since, project)
    }

    /// A subscription taken before the backlog is read, so nothing falls
    /// between the two (the caller skips ids it already sent).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.stream.subscribe()
    }
}

/// Event reasons, CamelCase as Kubernetes' are.
pub mod reason {
    pub const MANIFEST_INVALID: &str = "ManifestInvalid";
    pub const MANIFEST_VALID: &str = "ManifestValid";
    pub const RECONCILE_FAILED: &str = "ReconciliationFailed";
    pub const RECONCILE_SUCCEEDED: &str = "ReconciliationSucceeded";
    pub const REVISION_APPLIED: &str = "RevisionApplied";
    pub const HEALTH_GATE_FAILED: &str = "HealthGateFailed";
    pub const ROLLED_BACK: &str = "RolledBack";
    pub const ROLLBACK_FAILED: &str = "RollbackFailed";
    pub const ROLLOUT_FAILED: &str = "RolloutFailed";
    pub const CONTAINER_EXITED: &str = "ContainerExited";
    pub const CONTAINER_RESTARTED: &str = "ContainerRestarted";
    pub const CONTAINER_RECOVERED: &str = "ContainerRecovered";
    /// Git sync: a new commit is checked out.
    pub const NEW_REVISION: &str = "NewRevision";
    pub const SOURCE_FETCH_FAILED: &str = "SourceFetchFailed";
    pub const SOURCE_FETCH_SUCCEEDED: &str = "SourceFetchSucceeded";
    pub const LOCAL_CHANGES_DISCARDED: &str = "LocalChangesDiscarded";
}

#[cfg(test)]
#[path = "events_log_tests.rs"]
mod tests;
