//! `pause` and `unpause`: freeze and thaw the project's running
//! containers through the cgroup freezer (`Runtime::pause`).

use std::process::ExitCode;

use super::progress::Events;
use super::project::{ComposeProject, Files};
use crate::cli::{GlobalOpts, ProjectOpts};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct PauseFlags {
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub fn run(
    opts: &ProjectOpts,
    flags: &PauseFlags,
    global: &GlobalOpts,
    pause: bool,
) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Optional)? else {
        return Ok(ExitCode::FAILURE);
    };
    apply(&cp, &flags.services, pause)
}

/// Also `berth pause SERVICE` at the top level.
pub fn apply(cp: &ComposeProject, services: &[String], pause: bool) -> anyhow::Result<ExitCode> {
    cp.check_services(services)?;
    let events = Events::default();
    let (before, after) = if pause {
        ("Pausing", "Paused")
    } else {
        ("Unpausing", "Unpaused")
    };
    let mut code = ExitCode::SUCCESS;
    for c in cp
        .containers(services, false)
        .iter()
        .filter(|c| c.running())
    {
        let paused = cp.runtime.is_paused(c.id());
        if paused == pause {
            continue;
        }
        events.container(c.name(), before);
        let result = if pause {
            cp.runtime.pause(c.id())
        } else {
            cp.runtime.unpause(c.id())
        };
        match result {
            Ok(()) => events.container(c.name(), after),
            Err(e) => {
                events.container(c.name(), "Error");
                eprintln!("berth: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
