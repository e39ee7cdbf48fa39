//! `top`: the processes of each running container of the project, in one
//! table as Compose prints it (SERVICE, replica #, then `ps -ef`'s
//! columns), read from /proc (see `procs`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::project::{ComposeProject, Files};
use super::table::render;
use crate::cli::procs::{self, Clock};
use crate::cli::{GlobalOpts, ProjectOpts};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct TopFlags {
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub fn run(opts: &ProjectOpts, flags: &TopFlags, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Optional)? else {
        return Ok(ExitCode::FAILURE);
    };
    print(&cp, &flags.services)
}

/// Also `berth top SERVICE` at the top level.
pub fn print(cp: &ComposeProject, services: &[String]) -> anyhow::Result<ExitCode> {
    cp.check_services(services)?;
    let clock = Clock::host();
    let mut header: Vec<String> = vec!["SERVICE".into(), "#".into()];
    header.extend(procs::TITLES.iter().map(|t| (*t).to_owned()));
    let mut table = vec![header];
    for c in cp
        .containers(services, false)
        .iter()
        .filter(|c| c.running())
    {
        let number = c.number.map_or_else(|| "-".to_owned(), |n| n.to_string());
        for p in procs::in_namespace_of(c.info.state.pid) {
            let mut row = vec![c.service.clone(), number.clone()];
            row.extend(procs::row(&p, &clock, &procs::user_name));
            table.push(row);
        }
    }
    if table.len() > 1 {
        write!(std::io::stdout().lock(), "{}", render(&table, 4, 2))
            .context("cannot write to stdout")?;
    }
    Ok(ExitCode::SUCCESS)
}
