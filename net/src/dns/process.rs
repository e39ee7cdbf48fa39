//! The server process: `berth dns --state-dir DIR [--detach]`.
//!
//! In the foreground it takes `dns.lock` itself and serves until killed
//! (for debugging: `berth dns --state-dir /var/lib/berth/networks/NAME`).
//! With `--detach` (how [`super::spawn`] starts it) it finds the lock
//! already taken on its stdin and a status pipe on its stdout, detaches
//! from the spawner, and reports on the pipe once it listens.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::FlockArg;

use super::daemon::{flock, open_lock};
use super::error::{Error, Result};
use super::records::DnsRecords;
use super::server::{Sockets, error_chain, serve};
use super::{PID_FILE, SERVER_LOCK_FILE};

/// The server's command line after the binary name, a stable interface
/// between the berth that spawns a server and the one that runs it:
/// `dns --state-dir DIR [--detach]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    pub state_dir: PathBuf,
    /// Started by [`super::spawn`]: the lock on stdin, the status pipe on
    /// stdout; fork away from the spawner.
    pub detach: bool,
}

impl ServerArgs {
    pub fn to_argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![
            "dns".into(),
            "--state-dir".into(),
            self.state_dir.clone().into(),
        ];
        if self.detach {
            argv.push("--detach".into());
        }
        argv
    }
}

/// Runs the server; returns when it stops (its network's state dir was
/// removed) or fails. With `detach`, the calling process returns at once
/// and a forked child serves; the child logs its own failure (to stderr,
/// `dns.log`) and, if it had not reported yet, tells the spawner.
///
/// `settled` runs once, when the server listens and before it serves: the
/// place to drop what setting up made resident (the binary gives
/// `berth_runtime::release_setup_text`, as for shims).
pub fn main(args: &ServerArgs, settled: impl FnOnce()) -> Result<()> {
    let dir = &args.state_dir;
    if !args.detach {
        let lock = open_lock(dir)?;
        return match flock(lock.as_raw_fd(), FlockArg::LockExclusiveNonblock) {
            Ok(()) => run(dir, lock, &mut None, settled),
            Err(Errno::EWOULDBLOCK) => Err(Error::server(
                dir,
                format!(
                    "is already running (pid {}); stop it first",
                    super::pid(dir).map_or("unknown".to_owned(), |p| p.to_string())
                ),
            )),
            Err(e) => Err(Error::sys("lock dns.lock", e)),
        };
    }
    // A new session: no terminal, and signals to the spawner's process
    // group (a ^C on `berth up`) do not reach the server.
    let _ = nix::unistd::setsid();
    if !fork_is_child()? {
        return Ok(());
    }
    let mut ready = None;
    let result = detached(dir, &mut ready, settled);
    if let Err(e) = &result {
        let reason = error_chain(e);
        // Logged before the spawner hears of it, so the log already says
        // why when the spawner's error points there.
        tracing::error!(error = %reason, "the DNS server failed");
        if let Some(mut ready) = ready {
            let _ = writeln!(ready, "error {}", reason.replace('\n', " "));
        }
    }
    result
}

/// The detached child: takes over the lock (stdin) and the status pipe
/// (stdout, into `ready`), points both at /dev/null, and serves.
fn detached(dir: &Path, ready: &mut Option<File>, settled: impl FnOnce()) -> Result<()> {
    let lock = take_fd(std::io::stdin(), "the lock on stdin")?;
    if !is_lock_file(&lock, dir) {
        return Err(Error::server(
            dir,
            "--detach needs dns.lock, locked, on stdin (use `berth dns` without --detach)",
        ));
    }
    *ready = Some(take_fd(std::io::stdout(), "the status pipe on stdout")?);
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("open", "/dev/null", e))?;
    for fd in [0, 1] {
        nix::unistd::dup2(null.as_raw_fd(), fd).map_err(|e| Error::sys("redirect stdio", e))?;
    }
    run(dir, lock, ready, settled)
}

/// Serves with `lock` held. Once the sockets are bound, says `ready <pid>`
/// on `ready` and closes it; a failure before leaves it to the caller.
fn run(dir: &Path, lock: File, ready: &mut Option<File>, settled: impl FnOnce()) -> Result<()> {
    let (runtime, records, sockets) = prepare(dir)?;
    if let Some(mut ready) = ready.take() {
        let _ = writeln!(ready, "ready {}", std::process::id());
    }
    tracing::info!(
        dir = %dir.display(),
        listen = ?sockets.local_addrs(),
        upstreams = ?records.upstreams(),
        containers = records.containers().len(),
        "DNS server listening"
    );
    settled();
    let result = runtime.block_on(serve(dir, &records, sockets));
    drop(lock);
    result
}

type Prepared = (tokio::runtime::Runtime, DnsRecords, Sockets);

fn prepare(dir: &Path) -> Result<Prepared> {
    write_pid(dir)?;
    let records = DnsRecords::load(dir)?;
    // One thread: a network's queries are few and answered in microseconds,
    // and every thread is stack and scheduler work for a mostly idle process.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::io("start the async runtime for", dir, e))?;
    let sockets = Sockets::bind(records.listen())?;
    if sockets.local_addrs().is_empty() {
        return Err(Error::server(dir, "has no listen address in dns.json"));
    }
    Ok((runtime, records, sockets))
}

fn write_pid(dir: &Path) -> Result<()> {
    let path = dir.join(PID_FILE);
    let tmp = dir.join(format!(".{PID_FILE}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io("write", &path, e))
}

/// A private copy (close-on-exec) of an inherited descriptor.
fn take_fd(fd: impl AsFd, what: &'static str) -> Result<File> {
    fd.as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|e| Error::io("take", what, e))
}

fn is_lock_file(file: &File, dir: &Path) -> bool {
    match (
        file.metadata(),
        std::fs::metadata(dir.join(SERVER_LOCK_FILE)),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Forks; true in the child. The parent returns at once, so the server is
/// reparented (to init or the nearest subreaper) and its spawner, which
/// waits for the parent, never has a zombie to reap.
#[allow(unsafe_code)]
fn fork_is_child() -> Result<bool> {
    if thread_count() != Some(1) {
        return Err(Error::server(
            "/proc/self",
            "cannot fork: the process has more than one thread",
        ));
    }
    // SAFETY: the process has a single thread (checked just above), so the
    // child is a complete copy of it and may run any code, not only
    // async-signal-safe functions.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => Ok(false),
        Ok(nix::unistd::ForkResult::Child) => Ok(true),
        Err(e) => Err(Error::sys("fork the DNS server", e)),
    }
}

fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_stable() {
        let args = ServerArgs {
            state_dir: PathBuf::from("/var/lib/berth/networks/shop_default"),
            detach: true,
        };
        assert_eq!(
            args.to_argv(),
            [
                "dns",
                "--state-dir",
                "/var/lib/berth/networks/shop_default",
                "--detach"
            ]
            .map(OsString::from)
        );
    }
}
