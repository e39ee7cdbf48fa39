//! `berth image prune`: removes dangling images (untagged), or with `-a`
//! every image no container uses, reported as `docker image prune`
//! reports it.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use berth_image::ErrorKind;

use super::GlobalOpts;
use super::image::open_store;
use super::registry_opts::human;
use crate::containers;

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove every image no container uses, not only dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
}

pub fn run(args: &PruneArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    if !args.force {
        let what = if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        print!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok();
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let store = open_store(global)?;
    let rt = super::run::runtime(global);
    let in_use = |id: &berth_image::Digest| containers::container_using(&rt, id).is_some();
    let mut untagged = Vec::new();
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for image in store.images().context("cannot list images")? {
        if !args.all && !image.references.is_empty() {
            continue;
        }
        // Checked here too (the store checks again under its lock): an
        // image a container uses is skipped, not untagged.
        if in_use(&image.id) {
            continue;
        }
        match store.remove(&image.id.to_string(), true, &in_use) {
            Ok(removed) => {
                untagged.extend(removed.untagged.iter().map(|r| r.familiar()));
                deleted.extend(removed.deleted.iter().map(ToString::to_string));
                reclaimed += removed.collected.bytes;
            }
            // Gone meanwhile, or taken into use: not an error for prune.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InUse) => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot remove image {}", image.id.short()));
            }
        }
    }
    if !untagged.is_empty() || !deleted.is_empty() {
        println!("Deleted Images:");
        for r in &untagged {
            println!("untagged: {r}");
        }
        for d in &deleted {
            println!("deleted: {d}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human(reclaimed));
    Ok(ExitCode::SUCCESS)
}
