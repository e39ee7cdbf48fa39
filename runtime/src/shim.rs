//! The per-container supervisor ("shim"): the `berth` binary re-executed
//! as `berth shim --root R --cgroup-root C --id ID [--start] [--attach]`.
//!
//! Lifecycle: the CLI ([`crate::Runtime::create`]) spawns it with the
//! status pipe on fd 3 and the already-locked `shim.lock` on fd 4. The
//! shim `setsid`s and forks once more (the intermediate exits, so the
//! supervisor is reparented away from the CLI and has no terminal), becomes
//! a child subreaper, opens its `control` fifo, and then, for each run of
//! the container:
//!
//! 1. `unshare(CLONE_NEWPID)` (after returning to its own pid namespace
//!    for children: a restart needs a fresh one) and forks pid 1;
//! 2. lets the child go on (a byte on the sync pipe) and meanwhile
//!    writes the limits and device rules into the cgroup and then puts
//!    the child in (every run: the cgroup outlives the runs, a restarted
//!    pid 1 joins it again): the child
//!    unshares mount, uts, ipc and net, builds its root and pivots,
//!    resolves user and command, drops capabilities, and says `ready`;
//! 3. the first time, waits for `start` (a byte on `start.fifo`) unless
//!    `--start`, then releases the child into `execve`; when there is no
//!    `start` to wait for (`run`, a restart), the release goes right
//!    after the limits are written, without a round trip after `ready`;
//! 4. pumps the container's stdout/stderr into the json log (and to the
//!    CLI's own stdout/stderr with `--attach`, until the CLI hangs up),
//!    running the health probes meanwhile (`probe`);
//! 5. when pid 1 exits, records exit code, signal, OOM kill and time in
//!    `state.json`, and asks the restart policy (`restart_policy`): to
//!    restart, it records `restarting`, waits out the backoff (a `berth
//!    stop` or `kill` on the control fifo cancels it) and goes back to 1
//!    with the same cgroup, upper dir and log; otherwise it removes the
//!    cgroup and exits, releasing the lock.
//!
//! The CLI that started it hears about the first exit only: after that
//! the status pipe and the attached streams are closed, as `docker run`
//! returns at the first exit of a container that restarts.
//!
//! It is single-threaded from start to end: the only process in berth that
//! forks into namespaces.

#[path = "shim_child.rs"]
mod child;
#[path = "shim_fifo.rs"]
mod fifo;
#[path = "shim_owner.rs"]
mod owner;
#[path = "shim_pump.rs"]
mod pump;

pub(crate) use child::{cloexec_pipe, pidfd_open, report_exec_error};
use child::{container_child, set_subreaper};
use fifo::{open_fifo, open_start_fifo, parse_error_line, read_control, release, wait_for_start};

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, dup, dup2, fork, pipe2, setsid};

use crate::cgroup::Cgroup;
use crate::config::{ContainerConfig, Network, Rootfs};
use crate::error::{Error, Result};
use crate::logs::{LogWriter, Stream};
use crate::probe::Prober;
use crate::process::{self, Prepared};
use crate::resident::release_setup_text;
use crate::restart_policy::{ExitFacts, Restarter};
pub use crate::shim_args::{OwnerProcess, ShimArgs};
use crate::state::{
    ContainerDir, State, StateRoot, Status, boot_id, now_rfc3339, proc_start_time, read_json,
};

/// The status pipe's fd in the shim.
pub const STATUS_FD: RawFd = 3;
/// The locked `shim.lock`'s fd in the shim.
pub const LOCK_FD: RawFd = 4;

/// Bytes a stop or kill through berth writes to the `control` fifo.
pub mod control {
    /// A stop, or a kill with the stop signal: the user stopped the
    /// container, and this exit must not be answered with a restart
    /// (moby's `ExitOnNext`).
    pub const STOP: u8 = b's';
    /// A kill with another signal: the user signalled the container
    /// (`unless-stopped` will not restart it), without cancelling
    /// `always`.
    pub const SIGNALLED: u8 = b'm';
}

