//! `berth builder prune`: removes build cache entries (`docker builder
//! prune`), then unreferenced layers and snapshots.

use std::process::ExitCode;

use berth_build::{Builder, PruneOptions, prune};
use clap::{Args, Subcommand};

use super::GlobalOpts;
use super::image::open_store;

#[derive(Debug, Args)]
pub struct BuilderArgs {
    #[command(subcommand)]
    command: BuilderCommand,
}

#[derive(Debug, Subcommand)]
enum BuilderCommand {
    /// Remove build cache.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
struct PruneArgs {
    /// Remove all build cache, not just what no image uses.
    #[arg(short = 'a', long)]
    all: bool,
    /// `until=DURATION` (e.g. `until=24h`): only cache unused for that long.
    #[arg(long = "filter", value_name = "until=DURATION")]
    filters: Vec<String>,
    /// Do not prompt (berth never prompts; accepted for docker's scripts).
    #[arg(short = 'f', long)]
    force: bool,
}

pub fn run(args: BuilderArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let BuilderCommand::Prune(p) = args.command;
    let _ = p.force;
    let mut options = PruneOptions {
        all: p.all,
        until: None,
    };
    for f in &p.filters {
        match f.split_once('=') {
            Some(("until", d)) => {
                options.until = Some(
                    humantime::parse_duration(d)
                        .map_err(|e| anyhow::anyhow!("--filter {f}: {e} (e.g. until=24h)"))?,
                );
            }
            _ => anyhow::bail!("--filter {f:?}: only until=DURATION is supported"),
        }
    }
    let store = open_store(global)?;
    // Before the cache: a leftover container's layers are no cache entry,
    // but its folder holds a RUN step's whole upper dir.
    let rt = super::run::runtime(global);
    let networks = crate::engine::build_network::BuildNetworks::open(&global.root, rt.shim_exe());
    let leftovers = Builder::new(store.clone(), rt)
        .with_run_networks(networks)
        .remove_leftovers();
    if leftovers.containers > 0 {
        println!(
            "Deleted leftover build containers: {}",
            leftovers.containers
        );
    }
    if leftovers.endpoints > 0 {
        println!(
            "Released network endpoints of leftover build containers: {}",
            leftovers.endpoints
        );
    }
    let pruned = prune(&store, &options)?;
    println!(
        "Deleted build cache objects: {}\nTotal reclaimed space: {}",
        pruned.entries,
        human_size(pruned.reclaimed)
    );
    Ok(ExitCode::SUCCESS)
}

fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.3}{}", units[i])
    }
}
