//! `berth up`: load the project as `config` does, observe the machine
//! through the real adapters (`crate::engine`), and plan. `--dry-run`
//! prints the plan one action per line with its reasons (`nothing to do`
//! when the project has converged); `-d` executes it and prints each
//! action's outcome. Attached `up` (streaming the services' logs) is not
//! there yet.

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use berth_reconcilers::{
    ExecuteOptions, Observed, Outcome, Plan, PlanOptions, Report, SystemClock, execute, observe,
    plan,
};
use berth_spec::compose::{self, model::Project};

use super::{GlobalOpts, ProjectOpts};
use crate::engine::Engine;

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub project: ProjectOpts,
    /// Print what `up` would do, one action per line, and change nothing.
    #[arg(long, conflicts_with = "detach")]
    pub dry_run: bool,
    /// Create and start the containers in the background.
    #[arg(short = 'd', long)]
    pub detach: bool,
}

pub fn run(args: UpArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    if !args.dry_run && !args.detach {
        bail!("attached `berth up` is not implemented yet: use `up -d`, or `up --dry-run`");
    }
    let Some(project) = load(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let engine = open_engine(global)?;
    let observed = observe_project(&project, &engine)?;
    let plan = plan(&project, &observed, &options(&project))
        .with_context(|| format!("cannot plan project {}", project.name))?;
    if args.dry_run {
        let mut out = std::io::stdout().lock();
        if plan.is_empty() {
            writeln!(out, "nothing to do").context("cannot write to stdout")?;
        }
        for line in plan.lines() {
            writeln!(out, "{line}").context("cannot write to stdout")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    run_plan(&plan, &engine)
}

/// Executes `plan`, prints one line per action (`CreateContainer
/// proj-web-1: done`), and fails when any action failed or was skipped.
pub fn run_plan(plan: &Plan, engine: &Engine) -> anyhow::Result<ExitCode> {
    if plan.is_empty() {
        println!("nothing to do");
        return Ok(ExitCode::SUCCESS);
    }
    let report = execute(
        plan,
        engine.backends(),
        &SystemClock,
        &ExecuteOptions::default(),
    );
    print_report(&report)?;
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(report: &Report) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for r in &report.results {
        let outcome = match &r.outcome {
            Outcome::Done => "done".to_owned(),
            Outcome::Deferred { .. } => "deferred (restart backoff)".to_owned(),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
            Outcome::Failed { kind, message } => format!("failed ({kind}): {message}"),
        };
        writeln!(out, "{} {}: {outcome}", r.action, r.target).context("cannot write to stdout")?;
    }
    Ok(())
}

/// `up`'s plan options: `docker compose up`'s defaults (orphans are left
/// alone, missing images pulled), planned at this instant, with the
/// digests of the configs' and secrets' files.
fn options(project: &Project) -> PlanOptions {
    PlanOptions {
        remove_orphans: false,
        now: SystemTime::now(),
        file_digests: crate::engine::file_objects::file_digests(project),
        ..PlanOptions::default()
    }
}

/// The project, or `None` after printing its diagnostics (one per line,
/// as `config` prints them). Configs and secrets sourced from the
/// environment carry their value (see `engine::file_objects`).
pub fn load(opts: &ProjectOpts) -> anyhow::Result<Option<Project>> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let options = opts.resolve(&cwd, &super::process_environment())?;
    let mut stderr = std::io::stderr().lock();
    match compose::load(&options) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                writeln!(stderr, "{w}").context("cannot write to stderr")?;
            }
            let mut project = loaded.project;
            crate::engine::file_objects::resolve_environment_sources(
                &mut project,
                &loaded.environment,
            );
            Ok(Some(project))
        }
        Err(diagnostics) => {
            for d in &diagnostics.0 {
                writeln!(stderr, "{d}").context("cannot write to stderr")?;
            }
            Ok(None)
        }
    }
}

pub fn open_engine(global: &GlobalOpts) -> anyhow::Result<Engine> {
    Engine::open(&global.root, super::run::runtime(global))
        .with_context(|| format!("cannot open berth's state under {}", global.root.display()))
}

pub fn observe_project(project: &Project, engine: &Engine) -> anyhow::Result<Observed> {
    observe(project, engine.backends())
        .with_context(|| format!("cannot observe project {}", project.name))
}