/// Writes `byte` (see [`control`]) to the container's shim, if one runs.
/// Never blocks: a shim that is gone (no reader on the fifo) has nothing
/// left to restart.
pub(crate) fn tell_shim(dir: &ContainerDir, byte: u8) {
    let opened = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(dir.control_fifo());
    if let Ok(mut f) = opened {
        let _ = f.write_all(&[byte]);
    }
}

/// Called by the shim once its container has exited for good (no
/// restart follows), before anyone hears of the exit: `removed` says the
/// container goes with it (`--rm`). The runtime knows nothing of networks;
/// the binary that wires them in frees the container's endpoint or ports
/// here (`set_exit_hook`), as Docker's daemon does when a container stops.
pub type ExitHook = fn(root: &Path, config: &ContainerConfig, removed: bool);

static EXIT_HOOK: std::sync::OnceLock<ExitHook> = std::sync::OnceLock::new();

/// Installs the [`ExitHook`] (once per process, before [`main`]).
pub fn set_exit_hook(hook: ExitHook) {
    let _ = EXIT_HOOK.set(hook);
}

fn run_exit_hook(dir: &ContainerDir, cfg: &ContainerConfig, removed: bool) {
    if let Some(hook) = EXIT_HOOK.get() {
        // The last run left our children bound for its (dead) pid
        // namespace, where no thread can be made (clone gives EINVAL): the
        // hook's netlink work spawns threads. Back to our own.
        if let Ok(own) = File::open("/proc/self/ns/pid") {
            let _ = setns(own.as_fd(), CloneFlags::CLONE_NEWPID);
        }
        hook(&root_of(dir), cfg, removed);
    }
}

/// The shim's entry point; returns the process exit code.
pub fn main(args: &ShimArgs) -> i32 {
    if args.hook.is_some() {
        return crate::hooks::run_hook_process(args);
    }
    // The CLI spawned us as a group leader-free child: a new session
    // detaches us from its terminal and process group.
    let _ = setsid();
    // SAFETY: the shim is single-threaded (nothing has spawned a thread
    // yet), so the child may keep running arbitrary code.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => return 0,
        Ok(ForkResult::Child) => {}
        Err(_) => return 125,
    }
    // SAFETY: fd 3 is the status pipe the CLI handed us; we own it now.
    let status = unsafe { File::from_raw_fd(STATUS_FD) };
    let mut shim = Shim {
        status: Some(status),
        attach: None,
        owner: None,
        orphaned: false,
    };
    let dir = StateRoot::new(&args.root).container(&args.id);
    let result = shim.run(args);
    // The fifos only make sense while a shim reads them.
    let _ = fs::remove_file(dir.start_fifo());
    let _ = fs::remove_file(dir.control_fifo());
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth shim: {e}");
            shim.report(&format!("error 125 {}", one_line(&e.to_string())));
            if let Ok(mut st) = State::load(&dir.state())
                && st.status != Status::Exited
            {
                st.status = Status::Exited;
                st.exit_code = Some(125);
                st.error = Some(e.to_string());
                st.finished_at = Some(now_rfc3339());
                let _ = st.save(&dir.state());
            }
            if let Ok(cg) = Cgroup::open(&args.cgroup_root, &args.id) {
                let _ = cg.remove();
            }
            1
        }
    }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

struct Attach {
    out: File,
    err: File,
    hangup: OwnedFd,
}

struct Shim {
    status: Option<File>,
    attach: Option<Attach>,
    /// The process the container must not outlive (`--owner`): a pidfd
    /// that becomes readable when it ends; `None` once it has ended, or
    /// when there is none.
    owner: Option<OwnedFd>,
    /// The owner ended: pid 1 was killed, and the container goes with
    /// this shim (no restart, its folder removed as with `--rm`).
    orphaned: bool,
}

