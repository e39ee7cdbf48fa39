//! Running one service's build ([`run_build`]) and where its steps are
//! reported: the log ([`Log`], the agent) or stderr as compose's plain
//! build progress ([`PlainBuildOutput`], CLI verbs): `[+] Building` once,
//! then BuildKit's lines with the service in the step name
//! (`#3 [web 2/3] RUN make`), numbered across the services built at the
//! same time so parallel builds do not share numbers.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use berth_build::{BuildError, Builder, Event, Progress};
use berth_image::Store;
use berth_reconcilers::container::BuildRequest;
use berth_reconcilers::{BackendError, ErrorKind};
use berth_runtime::Runtime;

use super::build_inputs::BuildInputs;
use super::build_request::translate;
use super::error::{from_image, from_runtime};

/// Where a build's progress goes.
pub trait BuildOutput: Send + Sync {
    /// The sink for one service's build.
    fn progress<'a>(&'a self, service: &'a str) -> Box<dyn Progress + 'a>;
    /// `quiet`: no step lines (`compose build -q`).
    fn quiet(&self) -> bool {
        false
    }
}

/// Steps to the log at debug level, failures and warnings at warn: the
/// agent's builds.
pub struct Log;

struct LogProgress<'a> {
    service: &'a str,
}

impl Progress for LogProgress<'_> {
    fn event(&self, event: Event) {
        let service = self.service;
        match event {
            Event::Started { vertex, name } => {
                tracing::debug!(%service, vertex, %name, "build step")
            }
            Event::Cached { vertex } => tracing::debug!(%service, vertex, "build step cached"),
            Event::Output { vertex, line, .. } => {
                tracing::debug!(%service, vertex, %line, "build output")
            }
            Event::Done { vertex, elapsed } => {
                tracing::debug!(%service, vertex, ?elapsed, "build step done")
            }
            Event::Failed { vertex, error, .. } => {
                tracing::warn!(%service, vertex, %error, "build step failed")
            }
            Event::Warning(w) => tracing::warn!(%service, warning = %w, "build"),
        }
    }
}

impl BuildOutput for Log {
    fn progress<'a>(&'a self, service: &'a str) -> Box<dyn Progress + 'a> {
        Box::new(LogProgress { service })
    }
}

/// Compose's plain build progress on stderr.
#[derive(Default)]
pub struct PlainBuildOutput {
    pub quiet: bool,
    header: AtomicBool,
    next_vertex: AtomicU32,
}

impl PlainBuildOutput {
    pub fn new(quiet: bool) -> Self {
        PlainBuildOutput {
            quiet,
            ..PlainBuildOutput::default()
        }
    }
}

struct PlainProgress<'a> {
    output: &'a PlainBuildOutput,
    service: &'a str,
    /// This build's vertex numbers → the numbers shown.
    vertices: Mutex<HashMap<u32, u32>>,
}

