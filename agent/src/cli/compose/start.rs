//! `start`: start the containers the project already has (created or
//! stopped), dependencies first, each after its `depends_on` conditions
//! hold. Creates nothing: that is `up`.

use std::process::ExitCode;

use anyhow::bail;
use berth_reconcilers::{Operation, PlanOptions};

use super::apply::exit_code;
use super::progress::Events;
use super::project::{ComposeProject, Files};
use crate::cli::{GlobalOpts, ProjectOpts};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct StartFlags {
    /// Start only these services (and their dependencies).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub fn run(
    opts: &ProjectOpts,
    flags: &StartFlags,
    global: &GlobalOpts,
) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Optional)? else {
        return Ok(ExitCode::FAILURE);
    };
    start(&cp, &flags.services)
}

/// Also `berth start SERVICE` at the top level.
pub fn start(cp: &ComposeProject, services: &[String]) -> anyhow::Result<ExitCode> {
    cp.check_services(services)?;
    if cp.containers(services, false).is_empty() {
        bail!("no containers to start: create them with `up`");
    }
    let options = PlanOptions {
        operation: Operation::Start,
        services: services.to_vec(),
        ..PlanOptions::default()
    };
    let (_, plan) = cp.plan(&options)?;
    Ok(exit_code(&cp.execute(&plan, &Events::default())))
}
