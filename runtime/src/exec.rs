//! `exec`: run another process in a running container.
//!
//! The calling process must be single-threaded (the `berth` CLI is: it
//! dispatches `exec` before anything could start a thread, and this is
//! checked). It joins the container's pid namespace for its children only
//! (`setns(CLONE_NEWPID)` changes `pid_for_children`), forks, puts the
//! child in the container's cgroup, and the child joins ipc, uts, net and
//! last mnt, then takes the same user, group, capability, limit and
//! environment path as pid 1 did. The caller's stdio is inherited; the
//! exit code comes back. The joining and exec'ing ([`ContainerNamespaces`],
//! [`enter_and_exec`]) are shared with the shim's health probes (`probe`)
//! and the lifecycle hooks (`hooks`).

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

/// The namespaces of a running container, opened through its pid 1 from
/// the host, for a process that joins them.
pub(crate) struct ContainerNamespaces {
    ipc: File,
    uts: File,
    net: File,
    pid: File,
    mnt: File,
}

impl ContainerNamespaces {
    pub(crate) fn open(pid1: i32) -> Result<Self> {
        let open_ns = |ns: &str| {
            let p = format!("/proc/{pid1}/ns/{ns}");
            File::open(&p).map_err(|e| Error::io("open", p, e))
        };
        Ok(ContainerNamespaces {
            ipc: open_ns("ipc")?,
            uts: open_ns("uts")?,
            net: open_ns("net")?,
            pid: open_ns("pid")?,
            mnt: open_ns("mnt")?,
        })
    }

    /// Makes this process's next children members of the container's pid
    /// namespace (its own pid namespace is unchanged).
    pub(crate) fn enter_pid_for_children(&self) -> Result<()> {
        setns(self.pid.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(|e| Error::sys("join the pid namespace", e))
    }
}

/// A process to start in a running container.
pub(crate) struct InContainer<'a> {
    pub args: &'a [String],
    pub env: &'a [String],
    pub user: Option<&'a str>,
    pub cwd: Option<&'a str>,
    pub hostname: &'a str,
    /// Supplementary groups on top of the user's (`group_add`).
    pub groups: &'a [String],
    /// Capabilities, no_new_privs, rlimits and OOM score to take.
    pub privileges: &'a Privileges,
    /// Killed when its parent exits (`PR_SET_PDEATHSIG`): a process with a
    /// deadline must not outlive whoever enforces it.
    pub die_with_parent: bool,
}

/// In a forked child (already in the container's pid namespace and
/// cgroup): joins ipc, uts, net and last mnt, then takes pid 1's user,
/// groups, capabilities, limits and environment path, and execs. Returns only when that
/// fails, with Docker's exit code for the failure and a message.
pub(crate) fn enter_and_exec(ns: &ContainerNamespaces, p: &InContainer<'_>) -> (i32, String) {
    for (f, flag, what) in [
        (&ns.ipc, CloneFlags::CLONE_NEWIPC, "ipc"),
        (&ns.uts, CloneFlags::CLONE_NEWUTS, "uts"),
        (&ns.net, CloneFlags::CLONE_NEWNET, "net"),
        (&ns.mnt, CloneFlags::CLONE_NEWNS, "mnt"),
    ] {
        if let Err(e) = setns(f.as_fd(), flag) {
            return (126, format!("join the {what} namespace: {e}"));
        }
    }
    let prepared = match process::prepare(p.args, p.env, p.user, p.cwd, p.hostname, p.groups) {
        Ok(prepared) => prepared,
        Err(e) => return (e.code, e.message),
    };
    if let Err(e) = process::finalize(&prepared, p.privileges) {
        return (126, e.to_string());
    }
    if p.die_with_parent {
        // After finalize: a change of credentials clears it.
        // SAFETY: prctl with integer arguments only.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        }
    }
    let e = process::exec(&prepared);
    let code = if e == nix::Error::ENOENT { 127 } else { 126 };
    (code, format!("exec {:?}: {}", prepared.path, e.desc()))
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
        let ns = ContainerNamespaces::open(info.state.pid)?;
        let cgroup = Cgroup::open(&self.cgroup_root, &info.config.id)?;
        let mut env = info.config.process.env.clone();
        env.extend(opts.env.iter().cloned());
        let user = opts.user.clone().or(info.config.process.user.clone());
        let cwd = opts.cwd.clone().or(info.config.process.cwd.clone());
        let hostname = info.config.effective_hostname();
        let groups = info.config.process.additional_groups.clone();
        let privileges = Privileges::of(&info.config, opts.privileged)?;

        ns.enter_pid_for_children()?;
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
                let (code, msg) = enter_and_exec(
                    &ns,
                    &InContainer {
                        args: &opts.args,
                        env: &env,
                        user: user.as_deref(),
                        cwd: cwd.as_deref(),
                        hostname: &hostname,
                        groups: &groups,
                        privileges: &privileges,
                        die_with_parent: timeout.is_some(),
                    },
                );
                let _ = writeln!(std::io::stderr(), "berth exec: {msg}");
                std::process::exit(code)
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
