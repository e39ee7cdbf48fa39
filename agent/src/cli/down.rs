//! `berth down`: `docker compose down` at the top level, with the project
//! flags after the verb (`berth down -v`, `berth down -p shop`). The same
//! as `berth compose [-p ...] down`; see `compose::down`.

use std::process::ExitCode;

use super::compose::down::DownFlags;
use super::{GlobalOpts, ProjectOpts};

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub project: ProjectOpts,
    #[command(flatten)]
    pub flags: DownFlags,
}

pub fn run(args: DownArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    super::compose::down::run(&args.project, &args.flags, global)
}
