//! `berth top CONTAINER`: a container's processes as `docker top` shows
//! them (`ps -ef`'s columns, read from /proc). Given a service of the
//! project found in the current folder instead (or with `-p`), it is
//! `compose top SERVICE`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use super::GlobalOpts;
use super::compose::table::render;
use super::procs::{self, Clock};

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub project: super::compose::TopLevelProject,
    /// The container (name or ID), or a service of the project.
    pub container: String,
    /// `ps` options: not supported (berth reads /proc itself).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub ps_options: Vec<String>,
}

pub fn run(args: TopArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let rt = super::run::runtime(global);
    let info = match rt.inspect(&args.container) {
        Ok(info) => info,
        Err(e) if e.kind() == berth_runtime::ErrorKind::NotFound => {
            if let Some(cp) = args
                .project
                .service_project(std::slice::from_ref(&args.container), global)?
            {
                return super::compose::top::print(&cp, &[args.container]);
            }
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    if !args.ps_options.is_empty() {
        bail!("ps options are not supported: berth top prints ps -ef's columns");
    }
    if !info.observed.container_alive {
        bail!("container {} is not running", info.config.name);
    }
    let clock = Clock::host();
    let mut table = vec![procs::TITLES.iter().map(|t| (*t).to_owned()).collect()];
    for p in procs::in_namespace_of(info.state.pid) {
        table.push(procs::row(&p, &clock, &procs::user_name));
    }
    write!(std::io::stdout().lock(), "{}", render(&table, 20, 3))
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}
