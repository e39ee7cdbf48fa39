//! `berth down`: stop and remove a project's containers (those of services
//! no longer declared too: the planner's `down` takes every container
//! labelled with the project) and the networks `up` recorded, through the
//! same adapters and executor as `up -d`. Volumes stay unless `-v`, which
//! removes the project's named volumes and its containers' anonymous ones.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use berth_reconcilers::{Operation, PlanOptions, plan};

use super::up::{load, observe_project, open_engine, run_plan};
use super::{GlobalOpts, ProjectOpts};

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub project: ProjectOpts,
    /// Remove the project's volumes too (named and anonymous).
    #[arg(short = 'v', long)]
    pub volumes: bool,
}

pub fn run(args: DownArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let Some(project) = load(&args.project)? else {
        return Ok(ExitCode::FAILURE);
    };
    let engine = open_engine(global)?;
    let observed = observe_project(&project, &engine)?;
    let options = PlanOptions {
        operation: Operation::Down {
            volumes: args.volumes,
        },
        now: SystemTime::now(),
        ..PlanOptions::default()
    };
    let plan = plan(&project, &observed, &options)
        .with_context(|| format!("cannot plan project {}", project.name))?;
    run_plan(&plan, &engine)
}
