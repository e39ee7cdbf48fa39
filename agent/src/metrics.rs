//! Prometheus metrics, in an explicit registry owned by the agent (no
//! global recorder, so tests can build as many as they like).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::state::{Applied, Store};

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
        Self {
            registry,
            projects,
            loads,
            generation,
            watch_events,
        }
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
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
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
            "berth_projects{phase=\"Ready\"} 1",
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
        store.retain_present(&[]);
        metrics.observe(&store);
        let text = metrics.render().unwrap();
        assert!(!text.contains("berth_project_generation{"), "{text}");
        assert!(text.contains("berth_projects{phase=\"Ready\"} 0"), "{text}");
    }
}
