//! Ctrl+C (SIGINT, or SIGTERM) while a build runs: the first one cancels
//! every build of the process (the builder kills and removes its RUN
//! container), and the command ends with status 130; a second one while
//! the builds clean up ends the process at once (the RUN containers' shims
//! then kill and remove them: `CreateOptions::die_with_caller`).
//!
//! Outside builds a signal does what it did before: the default action
//! (the process dies), or, once a command catches interrupts itself
//! (attached `up`, see [`others_catch_interrupts`]), nothing here.
//!
//! Why a thread and not a handler per build: signal-hook's `unregister`
//! leaves its handler installed, so handlers registered for a build would
//! keep swallowing Ctrl+C after it. One thread (started at the first build
//! of a CLI process, [`handle_interrupts_in_builds`]) reads every SIGINT and
//! SIGTERM and decides from what runs at that moment, in ordinary code.
//!
//! The agent does not use the thread: it has its own signal handling, and
//! calls [`cancel_builds`] when it shuts down.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Once};

use signal_hook::consts::signal::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Exit status after Ctrl+C (128 + SIGINT), as shells and Compose report it.
pub const INTERRUPTED_STATUS: u8 = 130;

/// Set to cancel every build of this process; never cleared (the process
/// is on its way out).
static CANCEL: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));
/// A signal cancelled a build: the command ends with [`INTERRUPTED_STATUS`].
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Builds running now.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
/// This process (a CLI command) reads interrupts during builds.
static HANDLE_IN_BUILDS: AtomicBool = AtomicBool::new(false);
/// Another part of the process handles interrupts outside builds.
static OTHERS_CATCH: AtomicBool = AtomicBool::new(false);
static WATCHER: Once = Once::new();

/// Called by a CLI command (not the agent) before it may build: its
/// builds' first Ctrl+C cancels them. Installs nothing yet.
pub fn handle_interrupts_in_builds() {
    HANDLE_IN_BUILDS.store(true, Ordering::Relaxed);
}

/// Called by a command that catches SIGINT and SIGTERM itself (attached
/// `up`): outside builds the watcher leaves the signals to it rather than
/// ending the process.
pub fn others_catch_interrupts() {
    OTHERS_CATCH.store(true, Ordering::Relaxed);
}

/// Cancels every build of the process (the agent at shutdown).
pub fn cancel_builds() {
    CANCEL.store(true, Ordering::Relaxed);
}

/// True when a Ctrl+C cancelled a build of this process.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// One build in progress; dropped when it ends.
pub struct BuildScope {
    cancel: Arc<AtomicBool>,
}

impl BuildScope {
    /// Enters a build: from now until the scope is dropped, an interrupt
    /// cancels it. Starts the watcher the first time (CLI only).
    pub fn enter() -> BuildScope {
        if HANDLE_IN_BUILDS.load(Ordering::Relaxed) {
            WATCHER.call_once(start_watcher);
        }
        RUNNING.fetch_add(1, Ordering::SeqCst);
        BuildScope {
            cancel: CANCEL.clone(),
        }
    }

    /// The flag for `BuildRequest::cancel`.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }
}

impl Drop for BuildScope {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

fn start_watcher() {
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            // Builds still run; Ctrl+C then ends the process as before,
            // and the RUN containers' shims remove them.
            tracing::warn!(error = %e, "cannot watch SIGINT and SIGTERM; Ctrl+C will not cancel builds cleanly");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("interrupts".into())
        .spawn(move || {
            for signal in signals.forever() {
                on_signal(signal);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the interrupt watcher");
    }
}

fn on_signal(signal: i32) {
    match decide(
        RUNNING.load(Ordering::SeqCst) > 0,
        CANCEL.load(Ordering::SeqCst),
        OTHERS_CATCH.load(Ordering::Relaxed),
    ) {
        Reaction::Cancel => {
            CANCEL.store(true, Ordering::SeqCst);
            INTERRUPTED.store(true, Ordering::SeqCst);
            eprintln!("Cancelling the build... (press Ctrl+C again to exit at once)");
        }
        Reaction::ExitNow => {
            eprintln!("berth: interrupted again: exiting without waiting for the build's cleanup");
            std::process::exit(i32::from(INTERRUPTED_STATUS));
        }
        Reaction::LeaveToOthers => {}
        Reaction::Default => {
            // The signal's own action: the process ends by it, as it would
            // have without the watcher.
            if let Err(e) = signal_hook::low_level::emulate_default_handler(signal) {
                tracing::warn!(error = %e, signal, "cannot apply the signal's default action");
                std::process::exit(128 + signal);
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Reaction {
    Cancel,
    ExitNow,
    LeaveToOthers,
    Default,
}

/// What an interrupt does, given whether builds run, whether they were
/// cancelled already, and whether the command catches interrupts itself.
fn decide(building: bool, cancelled: bool, others_catch: bool) -> Reaction {
    match (building, cancelled, others_catch) {
        (true, false, _) => Reaction::Cancel,
        (true, true, _) => Reaction::ExitNow,
        (false, _, true) => Reaction::LeaveToOthers,
        (false, _, false) => Reaction::Default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_interrupt_cancels_a_build_the_second_exits_and_outside_builds_nothing_changes() {
        assert_eq!(decide(true, false, false), Reaction::Cancel);
        assert_eq!(decide(true, false, true), Reaction::Cancel);
        assert_eq!(decide(true, true, false), Reaction::ExitNow);
        assert_eq!(decide(true, true, true), Reaction::ExitNow);
        assert_eq!(decide(false, false, false), Reaction::Default);
        // After a cancelled build, while the command winds down.
        assert_eq!(decide(false, true, false), Reaction::Default);
        assert_eq!(decide(false, false, true), Reaction::LeaveToOthers);
    }
}
