//! `logs`: the services' logs merged in time order, each line prefixed
//! with its container (`web-1  | line`). `--tail` counts per container,
//! as in Compose; `--since`/`--until` take a duration before now, an RFC
//! 3339 time or Unix seconds. With `-f` it keeps following, picks up
//! containers that appear meanwhile (a new replica, a recreated one), and
//! returns once none of them runs any more.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use berth_runtime::logs::LogEntry;

use super::logfile::LogFile;
use super::printer::Printer;
use super::project::{ComposeProject, Files, ProjectContainer};
use crate::cli::{GlobalOpts, ProjectOpts};

const TICK: Duration = Duration::from_millis(50);
const RELIST_EVERY: u32 = 10;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogsFlags {
    /// Follow log output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since a timestamp (2013-01-02T13:23:37Z) or relative
    /// (42m for 42 minutes).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Number of lines to show from the end of each container's log
    /// (`all` for everything).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Don't print the container name before each line.
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Produce monochrome output.
    #[arg(long)]
    pub no_color: bool,
    /// Only the container of this replica number.
    #[arg(long, value_name = "N")]
    pub index: Option<u32>,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub fn run(opts: &ProjectOpts, flags: &LogsFlags, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Optional)? else {
        return Ok(ExitCode::FAILURE);
    };
    print(&cp, flags)
}

/// Prints (and follows) `cp`'s logs per `flags` (also `berth logs SERVICE`).
pub fn print(cp: &ComposeProject, flags: &LogsFlags) -> anyhow::Result<ExitCode> {
    cp.check_services(&flags.services)?;
    let query = Query::new(flags)?;
    let color = !flags.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut printer = Printer::new(!flags.no_log_prefix, color, flags.timestamps);
    let mut followed: BTreeMap<String, (ProjectContainer, String, LogFile)> = BTreeMap::new();
    let mut first = Vec::new();
    for c in select(cp, flags) {
        let (name, file, entries) = open(cp, &c, &query, &mut printer);
        first.extend(entries.into_iter().map(|e| (name.clone(), e)));
        followed.insert(c.id().to_owned(), (c, name, file));
    }
    write(&printer, first)?;
    if !flags.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut tick = 0u32;
    loop {
        std::thread::sleep(TICK);
        tick += 1;
        let mut batch = Vec::new();
        if tick % RELIST_EVERY == 0 {
            for c in select(cp, flags) {
                if followed.contains_key(c.id()) {
                    continue;
                }
                // A container that appeared while following: all of it.
                let fresh = Query {
                    tail: None,
                    ..query.clone()
                };
                let (name, file, entries) = open(cp, &c, &fresh, &mut printer);
                batch.extend(entries.into_iter().map(|e| (name.clone(), e)));
                followed.insert(c.id().to_owned(), (c, name, file));
            }
        }
        let mut alive = false;
        for (id, (_, name, file)) in followed.iter_mut() {
            // Read the state first: lines written before an exit are then
            // read below, not lost.
            alive |= cp
                .runtime
                .inspect(id)
                .is_ok_and(|i| i.observed.container_alive || i.observed.shim_alive);
            let mut entries = Vec::new();
            file.poll(&mut entries);
            batch.extend(
                entries
                    .into_iter()
                    .filter(|e| query.passes(e))
                    .map(|e| (name.clone(), e)),
            );
        }
        write(&printer, batch)?;
        if !alive {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

fn select(cp: &ComposeProject, flags: &LogsFlags) -> Vec<ProjectContainer> {
    cp.containers(&flags.services, false)
        .into_iter()
        .filter(|c| flags.index.is_none_or(|n| c.number == Some(n)))
        .collect()
}

/// Registers `c` and reads what its log holds that the query wants.
fn open(
    cp: &ComposeProject,
    c: &ProjectContainer,
    query: &Query,
    printer: &mut Printer,
) -> (String, LogFile, Vec<LogEntry>) {
    let name = c.display_name(cp.name());
    printer.register(&name);
    let path = cp.runtime.state_root().container(c.id()).log();
    let (file, entries) = LogFile::read_all(&path);
    let mut entries: Vec<LogEntry> = entries.into_iter().filter(|e| query.passes(e)).collect();
    if let Some(n) = query.tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    (name, file, entries)
}

fn write(printer: &Printer, mut batch: Vec<(String, LogEntry)>) -> anyhow::Result<()> {
    batch.sort_by(|a, b| a.1.time.cmp(&b.1.time));
    for (name, entry) in &batch {
        printer.line(name, entry).context("cannot write the logs")?;
    }
    printer.flush().context("cannot write to stdout")
}

/// Which entries to show: times as fixed-width RFC 3339 text, compared
/// as text.
#[derive(Debug, Clone)]
struct Query {
    since: Option<String>,
    until: Option<String>,
    tail: Option<usize>,
}

impl Query {
    fn new(flags: &LogsFlags) -> anyhow::Result<Self> {
        let time = |s: &Option<String>, what: &str| -> anyhow::Result<Option<String>> {
            s.as_deref()
                .map(|s| {
                    parse_time(s, what).map(|t| humantime::format_rfc3339_nanos(t).to_string())
                })
                .transpose()
        };
        Ok(Query {
            since: time(&flags.since, "--since")?,
            until: time(&flags.until, "--until")?,
            tail: match flags.tail.as_str() {
                "all" | "-1" => None,
                n => Some(
                    n.parse()
                        .with_context(|| format!("invalid --tail {n:?}: a number or `all`"))?,
                ),
            },
        })
    }

    fn passes(&self, e: &LogEntry) -> bool {
        self.since.as_deref().is_none_or(|s| e.time.as_str() >= s)
            && self.until.as_deref().is_none_or(|u| e.time.as_str() < u)
    }
}

/// A duration before now (`10m`, `1h30m`), an RFC 3339 time, or Unix
/// seconds.
pub fn parse_time(s: &str, what: &str) -> anyhow::Result<SystemTime> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(SystemTime::now() - d);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    bail!("invalid {what} {s:?}: expected a duration (10m), an RFC 3339 time, or Unix seconds")
}
