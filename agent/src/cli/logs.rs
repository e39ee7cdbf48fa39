//! `berth logs [-f] [--since D|T] [--tail N] [-t] NAME`. A NAME that is
//! no container but a service of the project (the current folder's, or
//! `-p`'s), or `-p`/`--file` with no NAME, gives `compose logs` (see
//! `compose::toplevel`).

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use berth_runtime::logs::{LogQuery, read_logs};
use clap::Args;

use super::GlobalOpts;
use super::compose::logs::LogsFlags;
use super::compose::{Targets, TopLevelProject};

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub project: TopLevelProject,
    /// Keep printing new output until the container exits.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only output since this time: a duration (`10m`, `1h30m`) before now,
    /// an RFC 3339 time, or Unix seconds.
    #[arg(long)]
    pub since: Option<String>,
    /// Number of lines from the end (`all` for everything).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Prefix each line with its timestamp.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Only output before this time (as `--since`).
    #[arg(long)]
    pub until: Option<String>,
    /// The container (name or ID), or services of the project.
    #[arg(
        value_name = "CONTAINER",
        required_unless_present_any = ["files", "project_name", "project_directory"]
    )]
    pub containers: Vec<String>,
}

pub fn run(args: LogsArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let container = match args.project.targets(&args.containers, global)? {
        Targets::Services(cp, services) => {
            let flags = LogsFlags {
                follow: args.follow,
                since: args.since.clone(),
                until: args.until.clone(),
                tail: args.tail.clone(),
                timestamps: args.timestamps,
                services,
                ..LogsFlags::default()
            };
            return super::compose::logs::print(&cp, &flags);
        }
        Targets::Containers(names) => match names.as_slice() {
            [one] => one.clone(),
            _ => bail!("logs takes exactly one container (several are for services of a project)"),
        },
    };
    let rt = super::run::runtime(global);
    let id = rt.resolve(&container)?;
    let until = args.until.as_deref().map(parse_since).transpose()?;
    let path = rt.log_path(&id)?;
    let query = LogQuery {
        since: args.since.as_deref().map(parse_since).transpose()?,
        tail: match args.tail.as_str() {
            "all" | "-1" => None,
            n => Some(n.parse().with_context(|| format!("invalid --tail {n:?}"))?),
        },
        follow: args.follow,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut failed = false;
    read_logs(&path, &query, &mut || !rt.shim_alive(&id), &mut |e| {
        if let Some(until) = until
            && humantime::parse_rfc3339(&e.time).is_ok_and(|t| t >= until)
        {
            return;
        }
        let text = if args.timestamps {
            format!("{} {}", e.time, e.log)
        } else {
            e.log.clone()
        };
        let r = if e.stream == "stderr" {
            stderr.lock().write_all(text.as_bytes())
        } else {
            stdout
                .lock()
                .write_all(text.as_bytes())
                .and_then(|_| stdout.lock().flush())
        };
        failed |= r.is_err();
    })?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn parse_since(s: &str) -> anyhow::Result<SystemTime> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(SystemTime::now() - d);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    bail!("invalid --since {s:?}: expected a duration (10m), an RFC 3339 time, or Unix seconds")
}
