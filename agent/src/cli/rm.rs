//! `berth rm [-f] [-v] NAME...`: running containers need `-f`; created and
//! exited ones do not. `-v` also removes the container's anonymous
//! volumes (named ones stay, as with Docker).
//! Service names and `-p`/`--file` remove that service's containers,
//! with docker's `-f` (see `compose::toplevel`).

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;
use super::compose::{Targets, TopLevelProject};

#[derive(Debug, Args)]
pub struct RmArgs {
    #[command(flatten)]
    pub project: TopLevelProject,
    /// Kill a running container first.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the anonymous volumes the container uses, too.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Containers (names or IDs), or services of the project.
    #[arg(required_unless_present_any = ["files", "project_name", "project_directory"])]
    pub containers: Vec<String>,
}

pub fn run(args: RmArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let names = match args.project.targets(&args.containers, global)? {
        Targets::Services(cp, services) => {
            // docker's flag, compose's selection: -f also removes running
            // containers (stopping them), and nothing is asked.
            let containers = cp.containers(&services, false);
            let events = super::compose::progress::Events::default();
            if !args.force
                && let Some(c) = containers.iter().find(|c| c.running())
            {
                anyhow::bail!(
                    "container {} is running: stop it first, or use -f",
                    c.name()
                );
            }
            return super::compose::rm::remove(&cp, &containers, args.force, args.volumes, &events);
        }
        Targets::Containers(names) => names,
    };
    let rt = super::run::runtime(global);
    let mut code = ExitCode::SUCCESS;
    for c in &names {
        // Like Docker, a created container goes without -f: its pid 1 only
        // waits for `start` and has run none of the user's code, though
        // the runtime sees a live shim and process.
        let info = rt.inspect(c);
        let force = args.force || info.as_ref().is_ok_and(|i| i.observed.status == "created");
        match rt.remove(c, force) {
            Ok(()) => {
                if args.volumes
                    && let Ok(i) = &info
                    && let Err(e) = crate::engine::Volumes::new(&global.root, rt.clone())
                        .remove_anonymous_of(&i.config)
                {
                    eprintln!("berth: {c}: {e}");
                    code = ExitCode::FAILURE;
                }
                println!("{c}");
            }
            Err(e) => {
                eprintln!("berth: {c}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
