//! `berth pause` / `unpause`: freeze and thaw containers (docker's
//! meaning), or a project's services (see `compose::toplevel`).

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;
use super::compose::{Targets, TopLevelProject};

#[derive(Debug, Args)]
pub struct PauseArgs {
    #[command(flatten)]
    pub project: TopLevelProject,
    /// Containers (names or IDs), or services of the project.
    #[arg(required_unless_present_any = ["files", "project_name", "project_directory"])]
    pub containers: Vec<String>,
}

pub fn run(args: PauseArgs, global: &GlobalOpts, pause: bool) -> anyhow::Result<ExitCode> {
    let names = match args.project.targets(&args.containers, global)? {
        Targets::Services(cp, services) => {
            return super::compose::pause::apply(&cp, &services, pause);
        }
        Targets::Containers(names) => names,
    };
    let rt = super::run::runtime(global);
    let mut code = ExitCode::SUCCESS;
    for c in &names {
        let result = if pause { rt.pause(c) } else { rt.unpause(c) };
        match result {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("berth: {c}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
