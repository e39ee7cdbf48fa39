//! The last steps before `execve`, shared by the container's pid 1 and
//! `exec`: environment, executable lookup in the container's `PATH`,
//! capabilities, no_new_privs, user and groups, working dir.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use caps::{CapSet, Capability};
use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};

use crate::config::{ContainerConfig, Rlimit};
use crate::error::{Error, Result};
use crate::user::{ExecUser, resolve_groups, resolve_user};

/// `PATH` when neither the image nor the caller sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// The process environment: `env` in order (image's, then the caller's;
/// the last value of a key wins, at the key's first position), plus `PATH`,
/// `HOSTNAME` and `HOME` when absent.
pub fn merge_env(env: &[String], hostname: &str, home: &str) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let set = |k: &str, v: &str, out: &mut Vec<(String, String)>| match out
        .iter_mut()
        .find(|(key, _)| key == k)
    {
        Some(slot) => slot.1 = v.to_owned(),
        None => out.push((k.to_owned(), v.to_owned())),
    };
    set("PATH", DEFAULT_PATH, &mut out);
    set("HOSTNAME", hostname, &mut out);
    for kv in env {
        match kv.split_once('=') {
            Some((k, v)) => set(k, v, &mut out),
            // `-e KEY` alone (without `=`) is resolved by the CLI; a bare
            // key here means an empty value.
            None => set(kv, "", &mut out),
        }
    }
    if !out.iter().any(|(k, _)| k == "HOME") {
        out.push(("HOME".to_owned(), home.to_owned()));
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The value of `key` in a `KEY=VALUE` list.
pub fn env_get<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Looks `cmd` up like execvp: as given when it has a `/`, else in each
/// `PATH` entry, under `root` (the container's root as seen from the
/// caller; `/` once inside it).
pub fn lookup_executable(root: &Path, cmd: &str, path_var: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if cmd.contains('/') {
        let p = crate::rootfs::in_root(root, cmd);
        return is_exec(&p).then(|| PathBuf::from(cmd));
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(cmd))
        .find(|p| is_exec(&crate::rootfs::in_root(root, &p.display().to_string())))
}

/// A process ready to exec, everything resolved.
pub struct Prepared {
    pub path: CString,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    pub user: ExecUser,
    pub cwd: String,
}

/// Why preparing failed, with the exit code Docker gives that failure.
#[derive(Debug)]
pub struct PrepareError {
    pub code: i32,
    pub message: String,
}

/// Resolves user, environment and executable in the current root (call it
/// after pivot_root or setns into the container's mount namespace).
/// `groups` (`group_add`) join the user's supplementary groups.
pub fn prepare(
    args: &[String],
    env: &[String],
    user_spec: Option<&str>,
    cwd: Option<&str>,
    hostname: &str,
    groups: &[String],
) -> Result<Prepared, PrepareError> {
    let fail = |code: i32, message: String| PrepareError { code, message };
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    let mut user = resolve_user(user_spec.unwrap_or(""), &passwd, &group)
        .map_err(|e| fail(126, e.to_string()))?;
    for gid in resolve_groups(groups, &group).map_err(|e| fail(126, e.to_string()))? {
        if !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }
    let env = merge_env(env, hostname, &user.home);
    let Some(cmd) = args.first() else {
        return Err(fail(127, "no command specified".to_owned()));
    };
    let path_var = env_get(&env, "PATH").unwrap_or(DEFAULT_PATH);
    let path = lookup_executable(Path::new("/"), cmd, path_var).ok_or_else(|| {
        let why = if cmd.contains('/') {
            "no such file or directory"
        } else {
            "executable file not found in $PATH"
        };
        fail(127, format!("exec: \"{cmd}\": {why}"))
    })?;
    let cstr = |s: &str| CString::new(s).map_err(|_| fail(127, format!("NUL byte in {s:?}")));
    Ok(Prepared {
        path: cstr(&path.display().to_string())?,
        argv: args.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?,
        env: env.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?,
        user,
        cwd: cwd.filter(|c| !c.is_empty()).unwrap_or("/").to_owned(),
    })
}

/// What a container's processes may do beyond who they are, applied by
/// [`finalize`]: capabilities, no_new_privs, resource limits, OOM score.
#[derive(Debug, Clone, PartialEq)]
pub struct Privileges {
    pub caps: HashSet<Capability>,
    pub no_new_privileges: bool,
    pub rlimits: Vec<Rlimit>,
    pub oom_score_adj: Option<i32>,
}

impl Privileges {
    /// The container's own (`privileged` also for a privileged hook or
    /// exec: every capability the kernel has).
    pub fn of(cfg: &ContainerConfig, privileged: bool) -> Result<Self> {
        let all = crate::caps::supported();
        let caps = if privileged {
            all
        } else {
            crate::caps::effective(&cfg.security, &all)?
        };
        Ok(Privileges {
            caps,
            no_new_privileges: cfg.security.no_new_privileges,
            rlimits: cfg.rlimits.clone(),
            oom_score_adj: cfg.oom_score_adj,
        })
    }
}

/// Working dir (created if missing, as Docker does), resource limits, OOM
/// score, capabilities, groups and ids, no_new_privs. Afterwards only
/// `execve` is left.
///
/// Root keeps the container's set (Docker's default unless changed) in
/// bounding, permitted and effective; a non-root user keeps it in bounding
/// only (setuid clears the others, as with Docker). Inheritable and
/// ambient are emptied, as Docker does since CVE-2022-24769. Limits and
/// the OOM score are set while still root: raising a hard limit or
/// lowering the score needs `CAP_SYS_RESOURCE`.
pub fn finalize(p: &Prepared, privileges: &Privileges) -> Result<()> {
    let cwd = Path::new(&p.cwd);
    if !cwd.exists() {
        fs::create_dir_all(cwd).map_err(|e| Error::io("create the working dir", cwd, e))?;
    }
    nix::unistd::chdir(cwd).map_err(|e| Error::sys("chdir to the working dir", e))?;
    crate::rlimits::apply(&privileges.rlimits)?;
    if let Some(score) = privileges.oom_score_adj {
        let path = "/proc/self/oom_score_adj";
        fs::write(path, score.to_string()).map_err(|e| Error::io("write", path, e))?;
    }

    let keep = &privileges.caps;
    let cap_err = |e: caps::errors::CapsError| Error::invalid("capabilities", e.to_string());
    for cap in caps::all() {
        if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap).map_err(cap_err)?;
        }
    }
    // Ambient may be unsupported on old kernels; it is empty there anyway.
    let _ = caps::clear(None, CapSet::Ambient);
    caps::set(None, CapSet::Inheritable, &HashSet::new()).map_err(cap_err)?;

    let gids: Vec<Gid> = p
        .user
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    setgroups(&gids).map_err(|e| Error::sys("setgroups", e))?;
    setgid(Gid::from_raw(p.user.gid)).map_err(|e| Error::sys("setgid", e))?;
    setuid(Uid::from_raw(p.user.uid)).map_err(|e| Error::sys("setuid", e))?;
    if p.user.uid == 0 {
        // Effective first: it must stay a subset of permitted.
        caps::set(None, CapSet::Effective, keep).map_err(cap_err)?;
        caps::set(None, CapSet::Permitted, keep).map_err(cap_err)?;
    }
    if privileges.no_new_privileges {
        // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes integer arguments
        // only and touches no memory of ours.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        if rc != 0 {
            return Err(Error::sys("set no_new_privs", nix::Error::last()));
        }
    }
    Ok(())
}

