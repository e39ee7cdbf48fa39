//! `berth rm [-f] NAME...`.

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
        match rt.remove(c, args.force) {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("berth: {c}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
