//! The per-container supervisor ("shim"): the `berth` binary re-executed
//! as `berth shim --root R --cgroup-root C --id ID [--start] [--attach]`.
//!
//! Lifecycle: the CLI ([`crate::Runtime::create`]) spawns it with the
//! status pipe on fd 3 and the already-locked `shim.lock` on fd 4. The
//! shim `setsid`s and forks once more (the intermediate exits, so the
//! supervisor is reparented away from the CLI and has no terminal), becomes
//! a child subreaper, and then:
//!
//! 1. `unshare(CLONE_NEWPID)` and forks the container's pid 1;
//! 2. lets the child go on (a byte on the sync pipe) and meanwhile puts
//!    it in the cgroup and applies the limits: the child unshares mount,
//!    uts, ipc and net, builds its root and pivots, resolves user and
//!    command, drops capabilities, and says `ready`;
//! 3. waits for `start` (a byte on `start.fifo`) unless `--start`, then
//!    releases the child into `execve`;
//! 4. pumps the container's stdout/stderr into the json log (and to the
//!    CLI's own stdout/stderr with `--attach`, until the CLI hangs up);
//! 5. when pid 1 exits, records exit code, signal, OOM kill and time in
//!    `state.json`, removes the cgroup, and exits, releasing the lock.
//!
//! It is single-threaded from start to end: the only process in berth that
//! forks into namespaces.

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
use crate::logs::{LineSplitter, LogWriter, Stream};
use crate::process::{self, Prepared};
use crate::resident::release_setup_text;
pub use crate::shim_args::ShimArgs;
use crate::state::{
    ContainerDir, State, StateRoot, Status, now_rfc3339, proc_start_time, read_json,
};

/// The status pipe's fd in the shim.
pub const STATUS_FD: RawFd = 3;
/// The locked `shim.lock`'s fd in the shim.
pub const LOCK_FD: RawFd = 4;

