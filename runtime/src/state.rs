//! The state directory and each container's `state.json`.
//!
//! ```text
//! <root>/containers/<id>/
//!   config.json       ContainerConfig, written once by create
//!   state.json        State, rewritten atomically (temp + rename)
//!   shim.lock         flock held by the shim for its whole life
//!   shim.log          the shim's own diagnostics
//!   container.log     json-lines log (+ .1, .2 ... when rotated)
//!   hostname hosts resolv.conf   bound over /etc/* in the container
//!   rootfs/           mount point of the root (mounted only inside the
//!                     container's mount namespace)
//!   upper/ work/      overlayfs upper and work dirs (Rootfs::Layers only)
//!   start.fifo        present between create and start
//!   control           fifo: a stop or kill through berth tells the shim
//!                     not to restart (present while the shim runs)
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A state root (`/var/lib/berth` by default).
#[derive(Debug, Clone)]
pub struct StateRoot {
    root: PathBuf,
}

impl StateRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateRoot { root: root.into() }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// Folders of removed containers whose files are being deleted (see
    /// `remove::retire`).
    pub fn trash_dir(&self) -> PathBuf {
        self.root.join("trash")
    }

    pub fn container(&self, id: &str) -> ContainerDir {
        ContainerDir {
            dir: self.containers_dir().join(id),
        }
    }
}

/// One container's folder under the state root.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    dir: PathBuf,
}

impl ContainerDir {
    pub fn path(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join("shim.lock")
    }
    pub fn shim_log(&self) -> PathBuf {
        self.dir.join("shim.log")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("container.log")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn start_fifo(&self) -> PathBuf {
        self.dir.join("start.fifo")
    }
    pub fn control_fifo(&self) -> PathBuf {
        self.dir.join("control")
    }
    pub fn etc_file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A container's lifecycle as recorded on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The shim is setting the container up.
    Creating,
    /// Set up, waiting for `start`.
    Created,
    Running,
    /// Exited; the shim starts it again once the restart delay is over.
    Restarting,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub name: String,
    pub status: Status,
    /// Host pid of the container's pid 1 (0 before it exists).
    #[serde(default)]
    pub pid: i32,
    /// `/proc/<pid>/stat` start time (clock ticks since boot), to tell the
    /// container's process from a later one that reused its pid.
    #[serde(default)]
    pub pid_start_time: u64,
    #[serde(default)]
    pub shim_pid: i32,
    #[serde(default)]
    pub shim_start_time: u64,
    /// RFC 3339, UTC, nanoseconds.
    pub created_at: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Docker's convention: the code, or 128 + signal.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The signal that killed pid 1, if one did.
    #[serde(default)]
    pub signal: Option<i32>,
    #[serde(default)]
    pub oom_killed: bool,
    /// Why setup failed, when it did.
    #[serde(default)]
    pub error: Option<String>,
    /// Restarts by the restart policy since the last start by a user
    /// (Docker's `RestartCount`).
    #[serde(default)]
    pub restart_count: u32,
    /// A stop or kill through berth reached the container's last run
    /// (Docker's `HasBeenManuallyStopped`).
    #[serde(default)]
    pub manually_stopped: bool,
    /// The probe's verdicts, when the container has a healthcheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Health>,
    /// The kernel's boot id when the shim started: a state left by an
    /// earlier boot describes a container the host's shutdown stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

impl State {
    pub fn new(id: &str, name: &str) -> Self {
        State {
            id: id.to_owned(),
            name: name.to_owned(),
            status: Status::Creating,
            pid: 0,
            pid_start_time: 0,
            shim_pid: 0,
            shim_start_time: 0,
            created_at: now_rfc3339(),
            started_at: None,
            finished_at: None,
            exit_code: None,
            signal: None,
            oom_killed: false,
            error: None,
            restart_count: 0,
            manually_stopped: false,
            health: None,
            boot_id: None,
        }
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<State> {
        read_json(path)
    }

    /// Writes `path` atomically: a temp file in the same folder, then
    /// rename.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_json_atomic(path, self)
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| Error::io("read", path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    // No fsync: rename makes the update atomic for every reader, which is
    // what the shim and the CLI need. Durability across a power cut is not
    // worth ~6 fsyncs per container start: after a reboot no container
    // survives anyway, and the state then says what it last saw.
    let mut f = fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(&bytes)
        .map_err(|e| Error::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io("rename into place", path, e))
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Now, as RFC 3339 with nanoseconds (`2026-12-04T10:00:00.123456789Z`).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// The start time of `pid` in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), or `None` when there is no such process.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields
    // are counted after the last ')'. Field 3 (state) is the first there.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// True when `pid` is alive, is not a zombie, and is the process that
/// started at `start_time`.
pub fn same_process_alive(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let zombie = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .is_some_and(|s| s == "Z" || s == "X");
    !zombie && parse_start_time(&stat) == Some(start_time)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut st = State::new("abc", "brave_turing");
        st.status = Status::Exited;
        st.pid = 42;
        st.exit_code = Some(137);
        st.signal = Some(9);
        st.oom_killed = true;
        st.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), st);
        // No temp file left beside it.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"status\": \"exited\""), "{text}");
    }

    #[test]
    fn start_time_is_field_22_even_with_odd_names() {
        let stat =
            "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_start_time(stat), Some(98765));
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id() as i32;
        let st = proc_start_time(me).unwrap();
        assert!(same_process_alive(me, st));
        assert!(!same_process_alive(me, st + 1));
        assert!(!same_process_alive(0, 0));
    }
}
