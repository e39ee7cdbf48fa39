//! `up`: converge the project (create what is missing, recreate what
//! changed, start what is stopped), then, as `docker compose up` does:
//! stream the services' logs until every container has exited
//! (attached, the default; see `attach`), return at once (`-d`), or wait
//! until they are running and healthy (`--wait`, see `wait`).
//!
//! `--dry-run` prints the plan, one action per line with its reasons,
//! and changes nothing: berth's answer to "why would this redeploy?".

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use berth_reconcilers::plan::PullMode;
use berth_reconcilers::{Observed, Operation, Plan, PlanOptions, order};
use clap::ValueEnum;

use super::apply::warn_orphans;
use super::attach::{self, AttachOptions};
use super::progress::Events;
use super::project::{ComposeProject, Files};
use super::wait;
use crate::cli::{GlobalOpts, ProjectOpts};

/// `up`'s flags, shared by `berth up` and `berth compose up`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UpFlags {
    /// Detached mode: create and start the containers, then return.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Print what `up` would do, one action per line with its reasons,
    /// and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until the services are running and healthy (one-shots:
    /// exited 0). Implies `-d`.
    #[arg(long)]
    pub wait: bool,
    /// Give up `--wait` after this many seconds.
    #[arg(long, value_name = "SECONDS", requires = "wait")]
    pub wait_timeout: Option<u64>,
    /// Recreate containers even if their configuration and image have
    /// not changed.
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// Keep existing containers even if their configuration or image
    /// changed.
    #[arg(long)]
    pub no_recreate: bool,
    /// Don't start linked services (the named services' dependencies).
    #[arg(long)]
    pub no_deps: bool,
    /// Create the containers but don't start them.
    #[arg(long, conflicts_with = "wait")]
    pub no_start: bool,
    /// Scale SERVICE to NUM replicas; overrides `scale`/`deploy.replicas`
    /// (repeatable).
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Build images before starting containers.
    #[arg(long, conflicts_with = "no_build")]
    pub build: bool,
    /// Don't build an image, even if it's missing.
    #[arg(long)]
    pub no_build: bool,
    /// Pull images before running: `always`, `missing` (the default) or
    /// `never`.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub pull: Option<Pull>,
    /// Accepted for compatibility: berth prints no pull progress.
    #[arg(long)]
    pub quiet_pull: bool,
    /// Remove containers for services not defined in the Compose file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Stop all containers if any container was stopped (attached only).
    #[arg(long, conflicts_with_all = ["detach", "wait"])]
    pub abort_on_container_exit: bool,
    /// Stop all containers if any container exited with failure
    /// (attached only).
    #[arg(long, conflicts_with_all = ["detach", "wait", "abort_on_container_exit", "exit_code_from"])]
    pub abort_on_container_failure: bool,
    /// Return the exit code of SERVICE's container; implies
    /// `--abort-on-container-exit`.
    #[arg(long, value_name = "SERVICE", conflicts_with_all = ["detach", "wait"])]
    pub exit_code_from: Option<String>,
    /// Seconds to wait for containers to stop (on Ctrl+C, and when
    /// recreating running containers); overrides `stop_grace_period`.
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Only show the logs of these services (repeatable).
    #[arg(long, value_name = "SERVICE")]
    pub attach: Vec<String>,
    /// Don't show the logs of these services (repeatable).
    #[arg(long, value_name = "SERVICE")]
    pub no_attach: Vec<String>,
    /// Show the logs of the named services' dependencies too.
    #[arg(long)]
    pub attach_dependencies: bool,
    /// Don't prefix log lines with the container's name.
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Monochrome output.
    #[arg(long)]
    pub no_color: bool,
    /// Show timestamps.
    #[arg(long)]
    pub timestamps: bool,
    /// Only these services (and their dependencies, unless `--no-deps`).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pull {
    Always,
    Missing,
    Never,
}

pub fn run(opts: &ProjectOpts, flags: &UpFlags, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Required)? else {
        return Ok(ExitCode::FAILURE);
    };
    check(&cp, flags)?;
    if flags.no_build {
        check_built(&cp, &selected(&cp, flags))?;
    }
    let options = plan_options(&cp, flags)?;
    let attached = !flags.detach && !flags.wait && !flags.no_start && !flags.dry_run;
    // Caught from now on, so a Ctrl+C while containers are being created
    // is handled once the logs are attached, as a graceful stop.
    let interrupts = if attached {
        Some(attach::catch_interrupts()?)
    } else {
        None
    };
    let (observed, plan) = cp.plan(&options)?;
    if flags.dry_run {
        return print_plan(&plan);
    }
    if !flags.remove_orphans {
        warn_orphans(&cp.orphans(&observed));
    }
    let events = Events::default();
    report_running(&cp, &observed, &plan, &options, &events);
    let since = std::time::SystemTime::now();
    let mut report = cp.execute(&plan, &events);
    if report.succeeded() && builds_or_pulls(&plan) {
        // Which containers a new image replaces is known once it is
        // built: plan again against it (a build that hit the cache
        // fully gives the same image ID, and nothing is recreated).
        let again = PlanOptions {
            build: false,
            build_policy: false,
            refresh_images: false,
            force_recreate: false,
            pull: match options.pull {
                PullMode::Always => PullMode::Missing,
                other => other,
            },
            ..options.clone()
        };
        let (_, second) = cp.plan(&again)?;
        if !second.is_empty() {
            report = cp.execute(&second, &events);
        }
    }
    if !report.succeeded() {
        return Ok(ExitCode::FAILURE);
    }
    if flags.wait {
        let timeout = flags.wait_timeout.map(Duration::from_secs);
        return wait::wait(&cp, &selected(&cp, flags), timeout, &events);
    }
    let Some(mut interrupts) = interrupts else {
        return Ok(ExitCode::SUCCESS);
    };
    let attach_options = AttachOptions {
        services: attach_services(&cp, flags),
        stop_services: flags.services.clone(),
        prefix: !flags.no_log_prefix,
        color: !flags.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout()),
        timestamps: flags.timestamps,
        abort_on_exit: flags.abort_on_container_exit || flags.exit_code_from.is_some(),
        abort_on_failure: flags.abort_on_container_failure,
        exit_code_from: flags.exit_code_from.clone(),
        stop_timeout: options.stop_timeout,
        since,
    };
    attach::run(&cp, &attach_options, &mut interrupts, &events)
}