/// The shim's entry point; returns the process exit code.
pub fn main(args: &ShimArgs) -> i32 {
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
    };
    match shim.run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth shim: {e}");
            shim.report(&format!("error 125 {}", one_line(&e.to_string())));
            let dir = StateRoot::new(&args.root).container(&args.id);
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
        crate::rootfs::write_etc_files(&cfg, &dir)?;

        let cgroup = Cgroup::open(&args.cgroup_root, &cfg.id)?;
        // What the child mounts: the image's layers under the shared layer
        // of mount targets (see `init_layer`).
        let mut mounted = cfg.clone();
        if let Rootfs::Layers(layers) = &mut mounted.rootfs {
            layers.push(crate::init_layer::ensure(&root)?);
        }
        let (out_r, out_w) = cloexec_pipe()?;
        let (err_r, err_w) = cloexec_pipe()?;
        let (p2c_r, p2c_w) = cloexec_pipe()?;
        let (c2p_r, c2p_w) = cloexec_pipe()?;

        unshare(CloneFlags::CLONE_NEWPID)
            .map_err(|e| Error::sys("unshare the pid namespace", e))?;
        // SAFETY: single-threaded process (see the module docs); the child
        // runs container setup and then execs or exits.
        let child = match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                drop((out_r, err_r, p2c_w, c2p_r));
                container_child(&mounted, &dir, p2c_r, c2p_w, out_w, err_w)
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

        let joined = cgroup
            .add_task(child.as_raw())
            .and_then(|()| cgroup.apply(&cfg.resources));
        if let Err(e) = joined {
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(child, None);
            // A child whose setup failed may be gone before it could join
            // (ESRCH): then its own message is the one worth reporting.
            let mut line = String::new();
            let _ = c2p.read_line(&mut line);
            if line.starts_with("error ") {
                let (code, msg) = parse_error_line(&line);
                return self.fail_setup(&dir, &mut state, &cgroup, code, &msg);
            }
            return Err(e);
        }
        // `run` has nothing to wait for between the child's setup and its
        // exec: with the limits written it may go on its own, without a
        // round trip through us after its `ready` (on a busy machine every
        // wake-up of another process costs its turn on a CPU).
        let mut p2c = Some(p2c);
        if args.start {
            release(&mut p2c);
        }

        let mut line = String::new();
        let _ = c2p.read_line(&mut line);
        if line.trim() != "ready" {
            let _ = waitpid(child, None);
            let (code, msg) = parse_error_line(&line);
            return self.fail_setup(&dir, &mut state, &cgroup, code, &msg);
        }
        // The fifo exists before anyone can see `created` (in state.json or
        // on the status pipe): a `start` right after `create` returns must
        // find it.
        let start_fifo = if args.start {
            None
        } else {
            Some(open_start_fifo(&dir)?)
        };
        if let Some(fifo) = start_fifo {
            // `start` waits for the state to leave `created`; `run` goes
            // straight on to `running` and skips this save.
            state.status = Status::Created;
            state.save(&dir.state())?;
            self.report(&format!("created {}", child.as_raw()));
            if !wait_for_start(&dir, fifo, &pidfd)? {
                // The container was killed before it started.
                return self.finish(&cfg, &dir, &mut state, &cgroup, child, None);
            }
        }
        // Go (unless it went already): the child execs; its end of c2p
        // closes on success.
        release(&mut p2c);
        let mut rest = String::new();
        let _ = c2p.read_to_string(&mut rest);
        state.status = Status::Running;
        state.started_at = Some(now_rfc3339());
        if !rest.trim().is_empty() {
            state.error = Some(parse_error_line(&rest).1);
        }
        state.save(&dir.state())?;
        self.report(&format!("started {}", child.as_raw()));

        let mut writer = LogWriter::open(&dir.log(), cfg.log.clone())?;
        if let Some(err) = &state.error {
            let _ = writer.write(
                Stream::Stderr,
                format!("{err}\n").as_bytes(),
                SystemTime::now(),
            );
        }
        let status = self.pump(&mut writer, out_r, err_r, &pidfd, child);
        self.finish(&cfg, &dir, &mut state, &cgroup, child, status)
    }

    fn fail_setup(
        &mut self,
        dir: &ContainerDir,
        state: &mut State,
        cgroup: &Cgroup,
        code: i32,
        msg: &str,
    ) -> Result<()> {
        let _ = cgroup.remove();
        state.status = Status::Exited;
        state.exit_code = Some(code);
        state.error = Some(msg.to_owned());
        state.finished_at = Some(now_rfc3339());
        state.save(&dir.state())?;
        if let Ok(mut w) = LogWriter::open(&dir.log(), Default::default()) {
            let _ = w.write(
                Stream::Stderr,
                format!("{msg}\n").as_bytes(),
                SystemTime::now(),
            );
        }
        self.report(&format!("error {code} {}", one_line(msg)));
        Ok(())
    }

    /// Copies output into the log until pid 1 has exited and the pipes are
    /// drained; returns pid 1's wait status.
    fn pump(
        &mut self,
        writer: &mut LogWriter,
        out_r: OwnedFd,
        err_r: OwnedFd,
        pidfd: &OwnedFd,
        child: Pid,
    ) -> Option<WaitStatus> {
        let mut streams: [(Option<OwnedFd>, Stream, LineSplitter); 2] = [
            (Some(out_r), Stream::Stdout, LineSplitter::default()),
            (Some(err_r), Stream::Stderr, LineSplitter::default()),
        ];
        let mut status = None;
        let mut deadline: Option<Instant> = None;
        let mut buf = vec![0u8; 64 * 1024];
        // Once the container has run quietly for a second, setup is long
        // over: drop its pages then. Short-lived containers never pay for it.
        let mut released = false;
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
                fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
                Some(fds.len() - 1)
            } else {
                None
            };
            let hup_slot = match &self.attach {
                Some(a) => {
                    fds.push(PollFd::new(a.hangup.as_fd(), PollFlags::POLLIN));
                    Some(fds.len() - 1)
                }
                None => None,
            };
            let timeout = match (status.is_some(), released) {
                (true, _) => 100u16,
                (false, false) => 1_000,
                (false, true) => 10_000,
            };
            match poll(&mut fds, PollTimeout::from(timeout)) {
                Ok(0) if !released => {
                    release_setup_text();
                    released = true;
                }
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
            drop(fds);
            if hung_up {
                self.attach = None;
            }
            for i in stream_ready {
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
                status = waitpid(child, None).ok();
                deadline = Some(Instant::now() + Duration::from_secs(2));
            }
        }
        status
    }

    fn finish(
        &mut self,
        cfg: &ContainerConfig,
        dir: &ContainerDir,
        state: &mut State,
        cgroup: &Cgroup,
        child: Pid,
        status: Option<WaitStatus>,
    ) -> Result<()> {
        let status = match status {
            Some(s) => Some(s),
            None => waitpid(child, None).ok(),
        };
        let (code, signal) = match status {
            Some(WaitStatus::Exited(_, code)) => (code, None),
            Some(WaitStatus::Signaled(_, sig, _)) => (128 + sig as i32, Some(sig as i32)),
            _ => (255, None),
        };
        // Reap anything else that was reparented to us.
        while let Ok(s) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            if s == WaitStatus::StillAlive {
                break;
            }
        }
        state.oom_killed = cgroup.paths().oom_kills() > 0;
        state.status = Status::Exited;
        state.exit_code = Some(code);
        state.signal = signal;
        state.finished_at = Some(now_rfc3339());
        // An --rm container's folder goes to the trash right below: that
        // save would be renamed away at once, so it is made only if the
        // container stays.
        if !cfg.auto_remove {
            state.save(&dir.state())?;
        }
        let cgroup_removed = cgroup
            .remove()
            .map_err(|e| eprintln!("berth shim: {e}"))
            .is_ok();
        let _ = fs::remove_file(dir.start_fifo());
        // A cgroup that would not go keeps an --rm container listed, so
        // that `rm -f` can try again rather than the cgroup leaking.
        if !cfg.auto_remove || !cgroup_removed {
            if cfg.auto_remove {
                state.save(&dir.state())?;
            }
            self.report(&format!("exited {code}"));
            return Ok(());
        }
        // Gone for everyone (name free, not listed) before the caller hears
        // the exit, as with `docker run --rm`; the files go after.
        let root = StateRoot::new(root_of(dir));
        let retired = crate::remove::retire(&root, cfg)?;
        self.report(&format!("exited {code}"));
        // Nobody waits on us any more: not the CLI (status pipe), nor a
        // pipeline reading the output we copied to it.
        self.status = None;
        self.attach = None;
        crate::remove::purge(&root, retired.as_deref(), true)
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