/// `execve`; returns only on failure. The program starts with every signal
/// at its default disposition and none blocked, as under Docker: `execve`
/// keeps ignored signals and the mask, and berth's own processes ignore
/// `SIGPIPE` (Rust's runtime does) and block others while they wait.
pub fn exec(p: &Prepared) -> nix::Error {
    reset_signals();
    match nix::unistd::execve(&p.path, &p.argv, &p.env) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

/// Every signal back to `SIG_DFL` and unblocked (see [`exec`]).
pub fn reset_signals() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            default_disposition(sig);
        }
    }
    // SAFETY: sigemptyset fills the set we own; sigprocmask only changes
    // this thread's mask (the child is single-threaded before execve).
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// `SIGPIPE` back to its default for a command-line process, so that
/// `berth ps | head` ends quietly as `docker ps | head` does, instead of
/// failing on a write (Rust starts every program with it ignored).
/// Long-running servers (the agent, the DNS server) keep it ignored.
pub fn default_sigpipe() {
    default_disposition(libc::SIGPIPE);
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 layout).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// `SIG_DFL` for `sig` through the raw system call: glibc's wrapper
/// refuses 32 and 33 (its own), yet they can arrive ignored from whoever
/// started berth, and a container must not inherit that.
fn default_disposition(sig: libc::c_int) {
    let action = KernelSigaction {
        handler: 0, // SIG_DFL
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: a valid, fully initialised kernel sigaction installing no
    // handler; the old action is not asked for; the size is the kernel's
    // sigset size (8 bytes). Errors leave the disposition as it was.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &action as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        );
    }
}

/// Brings `lo` up in the current network namespace.
pub fn loopback_up() -> Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: socket() takes integers; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Error::sys(
            "open a socket to configure lo",
            nix::Error::last(),
        ));
    }
    // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads ifr_name and writes ifr_flags inside the
    // ifreq we own, which outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } < 0 {
        return Err(Error::sys("read lo's flags", nix::Error::last()));
    }
    // SAFETY: the union's ifru_flags member is the one SIOCGIFFLAGS filled.
    unsafe {
        ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads the ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } < 0 {
        return Err(Error::sys("bring lo up", nix::Error::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn env_defaults_and_overrides() {
        let env = merge_env(
            &["A=1".into(), "PATH=/x".into(), "A=2".into(), "B".into()],
            "host1",
            "/root",
        );
        assert_eq!(
            env,
            ["PATH=/x", "HOSTNAME=host1", "A=2", "B=", "HOME=/root"]
        );
        let env = merge_env(&["HOME=/h".into()], "h", "/root");
        assert_eq!(
            env,
            [
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=h".into(),
                "HOME=/h".into()
            ]
        );
        assert_eq!(env_get(&env, "HOME"), Some("/h"));
        assert_eq!(env_get(&env, "HOM"), None);
    }

    #[test]
    fn lookup_follows_path_and_skips_non_executables() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        let sbin = d.path().join("sbin");
        fs::create_dir_all(&bin).unwrap();
        fs::create_dir_all(&sbin).unwrap();
        fs::write(bin.join("tool"), "").unwrap(); // not executable
        fs::write(sbin.join("tool"), "").unwrap();
        fs::set_permissions(sbin.join("tool"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            lookup_executable(d.path(), "tool", "/bin:/sbin"),
            Some(PathBuf::from("/sbin/tool"))
        );
        assert_eq!(lookup_executable(d.path(), "nope", "/bin:/sbin"), None);
        assert_eq!(
            lookup_executable(d.path(), "/sbin/tool", ""),
            Some(PathBuf::from("/sbin/tool"))
        );
        assert_eq!(lookup_executable(d.path(), "/bin/tool", "/sbin"), None);
    }
}
