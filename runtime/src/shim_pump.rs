//! The shim's loop while the container's process runs: copies its output
//! into the log (and to an attached CLI), runs the health probes, drops
//! the shim's setup pages once it is quiet, and returns pid 1's wait
//! status once pid 1 has exited and its output is drained.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{Attach, Shim};
use crate::cgroup::Cgroup;
use crate::config::ContainerConfig;
use crate::logs::{LineSplitter, LogWriter, Stream};
use crate::probe::Prober;
use crate::resident::release_setup_text;
use crate::state::{ContainerDir, State};

/// What the loop works on besides the streams.
pub(super) struct Run<'a> {
    pub cfg: &'a ContainerConfig,
    pub dir: &'a ContainerDir,
    pub cgroup: &'a Cgroup,
    pub state: &'a mut State,
    pub prober: Option<Prober>,
    pub pidfd: &'a OwnedFd,
    pub child: Pid,
}

/// Setup is long over once the container has run quietly this long: drop
/// its pages then. Short-lived containers never pay for it.
const QUIET_BEFORE_RELEASE: Duration = Duration::from_secs(1);

impl Shim {
    /// Copies output into the log until pid 1 has exited and the pipes are
    /// drained; returns pid 1's wait status. The prober, if any, is
    /// stopped on the way out (its health left in `run.state`).
    pub(super) fn pump(
        &mut self,
        writer: &mut LogWriter,
        out_r: OwnedFd,
        err_r: OwnedFd,
        run: &mut Run<'_>,
    ) -> Option<WaitStatus> {
        let mut streams: [(Option<OwnedFd>, Stream, LineSplitter); 2] = [
            (Some(out_r), Stream::Stdout, LineSplitter::default()),
            (Some(err_r), Stream::Stderr, LineSplitter::default()),
        ];
        let mut status = None;
        let mut deadline: Option<Instant> = None;
        let mut buf = vec![0u8; 64 * 1024];
        let mut release_at = Some(Instant::now() + QUIET_BEFORE_RELEASE);
        if self.orphaned {
            kill_orphaned(run.child);
        }
        loop {
            if streams.iter().all(|s| s.0.is_none()) && status.is_some() {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                // Someone outside the pid namespace holds the pipes open.
                break;
            }
            let mut fds: Vec<PollFd> = Vec::new();
            let mut which: Vec<usize> = Vec::new();
            for (i, s) in streams.iter().enumerate() {
                if let Some(fd) = &s.0 {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    which.push(i);
                }
            }
            let pid_slot = if status.is_none() {
                fds.push(PollFd::new(run.pidfd.as_fd(), PollFlags::POLLIN));
                Some(fds.len() - 1)
            } else {
                None
            };
            let owner_slot = match (&self.owner, status.is_none()) {
                (Some(owner), true) => {
                    fds.push(PollFd::new(owner.as_fd(), PollFlags::POLLIN));
                    Some(fds.len() - 1)
                }
                _ => None,
            };
            let hup_slot = match &self.attach {
                Some(a) => {
                    fds.push(PollFd::new(a.hangup.as_fd(), PollFlags::POLLIN));
                    Some(fds.len() - 1)
                }
                None => None,
            };
            let mut wake: Option<Instant> = release_at;
            if status.is_none()
                && let Some(p) = &run.prober
            {
                for fd in p.fds() {
                    fds.push(PollFd::new(fd, PollFlags::POLLIN));
                }
                wake = Some(wake.map_or(p.next_wakeup(), |w| w.min(p.next_wakeup())));
            }
            let timeout = if status.is_some() {
                PollTimeout::from(100u16)
            } else {
                match wake {
                    Some(at) => {
                        let ms = at.saturating_duration_since(Instant::now()).as_millis();
                        // Round up, so a wakeup does not come a little early
                        // and spin.
                        PollTimeout::try_from(ms.saturating_add(1)).unwrap_or(PollTimeout::MAX)
                    }
                    None => PollTimeout::NONE,
                }
            };
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(_) => break,
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            let stream_ready: Vec<usize> = which
                .iter()
                .enumerate()
                .filter(|(slot, _)| ready(&fds[*slot]))
                .map(|(_, i)| *i)
                .collect();
            let child_done = pid_slot.is_some_and(|s| ready(&fds[s]));
            let hung_up = hup_slot.is_some_and(|s| ready(&fds[s]));
            let owner_ended = owner_slot.is_some_and(|s| ready(&fds[s]));
            drop(fds);
            if owner_ended {
                self.owner = None;
                self.orphaned = true;
                eprintln!("berth shim: the owner process ended; killing the container");
                kill_orphaned(run.child);
            }
            if hung_up {
                self.attach = None;
            }
            let mut busy = false;
            for i in stream_ready {
                busy = true;
                let (fd, stream, splitter) = &mut streams[i];
                let Some(raw) = fd.as_ref() else { continue };
                match nix::unistd::read(raw.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(_) => {
                        let mut attach = self.attach.take();
                        splitter.finish(|line| emit(writer, &mut attach, *stream, line));
                        self.attach = attach;
                        *fd = None;
                    }
                    Ok(n) => {
                        let mut attach = self.attach.take();
                        splitter.push(&buf[..n], |line| emit(writer, &mut attach, *stream, line));
                        self.attach = attach;
                    }
                }
            }
            if child_done && status.is_none() {
                status = waitpid(run.child, None).ok();
                deadline = Some(Instant::now() + Duration::from_secs(2));
            }
            if status.is_none()
                && let Some(p) = &mut run.prober
                && p.service(run.child.as_raw(), run.cfg, run.cgroup)
            {
                run.state.health = Some(p.health().clone());
                if let Err(e) = run.state.save(&run.dir.state()) {
                    eprintln!("berth shim: {e}");
                }
                // Probing touched code the copy loop does not need until
                // the next probe: drop it now (a few hundred minor faults
                // bring it back from the page cache then).
                release_setup_text();
                release_at = None;
            }
            // Activity postpones a pending release by a quiet second: a
            // chatty container keeps its pages, an idle one drops them.
            let now = Instant::now();
            if busy {
                if release_at.is_some() {
                    release_at = Some(now + QUIET_BEFORE_RELEASE);
                }
            } else if release_at.is_some_and(|at| now >= at) {
                release_setup_text();
                release_at = None;
            }
        }
        if let Some(p) = &mut run.prober {
            run.state.health = Some(p.stop());
        }
        status
    }
}

/// pid 1 of the container's pid namespace: its death takes every other
/// process of the container with it.
fn kill_orphaned(child: Pid) {
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
}

fn emit(writer: &mut LogWriter, attach: &mut Option<Attach>, stream: Stream, line: &[u8]) {
    if let Err(e) = writer.write(stream, line, SystemTime::now()) {
        eprintln!("berth shim: {e}");
    }
    if let Some(a) = attach {
        use std::io::Write;
        let f = match stream {
            Stream::Stdout => &mut a.out,
            Stream::Stderr => &mut a.err,
        };
        if f.write_all(line).is_err() {
            *attach = None;
        }
    }
}
