//! `exec`: run another process in a running container.
//!
//! The calling process must be single-threaded (the `berth` CLI is: it
//! dispatches `exec` before anything could start a thread, and this is
//! checked). It joins the container's pid namespace for its children only
//! (`setns(CLONE_NEWPID)` changes `pid_for_children`), forks, puts the
//! child in the container's cgroup, and the child joins ipc, uts, net and
//! last mnt, then takes the same user, group, capability, limit and
//! environment path as pid 1 did. The caller's stdio is inherited; the
//! exit code comes back.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::cgroup::Cgroup;
use crate::error::{Error, Result};
use crate::process::{self, Privileges};
use crate::runtime::Runtime;
use crate::shim::{cloexec_pipe, pidfd_open};

/// What to run and as whom; `None` falls back to the container's own.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub args: Vec<String>,
    /// `KEY=VALUE` added after the container's environment.
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    /// Every capability, whatever the container has (`exec --privileged`).
    pub privileged: bool,
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().parse().ok()))
        })
        .flatten()
        .unwrap_or(0)
}

impl Runtime {
    /// Runs `opts.args` in the container and returns its exit code (128 +
    /// signal when killed; 126/127 when it could not be run).
    pub fn exec(&self, key: &str, opts: &ExecOptions) -> Result<i32> {
        let code = self.exec_bounded(key, opts, None)?;
        // Without a timeout the process always ends on its own.
        Ok(code.unwrap_or(128 + libc::SIGKILL))
    }

    /// [`Runtime::exec`] that kills the process once `timeout` has passed
    /// (`Ok(None)`). A bounded process also dies with this one
    /// (`PR_SET_PDEATHSIG`), so killing the caller never leaves it behind.
    pub fn exec_bounded(
        &self,
        key: &str,
        opts: &ExecOptions,
        timeout: Option<Duration>,
    ) -> Result<Option<i32>> {
        if threads() != 1 {
            return Err(Error::invalid(
                "exec caller",
                "must be single-threaded (setns and fork are per thread)",
            ));
        }
        if opts.args.is_empty() {
            return Err(Error::invalid("exec", "no command specified"));
        }
        let info = self.inspect(key)?;
        if !info.observed.container_alive || info.observed.status != "running" {
            return Err(Error::InvalidState {
                id: info.config.id,
                status: info.observed.status,
                action: "exec",
            });
        }
        let pid = info.state.pid;
        let open_ns = |ns: &str| {
            let p = format!("/proc/{pid}/ns/{ns}");
            File::open(&p).map_err(|e| Error::io("open", p, e))
        };
        let (ipc, uts, net, pidns, mnt) = (
            open_ns("ipc")?,
            open_ns("uts")?,
            open_ns("net")?,
            open_ns("pid")?,
            open_ns("mnt")?,
        );
        let cgroup = Cgroup::open(&self.cgroup_root, &info.config.id)?;
        let mut env = info.config.process.env.clone();
        env.extend(opts.env.iter().cloned());
        let user = opts.user.clone().or(info.config.process.user.clone());
        let cwd = opts.cwd.clone().or(info.config.process.cwd.clone());
        let hostname = info.config.effective_hostname();
        let groups = info.config.process.additional_groups.clone();
        let privileges = Privileges::of(&info.config, opts.privileged)?;

        setns(pidns.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(|e| Error::sys("join the pid namespace", e))?;
        let (sync_r, sync_w) = cloexec_pipe()?;
        // SAFETY: checked above that this process has a single thread, so
        // the child may run ordinary code until it execs.
        let child = match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                drop(sync_w);
                let mut b = [0u8; 1];
                if File::from(sync_r).read(&mut b).unwrap_or(0) != 1 {
                    std::process::exit(126);
                }
                let die = |code: i32, msg: String| -> ! {
                    let _ = writeln!(std::io::stderr(), "berth exec: {msg}");
                    std::process::exit(code)
                };
                for (f, flag, what) in [
                    (&ipc, CloneFlags::CLONE_NEWIPC, "ipc"),
                    (&uts, CloneFlags::CLONE_NEWUTS, "uts"),
                    (&net, CloneFlags::CLONE_NEWNET, "net"),
                    (&mnt, CloneFlags::CLONE_NEWNS, "mnt"),
                ] {
                    if let Err(e) = setns(f.as_fd(), flag) {
                        die(126, format!("join the {what} namespace: {e}"));
                    }
                }
                let p = match process::prepare(
                    &opts.args,
                    &env,
                    user.as_deref(),
                    cwd.as_deref(),
                    &hostname,
                    &groups,
                ) {
                    Ok(p) => p,
                    Err(e) => die(e.code, e.message),
                };
                if let Err(e) = process::finalize(&p, &privileges) {
                    die(126, e.to_string());
                }
                if timeout.is_some() {
                    // After finalize: a change of credentials clears it.
                    // SAFETY: prctl with integer arguments only.
                    unsafe {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                    }
                }
                let e = process::exec(&p);
                let code = if e == nix::Error::ENOENT { 127 } else { 126 };
                die(code, format!("exec {:?}: {}", p.path, e.desc()))
            }
            Ok(ForkResult::Parent { child }) => child,
            Err(e) => return Err(Error::sys("fork", e)),
        };
        drop(sync_r);
        let joined = cgroup.add_task(child.as_raw());
        let mut sync = File::from(sync_w);
        if let Err(e) = joined {
            drop(sync);
            let _ = waitpid(child, None);
            return Err(e);
        }
        let _ = sync.write_all(b"g");
        drop(sync);
        if let Some(limit) = timeout
            && !exits_within(child, limit)?
        {
            tracing::debug!(pid = child.as_raw(), ?limit, "exec timed out: kill");
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            reap(child)?;
            return Ok(None);
        }
        reap(child).map(Some)
    }
}

/// Waits for `child` to exit, at most `limit`; true when it did (it is
/// then still to be reaped).
fn exits_within(child: Pid, limit: Duration) -> Result<bool> {
    let pidfd = pidfd_open(child)?;
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let ms = u16::try_from(left.as_millis().min(10_000)).unwrap_or(10_000);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms.max(1))) {
            Ok(0) | Err(nix::Error::EINTR) => continue,
            Ok(_) => return Ok(true),
            Err(e) => return Err(Error::sys("wait for the exec'd process", e)),
        }
    }
}

/// The exit code of `child` (128 + signal when killed).
fn reap(child: Pid) -> Result<i32> {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys("wait for the exec'd process", e)),
        }
    }
}
