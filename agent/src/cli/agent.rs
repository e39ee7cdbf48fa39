//! `berth agent`: watch a directory (or follow a git repository) of
//! Compose projects, keep each one's containers in the state its files
//! declare, and serve their status. This module only turns flags into a
//! [`crate::supervisor::Config`] (opening the engine on `--root`, reading
//! the API token; the git flags in `agent_git.rs`) and runs the async
//! runtime.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_reconcilers::ExecuteOptions;

use super::GlobalOpts;
use super::secret_file::read_secret;
use crate::api::Auth;
use crate::engine::Engine;
use crate::listen::ListenAddr;
use crate::reconcile::{self, host::EngineHost};
use crate::supervisor;

/// The environment variable holding the API token, when there is no
/// `--token-file`.
const TOKEN_ENV: &str = "BERTH_API_TOKEN";

/// How long reconciles still running at shutdown are given to finish. A
/// reconcile cut short is safe (the next start converges), but one that
/// finishes leaves a tidier status.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["dir", "git"])))]
pub struct AgentArgs {
    /// Folder holding the Compose projects: itself and each subfolder with a
    /// compose file is one project.
    #[arg(long, value_name = "DIR", env = "BERTH_DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub git: super::agent_git::GitArgs,
    /// Where to serve the status API: `HOST:PORT` (loopback only unless
    /// `--allow-remote`), or `unix:/path/to.sock`.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:7878",
        env = "BERTH_LISTEN"
    )]
    pub listen: String,
    /// Allow `--listen` on a non-loopback address. Reads (status, metrics)
    /// are not authenticated: only do this behind a firewall or proxy you
    /// trust.
    #[arg(long)]
    pub allow_remote: bool,
    /// A file holding the bearer token that mutating API calls (reconcile,
    /// suspend, resume) must present; else `BERTH_API_TOKEN`. Without
    /// either, those calls are refused.
    #[arg(long, value_name = "FILE", env = "BERTH_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// How often to rescan and reconcile every project even without file
    /// events: repairs drift (a container stopped, removed or exited) and
    /// catches missed events.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub resync_interval: Duration,
    /// Leave containers of services no longer declared in place (by
    /// default they are removed, as `up --remove-orphans` does).
    #[arg(long)]
    pub keep_orphans: bool,
    /// How long a project's folder (or compose file) must stay gone before
    /// its containers and networks are removed (named volumes are kept).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub delete_grace: Duration,
    /// How many applied revisions each project keeps (for history and
    /// rollback), under `<root>/agent/projects/<name>/revisions/`.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub revision_history: usize,
    /// How long the services a new revision changed have to become
    /// healthy (or running, or completed) before the rollout fails.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = humantime::parse_duration)]
    pub health_timeout: Duration,
    /// How long a service without a healthcheck must keep running to
    /// pass the gate (a service's `deploy.update_config.monitor` wins).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub health_stable: Duration,
    /// What a failed health gate does unless a changed service's
    /// `deploy.update_config.failure_action` says otherwise: `rollback`
    /// (apply the previous revision again), `pause` (leave the new one,
    /// failed, and do not retry it) or `continue`.
    #[arg(long, value_name = "ACTION", default_value = "rollback", value_parser = parse_failure_action)]
    pub failure_action: reconcile::gate::FailureAction,
    /// How long file events are collected before a rescan.
    #[arg(long, value_name = "DURATION", default_value = "150ms", value_parser = humantime::parse_duration, hide = true)]
    pub debounce: Duration,
}

