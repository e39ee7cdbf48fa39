//! `restart`: stop and start the project's containers (stopped ones are
//! started), dependencies first. `restart db` takes along the services
//! whose `depends_on.db` says `restart: true`, unless `--no-deps`.

use std::process::ExitCode;
use std::time::Duration;

use berth_reconcilers::{Operation, PlanOptions};

use super::apply::exit_code;
use super::progress::Events;
use super::project::{ComposeProject, Files};
use crate::cli::{GlobalOpts, ProjectOpts};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct RestartFlags {
    /// Seconds to wait for each container to stop before killing it;
    /// overrides `stop_grace_period`.
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Don't restart dependent services.
    #[arg(long)]
    pub no_deps: bool,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub fn run(
    opts: &ProjectOpts,
    flags: &RestartFlags,
    global: &GlobalOpts,
) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Optional)? else {
        return Ok(ExitCode::FAILURE);
    };
    restart(&cp, &flags.services, flags.timeout, flags.no_deps)
}

/// Also `berth restart SERVICE` at the top level.
pub fn restart(
    cp: &ComposeProject,
    services: &[String],
    timeout: Option<u64>,
    no_deps: bool,
) -> anyhow::Result<ExitCode> {
    cp.check_services(services)?;
    let options = PlanOptions {
        operation: Operation::Restart,
        services: services.to_vec(),
        no_deps,
        stop_timeout: timeout.map(Duration::from_secs),
        ..PlanOptions::default()
    };
    let (_, plan) = cp.plan(&options)?;
    Ok(exit_code(&cp.execute(&plan, &Events::default())))
}
