//! `start`: release a created container into `execve`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

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
        // Watched before the start byte goes out, so the shim's rename of
        // state.json cannot come first.
        let changes = DirChanges::watch(dir.path());
        f.write_all(b"g")
            .map_err(|e| Error::io("write", &fifo, e))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = State::load(&dir.state())?;
            if st.status != Status::Created {
                return Ok(());
            }
            if !self.shim_alive(&id) {
                return Err(Error::Shim {
                    id,
                    reason: "it exited before recording the start".to_owned(),
                });
            }
            if !changes.wait(deadline) {
                return Err(Error::Shim {
                    id,
                    reason: "did not record the start within 10 s".to_owned(),
                });
            }
        }
    }
}

/// Wakes a waiter when a container's folder changes the way the shim
/// changes it: `state.json` renamed into place, or `shim.lock` closed for
/// the last time (the shim exited). Instead of sleeping in a loop, which
/// costs a wake-up every few ms and up to a period of latency.
struct DirChanges {
    inotify: Option<Inotify>,
}

impl DirChanges {
    fn watch(dir: &Path) -> Self {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .ok()
            .filter(|i| {
                i.add_watch(
                    dir,
                    AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE,
                )
                .is_ok()
            });
        DirChanges { inotify }
    }

    /// Waits for a change (or 100 ms, a safety net for changes inotify
    /// does not see); false once `deadline` has passed.
    fn wait(&self, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let slice = (deadline - now).min(Duration::from_millis(100));
        match &self.inotify {
            Some(i) => {
                let mut fds = [PollFd::new(i.as_fd(), PollFlags::POLLIN)];
                let ms = u16::try_from(slice.as_millis()).unwrap_or(u16::MAX);
                let _ = poll(&mut fds, PollTimeout::from(ms));
                let _ = i.read_events();
            }
            None => std::thread::sleep(slice.min(Duration::from_millis(2))),
        }
        true
    }
}

impl Runtime {
    /// `stop` (stop signal, SIGKILL after the timeout), then `start`.
    pub fn restart(&self, key: &str, timeout: Option<Duration>) -> Result<()> {
        self.stop(key, timeout)?;
        let id = self.resolve(key)?;
        // The shim records the exit and removes the cgroup before it lets
        // go of its lock; wait for that.
        let changes = DirChanges::watch(self.root.container(&id).path());
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.shim_alive(&id) && changes.wait(deadline) {}
        self.start(&id)
    }
}
