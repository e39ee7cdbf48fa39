//! `init: true`: a tiny pid 1 that runs the command as its child, forwards
//! every signal it gets to it, reaps every zombie, and exits with the
//! command's status (128 + signal when it was killed), like tini.
//!
//! It is the container's pid 1 itself (the shim's forked child), not a
//! re-exec: by this point it has the container's root, user and
//! capabilities, and it never allocates in its loop.

use std::os::fd::OwnedFd;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::process::{Prepared, exec};

/// Runs `p` under a reaper; never returns. `c2p` is the setup pipe to the
/// shim: the command's copy reports an exec failure on it, pid 1 closes
/// its own so the shim sees end-of-file once the command has exec'd.
pub fn run(p: &Prepared, c2p: OwnedFd) -> ! {
    let all = SigSet::all();
    // Block everything: signals are taken synchronously with sigwait, so
    // no handler ever runs.
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None);
    // SAFETY: pid 1 is single-threaded (it is a fork of the single-threaded
    // shim), so the child may run arbitrary code before exec.
    let child = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            let err = exec(p);
            crate::shim::report_exec_error(&c2p, p, err)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(_) => std::process::exit(125),
    };
    drop(c2p);
    loop {
        let Ok(sig) = all.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => std::process::exit(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                    std::process::exit(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}
