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
    /// Capabilities, privileged mode, no_new_privs, read-only root.
    #[serde(default)]
    pub security: Security,
    /// Resource limits set with `setrlimit` before exec (`--ulimit`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<Rlimit>,
    /// Namespaced kernel parameters written under `/proc/sys` inside the
    /// container (`net.*`, `kernel.shm*`, `kernel.msg*`, `kernel.sem`,
    /// `fs.mqueue.*`); see [`crate::sysctl`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// Host devices made available inside the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    /// NIS domain name of the container's UTS namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// Size of `/dev/shm` in bytes; 64 MiB when absent, like Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// Written to `/proc/self/oom_score_adj` of the container's processes
    /// (-1000..=1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    /// Commands run inside the container after it starts and before it is
    /// stopped, when the caller asks for them ([`crate::Runtime::run_hooks`]).
    #[serde(default)]
    pub hooks: Hooks,
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

/// Privileges and confinement beyond Docker's defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Security {
    /// All capabilities, every host device, no masked or read-only paths,
    /// `/sys` read-write (`--privileged`).
    #[serde(default)]
    pub privileged: bool,
    /// Capability names (`NET_ADMIN`, `CAP_SYS_TIME`, `ALL`), on top of
    /// Docker's default set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// `PR_SET_NO_NEW_PRIVS`: set-user-ID binaries and file capabilities
    /// grant nothing (`--security-opt no-new-privileges`). Off by default,
    /// as in Docker.
    #[serde(default)]
    pub no_new_privileges: bool,
    /// The root filesystem is mounted read-only (`--read-only`); `/dev`,
    /// `/dev/shm`, tmpfs mounts and volumes stay writable.
    #[serde(default)]
    pub readonly_rootfs: bool,
    /// No masked or read-only paths under `/proc` and `/sys`
    /// (`--security-opt systempaths=unconfined`).
    #[serde(default)]
    pub unmask_paths: bool,
}

/// One `setrlimit` resource (`nofile`, `nproc`, `core`, ...). -1 is
/// unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A host device node (or a folder of them) to create in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub path_on_host: PathBuf,
    /// Absolute; the host path when empty.
    #[serde(default)]
    pub path_in_container: String,
    /// `r`, `w`, `m` (mknod) in any combination; `rwm` when empty.
    #[serde(default)]
    pub permissions: String,
}

/// Lifecycle hooks (Compose's `post_start` and `pre_stop`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Hooks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<Hook>,
}

/// One hook: a command run in the container as `exec` runs one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Hook {
    pub args: Vec<String>,
    /// `KEY=VALUE`, added after the container's environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// The container's user when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The container's working dir when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Every capability, whatever the container has.
    #[serde(default)]
    pub privileged: bool,
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
    /// Supplementary groups on top of the user's (`--group-add`): names
    /// from the container's `/etc/group`, or numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_groups: Vec<String>,
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
        /// A volume's copy-up (Docker's default for volumes): when `source`
        /// is an empty folder the first time the container is set up, what
        /// the image has at `target` is copied into it first, with owners
        /// and modes.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        copy_up: bool,
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
        /// mount(8) options: flags (`ro`, `noexec`, `exec`, `nosuid`,
        /// `nodev`, `noatime`, ...; later ones win) and tmpfs data (`uid=`,
        /// `gid=`, `nr_inodes=`, ...). `nosuid,nodev` when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        options: Vec<String>,
    },
    /// A file copied into the container's folder when it is created,
    /// owned `uid:gid` with `mode`, and bound read-only at `target`
    /// (Compose's configs and secrets). The copy is what the container
    /// sees: the source is read once and never modified.
    File {
        /// The host file to copy; `None` when `content` is given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<PathBuf>,
        /// Inline bytes, used by `create` and never written to
        /// `config.json` (they may be a secret).
        #[serde(skip)]
        content: Option<Vec<u8>>,
        target: String,
        #[serde(default)]
        uid: u32,
        #[serde(default)]
        gid: u32,
        /// Octal permission bits of the copy.
        mode: u32,
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
    /// 0..=100 (`--memory-swappiness`); cgroup v1 only.
    #[serde(default)]
    pub memory_swappiness: Option<u64>,
    /// No OOM killer for this cgroup (`--oom-kill-disable`); cgroup v1 only.
    #[serde(default)]
    pub oom_kill_disable: bool,
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

/// Where the container's output goes, and the json-file log's rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogConfig {
    /// Rotate when the file reaches this many bytes; never when absent.
    pub max_size: Option<u64>,
    /// Files kept, the current one included (Docker's `max-file`, default 1).
    pub max_files: u32,
    #[serde(default, skip_serializing_if = "LogDriver::is_default")]
    pub driver: LogDriver,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_size: None,
            max_files: 1,
            driver: LogDriver::JsonFile,
        }
    }
}

/// The log drivers the runtime has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// Docker's json-lines file, `container.log`.
    #[default]
    JsonFile,
    /// Output is read and dropped; `logs` has nothing to show.
    None,
}

impl LogDriver {
    fn is_default(&self) -> bool {
        *self == LogDriver::JsonFile
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
