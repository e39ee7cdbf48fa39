//! `berth image ...`: the image verbs, grouped as `docker image` groups
//! them. The top-level `images`, `rmi`, `load`, `tag`, `pull`, `push` and
//! `save` take the same
//! arguments (see [`super::Command`]).

use std::process::ExitCode;

use anyhow::Context;
use berth_image::Store;
use clap::Subcommand;

use super::GlobalOpts;
use super::{
    image_import, image_inspect, image_load, image_prune, image_rm, images, pull, push, save,
};

#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Import a root filesystem tarball as a one-layer image (like `docker
    /// import`).
    Import(image_import::ImportArgs),
    /// Show images as JSON (like `docker image inspect`).
    Inspect(image_inspect::InspectArgs),
    /// List images (like `docker images`).
    #[command(visible_alias = "list")]
    Ls(images::ImagesArgs),
    /// Remove images (like `docker rmi`).
    #[command(visible_alias = "remove")]
    Rm(image_rm::RmiArgs),
    /// Load images from a `docker save` or OCI archive (like `docker load`).
    Load(image_load::LoadArgs),
    /// Give an image another name (like `docker tag`).
    Tag(image_rm::TagArgs),
    /// Remove dangling images, or with -a all unused ones (like `docker
    /// image prune`).
    Prune(image_prune::PruneArgs),
    /// Download an image from a registry (like `docker pull`).
    Pull(pull::PullArgs),
    /// Upload an image to a registry (like `docker push`).
    Push(push::PushArgs),
    /// Save images to a tar archive (like `docker save`).
    Save(save::SaveArgs),
}

pub fn run(args: ImageArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    match args.command {
        ImageCommand::Import(args) => image_import::run(&args, global),
        ImageCommand::Inspect(args) => image_inspect::run(&args, global),
        ImageCommand::Ls(args) => images::run(&args, global),
        ImageCommand::Rm(args) => image_rm::run_rmi(&args, global),
        ImageCommand::Load(args) => image_load::run(&args, global),
        ImageCommand::Tag(args) => image_rm::run_tag(&args, global),
        ImageCommand::Prune(args) => image_prune::run(&args, global),
        ImageCommand::Pull(args) => pull::run(&args, global),
        ImageCommand::Push(args) => push::run(&args, global),
        ImageCommand::Save(args) => save::run(&args, global),
    }
}

/// The store under `--root`.
pub fn open_store(global: &GlobalOpts) -> anyhow::Result<Store> {
    Store::open(&global.root).with_context(|| {
        format!(
            "cannot open the image store under {}",
            global.root.display()
        )
    })
}
