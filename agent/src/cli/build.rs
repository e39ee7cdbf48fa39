//! `berth build`: `docker build` on berth's builder. Progress is printed
//! as BuildKit's `--progress=plain` (`#N [stage i/n] INSTRUCTION`, output
//! lines with their time, `#N CACHED`, `#N DONE 0.1s`) on stderr; `-q`
//! prints only the image ID on stdout.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, bail};
use berth_build::{
    BuildNetwork, BuildRequest, Builder, DockerfileSource, Event, Progress, SecretSource,
};
use clap::{Args, ValueEnum};

use super::GlobalOpts;
use super::image::open_store;
use super::run::runtime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Plain,
    Tty,
    Quiet,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally tag the image (`name:tag`); repeatable.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// The Dockerfile (default `CONTEXT/Dockerfile`; `-` reads stdin).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<String>,
    /// Set a build argument (`K=V`, or `K` to take it from the environment).
    #[arg(long = "build-arg", value_name = "K[=V]")]
    pub build_args: Vec<String>,
    /// Build up to this stage.
    #[arg(long)]
    pub target: Option<String>,
    /// Run every step, ignoring the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Add a label to the image (`K=V`).
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Network of RUN steps: `default` (= none: berth has no build bridge
    /// yet), `none` or `host`.
    #[arg(long, default_value = "default")]
    pub network: String,
    /// A secret for RUN --mount=type=secret: `id=ID,src=FILE` or `id=ID,env=VAR`.
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    pub secrets: Vec<String>,
    /// Progress output: auto, plain, tty (plain here), quiet.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Print only the image ID.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Only the host's platform (`linux/amd64` here) can be built.
    #[arg(long)]
    pub platform: Option<String>,
    /// /dev/shm size of RUN containers (`64m`).
    #[arg(long, value_parser = super::run::parse_bytes)]
    pub shm_size: Option<i64>,
    /// Accepted for compatibility; the local cache is always used.
    #[arg(long = "cache-from", value_name = "REF")]
    pub cache_from: Vec<String>,
    /// The build context directory. In a compose project, no folder but
    /// service names (or nothing) means `compose build [SERVICE...]`.
    #[arg(value_name = "CONTEXT")]
    pub context: Option<PathBuf>,
    /// More services, for the compose meaning.
    #[arg(value_name = "SERVICE", hide = true)]
    pub more: Vec<String>,
}

/// BuildKit's plain progress on stderr.
struct PlainProgress {
    out: Mutex<std::io::Stderr>,
    names: Mutex<BTreeMap<u32, String>>,
}

impl Progress for PlainProgress {
    fn event(&self, event: Event) {
        let Ok(mut out) = self.out.lock() else {
            return;
        };
        let _ = match event {
            Event::Started { vertex, name } => {
                if let Ok(mut n) = self.names.lock() {
                    n.insert(vertex, name.clone());
                }
                writeln!(out, "#{vertex} {name}")
            }
            Event::Cached { vertex } => writeln!(out, "#{vertex} CACHED"),
            Event::Output {
                vertex,
                elapsed,
                line,
            } => writeln!(out, "#{vertex} {:.3} {line}", elapsed.as_secs_f64()),
            Event::Done { vertex, elapsed } => {
                writeln!(out, "#{vertex} DONE {:.1}s", elapsed.as_secs_f64())
            }
            Event::Failed {
                vertex,
                elapsed,
                error,
            } => writeln!(
                out,
                "#{vertex} ERROR: {error}\n#{vertex} FAILED {:.1}s",
                elapsed.as_secs_f64()
            ),
            Event::Warning(w) => writeln!(out, "WARNING: {w}"),
        };
    }
}

struct QuietProgress;

impl Progress for QuietProgress {
    fn event(&self, _event: Event) {}
}

/// Docker's meaning when given one folder; else the names are services
/// of the project found from the current folder (none: all of them).
pub fn compose_services(args: &BuildArgs) -> Option<Vec<String>> {
    match &args.context {
        Some(c) if c.is_dir() && args.more.is_empty() => None,
        Some(c) => Some(
            std::iter::once(c.to_string_lossy().into_owned())
                .chain(args.more.iter().cloned())
                .collect(),
        ),
        None => Some(Vec::new()),
    }
}

