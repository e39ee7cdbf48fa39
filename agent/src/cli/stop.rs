//! `berth stop [-t SECONDS] NAME...`.
//! Service names and `-p`/`--file` give `compose stop` (see
//! `compose::toplevel`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::GlobalOpts;
use super::compose::{Targets, TopLevelProject};

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub project: TopLevelProject,
    /// Seconds to wait after the stop signal before SIGKILL.
    #[arg(short = 't', long = "time", visible_alias = "timeout")]
    pub time: Option<u64>,
    /// Containers (names or IDs), or services of the project.
    #[arg(required_unless_present_any = ["files", "project_name", "project_directory"])]
    pub containers: Vec<String>,
}

pub fn run(args: StopArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let names = match args.project.targets(&args.containers, global)? {
        Targets::Services(cp, services) => {
            return super::compose::stop::stop(&cp, &services, args.time);
        }
        Targets::Containers(names) => names,
    };
    let rt = super::run::runtime(global);
    let mut code = ExitCode::SUCCESS;
    let net = berth_net::Net::open(&global.root);
    for c in &names {
        match rt.stop(c, args.time.map(Duration::from_secs)) {
            Ok(()) => {
                // Its published ports are free for others until it starts.
                if let Ok(i) = rt.inspect(c)
                    && let Err(e) = net.set_running(&i.config.id, false)
                {
                    eprintln!("berth: {c}: cannot release its ports: {e}");
                }
                println!("{c}")
            }
            Err(e) => {
                eprintln!("berth: {c}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
