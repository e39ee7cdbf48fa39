//! `berth start NAME...`: start created containers.
//! Service names and `-p`/`--file` give `compose start` (see
//! `compose::toplevel`).

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;
use super::compose::{Targets, TopLevelProject};

#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub project: TopLevelProject,
    /// Containers (names or IDs), or services of the project.
    #[arg(required_unless_present_any = ["files", "project_name", "project_directory"])]
    pub containers: Vec<String>,
}

pub fn run(args: StartArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let names = match args.project.targets(&args.containers, global)? {
        Targets::Services(cp, services) => return super::compose::start::start(&cp, &services),
        Targets::Containers(names) => names,
    };
    let rt = super::run::runtime(global);
    let mut code = ExitCode::SUCCESS;
    for c in &names {
        let started = rt.inspect(c).map_err(anyhow::Error::from).and_then(|info| {
            let id = info.config.id;
            // A running container keeps what it has.
            if !(info.observed.container_alive && info.observed.status == "running") {
                super::run_net::before_start(global, &rt, &id)?;
            }
            rt.start(&id).map_err(|e| {
                super::run_net::start_failed(global, &rt, &id);
                anyhow::Error::from(e)
            })
        });
        match started {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("berth: {c}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
