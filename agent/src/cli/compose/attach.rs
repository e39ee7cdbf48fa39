//! Attached `up`: after the plan ran, stream the attached services' logs
//! (`web-1  | line`, merged in time order, new containers picked up as
//! they appear), report each exit (`web-1 exited with code 0`), and return
//! once every attached container has exited. Its exit status is 0, or
//! with `--abort-on-container-exit`/`--exit-code-from` the code of the
//! container that ended the session, or 130 after Ctrl+C.
//!
//! Ctrl+C (SIGINT, or SIGTERM) stops the project gracefully, as Compose
//! does: "Gracefully stopping... (press Ctrl+C again to force)", then a
//! `stop` plan (reverse dependency order, each service's grace period or
//! `-t`) runs on a thread of its own while the logs keep flowing; a
//! second one kills every attached container at once.
//!
//! A container counts as exited when neither it nor its shim is alive:
//! a shim that restarts its container (restart policies) keeps the
//! session going, as Docker's restarts keep `docker compose up` going.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use berth_reconcilers::{Operation, PlanOptions};
use berth_runtime::Signal;
use berth_runtime::logs::LogEntry;
use signal_hook::consts::signal::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::logfile::LogFile;
use super::printer::Printer;
use super::progress::Events;
use super::project::{ComposeProject, ProjectContainer, quick_state};

/// How often logs are read and states checked.
const TICK: Duration = Duration::from_millis(50);
/// How often (in ticks) the containers' states are checked for exits.
const CHECK_EVERY: u32 = 2;
/// How often the project's containers are listed again, for new ones.
const RELIST_EVERY: u32 = 10;
/// Exit status after Ctrl+C (128 + SIGINT), as Compose returns it.
const INTERRUPTED: u8 = 130;

#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Whose logs to show.
    pub services: Vec<String>,
    /// What Ctrl+C and `--abort-on-container-exit` stop: the services
    /// `up` was given (all when empty).
    pub stop_services: Vec<String>,
    pub prefix: bool,
    pub color: bool,
    pub timestamps: bool,
    pub abort_on_exit: bool,
    pub abort_on_failure: bool,
    pub exit_code_from: Option<String>,
    pub stop_timeout: Option<Duration>,
    /// Lines from before this are not shown (the plan started then).
    pub since: SystemTime,
}

/// SIGINT and SIGTERM, caught from before the plan runs: one pressed
/// while containers are being created is handled once the logs are
/// attached, as a graceful stop.
///
/// Handlers rather than a blocked mask: exec resets handlers, but a
/// blocked mask would be inherited by the shims this process spawns and
/// by their containers, which then could not be stopped with SIGTERM.
pub struct Interrupts {
    signals: Signals,
}

pub fn catch_interrupts() -> anyhow::Result<Interrupts> {
    let signals = Signals::new([SIGINT, SIGTERM]).context("cannot handle SIGINT and SIGTERM")?;
    // Outside builds; a build running when one arrives is cancelled, and
    // `up` then ends with 130 (see `berth_agent::interrupt`).
    berth_agent::interrupt::others_catch_interrupts();
    Ok(Interrupts { signals })
}

impl Interrupts {
    /// How many arrived since the last call.
    fn pending(&mut self) -> usize {
        self.signals.pending().count()
    }
}

/// One attached container.
struct Tracked {
    container: ProjectContainer,
    name: String,
    file: LogFile,
    /// Its exit was reported (and not followed by a new start).
    exited: bool,
    started_at: Option<String>,
}

/// What ends the session, and with which status.
#[derive(Default)]
struct Ending {
    interrupted: bool,
    forced: bool,
    aborting: bool,
    exit_code: Option<i32>,
}