/// Every service a flag names must exist, as Compose checks.
fn check(cp: &ComposeProject, flags: &UpFlags) -> anyhow::Result<()> {
    cp.check_services(&flags.services)?;
    cp.check_services(&flags.attach)?;
    cp.check_services(&flags.no_attach)?;
    if let Some(s) = &flags.exit_code_from {
        cp.check_services(std::slice::from_ref(s))?;
    }
    Ok(())
}

fn plan_options(cp: &ComposeProject, flags: &UpFlags) -> anyhow::Result<PlanOptions> {
    let mut scale = BTreeMap::new();
    for s in &flags.scale {
        let (service, n) = s
            .split_once('=')
            .with_context(|| format!("invalid --scale {s:?}: expected SERVICE=NUM"))?;
        let n: u32 = n
            .parse()
            .with_context(|| format!("invalid --scale {s:?}: {n:?} is not a number"))?;
        cp.check_services(&[service.to_owned()])?;
        scale.insert(service.to_owned(), n);
    }
    Ok(PlanOptions {
        operation: Operation::Up,
        services: flags.services.clone(),
        no_deps: flags.no_deps,
        force_recreate: flags.force_recreate,
        no_recreate: flags.no_recreate,
        no_start: flags.no_start,
        // `docker compose up` starts whatever exited, one-shots included.
        start_exited: true,
        // docker compose's default: containers of services no longer
        // declared are left alone (and reported) unless asked.
        remove_orphans: flags.remove_orphans,
        build: flags.build,
        no_build: flags.no_build,
        build_policy: true,
        pull: match flags.pull {
            Some(Pull::Always) => PullMode::Always,
            Some(Pull::Never) => PullMode::Never,
            Some(Pull::Missing) | None => PullMode::Missing,
        },
        scale,
        stop_timeout: flags.timeout.map(Duration::from_secs),
        // `docker compose up` pulls `pull_policy: always` images every
        // time (the timed policies when due: `engine::images`).
        refresh_images: true,
        ..PlanOptions::default()
    })
}

fn print_plan(plan: &Plan) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if plan.is_empty() {
        writeln!(out, "nothing to do").context("cannot write to stdout")?;
    }
    for line in plan.lines() {
        writeln!(out, "{line}").context("cannot write to stdout")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// ` Container shop-db-1 Running` for the selected containers that run
/// and that the plan leaves alone, as Compose reports them.
fn report_running(
    cp: &ComposeProject,
    observed: &Observed,
    plan: &Plan,
    options: &PlanOptions,
    events: &Events,
) {
    let selected = order::select(&cp.project, &options.services, options.no_deps);
    for c in observed.project_containers(cp.name()) {
        let touched = plan.actions.iter().any(|a| a.action.target() == c.name);
        if c.is_running() && !touched && c.service().is_some_and(|s| selected.contains(s)) {
            events.container(&c.name, "Running");
        }
    }
}

/// The services `up` acts on: the named ones and, unless `--no-deps`,
/// their dependencies; all when none is named.
fn builds_or_pulls(plan: &Plan) -> bool {
    plan.actions.iter().any(|a| {
        matches!(
            a.action,
            berth_reconcilers::plan::Action::BuildImage { .. }
                | berth_reconcilers::plan::Action::PullImage { .. }
        )
    })
}

/// `--no-build`: a service with `build:` whose image is missing cannot
/// get containers; say which, before changing anything.
fn check_built(cp: &ComposeProject, services: &[String]) -> anyhow::Result<()> {
    use berth_reconcilers::ImageSource;
    for name in services {
        let Some(service) = cp.project.services.get(name) else {
            continue;
        };
        if service.build.is_none() {
            continue;
        }
        let reference =
            berth_reconcilers::desired::image_reference(&cp.project.name, name, service);
        if cp.engine.images.resolve(&reference)?.is_none() {
            anyhow::bail!(
                "service {name:?} has no image {reference} and --no-build forbids building it; \
                 build it first (`berth compose build {name}`) or drop --no-build"
            );
        }
    }
    Ok(())
}

fn selected(cp: &ComposeProject, flags: &UpFlags) -> Vec<String> {
    order::select(&cp.project, &flags.services, flags.no_deps)
        .into_iter()
        .collect()
}

/// Whose logs attached `up` shows: `--attach`, else the named services
/// (with their dependencies on `--attach-dependencies`), else all the
/// selected ones; minus `--no-attach`.
fn attach_services(cp: &ComposeProject, flags: &UpFlags) -> Vec<String> {
    let base: Vec<String> = if !flags.attach.is_empty() {
        flags.attach.clone()
    } else if !flags.services.is_empty() && !flags.attach_dependencies {
        flags.services.clone()
    } else {
        selected(cp, flags)
    };
    base.into_iter()
        .filter(|s| !flags.no_attach.contains(s))
        .collect()
}
