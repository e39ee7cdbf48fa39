//! The shim's watch on the process its container must not outlive
//! (`--owner PID:START`, from `CreateOptions::die_with_caller`: a build's
//! RUN step). A pidfd of that process becomes readable when it ends; the
//! pump loop (`shim_pump.rs`) polls it, kills pid 1 then, and the container
//! is removed as with `auto_remove`.

use nix::unistd::Pid;

use super::{OwnerProcess, Shim, pidfd_open};

impl Shim {
    /// Opens a pidfd on `owner`; an owner already gone (or a pid now
    /// used by another process) makes the container orphaned at once.
    pub(super) fn watch_owner(&mut self, owner: OwnerProcess) {
        let opened = pidfd_open(Pid::from_raw(owner.pid));
        // Checked after the pidfd is open: the pidfd then refers to the
        // process whose start time matched, not to a later one.
        let alive = crate::state::same_process_alive(owner.pid, owner.start_time);
        match opened {
            Ok(fd) if alive => self.owner = Some(fd),
            // A kernel without pidfd_open (before 5.3): the container runs
            // unwatched, as every container did before.
            Err(e) if alive => eprintln!(
                "berth shim: cannot watch the owner process {}: {e}; the container will outlive it",
                owner.pid
            ),
            _ => {
                eprintln!(
                    "berth shim: the owner process {} is gone; the container will not run",
                    owner.pid
                );
                self.orphaned = true;
            }
        }
    }
}
