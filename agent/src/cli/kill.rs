//! `berth kill [-s SIGNAL] NAME...`.

use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal name or number.
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(args: KillArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let rt = super::run::runtime(global);
    let signal = berth_runtime::parse_signal(&args.signal)?;
    let mut code = ExitCode::SUCCESS;
    for c in &args.containers {
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
