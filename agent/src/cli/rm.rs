//! `berth rm [-f] [-v] NAME...`: running containers need `-f`; created and
//! exited ones do not. `-v` also removes the container's anonymous
//! volumes (named ones stay, as with Docker).

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the anonymous volumes the container uses, too.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(args: RmArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let rt = super::run::runtime(global);
    let mut code = ExitCode::SUCCESS;
    for c in &args.containers {
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
