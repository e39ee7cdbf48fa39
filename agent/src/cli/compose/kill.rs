//! `kill`: send a signal (SIGKILL by default) to the project's running
//! containers. Unlike `stop`, it does not mark them stopped by the user:
//! a restart policy applies to what the signal ends, as with Docker.

use std::process::ExitCode;

use anyhow::bail;

use super::progress::Events;
use super::project::{ComposeProject, Files};
use crate::cli::{GlobalOpts, ProjectOpts};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct KillFlags {
    /// SIGNAL to send to the containers (name or number).
    #[arg(short = 's', long, default_value = "SIGKILL", value_name = "SIGNAL")]
    pub signal: String,
    /// Remove containers for services not defined in the Compose file.
    #[arg(long)]
    pub remove_orphans: bool,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub fn run(opts: &ProjectOpts, flags: &KillFlags, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Optional)? else {
        return Ok(ExitCode::FAILURE);
    };
    let code = kill(&cp, &flags.services, &flags.signal)?;
    if flags.remove_orphans {
        let orphans = super::rm::orphans(&cp);
        super::rm::remove(&cp, &orphans, true, false, &Events::default())?;
    }
    Ok(code)
}

/// Also `berth kill SERVICE` at the top level.
pub fn kill(cp: &ComposeProject, services: &[String], signal: &str) -> anyhow::Result<ExitCode> {
    cp.check_services(services)?;
    let sig = berth_runtime::parse_signal(signal)?;
    let running: Vec<_> = cp
        .containers(services, false)
        .into_iter()
        .filter(|c| c.running())
        .collect();
    if running.is_empty() {
        bail!("no container to kill");
    }
    let events = Events::default();
    let mut code = ExitCode::SUCCESS;
    for c in &running {
        events.container(c.name(), "Killing");
        match cp.runtime.kill(c.id(), sig) {
            Ok(()) => events.container(c.name(), "Killed"),
            Err(e) => {
                events.container(c.name(), "Error");
                eprintln!("berth: cannot kill {}: {e}", c.name());
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