/// How one run of the container ended.
struct RunExit {
    code: i32,
    signal: Option<i32>,
    oom_killed: bool,
    ran_for: Duration,
}

/// What stays the same across the runs of one container.
struct Supervised<'a> {
    cfg: &'a ContainerConfig,
    /// `cfg` as the child mounts it: the image's layers under the shared
    /// layer of mount targets (see `init_layer`).
    mounted: &'a ContainerConfig,
    dir: &'a ContainerDir,
    cgroup: &'a Cgroup,
    /// The shim's own pid namespace (each run unshares a new one below it).
    own_pidns: File,
    log: Option<LogWriter>,
}

impl Shim {
    /// A line to the CLI, if it still listens.
    fn report(&mut self, line: &str) {
        if let Some(f) = &mut self.status
            && writeln!(f, "{line}").is_err()
        {
            self.status = None;
        }
    }

    fn run(&mut self, args: &ShimArgs) -> Result<()> {
        set_subreaper();
        // SAFETY: setting a disposition to SIG_IGN installs no handler code.
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigIgn,
            );
        }
        let root = StateRoot::new(&args.root);
        let dir = root.container(&args.id);
        // Our own diagnostics go to shim.log; the attach streams are kept
        // aside first.
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.shim_log())
            .map_err(|e| Error::io("open", dir.shim_log(), e))?;
        if args.attach {
            let out = dup(1).map_err(|e| Error::sys("dup stdout", e))?;
            let err = dup(2).map_err(|e| Error::sys("dup stderr", e))?;
            let hangup = dup(0).map_err(|e| Error::sys("dup stdin", e))?;
            // SAFETY: the three fds are fresh dups that nothing else owns.
            self.attach = Some(unsafe {
                Attach {
                    out: File::from_raw_fd(out),
                    err: File::from_raw_fd(err),
                    hangup: OwnedFd::from_raw_fd(hangup),
                }
            });
        }
        let devnull = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| Error::io("open", "/dev/null", e))?;
        let _ = dup2(devnull.as_raw_fd(), 0);
        let _ = dup2(devnull.as_raw_fd(), 1);
        let _ = dup2(log.as_raw_fd(), 2);

        let cfg: ContainerConfig = read_json(&dir.config())?;
        let mut state = State::load(&dir.state())?;
        // Saved with pid 1's below: liveness goes by the lock, not by this
        // pid, and every save is a rename in the container's folder.
        state.shim_pid = std::process::id() as i32;
        state.shim_start_time = proc_start_time(state.shim_pid).unwrap_or(0);
        state.boot_id = boot_id();
        crate::rootfs::write_etc_files(&cfg, &dir)?;

        if let Some(owner) = args.owner {
            self.watch_owner(owner);
        }
        let cgroup = Cgroup::open(&args.cgroup_root, &cfg.id)?;
        // What the child mounts: the image's layers under the shared layer
        // of mount targets (see `init_layer`).
        let mut mounted = cfg.clone();
        if let Rootfs::Layers(layers) = &mut mounted.rootfs {
            layers.push(crate::init_layer::ensure(&root)?);
        }
        let own_pidns = File::open("/proc/self/ns/pid")
            .map_err(|e| Error::io("open", "/proc/self/ns/pid", e))?;
        // Before anything can see the container: a stop right after
        // `create` returns must find someone to tell.
        let control = open_fifo(&dir.control_fifo())?;
        let mut sup = Supervised {
            cfg: &cfg,
            mounted: &mounted,
            dir: &dir,
            cgroup: &cgroup,
            own_pidns,
            log: None,
        };
        let mut restarter = Restarter::new(cfg.restart_policy.clone());
        let mut wait_start = !args.start;
        let mut reported = false;
        while let Some(exit) = self.run_once(&mut sup, &mut state, wait_start)? {
            wait_start = false;
            let told = read_control(&control, None);
            state.manually_stopped |= told.manually_stopped;
            state.exit_code = Some(exit.code);
            state.signal = exit.signal;
            state.oom_killed = exit.oom_killed;
            state.finished_at = Some(now_rfc3339());
            if self.orphaned {
                state.status = Status::Exited;
                break;
            }
            let delay = restarter.decide(ExitFacts {
                exit_code: exit.code,
                oom_killed: exit.oom_killed,
                manually_stopped: state.manually_stopped,
                cancelled: told.stop,
                ran_for: exit.ran_for,
            });
            let Some(delay) = delay else {
                // Saved by `finish`, unless the folder goes to the trash.
                state.status = Status::Exited;
                break;
            };
            state.status = Status::Restarting;
            state.restart_count = restarter.restart_count();
            state.save(&dir.state())?;
            if !reported {
                // The CLI that started the container hears of its first
                // exit; what follows is the supervisor's business.
                self.report(&format!("exited {}", exit.code));
                reported = true;
            }
            self.status = None;
            self.attach = None;
            // The backoff may last a minute: idle with the pages of the
            // run and its setup dropped.
            release_setup_text();
            let told = read_control(&control, Some(Instant::now() + delay));
            if told.stop {
                state.manually_stopped = true;
                state.status = Status::Exited;
                break;
            }
            // The next run has not been stopped by anyone yet.
            state.manually_stopped = told.manually_stopped;
        }
        self.finish(&cfg, &dir, &state, &cgroup, reported)
    }

    /// After the last run: removes the cgroup, saves the final state,
    /// tells the CLI of the exit (unless a restart did already) and, for
    /// an --rm container, retires and deletes its folder.
    fn finish(
        &mut self,
        cfg: &ContainerConfig,
        dir: &ContainerDir,
        state: &State,
        cgroup: &Cgroup,
        reported: bool,
    ) -> Result<()> {
        let cgroup_removed = cgroup
            .remove()
            .map_err(|e| eprintln!("berth shim: {e}"))
            .is_ok();
        let _ = fs::remove_file(dir.start_fifo());
        // An --rm container's folder goes to the trash right below: the
        // final save would be renamed away at once, so it is made only if
        // the container stays. A cgroup that would not go keeps an --rm
        // container listed, so that `rm -f` can try again rather than the
        // cgroup leaking.
        if !(cfg.auto_remove || self.orphaned) || !cgroup_removed {
            state.save(&dir.state())?;
            run_exit_hook(dir, cfg, false);
            if !reported && let Some(code) = state.exit_code {
                self.report(&format!("exited {code}"));
            }
            return Ok(());
        }
        // Gone for everyone (name free, not listed) before the caller hears
        // the exit, as with `docker run --rm`; the files go after.
        let root = StateRoot::new(root_of(dir));
        run_exit_hook(dir, cfg, true);
        let retired = crate::remove::retire(&root, cfg)?;
        if !reported && let Some(code) = state.exit_code {
            self.report(&format!("exited {code}"));
        }
        // Nobody waits on us any more: not the CLI (status pipe), nor a
        // pipeline reading the output we copied to it.
        self.status = None;
        self.attach = None;
        crate::remove::purge(&root, retired.as_deref(), true)
    }

    /// One run of the container, from fork to the exit of pid 1. `None`
    /// when it never got to run (setup failed, or it was killed before
    /// `start`): that is recorded, and final.
    fn run_once(
        &mut self,
        sup: &mut Supervised<'_>,
        state: &mut State,
        wait_start: bool,
    ) -> Result<Option<RunExit>> {
        let (cfg, dir, cgroup) = (sup.cfg, sup.dir, sup.cgroup);
        let (out_r, out_w) = cloexec_pipe()?;
        let (err_r, err_w) = cloexec_pipe()?;
        let (p2c_r, p2c_w) = cloexec_pipe()?;
        let (c2p_r, c2p_w) = cloexec_pipe()?;

        // The previous run's pid namespace died with its pid 1; children
        // go to our own again until the unshare below makes a new one.
        setns(sup.own_pidns.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(|e| Error::sys("return to the shim's pid namespace", e))?;
        unshare(CloneFlags::CLONE_NEWPID)
            .map_err(|e| Error::sys("unshare the pid namespace", e))?;
        // SAFETY: single-threaded process (see the module docs); the child
        // runs container setup and then execs or exits.
        let child = match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                drop((out_r, err_r, p2c_w, c2p_r));
                container_child(sup.mounted, dir, p2c_r, c2p_w, out_w, err_w)
            }
            Ok(ForkResult::Parent { child }) => child,
            Err(e) => return Err(Error::sys("fork the container", e)),
        };
        drop((out_w, err_w, p2c_r, c2p_w));
        let mut p2c = File::from(p2c_w);
        let mut c2p = BufReader::new(File::from(c2p_r));
        // The child builds its namespaces and root while we record it and
        // put it in its cgroup: the first write to a cgroup.procs waits
        // for an RCU grace period (~5 ms here), the longest single step of
        // a start, and none of the child's setup needs the cgroup. The
        // limits are in place before it may exec (`release` below).
        p2c.write_all(b"c")
            .map_err(|e| Error::io("signal", "the container", e))?;
        let pidfd = pidfd_open(child)?;
        state.pid = child.as_raw();
        state.pid_start_time = proc_start_time(child.as_raw()).unwrap_or(0);
        state.save(&dir.state())?;

        // Limits first, then the pid (see `limit_and_add`): the child is
        // building its /dev meanwhile.
        let joined = cgroup.limit_and_add(cfg, child.as_raw());
        if let Err(e) = joined {
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(child, None);
            // A child whose setup failed may be gone before it could join
            // (ESRCH): then its own message is the one worth reporting.
            let mut line = String::new();
            let _ = c2p.read_line(&mut line);
            if line.starts_with("error ") {
                let (code, msg) = parse_error_line(&line);
                self.fail_setup(dir, state, &cfg.log, code, &msg)?;
                return Ok(None);
            }
            return Err(e);
        }
        // `run` has nothing to wait for between the child's setup and its
        // exec: with the limits written it may go on its own, without a
        // round trip through us after its `ready` (on a busy machine every
        // wake-up of another process costs its turn on a CPU).
        let mut p2c = Some(p2c);
        if !wait_start {
            release(&mut p2c);
        }

        let mut line = String::new();
        let _ = c2p.read_line(&mut line);
        if line.trim() != "ready" {
            let _ = waitpid(child, None);
            let (code, msg) = parse_error_line(&line);
            self.fail_setup(dir, state, &cfg.log, code, &msg)?;
            return Ok(None);
        }
        if wait_start {
            // The fifo exists before anyone can see `created` (in
            // state.json or on the status pipe): a `start` right after
            // `create` returns must find it.
            let fifo = open_start_fifo(dir)?;
            state.status = Status::Created;
            state.save(&dir.state())?;
            self.report(&format!("created {}", child.as_raw()));
            if !wait_for_start(dir, fifo, &pidfd)? {
                // The container was killed before it started.
                let status = waitpid(child, None).ok();
                let (code, signal) = exit_code(status);
                reap_orphans();
                state.status = Status::Exited;
                state.exit_code = Some(code);
                state.signal = signal;
                state.finished_at = Some(now_rfc3339());
                state.save(&dir.state())?;
                return Ok(None);
            }
        }
        // Go (unless it went already): the child execs; its end of c2p
        // closes on success.
        release(&mut p2c);
        let mut rest = String::new();
        let _ = c2p.read_to_string(&mut rest);
        let started = Instant::now();
        state.status = Status::Running;
        state.started_at = Some(now_rfc3339());
        state.finished_at = None;
        state.exit_code = None;
        state.signal = None;
        state.oom_killed = false;
        state.error = (!rest.trim().is_empty()).then(|| parse_error_line(&rest).1);
        let prober = Prober::new(cfg, started, state.health.take());
        state.health = prober.as_ref().map(|p| p.health().clone());
        state.save(&dir.state())?;
        self.report(&format!("started {}", child.as_raw()));

        let writer = match &mut sup.log {
            Some(w) => w,
            None => sup
                .log
                .insert(LogWriter::open(&dir.log(), cfg.log.clone())?),
        };
        if let Some(err) = &state.error {
            let _ = writer.write(
                Stream::Stderr,
                format!("{err}\n").as_bytes(),
                SystemTime::now(),
            );
        }
        let oom_before = cgroup.paths().oom_kills();
        let mut run = pump::Run {
            cfg,
            dir,
            cgroup,
            state,
            prober,
            pidfd: &pidfd,
            child,
        };
        let status = self.pump(writer, out_r, err_r, &mut run);
        let status = match status {
            Some(s) => Some(s),
            None => waitpid(child, None).ok(),
        };
        let (code, signal) = exit_code(status);
        reap_orphans();
        Ok(Some(RunExit {
            code,
            signal,
            oom_killed: cgroup.paths().oom_kills() > oom_before,
            ran_for: started.elapsed(),
        }))
    }

    fn fail_setup(
        &mut self,
        dir: &ContainerDir,
        state: &mut State,
        log: &crate::config::LogConfig,
        code: i32,
        msg: &str,
    ) -> Result<()> {
        state.status = Status::Exited;
        state.exit_code = Some(code);
        state.error = Some(msg.to_owned());
        state.finished_at = Some(now_rfc3339());
        if let Some(h) = &mut state.health {
            h.stopped();
        }
        state.save(&dir.state())?;
        if let Ok(mut w) = LogWriter::open(&dir.log(), log.clone()) {
            let _ = w.write(
                Stream::Stderr,
                format!("{msg}\n").as_bytes(),
                SystemTime::now(),
            );
        }
        self.report(&format!("error {code} {}", one_line(msg)));
        // That was the last word for the CLI.
        self.status = None;
        Ok(())
    }
}

