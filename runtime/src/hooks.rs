//! Lifecycle hooks (Compose's `post_start` and `pre_stop`): commands from
//! the container's config run inside it as `exec` runs them, one after
//! the other, each of which must exit 0.
//!
//! The caller may be any process (the agent is multithreaded, and `exec`
//! needs a single-threaded one to `setns` and fork), so each hook runs in
//! a fresh `berth shim --hook KIND:N` process: it joins the container like
//! `exec`, with the hook's user, working dir, environment and privilege,
//! and copies nothing itself: the hook's stdout and stderr are pid 1's, so
//! its output lands in the container's log through the shim, in order
//! with the container's own. A time limit kills the hook (and, through
//! `PR_SET_PDEATHSIG`, nothing outlives a killed runner).

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{Hook, LogDriver};
use crate::error::{Error, Result};
use crate::exec::ExecOptions;
use crate::runtime::Runtime;
use crate::shim_args::ShimArgs;

/// Which list of hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    PostStart,
    PreStop,
}

impl HookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::PostStart => "post_start",
            HookKind::PreStop => "pre_stop",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "post_start" => Some(HookKind::PostStart),
            "pre_stop" => Some(HookKind::PreStop),
            _ => None,
        }
    }

    fn select(self, hooks: &crate::config::Hooks) -> &[Hook] {
        match self {
            HookKind::PostStart => &hooks.post_start,
            HookKind::PreStop => &hooks.pre_stop,
        }
    }
}

/// The runner's exit code when the hook ran out of time.
const TIMED_OUT: i32 = 124;
/// The runner's exit code when it could not run the hook at all.
const NOT_RUN: i32 = 125;

impl Runtime {
    /// Runs the container's `kind` hooks in order; the first one that
    /// fails (non-zero exit, cannot run, out of time) is the error. All of
    /// them together get at most `timeout`.
    pub fn run_hooks(&self, key: &str, kind: HookKind, timeout: Option<Duration>) -> Result<()> {
        let info = self.inspect(key)?;
        let hooks = kind.select(&info.config.hooks);
        let deadline = timeout.map(|t| Instant::now() + t);
        for (i, hook) in hooks.iter().enumerate() {
            let fail = |reason: String| Error::Hook {
                kind: kind.as_str(),
                number: i + 1,
                command: format!("{:?}", hook.args),
                reason,
            };
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(fail(
                    "did not run: no time left in the grace period".to_owned(),
                ));
            }
            let args = ShimArgs {
                root: self.root.path().to_owned(),
                cgroup_root: self.cgroup_root.clone(),
                id: info.config.id.clone(),
                start: false,
                attach: false,
                hook: Some(format!("{}:{i}", kind.as_str())),
                timeout_ms: left.map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX).max(1)),
                owner: None,
            };
            tracing::debug!(container.id = %info.config.id, hook = kind.as_str(), number = i + 1, "run hook");
            let mut child = Command::new(&self.shim_exe)
                .args(args.to_argv())
                .env(crate::alloc::SYSTEM_ALLOCATOR_ENV, "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| Error::io("spawn the hook runner", &self.shim_exe, e))?;
            let mut diagnostics = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut diagnostics);
            }
            let status = child
                .wait()
                .map_err(|e| Error::io("wait for the hook runner", &self.shim_exe, e))?;
            let diagnostics = diagnostics.trim();
            match status.code() {
                Some(0) => {}
                Some(TIMED_OUT) if !diagnostics.is_empty() => {
                    return Err(fail(diagnostics.to_owned()));
                }
                Some(NOT_RUN) if !diagnostics.is_empty() => {
                    return Err(fail(diagnostics.to_owned()));
                }
                Some(code) => {
                    return Err(fail(format!(
                        "exited with status {code} (its output is in the container's log)"
                    )));
                }
                None => return Err(fail(format!("runner ended by a signal: {status}"))),
            }
        }
        Ok(())
    }
}

/// The hook runner's side (`berth shim --hook KIND:N`); returns the exit
/// code: the hook's, [`TIMED_OUT`] or [`NOT_RUN`], with the reason on
/// stderr. Must run in a single-threaded process, as `exec` does.
pub fn run_hook_process(args: &ShimArgs) -> i32 {
    // Our own stderr tells the caller what went wrong; the hook's goes to
    // the container's log.
    // Close-on-exec, or the hook (and anything it leaves running) would
    // hold the caller's pipe open.
    // SAFETY: fcntl duplicates fd 2, which this process owns; the new fd
    // is ours.
    let report_fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
    // SAFETY: a fresh descriptor nothing else owns (or -1, checked).
    let mut report = (report_fd >= 0).then(|| unsafe { std::fs::File::from_raw_fd(report_fd) });
    let mut say = |msg: &str| {
        if let Some(f) = &mut report {
            let _ = writeln!(f, "{msg}");
        }
    };
    match run_hook_inner(args) {
        Ok(Some(code)) => code,
        Ok(None) => {
            say(&format!(
                "timed out after {} ms and was killed",
                args.timeout_ms.unwrap_or(0)
            ));
            TIMED_OUT
        }
        Err(e) => {
            say(&format!("could not run: {e}"));
            NOT_RUN
        }
    }
}

fn run_hook_inner(args: &ShimArgs) -> Result<Option<i32>> {
    let spec = args.hook.as_deref().unwrap_or_default();
    let bad = || {
        Error::invalid(
            "hook",
            format!("{spec:?}: expected post_start:N or pre_stop:N"),
        )
    };
    let (kind, index) = spec.split_once(':').ok_or_else(bad)?;
    let kind = HookKind::parse(kind).ok_or_else(bad)?;
    let index: usize = index.parse().map_err(|_| bad())?;
    let rt = Runtime::new(&args.root, &args.cgroup_root, "/proc/self/exe");
    let info = rt.inspect(&args.id)?;
    let hook = kind
        .select(&info.config.hooks)
        .get(index)
        .ok_or_else(|| Error::invalid("hook", format!("the container has no {spec}")))?
        .clone();
    if !info.observed.container_alive || info.observed.status != "running" {
        return Err(Error::InvalidState {
            id: info.config.id,
            status: info.observed.status,
            action: "run a hook in it",
        });
    }
    attach_output(info.state.pid, info.config.log.driver);
    rt.exec_bounded(
        &args.id,
        &ExecOptions {
            args: hook.args,
            env: hook.env,
            cwd: hook.cwd,
            user: hook.user,
            privileged: hook.privileged,
        },
        args.timeout_ms.map(Duration::from_millis),
    )
}

/// Points fds 1 and 2 at pid 1's stdout and stderr (the shim's log pipes),
/// or at `/dev/null` when the container keeps no log or they cannot be
/// opened.
fn attach_output(pid: i32, driver: LogDriver) {
    for fd in [1, 2] {
        let target = if driver == LogDriver::None {
            "/dev/null".to_owned()
        } else {
            format!("/proc/{pid}/fd/{fd}")
        };
        let file = OpenOptions::new()
            .write(true)
            .open(&target)
            .or_else(|_| OpenOptions::new().write(true).open("/dev/null"));
        if let Ok(f) = file {
            let _ = nix::unistd::dup2(f.as_raw_fd(), fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in [HookKind::PostStart, HookKind::PreStop] {
            assert_eq!(HookKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(HookKind::parse("pre_start"), None);
    }
}
