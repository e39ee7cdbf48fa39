//! `berth shim` (hidden): the per-container supervisor, re-executed from
//! this binary by `run`. Its argv is a stable interface between berth
//! versions: `shim --root R --cgroup-root C --id ID [--start] [--attach]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::GlobalOpts;

#[derive(Debug, Args)]
pub struct ShimArgs {
    #[arg(long)]
    pub cgroup_root: PathBuf,
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub start: bool,
    #[arg(long)]
    pub attach: bool,
    /// Run hook `KIND:N` of the running container instead of being its
    /// shim (see `berth_runtime::HookKind`).
    #[arg(long)]
    pub hook: Option<String>,
    #[arg(long)]
    pub timeout_ms: Option<u64>,
}

pub fn run(args: ShimArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let code = berth_runtime::shim::main(&berth_runtime::shim::ShimArgs {
        root: global.root.clone(),
        cgroup_root: args.cgroup_root,
        id: args.id,
        start: args.start,
        attach: args.attach,
        hook: args.hook,
        timeout_ms: args.timeout_ms,
        owner: None,
    });
    Ok(super::run::exit_code(code))
}

/// The shim without clap (see `main`): logging as every command sets it up
/// (`RUST_LOG`, `BERTH_LOG_FORMAT`; the shim's stderr is its `shim.log`),
/// then the shim itself.
pub fn run_direct(args: &berth_runtime::shim::ShimArgs) -> ExitCode {
    let json = std::env::var("BERTH_LOG_FORMAT").is_ok_and(|f| f == "json");
    let global = GlobalOpts {
        log_format: if json {
            super::LogFormat::Json
        } else {
            super::LogFormat::Text
        },
        log_level: None,
        root: args.root.clone(),
    };
    if let Err(err) = crate::logging::init(&global) {
        eprintln!("berth shim: {err:#}");
    }
    berth_runtime::shim::set_exit_hook(release_network);
    super::run::exit_code(berth_runtime::shim::main(args))
}

/// When a container has exited for good, its published ports are free for
/// others and its names leave its networks' DNS (Docker frees them at
/// stop); with `--rm` its whole endpoint goes (namespace, veths,
/// addresses) before the CLI hears of the exit, so nothing is left when
/// `berth run --rm` returns. Without an endpoint this is one failed open.
fn release_network(root: &std::path::Path, config: &berth_runtime::ContainerConfig, removed: bool) {
    let net = berth_net::Net::open(root);
    if matches!(net.endpoint(&config.id), Ok(None)) {
        return;
    }
    let result = if removed {
        net.detach(&config.id)
    } else {
        net.set_running(&config.id, false)
    };
    if let Err(e) = result {
        tracing::warn!(container = %config.name, error = %e, "releasing the container's networking");
    }
}
