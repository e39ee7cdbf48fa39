//! `berth rmi` and `berth tag`: naming and unnaming images.

use std::cell::RefCell;
use std::process::ExitCode;

use anyhow::Context;
use berth_image::{Digest, ErrorKind, Reference, Store};

use super::GlobalOpts;
use super::image::open_store;
use crate::containers::{self, ImageUser};

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

pub fn run_rmi(args: &RmiArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let rt = super::run::runtime(global);
    let mut failed = false;
    // Like docker: every image is tried; failures are reported and make
    // the exit status non-zero.
    for name in &args.images {
        // An image is in use while any container made from it exists, in
        // any state: its snapshots are that container's lower dirs. The
        // store asks under its exclusive lock, and `run` holds a lease
        // until the container's config is written, so none slips past.
        let user: RefCell<Option<(Digest, ImageUser)>> = RefCell::new(None);
        let in_use = |image: &Digest| {
            let found = containers::container_using(&rt, image);
            let used = found.is_some();
            *user.borrow_mut() = found.map(|u| (image.clone(), u));
            used
        };
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
            Err(err) if err.kind() == ErrorKind::InUse => {
                failed = true;
                match user.borrow().as_ref() {
                    Some((image, user)) => {
                        eprintln!("berth: {}", conflict(&store, name, image, user, args.force))
                    }
                    None => eprintln!("berth: {:#}", anyhow::Error::new(err)),
                }
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

/// Docker's wording for an image a container uses: by reference (the
/// last tag would leave the container's image dangling), or by ID.
fn conflict(store: &Store, name: &str, image: &Digest, user: &ImageUser, force: bool) -> String {
    let container: String = user.container_id.chars().take(12).collect();
    let by_reference = Reference::parse(name)
        .is_ok_and(|r| store.image(name).is_ok_and(|i| i.references.contains(&r)));
    if by_reference {
        format!(
            "conflict: unable to remove repository reference {name:?} (must force) - container {container} is using its referenced image {}",
            image.short()
        )
    } else {
        // With force, the store refuses only an untagged image: there is
        // no tag left to remove, so force cannot help.
        let how = if force {
            "cannot be forced"
        } else {
            "must be forced"
        };
        let state = if user.running { "running" } else { "stopped" };
        format!(
            "conflict: unable to delete {} ({how}) - image is being used by {state} container {container}",
            image.short()
        )
    }
}

pub fn run_tag(args: &TagArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let target = Reference::parse(&args.target)?;
    let store = open_store(global)?;
    store
        .tag(&args.source, &target)
        .with_context(|| format!("cannot tag {} as {}", args.source, args.target))?;
    Ok(ExitCode::SUCCESS)
}
