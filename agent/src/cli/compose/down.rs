//! `down`: stop and remove the project's containers (dependents first),
//! then its networks; with `-v` the volumes it created (never an external
//! one), with `--rmi` its images. Containers of services the file no
//! longer declares stay unless `--remove-orphans`, as in Compose, and the
//! networks stay with them. `down SERVICE...` removes those services and
//! their dependents, and leaves networks and volumes to the rest.
//!
//! Works from the project name alone (`-p NAME` with no compose file):
//! then everything carrying the project's label goes.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use berth_image::Store;
use berth_reconcilers::{Observed, Operation, PlanOptions, desired};
use clap::ValueEnum;

use super::apply::exit_code;
use super::progress::Events;
use super::project::{ComposeProject, Files};
use crate::cli::{GlobalOpts, ProjectOpts};
use crate::containers;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct DownFlags {
    /// Remove containers for services not defined in the Compose file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Remove the named volumes declared in the `volumes` section (not
    /// external ones) and anonymous volumes attached to containers.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove images used by services: `local` only those without a
    /// custom tag (`image:`), `all` every one.
    #[arg(long, value_enum, value_name = "TYPE")]
    pub rmi: Option<Rmi>,
    /// Seconds to wait for each container to stop before killing it;
    /// overrides `stop_grace_period`.
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Only these services (and those that depend on them).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rmi {
    Local,
    All,
}

pub fn run(opts: &ProjectOpts, flags: &DownFlags, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Optional)? else {
        return Ok(ExitCode::FAILURE);
    };
    cp.check_services(&flags.services)?;
    let options = PlanOptions {
        operation: Operation::Down {
            volumes: flags.volumes,
        },
        services: flags.services.clone(),
        // Known by name only, every container is "undeclared": all go.
        remove_orphans: flags.remove_orphans || !cp.declared,
        stop_timeout: flags.timeout.map(Duration::from_secs),
        ..PlanOptions::default()
    };
    let (observed, plan) = cp.plan(&options)?;
    if !options.remove_orphans {
        warn_orphans(&cp, &observed);
    }
    let events = Events::default();
    if plan.is_empty() && flags.rmi.is_none() {
        eprintln!(
            "Warning: No resource found to remove for project {:?}.",
            cp.name()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let report = cp.execute(&plan, &events);
    let mut code = exit_code(&report);
    if let Some(rmi) = flags.rmi
        && report.succeeded()
        && !remove_images(&cp, &observed, rmi, global, &events)?
    {
        code = ExitCode::FAILURE;
    }
    Ok(code)
}

fn warn_orphans(cp: &ComposeProject, observed: &Observed) {
    let orphans: Vec<&str> = observed
        .project_containers(cp.name())
        .filter(|c| {
            !c.service()
                .is_some_and(|s| cp.project.services.contains_key(s))
        })
        .map(|c| c.name.as_str())
        .collect();
    if !orphans.is_empty() {
        eprintln!(
            "WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            orphans.join(" ")
        );
    }
}

/// The images `--rmi` names: with `local`, those Compose named itself
/// (`<project>-<service>`, for services with no `image:`); with `all`,
/// every service's, and the images of the containers just removed.
fn images_to_remove(cp: &ComposeProject, observed: &Observed, rmi: Rmi) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, service) in &cp.project.services {
        if rmi == Rmi::All || service.image.is_none() {
            out.insert(desired::image_reference(cp.name(), name, service));
        }
    }
    if rmi == Rmi::All {
        out.extend(
            observed
                .project_containers(cp.name())
                .map(|c| c.image.clone())
                .filter(|i| !i.is_empty()),
        );
    }
    out
}

/// Removes each image that is present; one not present is skipped, one
/// still in use by another container is reported. False when any failed.
fn remove_images(
    cp: &ComposeProject,
    observed: &Observed,
    rmi: Rmi,
    global: &GlobalOpts,
    events: &Events,
) -> anyhow::Result<bool> {
    let store = Store::open(&global.root)?;
    let mut ok = true;
    for reference in images_to_remove(cp, observed, rmi) {
        if store.image(&reference).is_err() {
            continue;
        }
        let resource = format!("Image {reference}");
        events.event(&resource, "Removing");
        let in_use =
            |id: &berth_image::Digest| containers::container_using(&cp.runtime, id).is_some();
        match store.remove(&reference, false, &in_use) {
            Ok(_) => events.event(&resource, "Removed"),
            Err(e) => {
                events.event(&resource, "Error");
                eprintln!("berth: cannot remove image {reference}: {e}");
                ok = false;
            }
        }
    }
    Ok(ok)
}
