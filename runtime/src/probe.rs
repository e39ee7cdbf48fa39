//! The shim's health prober: runs the container's healthcheck inside the
//! container on schedule, kills a probe at its timeout, and turns each
//! result into the container's [`Health`] (the rules are in `health`).
//!
//! A probe starts the way `exec` does (`exec::enter_and_exec`): the shim
//! (single-threaded, so fork and setns are safe) makes its next child a
//! member of the container's pid namespace, forks, puts the child in the
//! container's cgroup, and the child joins ipc, uts, net and mnt and takes
//! pid 1's user, groups, capabilities, rlimits, environment and working
//! dir before it execs the probe.
//! The child leads a process group of its own, so a timeout kills
//! everything the probe started (`sh -c 'sleep 100'`). stdout and stderr
//! share one pipe, read as they come so a chatty probe never blocks, kept
//! up to 4 KiB; a failure before `execve` comes back on a separate pipe
//! and is recorded as Docker records an exec that could not start (exit
//! code -1 and the message).
//!
//! The prober never blocks: the shim's poll loop asks it for the
//! descriptors to watch and when it next needs to run
//! ([`Prober::fds`], [`Prober::next_wakeup`]), and calls
//! [`Prober::service`] whenever it wakes.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, dup2, fork, setpgid};

use crate::cgroup::Cgroup;
use crate::config::ContainerConfig;
use crate::error::{Error, Result};
use crate::exec::{ContainerNamespaces, InContainer, enter_and_exec};
use crate::health::{Health, Healthcheck, OutputBuffer, ProbeResult, timeout_message};
use crate::process::Privileges;
use crate::shim::{LOCK_FD, STATUS_FD, cloexec_pipe, pidfd_open};
use crate::state::now_rfc3339;

/// One probe on its way.
struct Running {
    pid: Pid,
    pidfd: OwnedFd,
    /// The probe's stdout and stderr; `None` once at end of file.
    output: Option<OwnedFd>,
    /// A message from the child when it failed before `execve`.
    setup_errors: OwnedFd,
    buffer: OutputBuffer,
    start: String,
    began: Instant,
    deadline: Instant,
    timed_out: bool,
}

/// The healthcheck of one run of a container.
pub(crate) struct Prober {
    check: Healthcheck,
    argv: Vec<String>,
    /// When the container's current run started (for the start period).
    started: Instant,
    next_due: Instant,
    running: Option<Running>,
    health: Health,
}

impl Prober {
    /// The prober for a run that started at `started`; `None` when the
    /// config has no enabled healthcheck. `previous` keeps the log of
    /// earlier runs.
    pub(crate) fn new(
        cfg: &ContainerConfig,
        started: Instant,
        previous: Option<Health>,
    ) -> Option<Prober> {
        let check = cfg.healthcheck.clone().filter(Healthcheck::is_enabled)?;
        let argv = check.argv()?;
        let health = Health::starting(previous);
        let next_due = started + check.next_delay(Duration::ZERO, health.status);
        Some(Prober {
            check,
            argv,
            started,
            next_due,
            running: None,
            health,
        })
    }

    pub(crate) fn health(&self) -> &Health {
        &self.health
    }

    /// Descriptors whose readiness means the running probe has news.
    pub(crate) fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let Some(r) = &self.running else {
            return Vec::new();
        };
        let mut fds = vec![r.pidfd.as_fd()];
        if let Some(out) = &r.output {
            fds.push(out.as_fd());
        }
        fds
    }

    /// When the prober must run even if no descriptor is ready: the next
    /// probe, or the running one's deadline.
    pub(crate) fn next_wakeup(&self) -> Instant {
        match &self.running {
            Some(r) if !r.timed_out => r.deadline,
            // Killed: its exit shows on the pidfd; look again soon anyway.
            Some(_) => Instant::now() + Duration::from_millis(100),
            None => self.next_due,
        }
    }

    /// Reads output, enforces the timeout, collects a finished probe and
    /// starts a due one. Returns true when the health changed in a way
    /// worth recording (a probe finished).
    pub(crate) fn service(&mut self, pid1: i32, cfg: &ContainerConfig, cgroup: &Cgroup) -> bool {
        let now = Instant::now();
        let mut recorded = false;
        if let Some(r) = &mut self.running {
            r.read_output();
            if !r.timed_out && now >= r.deadline {
                // The whole group: the probe and whatever it started.
                let _ = killpg(r.pid, Signal::SIGKILL);
                r.timed_out = true;
            }
            if let Some(status) = r.try_reap() {
                if let Some(done) = self.running.take() {
                    self.finish(done, status);
                    recorded = true;
                }
            }
        }
        if self.running.is_none() && now >= self.next_due {
            match start(&self.argv, pid1, cfg, cgroup) {
                Ok(r) => self.running = Some(r),
                Err(e) => {
                    // Docker records a probe that could not be started as
                    // a failed one.
                    let at = now_rfc3339();
                    let result = ProbeResult {
                        start: at.clone(),
                        end: at,
                        exit_code: -1,
                        output: e.to_string(),
                    };
                    self.record(result, now);
                    recorded = true;
                }
            }
        }
        recorded
    }

    /// The container's process exited: a running probe is killed and its
    /// result dropped (Docker cancels it), and the health reads
    /// `unhealthy`.
    pub(crate) fn stop(&mut self) -> Health {
        if let Some(r) = self.running.take() {
            let _ = killpg(r.pid, Signal::SIGKILL);
            let _ = waitpid(r.pid, None);
        }
        self.health.stopped();
        self.health.clone()
    }

    fn finish(&mut self, r: Running, status: WaitStatus) {
        let began = r.began;
        let end = now_rfc3339();
        let mut setup = String::new();
        let _ = File::from(r.setup_errors).read_to_string(&mut setup);
        let (exit_code, output) = if r.timed_out {
            (-1, timeout_message(self.check.timeout()))
        } else if let Some((_, message)) = setup.trim().split_once(' ') {
            (-1, message.to_owned())
        } else {
            let code = match status {
                WaitStatus::Exited(_, code) => code,
                WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
                _ => -1,
            };
            (code, r.buffer.into_string())
        };
        let result = ProbeResult {
            start: r.start,
            end,
            exit_code,
            output,
        };
        self.record(result, began);
    }

    fn record(&mut self, result: ProbeResult, began: Instant) {
        let since_start = began.saturating_duration_since(self.started);
        let in_start_period = since_start < self.check.start_period();
        self.health
            .record(result, self.check.retries(), in_start_period);
        let now = Instant::now();
        self.next_due = now
            + self.check.next_delay(
                now.saturating_duration_since(self.started),
                self.health.status,
            );
    }
}

