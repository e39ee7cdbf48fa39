//! The container's first process between fork and exec: namespaces,
//! rootfs, then the user's command.

use super::*;

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

pub(super) fn set_subreaper() {
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
pub(super) fn container_child(
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
        &cfg.process.additional_groups,
    ) {
        Ok(p) => p,
        Err(e) => fail(&c2p, e.code, e.message),
    };
    let finalized = process::Privileges::of(cfg, false)
        .and_then(|privileges| process::finalize(&prepared, &privileges));
    if let Err(e) = finalized {
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

pub(super) fn setup_namespaces(cfg: &ContainerConfig, dir: &ContainerDir) -> Result<()> {
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
    if let Some(domain) = cfg.domainname.as_deref().filter(|d| !d.is_empty()) {
        set_domainname(domain)?;
    }
    crate::rootfs::setup(cfg, dir)
}

/// `setdomainname(2)` in the container's UTS namespace.
pub(super) fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which
    // outlive the call; the kernel copies them.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if rc != 0 {
        return Err(Error::sys("setdomainname", nix::Error::last()));
    }
    Ok(())
}
