//! Observe, plan and execute one operation on a project, with Compose's
//! progress lines: what `up`, `down`, `stop`, `start` and `restart` share.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use berth_reconcilers::{
    Backends, ExecuteOptions, Observed, Outcome, Plan, PlanOptions, Report, SystemClock, execute,
    observe, plan,
};

use super::progress::{Events, Progress};
use super::project::ComposeProject;

impl ComposeProject {
    pub fn observe(&self) -> anyhow::Result<Observed> {
        observe(&self.project, self.engine.backends())
            .with_context(|| format!("cannot observe project {}", self.name()))
    }

    /// Plans `options` (its `now` and the digests of the configs' and
    /// secrets' files set here) against what is there now. The digests
    /// are the agent's, so a project `up` deployed and the agent then
    /// reconciles is not recreated for nothing. Containers of services its
    /// profiles leave out are not orphans.
    pub fn plan(&self, options: &PlanOptions) -> anyhow::Result<(Observed, Plan)> {
        let observed = self.observe()?;
        let mut options = PlanOptions {
            now: SystemTime::now(),
            file_digests: crate::reconcile::digests::file_digests(&self.project),
            ..options.clone()
        };
        if !self.undeclared(&observed).is_empty() {
            options.inactive_services = self.disabled_services();
        }
        let plan = plan(&self.project, &observed, &options)
            .with_context(|| format!("cannot plan project {}", self.name()))?;
        Ok((observed, plan))
    }

    /// Names of the containers whose service the project does not
    /// declare, not even under a profile left out: Compose's orphans.
    pub fn orphans(&self, observed: &Observed) -> Vec<String> {
        let undeclared = self.undeclared(observed);
        if undeclared.is_empty() {
            return undeclared;
        }
        let disabled = self.disabled_services();
        observed
            .project_containers(self.name())
            .filter(|c| {
                !c.service().is_some_and(|s| {
                    self.project.services.contains_key(s) || disabled.iter().any(|d| d == s)
                })
            })
            .map(|c| c.name.clone())
            .collect()
    }

    fn undeclared(&self, observed: &Observed) -> Vec<String> {
        observed
            .project_containers(self.name())
            .filter(|c| {
                !c.service()
                    .is_some_and(|s| self.project.services.contains_key(s))
            })
            .map(|c| c.name.clone())
            .collect()
    }

    /// Runs `plan`, reporting each step on stderr; failures are printed
    /// once each, after the steps.
    pub fn execute(&self, plan: &Plan, events: &Events) -> Report {
        let progress = Progress::new(self.engine.backends(), events);
        let report = run(plan, progress.backends());
        print_failures(&report);
        report
    }
}

/// The executor, through the crash injector in debug builds when the test
/// asks for it.
fn run(plan: &Plan, backends: Backends<'_>) -> Report {
    let options = ExecuteOptions {
        parallelism: parallelism(),
        ..ExecuteOptions::default()
    };
    #[cfg(debug_assertions)]
    if let Some(crash) = super::crashpoint::CrashAfter::from_env(backends) {
        return execute(plan, crash.backends(), &SystemClock, &options);
    }
    execute(plan, backends, &SystemClock, &options)
}

/// How many independent actions run at once: `COMPOSE_PARALLEL_LIMIT`,
/// as with docker compose, else 8 (enough to overlap the shims' setup;
/// a wave of hundreds of containers does not start hundreds at once).
fn parallelism() -> usize {
    std::env::var("COMPOSE_PARALLEL_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(8)
}

fn print_failures(report: &Report) {
    for r in &report.results {
        if let Outcome::Failed { message, .. } = &r.outcome {
            eprintln!("berth: {} {}: {message}", r.action, r.target);
        }
    }
}

/// Success when every action succeeded (or waits for its backoff).
pub fn exit_code(report: &Report) -> ExitCode {
    if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Compose's warning about containers of services the file no longer
/// declares.
pub fn warn_orphans(orphans: &[String]) {
    if !orphans.is_empty() {
        eprintln!(
            "WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            orphans.join(" ")
        );
    }
}
