//! `rm`: remove the project's stopped containers, after asking (`-f`
//! does not ask); `-s` stops running ones first, otherwise they are left
//! alone. `-v` removes the anonymous volumes of the removed containers
//! too (named ones stay, as in Compose).

use std::io::{BufRead, Write};
use std::process::ExitCode;

use berth_reconcilers::ContainerRuntime;
use berth_reconcilers::desired::DEFAULT_STOP_GRACE;

use super::progress::{Events, Progress};
use super::project::{ComposeProject, Files, ProjectContainer};
use crate::cli::{GlobalOpts, ProjectOpts};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct RmFlags {
    /// Don't ask to confirm removal.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Stop the containers, if required, before removing.
    #[arg(short = 's', long)]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub fn run(opts: &ProjectOpts, flags: &RmFlags, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Optional)? else {
        return Ok(ExitCode::FAILURE);
    };
    cp.check_services(&flags.services)?;
    let events = Events::default();
    let containers = cp.containers(&flags.services, false);
    if flags.stop {
        for c in containers.iter().filter(|c| c.running()) {
            let grace = stop_grace(&cp, c);
            if let Err(e) = Progress::new(cp.engine.backends(), &events).stop(c.id(), grace, None) {
                eprintln!("berth: cannot stop {}: {e}", c.name());
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let stopped: Vec<ProjectContainer> = cp
        .containers(&flags.services, false)
        .into_iter()
        .filter(|c| !c.running())
        .collect();
    if stopped.is_empty() {
        println!("No stopped containers");
        return Ok(ExitCode::SUCCESS);
    }
    let names: Vec<&str> = stopped.iter().map(ProjectContainer::name).collect();
    println!("Going to remove {}", names.join(", "));
    if !flags.force && !confirm()? {
        return Ok(ExitCode::SUCCESS);
    }
    remove(&cp, &stopped, false, flags.volumes, &events)
}

/// Compose's prompt; anything but `y`/`yes` (or end of input) is no.
fn confirm() -> anyhow::Result<bool> {
    print!("? Are you sure? [yN] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Containers of services the project no longer declares.
pub fn orphans(cp: &ComposeProject) -> Vec<ProjectContainer> {
    cp.containers(&[], false)
        .into_iter()
        .filter(|c| !cp.project.services.contains_key(&c.service))
        .collect()
}

/// Removes `containers` (stopping running ones first when `stop`, and
/// their anonymous volumes when `volumes`) with progress lines.
pub fn remove(
    cp: &ComposeProject,
    containers: &[ProjectContainer],
    stop: bool,
    volumes: bool,
    events: &Events,
) -> anyhow::Result<ExitCode> {
    let backends = Progress::new(cp.engine.backends(), events);
    let mut code = ExitCode::SUCCESS;
    for c in containers {
        let result = if stop {
            backends
                .stop(c.id(), stop_grace(cp, c), None)
                .and_then(|()| backends.remove(c.id()))
        } else {
            backends.remove(c.id())
        };
        if let Err(e) = result {
            eprintln!("berth: cannot remove {}: {e}", c.name());
            code = ExitCode::FAILURE;
            continue;
        }
        if volumes && let Err(e) = cp.engine.volumes.remove_anonymous_of(&c.info.config) {
            eprintln!("berth: cannot remove the volumes of {}: {e}", c.name());
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

fn stop_grace(cp: &ComposeProject, c: &ProjectContainer) -> std::time::Duration {
    cp.project
        .services
        .get(&c.service)
        .and_then(|s| s.stop_grace_period)
        .map_or(DEFAULT_STOP_GRACE, |d| d.0)
}
