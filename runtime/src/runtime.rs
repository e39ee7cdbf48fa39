//! [`Runtime`]: the handle every operation hangs off (one file per
//! operation beside this one), and the lookups they share.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::ContainerConfig;
use crate::error::{Error, Result};
use crate::state::{ContainerDir, State, StateRoot, Status, read_json, same_process_alive};

/// Where containers live and how to start their shims.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) root: StateRoot,
    pub(crate) cgroup_root: PathBuf,
    pub(crate) shim_exe: PathBuf,
}

/// What a container is now: the recorded state checked against the
/// processes that are (or are not) there.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    /// `creating`, `created`, `running`, `restarting` (exited; the shim
    /// starts it again after the restart delay), `exited`, or `unknown`
    /// (the shim died, the container still runs) or `dead` (both died
    /// before the exit was recorded). A container that ran when the host
    /// went down reads `exited`.
    pub status: String,
    /// Why the status is `unknown` or `dead`.
    pub reason: Option<String>,
    pub shim_alive: bool,
    pub container_alive: bool,
    /// The state was recorded before the host last booted: whatever its
    /// shim decided (to restart or not) was cut short by the shutdown.
    pub from_earlier_boot: bool,
}

/// One container as `ps` and `inspect` see it.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub config: ContainerConfig,
    pub state: State,
    pub observed: Observed,
}

impl ContainerInfo {
    pub fn is_running(&self) -> bool {
        self.observed.container_alive
    }
}

impl Runtime {
    /// `root`: the state root (`/var/lib/berth`); `cgroup_root`: normally
    /// `/sys/fs/cgroup`; `shim_exe`: the binary that has the `shim`
    /// subcommand (`/proc/self/exe` for `berth`).
    pub fn new(
        root: impl Into<PathBuf>,
        cgroup_root: impl Into<PathBuf>,
        shim_exe: impl Into<PathBuf>,
    ) -> Self {
        Runtime {
            root: StateRoot::new(root),
            cgroup_root: cgroup_root.into(),
            shim_exe: shim_exe.into(),
        }
    }

    pub fn state_root(&self) -> &StateRoot {
        &self.root
    }

    pub fn cgroup_root(&self) -> &Path {
        &self.cgroup_root
    }

    /// Whether containers' cgroups are on the unified (v2) hierarchy, where
    /// `oom_kill_disable`, `memory_swappiness` and device filtering have no
    /// effect.
    pub fn cgroup_v2(&self) -> bool {
        crate::cgroup::is_unified(&self.cgroup_root)
    }

    pub(crate) fn names_dir(&self) -> PathBuf {
        self.root.path().join("names")
    }

    /// The id of the container called `key`: a full id, a name, or a
    /// unique id prefix.
    pub fn resolve(&self, key: &str) -> Result<String> {
        if key.is_empty() {
            return Err(Error::NotFound(key.to_owned()));
        }
        if self.root.container(key).config().exists() {
            return Ok(key.to_owned());
        }
        if let Ok(id) = fs::read_to_string(self.names_dir().join(key)) {
            let id = id.trim().to_owned();
            if self.root.container(&id).config().exists() {
                return Ok(id);
            }
        }
        let matches: Vec<String> = self
            .ids()
            .into_iter()
            .filter(|id| id.starts_with(key))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::NotFound(key.to_owned())),
            _ => Err(Error::invalid(
                "container reference",
                format!("{key:?} matches several ids"),
            )),
        }
    }

    /// Every container id under the root.
    pub fn ids(&self) -> Vec<String> {
        let Ok(rd) = fs::read_dir(self.root.containers_dir()) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter(|e| e.path().join("config.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }

    /// Config, state and what is really running, for one container.
    pub fn inspect(&self, key: &str) -> Result<ContainerInfo> {
        let id = self.resolve(key)?;
        let dir = self.root.container(&id);
        // The container may be removed between `resolve` and the reads (a
        // `--rm` container exiting): that is "no such container", not a
        // system error.
        let gone = |e: Error| match &e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::NotFound(id.clone())
            }
            _ => e,
        };
        let config: ContainerConfig = read_json(&dir.config()).map_err(gone)?;
        let state = State::load(&dir.state()).map_err(gone)?;
        let observed = observe(&dir, &state);
        Ok(ContainerInfo {
            config,
            state,
            observed,
        })
    }

    /// Every container (`all`) or the live ones, newest first.
    pub fn list(&self, all: bool) -> Vec<ContainerInfo> {
        let mut out: Vec<ContainerInfo> = self
            .ids()
            .iter()
            .filter_map(|id| self.inspect(id).ok())
            .filter(|i| {
                all || i.observed.container_alive
                    || matches!(i.observed.status.as_str(), "running" | "restarting")
            })
            .collect();
        out.sort_by(|a, b| b.state.created_at.cmp(&a.state.created_at));
        out
    }

    /// True while the container's shim runs.
    pub fn shim_alive(&self, id: &str) -> bool {
        lock_held(&self.root.container(id))
    }
}

