//! `pull`: the images of the project's services from their registries,
//! as `docker compose pull` does (each image once; services that build
//! their image or say `pull_policy: never` are left out).

use std::process::ExitCode;
use std::sync::Arc;

use berth_image::Reference;
use berth_image::registry::{NoProgress, PullOptions, PullStatus, block_on};

use super::project::{ComposeProject, Files};
use crate::cli::registry_opts::RegistryOpts;
use crate::cli::{GlobalOpts, ProjectOpts};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct PullFlags {
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Pull what can be pulled; report the failures but succeed.
    #[arg(long)]
    pub ignore_pull_failures: bool,
    /// Leave out services that have a `build:` section even when they
    /// name an image.
    #[arg(long)]
    pub ignore_buildable: bool,
    #[command(flatten)]
    pub registry: RegistryOpts,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub fn run(opts: &ProjectOpts, flags: &PullFlags, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Required)? else {
        return Ok(ExitCode::FAILURE);
    };
    cp.check_services(&flags.services)?;
    let registry = flags.registry.registry()?;
    let store = crate::cli::image::open_store(global)?;
    let mut done: Vec<String> = Vec::new();
    let mut failed = false;
    for (name, service) in &cp.project.services {
        if !flags.services.is_empty() && !flags.services.contains(name) {
            continue;
        }
        let Some(image) = &service.image else {
            continue;
        };
        let policy = service.pull_policy.as_deref().unwrap_or("missing");
        if policy == "never" || policy == "build" {
            continue;
        }
        if service.build.is_some() && flags.ignore_buildable {
            continue;
        }
        let reference = Reference::parse(image)?;
        if done.contains(&reference.to_string()) {
            continue;
        }
        done.push(reference.to_string());
        let outcome = block_on(registry.pull(
            &store,
            &reference,
            &PullOptions::default(),
            Arc::new(NoProgress),
        ))?;
        match outcome {
            Ok(o) => {
                if !flags.quiet {
                    let word = match o.status {
                        PullStatus::UpToDate => "Pulled (up to date)",
                        PullStatus::Downloaded => "Pulled",
                    };
                    eprintln!(" \u{2714} {name} {word}");
                }
            }
            // A service that builds its image may name one that exists
            // nowhere yet: docker compose warns and goes on.
            Err(e) if service.build.is_some() => {
                eprintln!(" ! {name} Warning: {e}");
            }
            Err(e) => {
                failed = true;
                eprintln!(" \u{2718} {name} Error: {e}");
            }
        }
    }
    Ok(if failed && !flags.ignore_pull_failures {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
