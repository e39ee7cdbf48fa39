//! `build [SERVICE...]`: build the images of the services with `build:`
//! (all of them, or the named ones), in parallel, as `docker compose
//! build` does; services without `build:` are skipped. The steps go to
//! stderr as compose's plain build progress; `-q` shows none.
//!
//! `--pull` (and `build.pull: true`) pulls the base images (each stage's
//! `FROM` that is no stage and not `scratch`) before building; without a
//! registry client that fails naming the image, rather than build on a
//! stale base silently.
//!
//! `berth build` takes this meaning when what follows it is no folder
//! (`berth build`, `berth build web`), see `cli::build`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use berth_reconcilers::ImageSource;
use berth_reconcilers::desired;

use super::progress::Events;
use super::project::{ComposeProject, Files};
use crate::cli::{GlobalOpts, ProjectOpts};
use crate::engine::PlainBuildOutput;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct BuildFlags {
    /// Do not use the cache when building the images.
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the base images.
    #[arg(long)]
    pub pull: bool,
    /// Set a build argument for the services (`K=V`, or `K` to take it
    /// from the environment); repeatable.
    #[arg(long = "build-arg", value_name = "K[=V]")]
    pub build_args: Vec<String>,
    /// Don't print anything to stdout or stderr but errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub fn run(
    opts: &ProjectOpts,
    flags: &BuildFlags,
    global: &GlobalOpts,
) -> anyhow::Result<ExitCode> {
    let Some(mut cp) = ComposeProject::open(opts, global, Files::Required)? else {
        return Ok(ExitCode::FAILURE);
    };
    cp.check_services(&flags.services)?;
    cp.engine
        .images
        .set_build_output(Arc::new(PlainBuildOutput::new(flags.quiet)));
    let requests = requests(&cp, flags)?;
    if requests.is_empty() {
        if !flags.quiet {
            eprintln!("no service to build: none of the selected services has build:");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let events = Events::default();
    let images = &cp.engine.images;
    let mut results: Vec<(String, Result<String, berth_reconcilers::BackendError>)> = Vec::new();
    for wave in waves(&requests) {
        let done: Vec<(String, Result<String, berth_reconcilers::BackendError>)> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = wave
                    .iter()
                    .map(|r| {
                        let events = &events;
                        let quiet = flags.quiet;
                        scope.spawn(move || {
                            let resource = format!("Service {}", r.service);
                            if !quiet {
                                events.event(&resource, "Building");
                            }
                            let out = images.build(r);
                            if !quiet && out.is_ok() {
                                events.event(&resource, "Built");
                            }
                            (r.service.clone(), out)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            (
                                String::new(),
                                Err(berth_reconcilers::BackendError::new(
                                    berth_reconcilers::ErrorKind::Internal,
                                    "a build thread panicked",
                                )),
                            )
                        })
                    })
                    .collect()
            });
        let wave_failed = done.iter().any(|(_, r)| r.is_err());
        results.extend(done);
        // What the next waves read was not built.
        if wave_failed {
            break;
        }
    }
    let mut failed = false;
    for (_, result) in results {
        if let Err(e) = result {
            eprintln!("failed to solve: {e}");
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The requests in groups that build in parallel: a build that reads
/// another service's image (`service:NAME` context) comes in a group
/// after that service's build.
fn waves(
    requests: &[berth_reconcilers::container::BuildRequest],
) -> Vec<Vec<&berth_reconcilers::container::BuildRequest>> {
    let mut left: Vec<&berth_reconcilers::container::BuildRequest> = requests.iter().collect();
    let mut out = Vec::new();
    while !left.is_empty() {
        let pending: Vec<&str> = left.iter().map(|r| r.service.as_str()).collect();
        let (ready, wait): (Vec<_>, Vec<_>) = left
            .into_iter()
            .partition(|r| r.service_contexts().all(|s| !pending.contains(&s)));
        if ready.is_empty() {
            // A cycle (the loader refuses them): build the rest together.
            out.push(wait);
            break;
        }
        out.push(ready);
        left = wait;
    }
    out
}

/// One builder request per selected service with `build:`, with the
/// command line's build args over the file's and `--no-cache`.
fn requests(
    cp: &ComposeProject,
    flags: &BuildFlags,
) -> anyhow::Result<Vec<berth_reconcilers::container::BuildRequest>> {
    let mut overrides: BTreeMap<String, Option<String>> = BTreeMap::new();
    for a in &flags.build_args {
        match a.split_once('=') {
            Some((k, v)) => overrides.insert(k.to_owned(), Some(v.to_owned())),
            None => overrides.insert(a.clone(), None),
        };
    }
    let mut out = Vec::new();
    for (name, service) in &cp.project.services {
        if !flags.services.is_empty() && !flags.services.contains(name) {
            continue;
        }
        let Some(build) = &service.build else {
            continue;
        };
        let reference = desired::image_reference(&cp.project.name, name, service);
        let mut request = desired::build_request(&cp.project, name, &reference, build);
        for (k, v) in &overrides {
            request.build.args.insert(k.clone(), v.clone());
        }
        request.build.no_cache |= flags.no_cache;
        request.build.pull |= flags.pull;
        out.push(request);
    }
    Ok(out)
}
