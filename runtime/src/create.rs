//! `create` (and `run`'s create-and-start): state dir, name, shim.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::config::ContainerConfig;
use crate::error::{Error, Result};
use crate::names::valid_name;
use crate::runtime::{Runtime, try_lock};
use crate::shim::{LOCK_FD, STATUS_FD, ShimArgs, cloexec_pipe};
use crate::shim_args::OwnerProcess;
use crate::state::{State, write_json_atomic};

/// How `create` hands the container to its shim.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOptions {
    /// Start right away (`run`), without a separate [`Runtime::start`].
    pub start: bool,
    /// The shim copies output to this process's stdout/stderr until the
    /// returned [`ShimHandle`] is dropped (foreground `run`).
    pub attach: bool,
    /// The container is killed and removed when the calling process ends
    /// (a build's RUN step): its shim watches this process, so a builder
    /// killed with SIGKILL leaves no container running on.
    pub die_with_caller: bool,
}

/// What the shim reports on the status pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShimEvent {
    /// Set up, waiting for `start`; pid 1's host pid.
    Created(i32),
    Started(i32),
    /// Pid 1 exited with this code (128 + signal when killed).
    Exited(i32),
}

/// The CLI's end of a shim: its status pipe (and, when attached, the pipe
/// whose closing tells the shim to stop copying output to us).
pub struct ShimHandle {
    pub id: String,
    status: BufReader<File>,
    _hangup: Option<OwnedFd>,
}

impl ShimHandle {
    /// The next event; an error when the shim reports one, and `Ok(None)`
    /// once the shim is gone.
    pub fn next_event(&mut self) -> Result<Option<ShimEvent>> {
        let mut line = String::new();
        let n = self
            .status
            .read_line(&mut line)
            .map_err(|e| Error::io("read the status pipe of", &self.id, e))?;
        if n == 0 {
            return Ok(None);
        }
        let line = line.trim_end();
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let num = |s: &str| s.trim().parse::<i32>().unwrap_or(-1);
        match word {
            "created" => Ok(Some(ShimEvent::Created(num(rest)))),
            "started" => Ok(Some(ShimEvent::Started(num(rest)))),
            "exited" => Ok(Some(ShimEvent::Exited(num(rest)))),
            "error" => {
                let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
                Err(Error::Start {
                    id: self.id.clone(),
                    code: code.parse().unwrap_or(125),
                    message: message.to_owned(),
                })
            }
            _ => Err(Error::Shim {
                id: self.id.clone(),
                reason: format!("unexpected status line {line:?}"),
            }),
        }
    }
}

impl Runtime {
    /// Creates the container: writes `config.json` and `state.json`,
    /// claims the name, and spawns the detached shim, which sets the
    /// container up (and starts it with `opts.start`). Returns once the
    /// shim reports `created`/`started` or an error.
    pub fn create(&self, config: &ContainerConfig, opts: CreateOptions) -> Result<ShimHandle> {
        validate(config)?;
        let dir = self.root.container(&config.id);
        fs::create_dir_all(self.root.containers_dir())
            .map_err(|e| Error::io("create", self.root.containers_dir(), e))?;
        fs::create_dir_all(self.names_dir())
            .map_err(|e| Error::io("create", self.names_dir(), e))?;
        // The name is claimed atomically, and taken back from a creator
        // that died before the container had a state (see `claim`); the
        // claim stays locked until this returns.
        let claim = self.claim_name(&config.name, &config.id)?;
        let result = self.spawn_shim(config, opts);
        if result.is_err() && !dir.state().exists() {
            let _ = fs::remove_file(&claim.path);
        }
        result
    }

    fn spawn_shim(&self, config: &ContainerConfig, opts: CreateOptions) -> Result<ShimHandle> {
        let dir = self.root.container(&config.id);
        fs::create_dir(dir.path()).map_err(|e| Error::io("create", dir.path(), e))?;
        if let Err(e) = crate::files::materialize(&dir, &config.mounts) {
            // No half-made copies of secrets left behind.
            let _ = fs::remove_dir_all(dir.path());
            return Err(e);
        }
        write_json_atomic(&dir.config(), config)?;
        self.launch(config, opts, State::new(&config.id, &config.name))
    }