fn emit(writer: &mut LogWriter, attach: &mut Option<Attach>, stream: Stream, line: &[u8]) {
    if let Err(e) = writer.write(stream, line, SystemTime::now()) {
        eprintln!("berth shim: {e}");
    }
    if let Some(a) = attach {
        let f = match stream {
            Stream::Stdout => &mut a.out,
            Stream::Stderr => &mut a.err,
        };
        if f.write_all(line).is_err() {
            *attach = None;
        }
    }
}

/// Makes `start.fifo` and opens it read-write, so that a writer closing
/// never leaves a permanent HUP.
fn open_start_fifo(dir: &ContainerDir) -> Result<File> {
    let fifo = dir.start_fifo();
    let _ = fs::remove_file(&fifo);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::sys("mkfifo start.fifo", e))?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|e| Error::io("open", &fifo, e))
}

/// Waits until `start` writes to the fifo (true) or pid 1 dies (false).
fn wait_for_start(dir: &ContainerDir, mut f: File, pidfd: &OwnedFd) -> Result<bool> {
    let fifo = dir.start_fifo();
    loop {
        let mut fds = [
            PollFd::new(f.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll start.fifo", e)),
        }
        let fifo_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let dead = fds[1].revents().is_some_and(|r| !r.is_empty());
        if dead {
            return Ok(false);
        }
        if fifo_ready {
            let mut b = [0u8; 1];
            if f.read(&mut b).unwrap_or(0) == 1 {
                let _ = fs::remove_file(&fifo);
                return Ok(true);
            }
        }
    }
}

/// Lets the container child go from its setup into `execve` (once).
fn release(p2c: &mut Option<File>) {
    if let Some(mut p) = p2c.take() {
        // A child that failed its setup is gone and reads nothing; its
        // error line is what the shim reads next.
        let _ = p.write_all(b"g");
    }
}

fn parse_error_line(line: &str) -> (i32, String) {
    let line = line.trim();
    let rest = line.strip_prefix("error ").unwrap_or(line);
    match rest.split_once(' ') {
        Some((code, msg)) if code.parse::<i32>().is_ok() => {
            (code.parse().unwrap_or(125), msg.to_owned())
        }
        _ if rest.is_empty() => (125, "container setup failed without a message".to_owned()),
        _ => (125, rest.to_owned()),
    }
}

pub(crate) fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd)> {
    pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))
}

