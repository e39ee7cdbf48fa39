//! Prometheus metrics, in an explicit registry owned by the agent (no
//! global recorder, so tests can build as many as they like).
//!
//! Counters (loads, reconciles, drift corrections) and the reconcile
//! duration histogram only grow; every gauge is rebuilt from the store by
//! [`Metrics::observe`] after each change, so a removed project or
//! service leaves no stale series behind.

use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::gitsync::status::SourceStatus;
use crate::state::{Applied, ConditionStatus, Store};

/// Long buckets, up to 10 minutes, as doco-cd uses: a reconcile that pulls
/// or waits on a slow dependency takes minutes.
const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    project: String,
    result: String,
    trigger: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    project: String,
    service: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContainerLabels {
    project: String,
    service: String,
    container: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConditionLabels {
    project: String,
    /// Encoded as `type` (the derive strips the `r#`).
    r#type: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriftLabels {
    project: String,
    service: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoadLabels {
    project: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    r#type: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RollbackLabels {
    project: String,
    /// `automatic` (a failed health gate) or `manual`.
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// The git source's series (registered in git mode only).
#[derive(Debug)]
struct SourceSeries {
    fetches: Family<ResultLabels, Counter>,
    fetch_duration: Family<ResultLabels, Histogram, fn() -> Histogram>,
    commit_timestamp: Gauge,
    commit_age: Gauge,
    last_success: Gauge,
    failures: Gauge,
    ready: Gauge,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectLabels {
    project: String,
}

/// The agent's metrics and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    projects: Family<PhaseLabels, Gauge>,
    loads: Family<LoadLabels, Counter>,
    generation: Family<ProjectLabels, Gauge>,
    watch_events: Counter,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_duration: Family<ProjectLabels, Histogram, fn() -> Histogram>,
    replicas: Family<ReplicaLabels, Gauge>,
    restarts: Family<ContainerLabels, Gauge>,
    conditions: Family<ConditionLabels, Gauge>,
    drift: Family<DriftLabels, Counter>,
    events: Family<EventLabels, Counter>,
    rollbacks: Family<RollbackLabels, Counter>,
    source: SourceSeries,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let projects = Family::<PhaseLabels, Gauge>::default();
        let loads = Family::<LoadLabels, Counter>::default();
        let generation = Family::<ProjectLabels, Gauge>::default();
        let watch_events = Counter::default();
        registry.register(
            "berth_projects",
            "Projects under the watched directory, by phase",
            projects.clone(),
        );
        registry.register(
            "berth_project_load",
            "Project loads, by project and result (success or failure)",
            loads.clone(),
        );
        registry.register(
            "berth_project_generation",
            "Current spec generation of each project",
            generation.clone(),
        );
        registry.register(
            "berth_watch_events",
            "File system events that triggered a rescan",
            watch_events.clone(),
        );
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_duration =
            Family::<ProjectLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        let replicas = Family::<ReplicaLabels, Gauge>::default();
        let restarts = Family::<ContainerLabels, Gauge>::default();
        let conditions = Family::<ConditionLabels, Gauge>::default();
        let drift = Family::<DriftLabels, Counter>::default();
        registry.register(
            "berth_reconcile",
            "Reconciles, by project, result (success or failure) and trigger",
            reconciles.clone(),
        );
        registry.register(
            "berth_reconcile_duration_seconds",
            "How long each reconcile took, by project",
            reconcile_duration.clone(),
        );
        registry.register(
            "berth_service_replicas",
            "Replicas of each service as last observed, by state: desired, running, ready \
             (running and healthy or without a healthcheck), updated (current config), \
             completed (one-shots that exited 0), and the container states created, exited, \
             dead, unknown",
            replicas.clone(),
        );
        registry.register(
            "berth_container_restarts",
            "Restarts of each container since it was created, as last observed",
            restarts.clone(),
        );
        registry.register(
            "berth_project_condition",
            "1 for the current status of each project condition (as gotk_resource_info does)",
            conditions.clone(),
        );
        registry.register(
            "berth_drift_corrections",
            "Actions a resync took to undo drift, by project, service and reason",
            drift.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        let rollbacks = Family::<RollbackLabels, Counter>::default();
        registry.register(
            "berth_events",
            "Events emitted, by type (Normal, Warning) and reason; a repeat of a \
             suppressed warning counts too",
            events.clone(),
        );
        registry.register(
            "berth_rollbacks",
            "Rollbacks, by project and kind (automatic after a failed health gate, or manual)",
            rollbacks.clone(),
        );
        let source = SourceSeries {
            fetches: Family::default(),
            fetch_duration: Family::new_with_constructor(duration_histogram),
            commit_timestamp: Gauge::default(),
            commit_age: Gauge::default(),
            last_success: Gauge::default(),
            failures: Gauge::default(),
            ready: Gauge::default(),
        };
        Self {
            source,
            registry,
            projects,
            loads,
            generation,
            watch_events,
            reconciles,
            reconcile_duration,
            replicas,
            restarts,
            conditions,
            drift,
            events,
            rollbacks,
        }
    }

    /// The metrics of an agent that follows a git repository: also the
    /// `berth_source_*` series.
    pub fn with_source() -> Self {
        let mut metrics = Self::new();
        register_source(&mut metrics.registry, &metrics.source);
        metrics
    }

    /// One git sync (fetch, and checkout when the commit changed) ended.
    pub fn source_fetch(&self, result: &str, elapsed: Duration) {
        let labels = ResultLabels {
            result: result.to_owned(),
        };
        self.source.fetches.get_or_create(&labels).inc();
        self.source
            .fetch_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Sets the source's gauges; the commit's age is computed at `now`
    /// (the API calls this before rendering, so it never goes stale).
    pub fn observe_source(&self, source: &SourceStatus, now: SystemTime) {
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0)
        };
        if let Some(time) = source.commit_time {
            self.source.commit_timestamp.set(secs(time));
            let age = now.duration_since(time).unwrap_or_default();
            self.source
                .commit_age
                .set(i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
        }
        if let Some(at) = source.last_success_at {
            self.source.last_success.set(secs(at));
        }
        self.source
            .failures
            .set(i64::from(source.consecutive_failures));
        self.source
            .ready
            .set(i64::from(source.ready.status == ConditionStatus::True));
    }

    pub fn event(&self, kind: &str, reason: &str) {
        self.events
            .get_or_create(&EventLabels {
                r#type: kind.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn rolled_back(&self, project: &str, kind: &str) {
        self.rollbacks
            .get_or_create(&RollbackLabels {
                project: project.to_owned(),
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// One reconcile ended.
    pub fn reconciled(&self, project: &str, result: &str, trigger: &str, elapsed: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                project: project.to_owned(),
                result: result.to_owned(),
                trigger: trigger.to_owned(),
            })
            .inc();
        self.reconcile_duration
            .get_or_create(&ProjectLabels {
                project: project.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn drift_corrected(&self, project: &str, service: &str, reason: &str) {
        self.drift
            .get_or_create(&DriftLabels {
                project: project.to_owned(),
                service: service.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn watch_events(&self, n: u64) {
        self.watch_events.inc_by(n);
    }

    pub fn load(&self, applied: &Applied) {
        let result = if applied.ok { "success" } else { "failure" };
        self.loads
            .get_or_create(&LoadLabels {
                project: applied.name.clone(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Sets the gauges from the whole store (after every scan): cheap, and it
    /// cannot drift from the state the API shows.
    pub fn observe(&self, store: &Store) {
        for (phase, n) in store.phase_counts() {
            self.projects
                .get_or_create(&PhaseLabels {
                    phase: phase.as_str().to_owned(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        // Names can change on reload: rebuild the family from scratch.
        self.generation.clear();
        for p in store.projects() {
            self.generation
                .get_or_create(&ProjectLabels {
                    project: p.name.clone(),
                })
                .set(i64::try_from(p.generation).unwrap_or(i64::MAX));
        }
        self.observe_reconciles(store);
    }

    fn observe_reconciles(&self, store: &Store) {
        self.replicas.clear();
        self.restarts.clear();
        self.conditions.clear();
        let gauge = |n: u32| i64::from(n);
        for p in store.projects() {
            for s in &p.reconcile.services {
                let set = |state: &str, n: i64| {
                    self.replicas
                        .get_or_create(&ReplicaLabels {
                            project: p.name.clone(),
                            service: s.name.clone(),
                            state: state.to_owned(),
                        })
                        .set(n);
                };
                set("desired", gauge(s.desired_replicas));
                set("running", gauge(s.running_replicas));
                set("ready", gauge(s.ready_replicas));
                set("updated", gauge(s.updated_replicas));
                set("completed", gauge(s.completed_replicas));
                for state in ["created", "exited", "dead", "unknown"] {
                    let n = s.replicas.iter().filter(|r| r.state == state).count();
                    set(state, i64::try_from(n).unwrap_or(i64::MAX));
                }
                for r in &s.replicas {
                    self.restarts
                        .get_or_create(&ContainerLabels {
                            project: p.name.clone(),
                            service: s.name.clone(),
                            container: r.name.clone(),
                        })
                        .set(gauge(r.restart_count));
                }
            }
            let r = &p.reconcile;
            for c in [
                &p.spec_valid,
                &r.ready,
                &r.reconciling,
                &r.stalled,
                &r.healthy,
            ] {
                for status in ConditionStatus::ALL {
                    self.conditions
                        .get_or_create(&ConditionLabels {
                            project: p.name.clone(),
                            r#type: c.kind.to_owned(),
                            status: status.as_str().to_owned(),
                        })
                        .set(i64::from(c.status == status));
                }
            }
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

fn register_source(registry: &mut Registry, s: &SourceSeries) {
    registry.register(
        "berth_source_fetches",
        "Git syncs (ls-remote, fetch and checkout when the commit changed), by result \
         (success or failure)",
        s.fetches.clone(),
    );
    registry.register(
        "berth_source_fetch_duration_seconds",
        "How long each git sync took, by result",
        s.fetch_duration.clone(),
    );
    registry.register(
        "berth_source_commit_timestamp_seconds",
        "Committer time of the commit checked out (Unix seconds)",
        s.commit_timestamp.clone(),
    );
    registry.register(
        "berth_source_commit_age_seconds",
        "Age of the commit checked out, at the time of the scrape",
        s.commit_age.clone(),
    );
    registry.register(
        "berth_source_last_success_timestamp_seconds",
        "When the last git sync succeeded (Unix seconds): alert on time() minus this",
        s.last_success.clone(),
    );
    registry.register(
        "berth_source_consecutive_failures",
        "Git syncs failed in a row (0 after a success)",
        s.failures.clone(),
    );
    registry.register(
        "berth_source_ready",
        "1 while the SourceReady condition is True",
        s.ready.clone(),
    );
}

pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{failed, ok, project, t};

    #[test]
    fn renders_every_family_with_labels() {
        let metrics = Metrics::new();
        let mut store = Store::default();
        let a = store.apply_load(ok("a", "r1", project("shop", &[])), t(0));
        let b = store.apply_load(failed("b", "r1"), t(0));
        store.settle(t(0));
        metrics.load(&a);
        metrics.load(&b);
        metrics.watch_events(3);
        metrics.observe(&store);
        let text = metrics.render().unwrap();
        for line in [
            "berth_projects{phase=\"Pending\"} 1",
            "berth_projects{phase=\"Failed\"} 1",
            "berth_project_load_total{project=\"shop\",result=\"success\"} 1",
            "berth_project_load_total{project=\"b\",result=\"failure\"} 1",
            "berth_project_generation{project=\"shop\"} 1",
            "berth_project_generation{project=\"b\"} 1",
            "berth_watch_events_total 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn removed_projects_leave_the_generation_gauge() {
        let metrics = Metrics::new();
        let mut store = Store::default();
        store.apply_load(ok("a", "r1", project("shop", &[])), t(0));
        metrics.observe(&store);
        assert!(
            metrics
                .render()
                .unwrap()
                .contains("berth_project_generation{project=\"shop\"} 1")
        );
        store.mark_absent(&[], t(1));
        store.remove("a");
        metrics.observe(&store);
        let text = metrics.render().unwrap();
        assert!(!text.contains("berth_project_generation{"), "{text}");
        assert!(
            text.contains("berth_projects{phase=\"Pending\"} 0"),
            "{text}"
        );
    }
}
