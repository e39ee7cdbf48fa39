//! `berth stop [-t SECONDS] NAME...`. Like `docker stop`, marks the
//! container stopped on purpose (see `engine::mark_manually_stopped`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before SIGKILL.
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(args: StopArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let rt = super::run::runtime(global);
    let mut code = ExitCode::SUCCESS;
    for c in &args.containers {
        // Recorded before the stop, so nothing observes this exit without
        // it (the agent would take it for a crash).
        let before = crate::engine::mark_manually_stopped(&rt, c).ok();
        match rt.stop(c, args.time.map(Duration::from_secs)) {
            Ok(()) => println!("{c}"),
            Err(e) => {
                if let Some(before) = before {
                    let _ = crate::engine::restore_manually_stopped(&rt, c, before);
                }
                eprintln!("berth: {c}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
