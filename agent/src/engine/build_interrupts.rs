//! Stopping the builds of a process that is asked to end, so that a
//! running RUN container is killed and removed with its network endpoint
//! (a process that just exits leaves both behind, the container's shim
//! being in a session of its own).
//!
//! For a CLI verb that builds images (`compose build`, `up -d`),
//! [`BuildInterrupts::install`] catches SIGINT and SIGTERM: while a build
//! runs, the signal cancels it and the verb fails with the build's
//! "cancelled"; while none runs, the process ends at once, as without a
//! handler (status 130 or 143). The agent, whose signals the supervisor
//! handles, calls [`BuildInterrupts::cancel`] when it shuts down.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};

pub struct BuildInterrupts {
    /// Set by the signal: builds stop at their next check.
    cancel: Arc<AtomicBool>,
    /// No build runs: the signal ends the process.
    idle: Arc<AtomicBool>,
    /// Builds running (the lock keeps `idle` in step with it).
    running: Mutex<usize>,
}

impl BuildInterrupts {
    /// Installs the handlers for the rest of the process's life.
    pub fn install() -> std::io::Result<Arc<BuildInterrupts>> {
        let interrupts = BuildInterrupts::without_signals();
        for (signal, status) in [
            (signal_hook::consts::SIGINT, 130),
            (signal_hook::consts::SIGTERM, 143),
        ] {
            signal_hook::flag::register_conditional_shutdown(
                signal,
                status,
                interrupts.idle.clone(),
            )?;
            signal_hook::flag::register(signal, interrupts.cancel.clone())?;
        }
        Ok(interrupts)
    }

    /// For a caller that handles the signals itself: builds stop only when
    /// it calls [`BuildInterrupts::cancel`].
    pub fn without_signals() -> Arc<BuildInterrupts> {
        Arc::new(BuildInterrupts {
            cancel: Arc::new(AtomicBool::new(false)),
            idle: Arc::new(AtomicBool::new(true)),
            running: Mutex::new(0),
        })
    }

    /// Stops the running builds (and any started later).
    pub fn cancel(&self) {
        self.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The flag a build checks (`BuildRequest::cancel`).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Marks a build as running until the guard is dropped.
    pub fn building(&self) -> Building<'_> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        *running += 1;
        self.idle.store(false, std::sync::atomic::Ordering::SeqCst);
        Building { interrupts: self }
    }
}

/// A running build, for [`BuildInterrupts`].
pub struct Building<'a> {
    interrupts: &'a BuildInterrupts,
}

impl Drop for Building<'_> {
    fn drop(&mut self) {
        let mut running = self
            .interrupts
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *running = running.saturating_sub(1);
        if *running == 0 {
            self.interrupts
                .idle
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}
