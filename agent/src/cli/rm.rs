//! `berth rm [-f] NAME...`: running containers need `-f`; created and
//! exited ones do not.

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short = 'f', long)]
    pub force: bool,
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
        let force = args.force || rt.inspect(c).is_ok_and(|i| i.observed.status == "created");
        let id = rt.resolve(c).ok();
        match rt.remove(c, force) {
            Ok(()) => {
                // The container's namespace, interfaces and ports go with it.
                if let Some(id) = id
                    && let Err(e) = berth_net::Net::open(&global.root).detach(&id)
                {
                    eprintln!("berth: {c}: removing its networking: {e}");
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
