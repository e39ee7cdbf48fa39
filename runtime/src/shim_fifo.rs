//! The shim's fifos: the control fifo stops and kills write to, the start
//! fifo `start` opens, and the error lines a failed container setup sends.

use super::*;

/// What stops and kills through berth said, from the control fifo.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Told {
    pub(super) stop: bool,
    pub(super) manually_stopped: bool,
}

/// Reads what is waiting on the control fifo; with `until`, keeps reading
/// until then, or until a stop arrives.
pub(super) fn read_control(control: &File, until: Option<Instant>) -> Told {
    let mut told = Told::default();
    loop {
        let timeout = match until {
            None => PollTimeout::ZERO,
            Some(at) => {
                let ms = at.saturating_duration_since(Instant::now()).as_millis();
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(control.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Err(nix::Error::EINTR) => continue,
            Ok(0) | Err(_) => return told,
            Ok(_) => {}
        }
        let mut buf = [0u8; 64];
        let n = nix::unistd::read(control.as_raw_fd(), &mut buf).unwrap_or(0);
        for b in &buf[..n] {
            match *b {
                control::STOP => {
                    told.stop = true;
                    told.manually_stopped = true;
                }
                control::SIGNALLED => told.manually_stopped = true,
                _ => {}
            }
        }
        if told.stop || (n == 0 && until.is_none()) {
            return told;
        }
        if until.is_some_and(|at| Instant::now() >= at) {
            return told;
        }
    }
}

/// Makes a fifo and opens it read-write and non-blocking, so that a writer
/// closing never leaves a permanent HUP and a read never blocks.
pub(super) fn open_fifo(path: &Path) -> Result<File> {
    let _ = fs::remove_file(path);
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::sys("mkfifo", e))?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io("open", path, e))
}

/// Makes `start.fifo` and opens it read-write, so that a writer closing
/// never leaves a permanent HUP.
pub(super) fn open_start_fifo(dir: &ContainerDir) -> Result<File> {
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
pub(super) fn wait_for_start(dir: &ContainerDir, mut f: File, pidfd: &OwnedFd) -> Result<bool> {
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
pub(super) fn release(p2c: &mut Option<File>) {
    if let Some(mut p) = p2c.take() {
        // A child that failed its setup is gone and reads nothing; its
        // error line is what the shim reads next.
        let _ = p.write_all(b"g");
    }
}

pub(super) fn parse_error_line(line: &str) -> (i32, String) {
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
