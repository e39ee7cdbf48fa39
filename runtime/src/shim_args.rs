//! The shim's command line: a stable interface between the process that
//! spawns a shim and the shim, possibly of different berth versions.

use std::path::PathBuf;

/// The shim's command line (after `berth shim`).
#[derive(Debug, Clone)]
pub struct ShimArgs {
    pub root: PathBuf,
    pub cgroup_root: PathBuf,
    pub id: String,
    /// Start right after create (no wait on `start.fifo`).
    pub start: bool,
    /// Copy output to the shim's inherited stdout/stderr until stdin hangs up.
    pub attach: bool,
    /// Not a shim but a hook runner: run hook `KIND:N` (`post_start:0`) of
    /// the running container, as `exec` does, then exit with its status.
    pub hook: Option<String>,
    /// The hook runner kills the hook after this many milliseconds.
    pub timeout_ms: Option<u64>,
    /// The container lives no longer than this process (see
    /// [`crate::CreateOptions::die_with_caller`]).
    pub owner: Option<OwnerProcess>,
}

/// A process, told apart from a later one that reuses its pid by its start
/// time (clock ticks after boot, field 22 of `/proc/PID/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerProcess {
    pub pid: i32,
    pub start_time: u64,
}

impl OwnerProcess {
    /// The calling process; `None` when its `/proc` entry cannot be read.
    pub fn current() -> Option<OwnerProcess> {
        let pid = i32::try_from(std::process::id()).ok()?;
        let start_time = crate::state::proc_start_time(pid)?;
        Some(OwnerProcess { pid, start_time })
    }

    /// The process is still the one that started then (not ended, not a
    /// zombie, its pid not reused).
    pub fn is_alive(&self) -> bool {
        crate::state::same_process_alive(self.pid, self.start_time)
    }

    /// `PID:START`, as [`std::fmt::Display`] writes it.
    pub fn parse(text: &str) -> Option<OwnerProcess> {
        let (pid, start_time) = text.split_once(':')?;
        Some(OwnerProcess {
            pid: pid.parse().ok()?,
            start_time: start_time.parse().ok()?,
        })
    }
}

impl std::fmt::Display for OwnerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.pid, self.start_time)
    }
}

impl ShimArgs {
    /// The argv after the binary name; kept stable across versions.
    pub fn to_argv(&self) -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = vec![
            "shim".into(),
            "--root".into(),
            self.root.clone().into(),
            "--cgroup-root".into(),
            self.cgroup_root.clone().into(),
            "--id".into(),
            self.id.clone().into(),
        ];
        if self.start {
            v.push("--start".into());
        }
        if self.attach {
            v.push("--attach".into());
        }
        if let Some(hook) = &self.hook {
            v.push("--hook".into());
            v.push(hook.into());
        }
        if let Some(ms) = self.timeout_ms {
            v.push("--timeout-ms".into());
            v.push(ms.to_string().into());
        }
        if let Some(owner) = &self.owner {
            v.push("--owner".into());
            v.push(owner.to_string().into());
        }
        v
    }
}

impl ShimArgs {
    /// Reads the argv [`Self::to_argv`] writes (after the binary name);
    /// `None` for anything else. Lets the binary enter the shim before it
    /// parses a command line or sets up logging, so a shim, which lives as
    /// long as its container, never touches (and keeps resident) that code.
    pub fn from_argv(argv: &[std::ffi::OsString]) -> Option<ShimArgs> {
        let mut rest = argv.iter();
        if rest.next()?.as_os_str() != "shim" {
            return None;
        }
        let (mut root, mut cgroup_root, mut id) = (None, None, None);
        let (mut start, mut attach) = (false, false);
        let (mut hook, mut timeout_ms, mut owner) = (None, None, None);
        while let Some(flag) = rest.next() {
            match flag.to_str()? {
                "--root" => root = Some(PathBuf::from(rest.next()?)),
                "--cgroup-root" => cgroup_root = Some(PathBuf::from(rest.next()?)),
                "--id" => id = Some(rest.next()?.to_str()?.to_owned()),
                "--start" => start = true,
                "--attach" => attach = true,
                "--hook" => hook = Some(rest.next()?.to_str()?.to_owned()),
                "--timeout-ms" => timeout_ms = Some(rest.next()?.to_str()?.parse().ok()?),
                "--owner" => owner = Some(OwnerProcess::parse(rest.next()?.to_str()?)?),
                _ => return None,
            }
        }
        Some(ShimArgs {
            root: root?,
            cgroup_root: cgroup_root?,
            id: id?,
            start,
            attach,
            hook,
            timeout_ms,
            owner,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_round_trips_and_rejects_anything_else() {
        let args = ShimArgs {
            root: PathBuf::from("/var/lib/berth"),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            id: "abc".into(),
            start: true,
            attach: false,
            hook: None,
            timeout_ms: None,
            owner: None,
        };
        let back = ShimArgs::from_argv(&args.to_argv()).unwrap();
        assert_eq!(back.root, args.root);
        assert_eq!(back.cgroup_root, args.cgroup_root);
        assert_eq!(back.id, "abc");
        assert!(back.start && !back.attach);
        assert_eq!((back.hook, back.timeout_ms), (None, None));
        let hook = ShimArgs {
            hook: Some("pre_stop:1".into()),
            timeout_ms: Some(2500),
            start: false,
            ..args.clone()
        };
        let back = ShimArgs::from_argv(&hook.to_argv()).unwrap();
        assert_eq!(back.hook.as_deref(), Some("pre_stop:1"));
        assert_eq!(back.timeout_ms, Some(2500));
        let owned = ShimArgs {
            owner: Some(OwnerProcess {
                pid: 4242,
                start_time: 987654,
            }),
            ..args.clone()
        };
        let back = ShimArgs::from_argv(&owned.to_argv()).unwrap();
        assert_eq!(back.owner, owned.owner);
        let mut bad = owned.to_argv();
        *bad.last_mut().unwrap() = "4242".into();
        assert!(
            ShimArgs::from_argv(&bad).is_none(),
            "an owner needs its start time"
        );
        assert!(ShimArgs::from_argv(&["shim".into(), "--id".into()]).is_none());
        assert!(ShimArgs::from_argv(&["run".into()]).is_none());
        assert!(ShimArgs::from_argv(&["shim".into(), "--bogus".into()]).is_none());
    }
}