pub fn run(args: AgentArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let listen = ListenAddr::parse(&args.listen, args.allow_remote)?;
    anyhow::ensure!(
        !args.resync_interval.is_zero(),
        "--resync-interval must be greater than zero"
    );
    let source = match &args.git.git {
        Some(_) => Some(super::agent_git::source(&args.git, &global.root)?),
        None => None,
    };
    let dir = match (&source, &args.dir) {
        // The checkout may not exist yet (first start, remote down): the
        // supervisor scans it once the first checkout is there.
        (Some(source), _) => source.dir(),
        (None, Some(dir)) => {
            let dir = dir
                .canonicalize()
                .with_context(|| format!("--dir {}", dir.display()))?;
            anyhow::ensure!(dir.is_dir(), "--dir {} is not a directory", dir.display());
            dir
        }
        (None, None) => anyhow::bail!("give --dir DIR or --git URL"),
    };
    let auth = match token(args.token_file.as_deref())? {
        Some(token) => Auth::Token(token),
        None => {
            tracing::info!(
                "no API token configured (--token-file or {TOKEN_ENV}): mutating API calls are refused"
            );
            Auth::Disabled
        }
    };
    let runtime_handle = super::run::runtime(global);
    let engine = Engine::open(&global.root, runtime_handle.clone())
        .with_context(|| format!("cannot open berth's state under {}", global.root.display()))?;
    let config = supervisor::Config {
        reconcile: reconcile::Options {
            dir: dir.clone(),
            remove_orphans: !args.keep_orphans,
            delete_grace: args.delete_grace,
            max_retry_delay: args.resync_interval.min(Duration::from_secs(300)),
            // A wave's independent actions in parallel, as the CLI's `up`
            // (Compose's default limit).
            execute: ExecuteOptions {
                parallelism: 8,
                ..ExecuteOptions::default()
            },
            rollout: reconcile::rollout::RolloutOptions {
                dir: Some(global.root.join("agent").join("projects")),
                keep: args.revision_history,
                gate: reconcile::gate::GateDefaults {
                    timeout: args.health_timeout,
                    stable: args.health_stable,
                    failure_action: args.failure_action,
                },
            },
        },
        dir,
        listen,
        resync_interval: args.resync_interval,
        debounce: args.debounce,
        environment: loader_environment(super::process_environment()),
        host: Arc::new(EngineHost::new(engine, runtime_handle)),
        auth,
        suspensions: Some(global.root.join("agent").join("suspended.json")),
        source,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(supervisor::run(config));
    // Builds in flight stop at once (their RUN containers killed and
    // removed, with their network endpoints) rather than hold the
    // shutdown for the grace period.
    berth_agent::interrupt::cancel_builds();
    // Reconciles in flight run on blocking threads that cannot be
    // cancelled; give them a moment, then leave (what they did not finish,
    // the next start converges).
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    result?;
    Ok(ExitCode::SUCCESS)
}

fn parse_failure_action(text: &str) -> Result<reconcile::gate::FailureAction, String> {
    reconcile::gate::FailureAction::parse(text)
        .ok_or_else(|| format!("{text:?}: expected rollback, pause or continue"))
}

/// The API token: the first line of `--token-file`, else `BERTH_API_TOKEN`.
fn token(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let token = read_secret("--token-file", file, Some(TOKEN_ENV), "token")?;
    if let Some(path) = file {
        warn_if_readable_by_others(path);
    }
    Ok(token)
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "the token file is readable by other users; chmod 600 it"
        );
    }
}

/// The environment the agent hands the loader: the process environment
/// without the `COMPOSE_*` variables that select files, names and profiles,
/// since each project under `--dir` is defined by its own folder. (One
/// `COMPOSE_PROJECT_NAME` would give every project the same name.)
fn loader_environment(
    mut env: std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    for key in [
        "COMPOSE_FILE",
        "COMPOSE_PROJECT_NAME",
        "COMPOSE_PROFILES",
        "COMPOSE_ENV_FILES",
        "COMPOSE_PATH_SEPARATOR",
    ] {
        env.remove(key);
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_selection_variables_are_dropped() {
        let env = [("COMPOSE_PROJECT_NAME", "x"), ("HOME", "/root")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = loader_environment(env);
        assert_eq!(env.len(), 1);
        assert_eq!(env.get("HOME").map(String::as_str), Some("/root"));
    }

    #[test]
    fn the_token_is_the_first_line_of_the_file_trimmed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("token");
        std::fs::write(&path, "  s3cret \nignored\n").unwrap();
        assert_eq!(token(Some(&path)).unwrap().as_deref(), Some("s3cret"));
        std::fs::write(&path, "\n").unwrap();
        let err = token(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        assert!(token(Some(&tmp.path().join("missing"))).is_err());
    }
}
