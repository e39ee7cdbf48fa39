//! `berth agent`: watch a directory of Compose projects and serve their
//! status. This module only turns flags into a [`crate::supervisor::Config`]
//! and starts the async runtime.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::listen::ListenAddr;
use crate::supervisor;

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Folder holding the Compose projects: itself and each subfolder with a
    /// compose file is one project.
    #[arg(long, value_name = "DIR", env = "BERTH_DIR")]
    pub dir: PathBuf,
    /// Where to serve the status API: `HOST:PORT` (loopback only unless
    /// `--allow-remote`), or `unix:/path/to.sock`.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:7878",
        env = "BERTH_LISTEN"
    )]
    pub listen: String,
    /// Allow `--listen` on a non-loopback address. The API has no
    /// authentication yet: only do this behind a firewall or proxy you trust.
    #[arg(long)]
    pub allow_remote: bool,
    /// How often to rescan every project even without file events (a safety
    /// net for missed events on network mounts and the like).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub resync_interval: Duration,
    /// How long file events are collected before a rescan.
    #[arg(long, value_name = "DURATION", default_value = "150ms", value_parser = humantime::parse_duration, hide = true)]
    pub debounce: Duration,
}

pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let listen = ListenAddr::parse(&args.listen, args.allow_remote)?;
    anyhow::ensure!(
        !args.resync_interval.is_zero(),
        "--resync-interval must be greater than zero"
    );
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("--dir {}", args.dir.display()))?;
    anyhow::ensure!(dir.is_dir(), "--dir {} is not a directory", dir.display());
    let config = supervisor::Config {
        dir,
        listen,
        resync_interval: args.resync_interval,
        debounce: args.debounce,
        environment: loader_environment(super::process_environment()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(supervisor::run(config))?;
    Ok(ExitCode::SUCCESS)
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
}