pub(crate) fn pidfd_open(pid: Pid) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(Error::sys("pidfd_open", nix::Error::last()));
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn set_subreaper() {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Writes `error CODE MESSAGE` for the shim and to stderr (the log), then
/// exits with CODE. For the container child after a failed execve.
pub(crate) fn report_exec_error(c2p: &OwnedFd, p: &Prepared, err: nix::Error) -> ! {
    let code = if err == nix::Error::ENOENT { 127 } else { 126 };
    let msg = format!("exec {:?}: {}", p.path, err.desc());
    let _ = nix::unistd::write(c2p, format!("error {code} {msg}\n").as_bytes());
    std::process::exit(code)
}

/// The container's pid 1, from fork to execve. Never returns.
fn container_child(
    cfg: &ContainerConfig,
    dir: &ContainerDir,
    p2c: OwnedFd,
    c2p: OwnedFd,
    out: OwnedFd,
    err: OwnedFd,
) -> ! {
    let fail = |c2p: &OwnedFd, code: i32, msg: String| -> ! {
        let _ = nix::unistd::write(c2p, format!("error {code} {}\n", one_line(&msg)).as_bytes());
        std::process::exit(code)
    };
    let _ = dup2(out.as_raw_fd(), 1);
    let _ = dup2(err.as_raw_fd(), 2);
    drop((out, err));
    // The status pipe and the shim's lock must die with the shim, not live
    // on in the container (an `init` pid 1 never execs to drop them).
    let _ = nix::unistd::close(STATUS_FD);
    let _ = nix::unistd::close(LOCK_FD);
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on our
    // descriptors from 3 up; nothing is closed under anyone's feet.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    let mut p2c = File::from(p2c);
    let mut b = [0u8; 1];
    if p2c.read(&mut b).unwrap_or(0) != 1 {
        std::process::exit(1);
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    if let Err(e) = setup_namespaces(cfg, dir) {
        fail(&c2p, 125, e.to_string());
    }
    let hostname = cfg.effective_hostname();
    let prepared = match process::prepare(
        &cfg.process.args,
        &cfg.process.env,
        cfg.process.user.as_deref(),
        cfg.process.cwd.as_deref(),
        &hostname,
    ) {
        Ok(p) => p,
        Err(e) => fail(&c2p, e.code, e.message),
    };
    if let Err(e) = process::finalize(&prepared) {
        fail(&c2p, 126, e.to_string());
    }
    let _ = nix::unistd::write(&c2p, b"ready\n");
    if p2c.read(&mut b).unwrap_or(0) != 1 || b[0] != b'g' {
        std::process::exit(1);
    }
    drop(p2c);
    if cfg.init {
        crate::init::run(&prepared, c2p)
    }
    let e = process::exec(&prepared);
    report_exec_error(&c2p, &prepared, e)
}

fn setup_namespaces(cfg: &ContainerConfig, dir: &ContainerDir) -> Result<()> {
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if cfg.network == Network::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).map_err(|e| Error::sys("unshare namespaces", e))?;
    match &cfg.network {
        Network::None => process::loopback_up()?,
        Network::Host => {}
        Network::Join(path) => {
            let f = File::open(path).map_err(|e| Error::io("open netns", path, e))?;
            setns(f.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| Error::sys("join the netns", e))?;
        }
    }
    nix::unistd::sethostname(cfg.effective_hostname()).map_err(|e| Error::sys("sethostname", e))?;
    crate::rootfs::setup(cfg, dir)
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