pub fn run(
    cp: &ComposeProject,
    opts: &AttachOptions,
    interrupts: &mut Interrupts,
    events: &Events,
) -> anyhow::Result<ExitCode> {
    let since = humantime::format_rfc3339_nanos(opts.since).to_string();
    let mut printer = Printer::new(opts.prefix, opts.color, opts.timestamps);
    let mut tracked: BTreeMap<String, Tracked> = BTreeMap::new();
    let fresh = attach_new(cp, opts, &since, &mut printer, &mut tracked)?;
    let mut names: Vec<&str> = tracked.values().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    println!("Attaching to {}", names.join(", "));
    print_entries(&printer, fresh)?;
    let mut ending = Ending::default();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut stopper: Option<std::thread::ScopedJoinHandle<'_, ()>> = None;
        let mut tick = 0u32;
        loop {
            for _ in 0..interrupts.pending() {
                ending.interrupted = true;
                if stopper.is_none() {
                    println!("Gracefully stopping... (press Ctrl+C again to force)");
                    stopper = Some(scope.spawn(|| stop_project(cp, opts, events)));
                } else if !ending.forced {
                    ending.forced = true;
                    kill_all(cp, &tracked);
                }
            }
            tick += 1;
            if tick % RELIST_EVERY == 0 {
                let fresh = attach_new(cp, opts, &since, &mut printer, &mut tracked)?;
                print_entries(&printer, fresh)?;
            }
            let mut batch = Vec::new();
            for t in tracked.values_mut() {
                poll(t, &mut batch);
            }
            print_entries(&printer, batch)?;
            let trigger = tick % CHECK_EVERY == 0
                && report_exits(cp, opts, &printer, &mut tracked, &mut ending)?;
            if trigger && stopper.is_none() {
                println!("Aborting on container exit...");
                stopper = Some(scope.spawn(|| stop_project(cp, opts, events)));
            }
            let all_exited = tracked.values().all(|t| t.exited);
            let stopped = stopper.as_ref().is_none_or(|s| s.is_finished());
            if all_exited && stopped {
                return Ok(());
            }
            std::thread::sleep(TICK);
        }
    })?;
    printer.flush().context("cannot write to stdout")?;
    if let Some(code) = ending.exit_code {
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
    }
    Ok(if ending.interrupted {
        ExitCode::from(INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Starts following the attached services' containers not followed yet
/// (created ones wait until they start); returns their lines since the
/// session began.
fn attach_new(
    cp: &ComposeProject,
    opts: &AttachOptions,
    since: &str,
    printer: &mut Printer,
    tracked: &mut BTreeMap<String, Tracked>,
) -> anyhow::Result<Vec<(String, LogEntry)>> {
    let mut lines = Vec::new();
    for c in cp.containers(&opts.services, false) {
        if tracked.contains_key(c.id())
            || matches!(c.info.observed.status.as_str(), "created" | "creating")
        {
            continue;
        }
        let name = c.display_name(cp.name());
        printer.register(&name);
        let path = cp.runtime.state_root().container(c.id()).log();
        let (file, entries) = LogFile::read_all(&path);
        lines.extend(
            entries
                .into_iter()
                .filter(|e| e.time.as_str() >= since)
                .map(|e| (name.clone(), e)),
        );
        let started_at = c.info.state.started_at.clone();
        tracked.insert(
            c.id().to_owned(),
            Tracked {
                container: c,
                name,
                file,
                exited: false,
                started_at,
            },
        );
    }
    Ok(lines)
}

fn poll(t: &mut Tracked, batch: &mut Vec<(String, LogEntry)>) {
    let mut entries = Vec::new();
    t.file.poll(&mut entries);
    batch.extend(entries.into_iter().map(|e| (t.name.clone(), e)));
}

/// Prints lines of several containers in time order (the timestamps are
/// fixed-width RFC 3339 in UTC, so they sort as text).
fn print_entries(printer: &Printer, mut batch: Vec<(String, LogEntry)>) -> anyhow::Result<()> {
    batch.sort_by(|a, b| a.1.time.cmp(&b.1.time));
    for (name, entry) in &batch {
        printer.line(name, entry).context("cannot write the logs")?;
    }
    printer.flush().context("cannot write to stdout")
}

/// Reports containers that exited since the last look (their last lines
/// first); returns whether one of them should end the session
/// (`--abort-on-container-exit` and friends).
fn report_exits(
    cp: &ComposeProject,
    opts: &AttachOptions,
    printer: &Printer,
    tracked: &mut BTreeMap<String, Tracked>,
    ending: &mut Ending,
) -> anyhow::Result<bool> {
    let mut trigger = false;
    // Exits seen in the same look are reported in the order they happened
    // (a graceful stop takes dependents down first), not by id.
    let mut looks: Vec<_> = tracked
        .values_mut()
        .map(|t| (quick_state(&cp.runtime, t.container.id()), t))
        .collect();
    looks.sort_by_key(|(look, _)| {
        look.as_ref()
            .and_then(|(state, _)| state.finished_at.clone())
    });
    for (look, t) in looks {
        let Some((state, observed)) = look else {
            // Removed (by `down` elsewhere): nothing more will come.
            if !t.exited {
                t.exited = true;
                printer
                    .status(&t.name, "exited")
                    .context("cannot write to stdout")?;
            }
            continue;
        };
        let restarted = state.started_at != t.started_at;
        if t.exited {
            // A restart (by the shim's restart policy) re-attaches it.
            if restarted && observed.container_alive {
                t.exited = false;
                t.started_at = state.started_at.clone();
            }
            continue;
        }
        t.started_at = state.started_at.clone();
        if observed.container_alive || observed.shim_alive {
            continue;
        }
        let mut last = Vec::new();
        poll(t, &mut last);
        print_entries(printer, last)?;
        let code = state.exit_code.unwrap_or(-1);
        printer
            .status(&t.name, &format!("exited with code {code}"))
            .context("cannot write to stdout")?;
        t.exited = true;
        if opts.exit_code_from.as_deref() == Some(t.container.service.as_str())
            && ending.exit_code.is_none()
        {
            ending.exit_code = Some(code);
        }
        if ending.aborting || ending.interrupted {
            continue;
        }
        let fails = opts.abort_on_failure && code != 0;
        if opts.abort_on_exit || fails {
            ending.aborting = true;
            trigger = true;
            if opts.exit_code_from.is_none() {
                ending.exit_code = Some(code);
            }
        }
    }
    Ok(trigger)
}

/// The graceful stop: a `stop` plan of the services `up` was given.
fn stop_project(cp: &ComposeProject, opts: &AttachOptions, events: &Events) {
    let options = PlanOptions {
        operation: Operation::Stop,
        services: opts.stop_services.clone(),
        stop_timeout: opts.stop_timeout,
        ..PlanOptions::default()
    };
    match cp.plan(&options) {
        Ok((_, plan)) => {
            cp.execute(&plan, events);
        }
        Err(e) => eprintln!("berth: {e:#}"),
    }
}

/// The second Ctrl+C: SIGKILL to every attached container still alive.
fn kill_all(cp: &ComposeProject, tracked: &BTreeMap<String, Tracked>) {
    for t in tracked.values().filter(|t| !t.exited) {
        match cp.runtime.kill(t.container.id(), Signal::SIGKILL) {
            Ok(()) => {}
            Err(e) if e.kind() == berth_runtime::ErrorKind::InvalidState => {}
            Err(e) => eprintln!("berth: cannot kill {}: {e}", t.container.name()),
        }
    }
}
