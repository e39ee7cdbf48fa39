//! `berth start NAME...`: start created containers.

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct StartArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(args: StartArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let rt = super::run::runtime(global);
    let mut code = ExitCode::SUCCESS;
    for c in &args.containers {
        match rt.start(c) {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("berth: {c}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
