//! `berth kill [-s SIGNAL] NAME...`.
//! Service names and `-p`/`--file` give `compose kill` (see
//! `compose::toplevel`).

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;
use super::compose::{Targets, TopLevelProject};

#[derive(Debug, Args)]
pub struct KillArgs {
    #[command(flatten)]
    pub project: TopLevelProject,
    /// Signal name or number.
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    /// Containers (names or IDs), or services of the project.
    #[arg(required_unless_present_any = ["files", "project_name", "project_directory"])]
    pub containers: Vec<String>,
}

pub fn run(args: KillArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let names = match args.project.targets(&args.containers, global)? {
        Targets::Services(cp, services) => {
            return super::compose::kill::kill(&cp, &services, &args.signal);
        }
        Targets::Containers(names) => names,
    };
    let rt = super::run::runtime(global);
    let signal = berth_runtime::parse_signal(&args.signal)?;
    let mut code = ExitCode::SUCCESS;
    for c in &names {
        match rt.kill(c, signal) {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("berth: {c}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
