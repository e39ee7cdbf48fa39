//! `stop`: stop the project's running containers, dependents first, and
//! keep them stopped: `up` and `start` bring them back, a restart policy
//! does not. `stop db` stops what depends on db too.

use std::process::ExitCode;
use std::time::Duration;

use berth_reconcilers::{Operation, PlanOptions};

use super::apply::exit_code;
use super::progress::Events;
use super::project::{ComposeProject, Files};
use crate::cli::{GlobalOpts, ProjectOpts};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct StopFlags {
    /// Seconds to wait for each container to stop before killing it;
    /// overrides `stop_grace_period`.
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub fn run(opts: &ProjectOpts, flags: &StopFlags, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Optional)? else {
        return Ok(ExitCode::FAILURE);
    };
    stop(&cp, &flags.services, flags.timeout)
}

/// Also `berth stop SERVICE` at the top level.
pub fn stop(
    cp: &ComposeProject,
    services: &[String],
    timeout: Option<u64>,
) -> anyhow::Result<ExitCode> {
    cp.check_services(services)?;
    let options = PlanOptions {
        operation: Operation::Stop,
        services: services.to_vec(),
        stop_timeout: timeout.map(Duration::from_secs),
        ..PlanOptions::default()
    };
    let (_, plan) = cp.plan(&options)?;
    Ok(exit_code(&cp.execute(&plan, &Events::default())))
}
