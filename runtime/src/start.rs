//! `start`: release a created container into `execve`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::runtime::Runtime;
use crate::state::{State, Status};

impl Runtime {
    /// Starts a created container (writes the start byte to `start.fifo`
    /// and waits until the shim has recorded `running` or `exited`), or
    /// runs an exited one again under a new shim.
    pub fn start(&self, key: &str) -> Result<()> {
        let info = self.inspect(key)?;
        let id = info.config.id.clone();
        if info.observed.status == "exited" || info.observed.status == "dead" {
            // Docker starts an exited container again: a new shim, the
            // same config and filesystem.
            self.relaunch(&info.config)?;
            return Ok(());
        }
        if info.observed.status != "created" {
            return Err(Error::InvalidState {
                id,
                status: info.observed.status,
                action: "start",
            });
        }
        let dir = self.root.container(&id);
        let fifo = dir.start_fifo();
        // Non-blocking: the shim holds the fifo open for reading, so an
        // ENXIO here means it is gone.
        let mut f = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .map_err(|e| Error::io("open", &fifo, e))?;
        f.write_all(b"g")
            .map_err(|e| Error::io("write", &fifo, e))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let st = State::load(&dir.state())?;
            if st.status != Status::Created {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Err(Error::Shim {
            id,
            reason: "did not record the start within 10 s".to_owned(),
        })
    }
}

impl Runtime {
    /// `stop` (stop signal, SIGKILL after the timeout), then `start`.
    pub fn restart(&self, key: &str, timeout: Option<Duration>) -> Result<()> {
        self.stop(key, timeout)?;
        let id = self.resolve(key)?;
        // The shim records the exit and removes the cgroup before it lets
        // go of its lock; wait for that.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.shim_alive(&id) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.start(&id)
    }
}