pub fn run(args: BuildArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    if let Some(services) = compose_services(&args) {
        let flags = super::compose::build::BuildFlags {
            no_cache: args.no_cache,
            pull: false,
            build_args: args.build_args.clone(),
            quiet: args.quiet || args.progress == ProgressMode::Quiet,
            services,
        };
        return super::compose::build::run(&super::ProjectOpts::default(), &flags, global);
    }
    let started = Instant::now();
    let store = open_store(global)?;
    let builder = Builder::new(store, runtime(global));
    let mut request = request(&args)?;
    // Ctrl-C (or SIGTERM) stops the build: the running RUN container is
    // killed and removed, not left behind with its shim.
    let scope = berth_agent::interrupt::BuildScope::enter();
    request.cancel = Some(scope.cancel_flag());
    let quiet = args.quiet || args.progress == ProgressMode::Quiet;
    let plain = PlainProgress {
        out: Mutex::new(std::io::stderr()),
        names: Mutex::new(BTreeMap::new()),
    };
    let progress: &dyn Progress = if quiet { &QuietProgress } else { &plain };
    let _ = std::io::stderr().is_terminal();
    let outcome = match builder.build(&request, progress) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ERROR: failed to build: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if !outcome.unused_args.is_empty() && !quiet {
        eprintln!(
            "[Warning] One or more build-args [{}] were not consumed",
            outcome.unused_args.join(" ")
        );
    }
    if let Some(path) = &args.iidfile {
        std::fs::write(path, outcome.image_id.to_string())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if quiet {
        println!("{}", outcome.image_id);
    } else {
        eprintln!("#0 writing image {} done", outcome.image_id);
        for t in &outcome.tags {
            eprintln!("#0 naming to {t} done");
        }
        eprintln!(
            "#0 DONE {:.1}s ({} steps run, {} cached)",
            started.elapsed().as_secs_f64(),
            outcome.executed(),
            outcome.cached()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn request(args: &BuildArgs) -> anyhow::Result<BuildRequest> {
    let dockerfile = match args.file.as_deref() {
        None => None,
        Some("-") => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read the Dockerfile from stdin")?;
            Some(DockerfileSource::Inline(text))
        }
        Some(p) => Some(DockerfileSource::Path(PathBuf::from(p))),
    };
    let mut build_args = BTreeMap::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_owned(), v.to_owned());
            }
            None => {
                // Docker: `--build-arg K` takes K from the environment,
                // and is skipped when it is not set.
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
        }
    }
    let mut labels = BTreeMap::new();
    for l in &args.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_owned(), v.to_owned());
    }
    let network = match args.network.as_str() {
        "default" | "none" => BuildNetwork::None,
        "host" => BuildNetwork::Host,
        other => bail!("--network {other:?}: berth builds with default, none or host"),
    };
    let mut secrets = BTreeMap::new();
    for s in &args.secrets {
        let mut id = None;
        let mut source = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_owned()),
                Some(("src" | "source", v)) => source = Some(SecretSource::File(PathBuf::from(v))),
                Some(("env", v)) => {
                    let value = std::env::var(v).with_context(|| {
                        format!("--secret {s}: environment variable {v} is not set")
                    })?;
                    source = Some(SecretSource::Value(value.into_bytes()));
                }
                Some(("type", _)) => {}
                _ => bail!("--secret {s:?}: expected id=ID,src=FILE or id=ID,env=VAR"),
            }
        }
        let Some(id) = id else {
            bail!("--secret {s:?}: missing id=");
        };
        let source = match source {
            Some(s) => s,
            // Docker: with only an id, the env var of that name, then a file.
            None => match std::env::var(&id) {
                Ok(v) => SecretSource::Value(v.into_bytes()),
                Err(_) => SecretSource::File(PathBuf::from(&id)),
            },
        };
        secrets.insert(id, source);
    }
    Ok(BuildRequest {
        context: args.context.clone().unwrap_or_default(),
        dockerfile,
        build_args,
        target: args.target.clone(),
        labels,
        tags: args.tags.clone(),
        no_cache: args.no_cache,
        network,
        shm_size: args.shm_size.map(|s| s as u64),
        cache_from: args.cache_from.clone(),
        secrets,
        platform: args.platform.clone(),
        cancel: None,
    })
}
