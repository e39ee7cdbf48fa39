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
    let net = berth_net::Net::open(&global.root);
    for c in &names {
        // A container on networks takes its published ports back (freed
        // at its stop) before it runs; a port taken meanwhile fails here.
        let id = rt.inspect(c).ok().map(|i| i.config.id);
        if let Some(id) = &id
            && let Err(e) = net.ensure(id).and_then(|()| net.set_running(id, true))
        {
            eprintln!("berth: {c}: {e}");
            code = ExitCode::FAILURE;
            continue;
        }
        let started = rt.start(c);
        if started.is_err()
            && let Some(id) = &id
        {
            let _ = net.set_running(id, false);
        }
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