/// Checks the recorded state against the kernel: is the shim there (it
/// holds `shim.lock`), is pid 1 there (same pid *and* start time)?
pub fn observe(dir: &ContainerDir, state: &State) -> Observed {
    let shim_alive = lock_held(dir);
    let earlier_boot = state
        .boot_id
        .as_deref()
        .is_some_and(|b| this_boot_id().is_some_and(|now| now != b));
    // Pids and start times of an earlier boot mean nothing now.
    let container_alive =
        !earlier_boot && state.pid > 0 && same_process_alive(state.pid, state.pid_start_time);
    let (status, reason) = match (state.status, shim_alive, container_alive) {
        (Status::Exited, _, _) => ("exited", None),
        (s, true, _) => (s.as_str(), None),
        // Not a crash of the shim: the host went down under it. That is an
        // exit (nothing runs any more), which a restart policy may answer.
        (_, false, _) if earlier_boot => (
            "exited",
            Some("the host restarted while the container ran; its exit was not recorded"),
        ),
        (_, false, true) => (
            "unknown",
            Some(
                "the shim died; the container still runs, unsupervised (its exit will not be recorded)",
            ),
        ),
        (_, false, false) => (
            "dead",
            Some("the shim died before recording the container's exit"),
        ),
    };
    Observed {
        status: status.to_owned(),
        reason: reason.map(str::to_owned),
        shim_alive,
        container_alive,
        from_earlier_boot: earlier_boot,
    }
}

/// This boot's id, read once per process.
fn this_boot_id() -> Option<&'static str> {
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT_ID.get_or_init(crate::state::boot_id).as_deref()
}

/// Probes `shim.lock`: held means the shim is alive. Unlike a pid, a lock
/// cannot be confused with a later process.
pub(crate) fn lock_held(dir: &ContainerDir) -> bool {
    let Ok(f) = OpenOptions::new().read(true).open(dir.lock()) else {
        return false;
    };
    !try_lock(&f, libc::LOCK_SH)
}

/// `flock(op | LOCK_NB)`; true when taken (released when `f` closes).
pub(crate) fn try_lock(f: &File, op: libc::c_int) -> bool {
    // SAFETY: flock on a descriptor we own; no memory is passed.
    unsafe { libc::flock(f.as_raw_fd(), op | libc::LOCK_NB) == 0 }
}

/// Blocking `flock(op)`.
pub(crate) fn lock(f: &File, op: libc::c_int) -> Result<()> {
    loop {
        // SAFETY: flock on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = nix::Error::last();
        if e != nix::Error::EINTR {
            return Err(Error::sys("flock shim.lock", e));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::state::proc_start_time;

    /// The re-adoption matrix: what `ps` says for each combination of
    /// recorded status, shim lock and pid 1.
    #[test]
    fn observe_reports_dead_shims_and_reused_pids_honestly() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateRoot::new(tmp.path()).container("abc");
        fs::create_dir_all(dir.path()).unwrap();
        let me = std::process::id() as i32;
        let mut st = State::new("abc", "n");
        st.status = Status::Running;
        st.pid = me;
        st.pid_start_time = proc_start_time(me).unwrap();

        // No lock file, pid alive: the shim died, the container runs.
        let o = observe(&dir, &st);
        assert_eq!(
            (o.status.as_str(), o.shim_alive, o.container_alive),
            ("unknown", false, true)
        );
        assert!(o.reason.is_some());

        // The shim holds its lock: running.
        let lockf = File::create(dir.lock()).unwrap();
        assert!(try_lock(&lockf, libc::LOCK_EX));
        let o = observe(&dir, &st);
        assert_eq!((o.status.as_str(), o.shim_alive), ("running", true));
        drop(lockf);

        // Same pid, another start time: a reused pid is not our container.
        st.pid_start_time += 1;
        let o = observe(&dir, &st);
        assert_eq!((o.status.as_str(), o.container_alive), ("dead", false));

        // A recorded exit stays an exit whatever is running.
        st.status = Status::Exited;
        assert_eq!(observe(&dir, &st).status, "exited");
    }

    /// A state written in an earlier boot is not a dead shim: the host
    /// went down under a running (or restarting) container, which reads
    /// exited, its pid meaningless now.
    #[test]
    fn a_state_from_an_earlier_boot_reads_exited() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateRoot::new(tmp.path()).container("abc");
        fs::create_dir_all(dir.path()).unwrap();
        let me = std::process::id() as i32;
        let mut st = State::new("abc", "n");
        st.status = Status::Restarting;
        st.pid = me;
        st.pid_start_time = proc_start_time(me).unwrap();
        st.boot_id = Some("an-earlier-boot".to_owned());
        let o = observe(&dir, &st);
        assert_eq!(
            (o.status.as_str(), o.container_alive, o.from_earlier_boot),
            ("exited", false, true)
        );
        assert!(o.reason.unwrap().contains("host restarted"));
        // This boot's id: the usual rules (here a live pid, no shim).
        st.boot_id = crate::state::boot_id();
        let o = observe(&dir, &st);
        assert_eq!((o.status.as_str(), o.from_earlier_boot), ("unknown", false));
    }
}
