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
    BuildRequest, Builder, DockerfileSource, Event, ExtraHost, NamedContext, Progress, SecretSource,
};
use berth_runtime::Rlimit;
use clap::{Args, ValueEnum};

use super::GlobalOpts;
use super::image::open_store;
use super::run::runtime;
use crate::engine::build_cache as berth_build_cache;
use crate::engine::build_request;

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
    /// Network of RUN steps: `default` (berth's bridge, with a way out
    /// through the host), `none`, `host`, or a network's name.
    #[arg(long, default_value = "default")]
    pub network: String,
    /// An /etc/hosts line of RUN steps (`NAME:IP`, `NAME=IP`, IP may be
    /// `[IPv6]` or `host-gateway`); repeatable.
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_hosts: Vec<String>,
    /// Grant an entitlement: `security.insecure` (RUN --security=insecure
    /// runs privileged) or `network.host` (RUN --network=host); repeatable.
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// A resource limit of RUN steps (`nofile=1024:2048`, `nproc=512`);
    /// repeatable.
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
    /// A secret for RUN --mount=type=secret: `id=ID,src=FILE` or `id=ID,env=VAR`.
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    pub secrets: Vec<String>,
    /// An ssh agent for RUN --mount=type=ssh and ssh git remotes:
    /// `default` (`$SSH_AUTH_SOCK`), `ID=SOCKET` or `ID=KEY[,KEY]`.
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET|KEY[,KEY]]")]
    pub ssh: Vec<String>,
    /// A named context for FROM, COPY --from and RUN --mount=from:
    /// `NAME=PATH`, `NAME=docker-image://REF` or `NAME=<git url>`.
    #[arg(
        long = "build-context",
        value_name = "NAME=PATH|docker-image://REF|URL"
    )]
    pub build_contexts: Vec<String>,
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
    /// Import the inline cache of an image: `REF` (the local image, else
    /// pulled) or `type=registry,ref=REF` (pulled). Repeatable; a source
    /// that cannot be had is warned about. The local cache is always used.
    #[arg(long = "cache-from", value_name = "REF")]
    pub cache_from: Vec<String>,
    /// Export the cache: only `type=inline` (the steps' cache keys in the
    /// image config, for `--cache-from` elsewhere).
    #[arg(long = "cache-to", value_name = "type=inline")]
    pub cache_to: Vec<String>,
    /// The build context: a directory or a git URL (`URL#ref:subdir`). In
    /// a compose project, no folder but service names (or nothing) means
    /// `compose build [SERVICE...]`.
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
        Some(c) if (c.is_dir() || is_git_context(c)) && args.more.is_empty() => None,
        Some(c) => Some(
            std::iter::once(c.to_string_lossy().into_owned())
                .chain(args.more.iter().cloned())
                .collect(),
        ),
        None => Some(Vec::new()),
    }
}

