//! `wait`: block until the container has exited.

use std::fs::File;

use crate::error::{Error, Result};
use crate::runtime::{Runtime, lock};
use crate::state::{State, Status};

impl Runtime {
    /// Blocks until the shim exits (a shared lock on `shim.lock` is granted
    /// only then) and returns the recorded exit code.
    pub fn wait(&self, key: &str) -> Result<i32> {
        let id = self.resolve(key)?;
        let dir = self.root.container(&id);
        if let Ok(f) = File::open(dir.lock()) {
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
