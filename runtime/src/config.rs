//! [`ContainerConfig`]: everything the runtime needs to create one
//! container, in runtime terms (paths, argv, limits). It knows nothing of
//! Compose or images; the caller resolves those first.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One container, as the runtime creates it. Written to
/// `<root>/containers/<id>/config.json` and read back by the shim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// 64 hex characters; [`crate::new_id`] makes one.
    pub id: String,
    /// Unique among the containers under the same root.
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Facts the caller records about the container for itself, opaque to
    /// the runtime (the OCI runtime spec's `annotations`): the agent keeps
    /// the image reference and ID here (`berth.image`, `berth.image-id`),
    /// apart from the user's labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub rootfs: Rootfs,
    pub process: ProcessConfig,
    /// Defaults to the first 12 characters of the id.
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub resources: Resources,
    /// Run a tiny reaper as pid 1 that forwards signals and reaps zombies.
    #[serde(default)]
    pub init: bool,
    /// Sent by `stop`; `SIGTERM` when absent. A name (`SIGINT`, `INT`) or
    /// a number.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before `SIGKILL`; 10 when absent.
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub network: Network,
    /// Remove the container (state, cgroup, log) once it exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// The health probe the shim runs (`None`, or a `NONE` test: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<crate::health::Healthcheck>,
    /// What the shim does when the process exits.
    #[serde(
        default,
        skip_serializing_if = "crate::restart_policy::RestartPolicy::is_none"
    )]
    pub restart_policy: crate::restart_policy::RestartPolicy,
}

/// Where the container's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rootfs {
    /// A plain directory used in place, read-write (podman's `--rootfs`).
    Dir(PathBuf),
    /// Read-only snapshot directories stacked with overlayfs, **lowest
    /// (base layer) first**, the way an image manifest lists its layers.
    /// The runtime adds a per-container upper and work dir.
    Layers(Vec<PathBuf>),
}

/// The container's main process.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProcessConfig {
    /// The command, already combined from ENTRYPOINT and CMD (see
    /// [`crate::combine_command`]). `args[0]` is looked up in the
    /// container's `PATH` when it has no `/`.
    pub args: Vec<String>,
    /// `KEY=VALUE`, the image's first, then the caller's; later wins.
    #[serde(default)]
    pub env: Vec<String>,
    /// Working directory inside the container; `/` when absent.
    #[serde(default)]
    pub cwd: Option<String>,
    /// `uid[:gid]` or `name[:group]`, resolved against the container's
    /// `/etc/passwd` and `/etc/group`; root when absent.
    #[serde(default)]
    pub user: Option<String>,
    /// Not supported yet: must be false.
    #[serde(default)]
    pub tty: bool,
}

/// A mount added on top of the rootfs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Mount {
    /// A host path (file or dir) bound at `target`. Named volumes are
    /// passed as binds of their directory.
    Bind {
        source: PathBuf,
        target: String,
        #[serde(default)]
        readonly: bool,
    },
    /// A fresh tmpfs at `target`.
    Tmpfs {
        target: String,
        /// Bytes; unlimited (half of RAM, the kernel default) when absent.
        #[serde(default)]
        size: Option<u64>,
        /// Octal mode; `1777` when absent, like Docker.
        #[serde(default)]
        mode: Option<u32>,
    },
}

/// cgroup limits. `None` leaves the kernel default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Bytes (`--memory`).
    pub memory: Option<i64>,
    /// Bytes (`--memory-reservation`).
    pub memory_reservation: Option<i64>,
    /// Memory plus swap in bytes (`--memory-swap`); -1 is unlimited.
    pub memory_swap: Option<i64>,
    /// CFS quota in microseconds per period (`--cpus` × period).
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds; 100000 when a quota is set.
    pub cpu_period: Option<u64>,
    /// Relative weight (`--cpu-shares`, default 1024).
    pub cpu_shares: Option<u64>,
    /// `0-3,5` (`--cpuset-cpus`).
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// Maximum number of tasks (`--pids-limit`).
    pub pids_limit: Option<i64>,
}

impl Resources {
    /// `--cpus N` as Docker stores it: a quota over a 100 ms period.
    pub fn set_cpus(&mut self, cpus: f64) {
        let period = 100_000u64;
        self.cpu_period = Some(period);
        self.cpu_quota = Some((cpus * period as f64).round() as i64);
    }

    /// `NanoCpus` as Docker's inspect shows it.
    pub fn nano_cpus(&self) -> i64 {
        match (self.cpu_quota, self.cpu_period) {
            (Some(q), Some(p)) if p > 0 && q > 0 => (q as i128 * 1_000_000_000 / p as i128) as i64,
            _ => 0,
        }
    }
}

/// The json-file log driver's rotation options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogConfig {
    /// Rotate when the file reaches this many bytes; never when absent.
    pub max_size: Option<u64>,
    /// Files kept, the current one included (Docker's `max-file`, default 1).
    pub max_files: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_size: None,
            max_files: 1,
        }
    }
}

/// The container's network namespace.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "path")]
pub enum Network {
    /// A new network namespace with only `lo` up.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// Join a namespace someone else prepared (a bind-mounted
    /// `/run/netns/NAME`, for example): the seam for the network crate.
    Join(PathBuf),
}

impl ContainerConfig {
    /// The hostname the container gets.
    pub fn effective_hostname(&self) -> String {
        match &self.hostname {
            Some(h) if !h.is_empty() => h.clone(),
            _ => self.id.chars().take(12).collect(),
        }
    }
}
