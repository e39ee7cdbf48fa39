//! `wait`: block until the container has exited.

use std::fs::File;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::runtime::{Runtime, lock};
use crate::state::{State, Status};

impl Runtime {
    /// Blocks until the container's process exits and returns the exit
    /// code. Without a restart policy that is when the shim exits (a
    /// shared lock on `shim.lock` is granted only then); with one, the
    /// shim lives on to restart it, so the next recorded exit counts, as
    /// `docker wait` returns at the next exit of a restarting container.
    pub fn wait(&self, key: &str) -> Result<i32> {
        let id = self.resolve(key)?;
        let dir = self.root.container(&id);
        let restarts = self
            .inspect(&id)
            .is_ok_and(|i| !i.config.restart_policy.is_none() && i.observed.shim_alive);
        if restarts {
            let before = State::load(&dir.state()).map_err(|_| Error::NotFound(id.clone()))?;
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let Ok(now) = State::load(&dir.state()) else {
                    return Err(Error::NotFound(id));
                };
                let exited = matches!(now.status, Status::Restarting | Status::Exited);
                if exited && now.finished_at != before.finished_at {
                    return now.exit_code.ok_or(Error::InvalidState {
                        id,
                        status: "dead".to_owned(),
                        action: "wait (no exit code was recorded)",
                    });
                }
                if !self.shim_alive(&id) {
                    break;
                }
            }
        } else if let Ok(f) = File::open(dir.lock()) {
            lock(&f, libc::LOCK_SH)?;
        }
        let st = State::load(&dir.state()).map_err(|_| Error::NotFound(id.clone()))?;
        match (st.status, st.exit_code) {
            (Status::Exited, Some(code)) => Ok(code),
            _ => Err(Error::InvalidState {
                id,
                status: "dead".to_owned(),
                action: "wait (the shim died before recording the exit)",
            }),
        }
    }
}