impl PlainProgress<'_> {
    fn shown(&self, vertex: u32) -> u32 {
        let Ok(mut map) = self.vertices.lock() else {
            return vertex;
        };
        *map.entry(vertex)
            .or_insert_with(|| self.output.next_vertex.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// `[2/3] RUN x` → `[web 2/3] RUN x`, as compose names a service's steps.
fn with_service(name: &str, service: &str) -> String {
    match name.strip_prefix('[') {
        Some(rest) => format!("[{service} {rest}"),
        None => format!("[{service}] {name}"),
    }
}

impl Progress for PlainProgress<'_> {
    fn event(&self, event: Event) {
        if self.output.quiet {
            return;
        }
        let line = match event {
            Event::Started { vertex, name } => {
                format!(
                    "#{} {}",
                    self.shown(vertex),
                    with_service(&name, self.service)
                )
            }
            Event::Cached { vertex } => format!("#{} CACHED", self.shown(vertex)),
            Event::Output {
                vertex,
                elapsed,
                line,
            } => format!(
                "#{} {:.3} {line}",
                self.shown(vertex),
                elapsed.as_secs_f64()
            ),
            Event::Done { vertex, elapsed } => {
                format!("#{} DONE {:.1}s", self.shown(vertex), elapsed.as_secs_f64())
            }
            Event::Failed {
                vertex,
                elapsed,
                error,
            } => {
                let v = self.shown(vertex);
                format!(
                    "#{v} ERROR: {error}\n#{v} FAILED {:.1}s",
                    elapsed.as_secs_f64()
                )
            }
            Event::Warning(w) => format!("WARNING: [{}] {w}", self.service),
        };
        // A closed stderr is no reason to stop a build.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

impl BuildOutput for PlainBuildOutput {
    fn progress<'a>(&'a self, service: &'a str) -> Box<dyn Progress + 'a> {
        if !self.quiet && !self.header.swap(true, Ordering::Relaxed) {
            let _ = writeln!(std::io::stderr().lock(), "[+] Building");
        }
        Box::new(PlainProgress {
            output: self,
            service,
            vertices: Mutex::new(HashMap::new()),
        })
    }

    fn quiet(&self) -> bool {
        self.quiet
    }
}

/// Builds `request`'s service with berth's builder and tags the result
/// with the service's image reference; returns the image ID.
pub fn run_build(
    store: &Store,
    runtime: &Runtime,
    output: &dyn BuildOutput,
    inputs: &BuildInputs,
    request: &BuildRequest,
) -> Result<String, BackendError> {
    let env = |k: &str| std::env::var(k).ok();
    let networks = super::build_network::BuildNetworks::open(store.root(), runtime.shim_exe());
    let builder = Builder::new(store.clone(), runtime.clone()).with_run_networks(networks);
    let mut build = translate(request, &env, &super::build_request::git_checkout(&builder))?;
    // Hashed before the build: a file edited while it runs makes the next
    // observation build again rather than be missed.
    let image_id = |r: &str| store.image(r).ok().map(|i| i.id.to_string());
    let digest = inputs.digest(&build, &image_id);
    // Ctrl+C (CLI) or the agent's shutdown cancels the build.
    let scope = crate::interrupt::BuildScope::enter();
    let cancel = scope.cancel_flag();
    build.cancel = Some(cancel.clone());
    let progress = output.progress(&request.service);
    build.cache_from = super::build_cache::fetch_sources(
        store,
        || super::images::Images::registry().ok(),
        &build.cache_from,
        &|w| progress.event(Event::Warning(w)),
    );
    let outcome = match builder.build(&build, progress.as_ref()) {
        Ok(o) => o,
        Err(e) => {
            // A cancelled build did not fail on its inputs: try it again.
            if let Ok(d) = &digest
                && !matches!(e, BuildError::Cancelled)
            {
                inputs.record_failure(&request.reference, d);
            }
            return Err(from_build(&request.service, e));
        }
    };
    drop(progress);
    drop(scope);
    if cancel.load(std::sync::atomic::Ordering::Relaxed) {
        // Cancelled after its last step: the image is there, but what was
        // to follow it (creating containers) is not wanted any more.
        return Err(from_build(&request.service, BuildError::Cancelled));
    }
    if !outcome.unused_args.is_empty() {
        tracing::warn!(service = %request.service, args = ?outcome.unused_args,
            "build args were not consumed by any ARG");
    }
    tracing::info!(service = %request.service, image = %outcome.image_id,
        executed = outcome.executed(), cached = outcome.cached(), "built");
    match digest {
        Ok(d) => inputs.record(&request.reference, &d, &outcome.image_id.to_string()),
        Err(e) => tracing::warn!(service = %request.service, error = %e,
            "cannot digest the build's inputs; a change to them will not trigger a rebuild"),
    }
    Ok(outcome.image_id.to_string())
}

/// A build failure as the reconciler's kinds: a Dockerfile, context or
/// step that fails is the project's to fix (retrying does not help).
fn from_build(service: &str, e: BuildError) -> BackendError {
    let kind = match &e {
        // A context or Dockerfile that is not there is the project's to fix.
        BuildError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Some(ErrorKind::InvalidArgument)
        }
        BuildError::Image(_) | BuildError::Runtime(_) | BuildError::Io { .. } => None,
        BuildError::BaseImageMissing { .. } => Some(ErrorKind::NotFound),
        _ => Some(ErrorKind::InvalidArgument),
    };
    match (kind, e) {
        (None, BuildError::Image(e)) => {
            let inner = from_image(e);
            BackendError::new(
                inner.kind(),
                format!("service {service:?}: build failed: {inner}"),
            )
        }
        (None, BuildError::Runtime(e)) => {
            let inner = from_runtime(e);
            BackendError::new(
                inner.kind(),
                format!("service {service:?}: build failed: {inner}"),
            )
        }
        (kind, e) => BackendError::new(
            kind.unwrap_or(ErrorKind::Internal),
            format!("service {service:?}: build failed: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::with_service;

    #[test]
    fn step_names_carry_the_service() {
        assert_eq!(with_service("[2/3] RUN make", "web"), "[web 2/3] RUN make");
        assert_eq!(
            with_service("[builder 1/4] FROM busybox", "api"),
            "[api builder 1/4] FROM busybox"
        );
        assert_eq!(with_service("resolve", "web"), "[web] resolve");
    }
}
