//! `berth rmi` and `berth tag`: naming and unnaming images.

use std::process::ExitCode;

use anyhow::Context;
use berth_image::{Digest, Reference};

use super::GlobalOpts;
use super::image::open_store;

#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    /// Images to remove: references or (prefixes of) image IDs.
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
    /// Remove an ID with several references; untag an image in use.
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// The image to name: a reference or image ID.
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    source: String,
    /// The new name.
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    target: String,
}

/// Whether a container was created from an image. berth creates no
/// containers yet, so nothing is in use; the runtime answers this once it
/// keeps container state under the same root.
fn in_use(_image: &Digest) -> bool {
    false
}

pub fn run_rmi(args: &RmiArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let mut failed = false;
    // Like docker: every image is tried; failures are reported and make
    // the exit status non-zero.
    for name in &args.images {
        match store.remove(name, args.force, &in_use) {
            Ok(removed) => {
                for r in &removed.untagged {
                    println!("Untagged: {}", r.familiar());
                }
                for id in &removed.deleted {
                    println!("Deleted: {id}");
                }
                tracing::debug!(image = %name, blobs = removed.collected.blobs, bytes = removed.collected.bytes, snapshots = removed.collected.snapshots, "collected");
            }
            Err(err) => {
                failed = true;
                eprintln!("berth: {:#}", anyhow::Error::new(err));
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn run_tag(args: &TagArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let target = Reference::parse(&args.target)?;
    let store = open_store(global)?;
    store
        .tag(&args.source, &target)
        .with_context(|| format!("cannot tag {} as {}", args.source, args.target))?;
    Ok(ExitCode::SUCCESS)
}