    /// Starts a new shim for an existing container (`start` of an exited
    /// one, `restart`): fresh state, same config, same upper dir.
    pub(crate) fn relaunch(&self, config: &ContainerConfig) -> Result<ShimHandle> {
        let dir = self.root.container(&config.id);
        let old = State::load(&dir.state())?;
        let mut fresh = State::new(&config.id, &config.name);
        fresh.created_at = old.created_at;
        // Docker keeps the probe log across starts.
        fresh.health = old.health;
        self.launch(
            config,
            CreateOptions {
                start: true,
                attach: false,
                die_with_caller: false,
            },
            fresh,
        )
    }

    fn launch(
        &self,
        config: &ContainerConfig,
        opts: CreateOptions,
        state: State,
    ) -> Result<ShimHandle> {
        let dir = self.root.container(&config.id);
        // Locked here and inherited: from this instant until the shim exits
        // the lock is held, so `ps` never sees a shim-less gap. Taking it
        // without waiting also proves no other shim runs this container.
        let lockf = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.lock())
            .map_err(|e| Error::io("create", dir.lock(), e))?;
        if !try_lock(&lockf, libc::LOCK_EX) {
            return Err(Error::InvalidState {
                id: config.id.clone(),
                status: "running".to_owned(),
                action: "start a second shim",
            });
        }
        state.save(&dir.state())?;
        let (status_r, status_w) = cloexec_pipe()?;
        let (hangup_r, hangup_w) = if opts.attach {
            let (r, w) = cloexec_pipe()?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let owner = if opts.die_with_caller {
            Some(OwnerProcess::current().ok_or_else(|| {
                Error::invalid(
                    "create option",
                    "cannot read this process's start time from /proc, which the shim needs to watch it",
                )
            })?)
        } else {
            None
        };
        let args = ShimArgs {
            root: self.root.path().to_owned(),
            cgroup_root: self.cgroup_root.clone(),
            id: config.id.clone(),
            start: opts.start,
            attach: opts.attach,
            hook: None,
            timeout_ms: None,
            owner,
        };
        let mut cmd = Command::new(&self.shim_exe);
        cmd.args(args.to_argv());
        // A shim is long-lived and mostly idle: the system allocator keeps
        // its memory small (see `alloc`).
        cmd.env(crate::alloc::SYSTEM_ALLOCATOR_ENV, "1");
        match hangup_r {
            Some(r) => {
                cmd.stdin(Stdio::from(r));
            }
            None => {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
        }
        let (status_fd, lock_fd) = (status_w.as_raw_fd(), lockf.as_raw_fd());
        // SAFETY: the closure runs between fork and exec and only calls
        // fcntl and dup2, which are async-signal-safe. Both fds are first
        // moved above 10, so that placing one on 3 or 4 cannot clobber the
        // other; dup2 clears FD_CLOEXEC on the new descriptors so fds 3 and
        // 4 survive exec.
        unsafe {
            cmd.pre_exec(move || {
                let s = libc::fcntl(status_fd, libc::F_DUPFD_CLOEXEC, 10);
                let l = libc::fcntl(lock_fd, libc::F_DUPFD_CLOEXEC, 10);
                if s < 0 || l < 0 || libc::dup2(s, STATUS_FD) < 0 || libc::dup2(l, LOCK_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        tracing::debug!(container.id = %config.id, exe = %self.shim_exe.display(), "spawn shim");
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io("spawn the shim", &self.shim_exe, e))?;
        drop(status_w);
        drop(lockf);
        let mut handle = ShimHandle {
            id: config.id.clone(),
            status: BufReader::new(File::from(status_r)),
            _hangup: hangup_w,
        };
        let first = handle.next_event();
        // The first shim process forks the real one and exits at once;
        // reaped once the shim has answered, so that waking up for its
        // exit is not one more step before the shim can go on.
        let _ = child.wait();
        match first? {
            Some(ShimEvent::Created(_) | ShimEvent::Started(_)) => Ok(handle),
            Some(ShimEvent::Exited(code)) => Err(Error::Start {
                id: config.id.clone(),
                code,
                message: "the container exited during setup".to_owned(),
            }),
            None => Err(Error::Shim {
                id: config.id.clone(),
                reason: format!(
                    "it exited without reporting; see {}",
                    dir.shim_log().display()
                ),
            }),
        }
    }
}

fn validate(c: &ContainerConfig) -> Result<()> {
    if c.id.len() < 12 || !c.id.chars().all(|ch| ch.is_ascii_hexdigit()) {
        return Err(Error::invalid(
            "container id",
            format!("{:?} is not hex of 12+ digits", c.id),
        ));
    }
    if !valid_name(&c.name) {
        return Err(Error::invalid(
            "container name",
            format!("{:?} must match [a-zA-Z0-9][a-zA-Z0-9_.-]*", c.name),
        ));
    }
    if c.process.args.is_empty() {
        return Err(Error::invalid("process", "no command specified"));
    }
    if c.process.tty {
        return Err(Error::invalid("process", "tty is not supported yet"));
    }
    if let Some(h) = &c.healthcheck {
        h.validate().map_err(|e| Error::invalid("healthcheck", e))?;
    }
    if c.auto_remove && !c.restart_policy.is_none() {
        return Err(Error::invalid(
            "restart policy",
            "Conflicting options: a restart policy and auto-remove (--rm) cannot be used together",
        ));
    }
    validate_memory(&c.resources)?;
    validate_features(c)
}

/// The settings beyond the basics, checked before anything is created so
/// that a bad name fails `create` rather than the container's setup.
fn validate_features(c: &ContainerConfig) -> Result<()> {
    crate::caps::validate(&c.security)?;
    crate::rlimits::validate(&c.rlimits)?;
    crate::sysctl::validate(&c.sysctls, &c.network)?;
    crate::devices::resolve(&c.devices)?;
    crate::files::validate(&c.mounts)?;
    for m in &c.mounts {
        if let crate::Mount::Tmpfs {
            size,
            mode,
            options,
            ..
        } = m
        {
            crate::tmpfs::mount_args(*size, *mode, options)?;
        }
    }
    if let Some(score) = c.oom_score_adj
        && !(-1000..=1000).contains(&score)
    {
        return Err(Error::invalid(
            "oom_score_adj",
            format!("invalid value {score}, the range is [-1000, 1000]"),
        ));
    }
    if let Some(s) = c.resources.memory_swappiness
        && s > 100
    {
        return Err(Error::invalid(
            "memory-swappiness",
            format!("invalid value {s}, the range is [0, 100]"),
        ));
    }
    let hooks = c.hooks.post_start.iter().chain(&c.hooks.pre_stop);
    if hooks.into_iter().any(|h| h.args.is_empty()) {
        return Err(Error::invalid("hook", "a hook has no command"));
    }
    Ok(())
}

/// Docker's checks on memory settings, made before anything is created, so
/// a bad combination is an error of `create` rather than of the shim.
fn validate_memory(r: &crate::Resources) -> Result<()> {
    let limit = r.memory.filter(|m| *m > 0);
    if let (Some(limit), Some(reservation)) = (limit, r.memory_reservation.filter(|m| *m > 0)) {
        if reservation > limit {
            return Err(Error::invalid(
                "memory",
                "Minimum memory limit can not be less than memory reservation limit, see usage",
            ));
        }
    }
    match (limit, r.memory_swap) {
        (Some(limit), Some(swap)) if swap > 0 && swap < limit => Err(Error::invalid(
            "memory-swap",
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        )),
        (None, Some(swap)) if swap > 0 => Err(Error::invalid(
            "memory-swap",
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;
    use crate::Resources;

    fn check(memory: Option<i64>, reservation: Option<i64>, swap: Option<i64>) -> Result<()> {
        validate_memory(&Resources {
            memory,
            memory_reservation: reservation,
            memory_swap: swap,
            ..Default::default()
        })
    }

    #[test]
    fn memory_settings_are_checked_like_docker() {
        const M: i64 = 1 << 20;
        assert!(check(Some(32 * M), Some(16 * M), Some(64 * M)).is_ok());
        assert!(
            check(Some(32 * M), None, Some(-1)).is_ok(),
            "unlimited swap"
        );
        assert!(check(None, None, Some(-1)).is_ok());
        assert!(
            check(None, Some(16 * M), None).is_ok(),
            "a reservation alone"
        );
        let err = check(Some(16 * M), Some(32 * M), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory reservation"), "{err}");
        let err = check(Some(32 * M), None, Some(16 * M))
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than memory limit"), "{err}");
        let err = check(None, None, Some(64 * M)).unwrap_err().to_string();
        assert!(err.contains("set the Memory limit"), "{err}");
    }
}
