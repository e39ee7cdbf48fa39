//! `berth up`: `docker compose up` at the top level (`up` is a compose
//! word; docker has none), with the project flags after the verb:
//! `berth up -d`, `berth up -f prod.yaml --wait web`. The same as
//! `berth compose [-f ...] up`; see `compose::up`.

use std::process::ExitCode;

use super::compose::up::UpFlags;
use super::{GlobalOpts, ProjectOpts};

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub project: ProjectOpts,
    #[command(flatten)]
    pub flags: UpFlags,
}

pub fn run(args: UpArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    super::compose::up::run(&args.project, &args.flags, global)
}
