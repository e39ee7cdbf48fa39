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
    /// reconciles is not recreated for nothing.
    pub fn plan(&self, options: &PlanOptions) -> anyhow::Result<(Observed, Plan)> {
        let observed = self.observe()?;
        let options = PlanOptions {
            now: SystemTime::now(),
            file_digests: crate::reconcile::digests::file_digests(&self.project),
            ..options.clone()
        };
        let plan = plan(&self.project, &observed, &options)
            .with_context(|| format!("cannot plan project {}", self.name()))?;
        Ok((observed, plan))
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
    let options = ExecuteOptions::default();
    #[cfg(debug_assertions)]
    if let Some(crash) = super::crashpoint::CrashAfter::from_env(backends) {
        return execute(plan, crash.backends(), &SystemClock, &options);
    }
    execute(plan, backends, &SystemClock, &options)
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
