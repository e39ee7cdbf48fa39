//! `berth restart [-t SECONDS] NAME...`.
//! Service names and `-p`/`--file` give `compose restart` (see
//! `compose::toplevel`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::GlobalOpts;
use super::compose::{Targets, TopLevelProject};

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub project: TopLevelProject,
    /// Seconds to wait after the stop signal before SIGKILL.
    #[arg(short = 't', long = "time", visible_alias = "timeout")]
    pub time: Option<u64>,
    /// Containers (names or IDs), or services of the project.
    #[arg(required_unless_present_any = ["files", "project_name", "project_directory"])]
    pub containers: Vec<String>,
}

pub fn run(args: RestartArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let names = match args.project.targets(&args.containers, global)? {
        Targets::Services(cp, services) => {
            return super::compose::restart::restart(&cp, &services, args.time, false);
        }
        Targets::Containers(names) => names,
    };
    let rt = super::run::runtime(global);
    let mut code = ExitCode::SUCCESS;
    for c in &names {
        // The stop frees the ports (the shim's exit hook, done once the
        // runtime's restart has waited the old shim out); they are taken
        // back right after the start.
        let restarted = rt
            .restart(c, args.time.map(Duration::from_secs))
            .map_err(anyhow::Error::from)
            .and_then(|()| rt.inspect(c).map_err(anyhow::Error::from))
            .and_then(|info| super::run_net::before_start(global, &rt, &info.config.id));
        match restarted {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("berth: {c}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