impl Running {
    fn read_output(&mut self) {
        let Some(fd) = &self.output else { return };
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => {
                    self.output = None;
                    return;
                }
                Ok(n) => self.buffer.push(&buf[..n]),
                Err(nix::Error::EINTR) => continue,
                // EAGAIN: nothing more for now.
                Err(_) => return,
            }
        }
    }

    /// The probe's wait status once it has exited (reaped here).
    fn try_reap(&mut self) -> Option<WaitStatus> {
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => None,
            Ok(status) => {
                // What it wrote before exiting is in the pipe already; a
                // process it left behind may keep the pipe open, so do not
                // wait for end of file.
                self.read_output();
                Some(status)
            }
            Err(_) => Some(WaitStatus::Exited(self.pid, -1)),
        }
    }
}

/// Forks the probe into the container (see the module docs).
fn start(argv: &[String], pid1: i32, cfg: &ContainerConfig, cgroup: &Cgroup) -> Result<Running> {
    let ns = ContainerNamespaces::open(pid1)?;
    let devnull = File::options()
        .read(true)
        .open("/dev/null")
        .map_err(|e| Error::io("open", "/dev/null", e))?;
    let (out_r, out_w) = cloexec_pipe()?;
    let (err_r, err_w) = cloexec_pipe()?;
    let (sync_r, sync_w) = cloexec_pipe()?;
    let hostname = cfg.effective_hostname();
    let privileges = Privileges::of(cfg, false)?;
    ns.enter_pid_for_children()?;
    // SAFETY: the shim is single-threaded, so the child may run ordinary
    // code until it execs or exits.
    let pid = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop((out_r, err_r, sync_w));
            let mut b = [0u8; 1];
            if File::from(sync_r).read(&mut b).unwrap_or(0) != 1 {
                std::process::exit(126);
            }
            // The status pipe and the shim's lock must not outlive the shim
            // in a probe (or in what a probe leaves behind).
            let _ = nix::unistd::close(STATUS_FD);
            let _ = nix::unistd::close(LOCK_FD);
            let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
            let _ = dup2(devnull.as_raw_fd(), 0);
            let _ = dup2(out_w.as_raw_fd(), 1);
            let _ = dup2(out_w.as_raw_fd(), 2);
            let (code, message) = enter_and_exec(
                &ns,
                &InContainer {
                    args: argv,
                    env: &cfg.process.env,
                    user: cfg.process.user.as_deref(),
                    cwd: cfg.process.cwd.as_deref(),
                    hostname: &hostname,
                    groups: &cfg.process.additional_groups,
                    privileges: &privileges,
                    // The shim enforces the probe's timeout.
                    die_with_parent: true,
                },
            );
            let _ = File::from(err_w).write_all(format!("{code} {message}").as_bytes());
            std::process::exit(code)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(Error::sys("fork a health probe", e)),
    };
    drop((out_w, err_w, sync_r));
    let start = now_rfc3339();
    let began = Instant::now();
    let mut sync = File::from(sync_w);
    if let Err(e) = cgroup.add_task(pid.as_raw()) {
        drop(sync);
        let _ = waitpid(pid, None);
        return Err(e);
    }
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => {
            drop(sync);
            let _ = waitpid(pid, None);
            return Err(e);
        }
    };
    let _ = sync.write_all(b"g");
    drop(sync);
    set_nonblocking(&out_r);
    Ok(Running {
        pid,
        pidfd,
        output: Some(out_r),
        setup_errors: err_r,
        buffer: OutputBuffer::default(),
        start,
        began,
        deadline: began + timeout_of(cfg),
        timed_out: false,
    })
}

fn timeout_of(cfg: &ContainerConfig) -> Duration {
    cfg.healthcheck
        .as_ref()
        .map_or(crate::health::DEFAULT_TIMEOUT, Healthcheck::timeout)
}

fn set_nonblocking(fd: &OwnedFd) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    if let Ok(flags) = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags));
    }
}
