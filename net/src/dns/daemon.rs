//! Starting, finding and stopping a network's server from outside it.
//!
//! Liveness is a lock, not a pid: the server holds `dns.lock` (flock,
//! exclusive) from before it exists until it exits, so "running" is
//! "locked", whatever happened to pid files or processes in between, and
//! two spawns can never both start a server for one network.
//!
//! [`spawn`] takes the lock, then starts `berth dns --state-dir DIR
//! --detach` with the locked file as its stdin: the lock belongs to the
//! open file, which the server inherits, so it is held without a gap. That
//! process `setsid`s and forks (the intermediate exits at once, so the
//! server is nobody's child and never a zombie of a long-lived agent),
//! writes `dns.pid`, binds its sockets and reports `ready <pid>` (or
//! `error <reason>`) on its stdout, a pipe [`spawn`] reads.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FlockArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::error::{Error, Result};
use super::process::ServerArgs;
use super::{LOG_FILE, PID_FILE, RECORDS_FILE, SERVER_LOCK_FILE};

/// Set in the server's environment: the system allocator keeps a
/// long-lived, mostly idle process small. The same variable as
/// `berth_runtime::alloc::SYSTEM_ALLOCATOR_ENV` (net may not depend on
/// runtime; the agent's tests check that the two agree).
pub const SYSTEM_ALLOCATOR_ENV: &str = "BERTH_SYSTEM_ALLOCATOR";

/// How long [`spawn`] waits for the server to bind its sockets.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`stop`] waits after SIGTERM, then after SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// `dns.log` is moved to `dns.log.1` at a spawn when it is bigger.
const LOG_ROTATE_BYTES: u64 = 1 << 20;

/// What [`spawn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spawned {
    /// A new server runs, with this pid, and listens.
    Started { pid: u32 },
    /// A server for this network was running (or being started) already.
    AlreadyRunning,
}

/// Starts the DNS server of the network whose state dir is `dir` (which
/// must hold `dns.json`), as a detached process of `exe` (the `berth`
/// binary), and returns once it listens (milliseconds; it blocks, so async
/// callers run it on a blocking thread). A no-op when one runs already.
pub fn spawn(dir: &Path, exe: &Path) -> Result<Spawned> {
    let dir = &absolute(dir)?;
    let records = dir.join(RECORDS_FILE);
    if !records.exists() {
        return Err(Error::server(
            dir,
            format!(
                "cannot start: {} is missing; save the records first",
                records.display()
            ),
        ));
    }
    let lock = open_lock(dir)?;
    match flock(lock.as_raw_fd(), FlockArg::LockExclusiveNonblock) {
        Ok(()) => {}
        Err(Errno::EWOULDBLOCK) => return Ok(Spawned::AlreadyRunning),
        Err(e) => return Err(Error::sys("lock dns.lock", e)),
    }
    // Nobody runs: a pid file left by a server that died is stale, and
    // `stop` must never signal the pid it names.
    let _ = std::fs::remove_file(dir.join(PID_FILE));
    rotate_log(dir);
    let log_path = dir.join(LOG_FILE);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Error::io("open", &log_path, e))?;
    let (ready_r, ready_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("create a pipe", e))?;
    let args = ServerArgs {
        state_dir: dir.to_owned(),
        detach: true,
    };
    let mut cmd = Command::new(exe);
    cmd.args(args.to_argv())
        .env(SYSTEM_ALLOCATOR_ENV, "1")
        // A long-lived process must not pin the spawner's working dir (and
        // the mount it is on).
        .current_dir("/")
        .stdin(Stdio::from(
            lock.try_clone().map_err(|e| Error::io("dup", dir, e))?,
        ))
        .stdout(Stdio::from(File::from(ready_w)))
        .stderr(Stdio::from(log));
    tracing::debug!(dir = %dir.display(), exe = %exe.display(), "spawn the DNS server");
    let status = cmd
        .spawn()
        .and_then(|mut child| child.wait())
        .map_err(|e| Error::io("start the DNS server", exe, e))?;
    // Our copies of the pipe's write end and of the lock go, or the read
    // below would never see EOF, and the lock would outlive a dead server.
    drop(cmd);
    drop(lock);
    if !status.success() {
        return Err(Error::server(
            dir,
            format!("failed to start ({status}); see {}", log_path.display()),
        ));
    }
    match read_ready(dir, File::from(ready_r))? {
        Some(line) => match line.strip_prefix("ready ") {
            Some(pid) => Ok(Spawned::Started {
                pid: pid.trim().parse().unwrap_or(0),
            }),
            None => Err(Error::server(
                dir,
                format!(
                    "failed to start: {}",
                    line.strip_prefix("error ").unwrap_or(&line)
                ),
            )),
        },
        None => Err(Error::server(
            dir,
            format!("exited without listening; see {}", log_path.display()),
        )),
    }
}

/// The server's one status line, or None when it closed the pipe without
/// one (it died).
fn read_ready(dir: &Path, pipe: File) -> Result<Option<String>> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => {
                return Err(Error::server(
                    dir,
                    format!(
                        "did not report ready within {} s; see {}",
                        READY_TIMEOUT.as_secs(),
                        dir.join(LOG_FILE).display()
                    ),
                ));
            }
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("wait for the DNS server", e)),
        }
    }
    let mut line = String::new();
    BufReader::new(pipe)
        .read_line(&mut line)
        .map_err(|e| Error::io("read the status of", "the DNS server", e))?;
    let line = line.trim_end().to_owned();
    Ok((!line.is_empty()).then_some(line))
}