/// Docker's exit code for a wait status (128 + signal when killed) and the
/// signal.
fn exit_code(status: Option<WaitStatus>) -> (i32, Option<i32>) {
    match status {
        Some(WaitStatus::Exited(_, code)) => (code, None),
        Some(WaitStatus::Signaled(_, sig, _)) => (128 + sig as i32, Some(sig as i32)),
        _ => (255, None),
    }
}

/// Reaps anything else that was reparented to us.
fn reap_orphans() {
    while let Ok(s) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if s == WaitStatus::StillAlive {
            break;
        }
    }
}

/// `<root>` from `<root>/containers/<id>`.
fn root_of(dir: &ContainerDir) -> PathBuf {
    dir.path()
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_parse() {
        assert_eq!(
            parse_error_line("error 127 exec: \"x\": executable file not found in $PATH\n"),
            (
                127,
                "exec: \"x\": executable file not found in $PATH".to_owned()
            )
        );
        assert_eq!(
            parse_error_line(""),
            (125, "container setup failed without a message".to_owned())
        );
        assert_eq!(parse_error_line("error boom"), (125, "boom".to_owned()));
    }

    #[test]
    fn argv_is_stable() {
        let a = ShimArgs {
            root: "/r".into(),
            cgroup_root: "/sys/fs/cgroup".into(),
            id: "abc".into(),
            start: true,
            attach: false,
            hook: None,
            timeout_ms: None,
            owner: None,
        };
        let v: Vec<String> = a
            .to_argv()
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            v,
            [
                "shim",
                "--root",
                "/r",
                "--cgroup-root",
                "/sys/fs/cgroup",
                "--id",
                "abc",
                "--start"
            ]
        );
    }
}