fn is_git_context(context: &std::path::Path) -> bool {
    context.to_str().is_some_and(berth_build::git::is_git_url)
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
    let rt = runtime(global);
    let networks = crate::engine::build_network::BuildNetworks::open(&global.root, rt.shim_exe());
    let builder = Builder::new(store, rt).with_run_networks(networks);
    let mut request = request(&args)?;
    if let Some(url) = args.context.as_deref().filter(|c| is_git_context(c)) {
        let url = url.to_string_lossy();
        let checkout = match builder.git_context(&url, &request) {
            Ok(dir) => dir,
            Err(e) => {
                eprintln!("ERROR: failed to build: {e}");
                return Ok(ExitCode::from(1));
            }
        };
        // docker: `-f` of a remote context is a path inside it.
        if let Some(DockerfileSource::Path(p)) = &mut request.dockerfile
            && p.is_relative()
        {
            *p = checkout.join(&*p);
        }
        request.context = checkout;
    }
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
    request.cache_from = berth_build_cache::fetch_sources(
        builder.store(),
        || {
            super::registry_opts::RegistryOpts::default()
                .registry()
                .ok()
        },
        &request.cache_from,
        &|w| progress.event(Event::Warning(w)),
    );
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
    let network = build_request::network(&args.network)
        .map_err(|e| anyhow::anyhow!("invalid --network {:?}: {e}", args.network))?;
    let mut extra_hosts = Vec::new();
    for (name, address) in super::run_net::parse_add_host(&args.add_hosts)? {
        extra_hosts
            .push(ExtraHost::new(&name, &address).map_err(|e| anyhow::anyhow!("--add-host: {e}"))?);
    }
    let entitlements = build_request::entitlements(&args.allow, false)
        .map_err(|e| anyhow::anyhow!("--allow: {e}"))?;
    let ulimits = args
        .ulimits
        .iter()
        .map(|u| parse_ulimit(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ulimits = build_request::build_rlimits(ulimits, "berth build")
        .map_err(|e| anyhow::anyhow!("--ulimit: {e}"))?;
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
    for spec in &args.cache_to {
        berth_build_cache::parse_cache_to(spec).map_err(|m| anyhow::anyhow!("--cache-to: {m}"))?;
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
        extra_hosts,
        ulimits,
        entitlements,
        shm_size: args.shm_size.map(|s| s as u64),
        cache_from: args.cache_from.clone(),
        inline_cache: !args.cache_to.is_empty(),
        secrets,
        ssh: build_request::ssh_sources(
            args.ssh.iter().map(|s| match s.split_once('=') {
                Some((id, paths)) => (id.to_owned(), Some(paths.to_owned())),
                None => (s.clone(), None),
            }),
            &|k| std::env::var(k).ok(),
        )
        .map_err(|e| anyhow::anyhow!("--ssh: {e}"))?,
        named_contexts: named_contexts(&args.build_contexts)?,
        platform: args.platform.clone(),
        cancel: None,
    })
}

/// `--build-context NAME=VALUE` list.
fn named_contexts(items: &[String]) -> anyhow::Result<BTreeMap<String, NamedContext>> {
    let mut out = BTreeMap::new();
    for item in items {
        let Some((name, value)) = item
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        else {
            bail!(
                "--build-context {item:?}: expected NAME=PATH, NAME=docker-image://REF or NAME=<git url>"
            );
        };
        let context = NamedContext::parse(value)
            .map_err(|e| anyhow::anyhow!("--build-context {name}: {e}"))?;
        out.insert(name.to_owned(), context);
    }
    Ok(out)
}

/// `--ulimit NAME=SOFT[:HARD]` (Docker's form; one number sets both, -1
/// is unlimited).
fn parse_ulimit(value: &str) -> anyhow::Result<Rlimit> {
    let bad = || {
        anyhow::anyhow!(
            "invalid --ulimit {value:?}: expected NAME=SOFT[:HARD], like nofile=1024:2048 (-1 is unlimited)"
        )
    };
    let (name, limits) = value.split_once('=').ok_or_else(bad)?;
    let number = |s: &str| s.trim().parse::<i64>().map_err(|_| bad());
    let (soft, hard) = match limits.split_once(':') {
        Some((soft, hard)) => (number(soft)?, number(hard)?),
        None => {
            let n = number(limits)?;
            (n, n)
        }
    };
    if name.is_empty() {
        return Err(bad());
    }
    Ok(Rlimit {
        name: name.to_owned(),
        soft,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_take_dockers_form() {
        let r = |name: &str, soft, hard| Rlimit {
            name: name.into(),
            soft,
            hard,
        };
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            r("nofile", 1024, 2048)
        );
        assert_eq!(parse_ulimit("nproc=512").unwrap(), r("nproc", 512, 512));
        assert_eq!(parse_ulimit("core=-1").unwrap(), r("core", -1, -1));
        for bad in ["nofile", "=1", "nofile=", "nofile=a:b", "nofile=1:2:3"] {
            let e = parse_ulimit(bad).unwrap_err().to_string();
            assert!(e.contains("NAME=SOFT[:HARD]"), "{bad}: {e}");
        }
    }
}