/// Is a server for this network running (or being started)?
pub fn is_running(dir: &Path) -> bool {
    let Ok(lock) = File::open(dir.join(SERVER_LOCK_FILE)) else {
        return false;
    };
    // Taking it shared succeeds only when nobody holds it; closing the
    // file right after releases it again.
    matches!(
        flock(lock.as_raw_fd(), FlockArg::LockSharedNonblock),
        Err(Errno::EWOULDBLOCK)
    )
}

/// The running server's pid.
pub fn pid(dir: &Path) -> Option<u32> {
    if !is_running(dir) {
        return None;
    }
    read_pid(dir)
}

fn read_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Stops the network's server (SIGTERM, then SIGKILL after 5 s) and waits
/// until it is gone. False when none was running.
pub fn stop(dir: &Path) -> Result<bool> {
    if !is_running(dir) {
        let _ = std::fs::remove_file(dir.join(PID_FILE));
        return Ok(false);
    }
    // A server writes its pid right after it starts; one being spawned
    // this instant may not have yet.
    let deadline = Instant::now() + Duration::from_secs(2);
    let pid = loop {
        if let Some(pid) = read_pid(dir) {
            break pid;
        }
        if !is_running(dir) {
            return Ok(false);
        }
        if Instant::now() > deadline {
            return Err(Error::server(dir, "is locked but wrote no dns.pid"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if !is_our_server(pid, dir) {
        return Err(Error::server(
            dir,
            format!("is locked, but pid {pid} in dns.pid is not that server; not signalling it"),
        ));
    }
    let pid_t = i32::try_from(pid).map_err(|_| Error::server(dir, "has an invalid pid"))?;
    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        match kill(Pid::from_raw(pid_t), signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => return Err(Error::sys("signal the DNS server", e)),
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !is_running(dir) {
                let _ = std::fs::remove_file(dir.join(PID_FILE));
                tracing::debug!(dir = %dir.display(), pid, ?signal, "DNS server stopped");
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Err(Error::server(dir, format!("(pid {pid}) does not exit")))
}

/// Is `pid` this network's server: a `berth dns` holding its `dns.lock`
/// open? Guards against signalling a stranger through a pid file that
/// lies, whatever form of the dir the server was started with.
fn is_our_server(pid: u32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    if !args.contains(&&b"dns"[..]) || !args.contains(&&b"--state-dir"[..]) {
        return false;
    }
    let Ok(lock) = std::fs::canonicalize(dir.join(SERVER_LOCK_FILE)) else {
        return false;
    };
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .any(|target| target == lock)
}

/// `dir` from the root: the server runs in `/`.
fn absolute(dir: &Path) -> Result<std::path::PathBuf> {
    std::path::absolute(dir).map_err(|e| Error::io("resolve", dir, e))
}

pub(crate) fn open_lock(dir: &Path) -> Result<File> {
    let path = dir.join(SERVER_LOCK_FILE);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))
}

fn rotate_log(dir: &Path) {
    let log = dir.join(LOG_FILE);
    if std::fs::metadata(&log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let _ = std::fs::rename(&log, dir.join(format!("{LOG_FILE}.1")));
    }
}

/// flock(2). nix's `Flock` guard unlocks when dropped, which would release
/// a lock handed over to the server through a shared file description;
/// these locks must end only when the last descriptor closes.
#[allow(deprecated)]
pub(crate) fn flock(fd: RawFd, arg: FlockArg) -> nix::Result<()> {
    nix::fcntl::flock(fd, arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_liveness() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_running(dir.path()), "no lock file");
        let lock = open_lock(dir.path()).unwrap();
        assert!(!is_running(dir.path()), "a lock file nobody holds");
        flock(lock.as_raw_fd(), FlockArg::LockExclusiveNonblock).unwrap();
        assert!(is_running(dir.path()));
        std::fs::write(dir.path().join(PID_FILE), "4242\n").unwrap();
        assert_eq!(pid(dir.path()), Some(4242));
        // Our own process is not `berth dns` for this dir: never signalled.
        let err = {
            std::fs::write(
                dir.path().join(PID_FILE),
                format!("{}\n", std::process::id()),
            )
            .unwrap();
            stop(dir.path()).unwrap_err().to_string()
        };
        assert!(err.contains("not that server"), "{err}");
        drop(lock);
        // Another test thread forking at that moment holds a copy of the
        // fd until its child execs (close-on-exec): the lock goes with it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while is_running(dir.path()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!is_running(dir.path()));
        assert_eq!(pid(dir.path()), None);
        assert!(!stop(dir.path()).unwrap());
        assert!(
            !dir.path().join(PID_FILE).exists(),
            "stale pid file removed"
        );
    }

    #[test]
    fn spawn_needs_the_records_and_refuses_a_second_server() {
        let dir = tempfile::tempdir().unwrap();
        let err = spawn(dir.path(), Path::new("/nonexistent")).unwrap_err();
        assert!(err.to_string().contains("dns.json is missing"), "{err}");
        crate::dns::DnsRecords::new(vec![], vec![])
            .save(dir.path())
            .unwrap();
        let lock = open_lock(dir.path()).unwrap();
        flock(lock.as_raw_fd(), FlockArg::LockExclusiveNonblock).unwrap();
        assert_eq!(
            spawn(dir.path(), Path::new("/nonexistent")).unwrap(),
            Spawned::AlreadyRunning
        );
        drop(lock);
        let err = spawn(dir.path(), Path::new("/nonexistent")).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot start the DNS server /nonexistent"),
            "{err}"
        );
        assert!(
            !is_running(dir.path()),
            "a failed spawn leaves no lock held"
        );
    }
}
