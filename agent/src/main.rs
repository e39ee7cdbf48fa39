//! `berth`: keeps a machine's containers in the state its Compose manifests
//! declare.
//!
//! This binary is the only place that knows CLI flags, HTTP, JSON wire
//! formats and the tracing subscriber. Entry points: [`cli`] parses the
//! command line and dispatches to one module per command; `berth agent` runs
//! [`supervisor`], which owns the [`watch`]er and the [`state::Store`] that
//! the [`api`] serves.

mod api;
mod cli;
mod gitsync;
mod listen;
mod logging;
mod metrics;
mod projects;
mod reconcile;
mod state;
mod supervisor;
mod timefmt;
mod watch;

use std::process::ExitCode;

use berth_agent::{containers, engine, healthcheck, interrupt};
use clap::Parser;

/// mimalloc for the CLI and the agent, the system allocator in shims: see
/// `berth_runtime::alloc` for why and how the choice is made.
#[global_allocator]
static GLOBAL: berth_runtime::alloc::BerthAllocator = berth_runtime::alloc::BerthAllocator;

fn main() -> ExitCode {
    // A shim (this binary, re-executed by the runtime for every container)
    // goes straight in: its argv is a fixed interface (`ShimArgs`), and
    // building this whole CLI with clap first is a measurable part of a
    // container's start.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(args) = berth_runtime::shim::ShimArgs::from_argv(&argv) {
        return cli::shim::run_direct(&args);
    }
    let mut cli = cli::Cli::parse();
    if !cli.command.is_server() {
        berth_runtime::default_sigpipe();
        interrupt::handle_interrupts_in_builds();
    }
    if cli.global.log_level.is_none() && std::env::var_os("RUST_LOG").is_none() {
        cli.global.log_level = Some(cli.command.default_log_filter().to_owned());
    }
    if let Err(err) = logging::init(&cli.global) {
        eprintln!("berth: {err:#}");
        return ExitCode::FAILURE;
    }
    let result = cli::run(cli);
    if interrupt::interrupted() {
        // Whatever the command made of its cancelled build, it ends as an
        // interrupted command does.
        eprintln!("berth: interrupted: the build was cancelled and its RUN container removed");
        return ExitCode::from(interrupt::INTERRUPTED_STATUS);
    }
    match result {
        Ok(code) => code,
        Err(err) => {
            // The one place where an unhandled error is reported: commands
            // return it instead of logging it themselves.
            eprintln!("berth: {err:#}");
            ExitCode::FAILURE
        }
    }
}
