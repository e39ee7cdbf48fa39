//! `berth version`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Print only the version number.
    #[arg(long)]
    short: bool,
}

pub fn run(args: &VersionArgs) -> anyhow::Result<ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    if args.short {
        println!("{version}");
    } else {
        println!("berth version {version}");
    }
    Ok(ExitCode::SUCCESS)
}
