//! berth-runtime: native Linux containers with no other runtime below.
//!
//! The principal types: [`ContainerConfig`] (what to run, in runtime terms:
//! paths, argv, limits; no Compose, no images), [`Runtime`] (a state root
//! plus a cgroup root; one file per operation: [`Runtime::create`],
//! [`Runtime::start`], [`Runtime::wait`], [`Runtime::stop`],
//! [`Runtime::kill`], [`Runtime::remove`], [`Runtime::list`],
//! [`Runtime::inspect`], [`Runtime::exec`], [`Runtime::stats`]), the
//! per-container supervisor in [`shim`], the json log in [`logs`], and
//! what the shim applies for the container's whole life: its
//! [`health`]check and [`restart_policy`].
//!
//! Lifecycle: `create` writes `config.json` and spawns the shim, which
//! outlives the caller; the shim builds the container (namespaces,
//! overlayfs, pivot_root, cgroup, capabilities) and, on `start`, lets it
//! exec; it records every transition in `state.json`. Any later process
//! finds the container again from the state dir ([`Runtime::list`]),
//! checking the shim by its lock and pid 1 by pid *and* start time.
//!
//! This is the crate where `unsafe` lives (fork, prctl, ioctl, pre_exec);
//! each block says why it is sound. Nothing here forks from a
//! multithreaded process: the shim is a fresh single-threaded process, and
//! [`Runtime::exec`] refuses to run in a process with more than one thread.

mod caps;
mod cgroup;
mod cgroupfs;
mod claim;
mod command;
mod config;
mod copyup;
mod create;
mod devices;
mod error;
mod exec;
mod files;
pub mod health;
mod hooks;
mod init;
mod init_layer;
mod kill;
pub mod logs;
mod names;
mod pause;
mod probe;
mod process;
mod remove;
mod resident;
pub mod restart_policy;
mod rlimits;
mod rootfs;
mod runtime;
pub mod shim;
mod shim_args;
mod start;
mod state;
mod stats;
mod sysctl;
mod tmpfs;
mod user;
mod wait;

pub mod alloc;

pub use caps::{CapName, parse_capability};
pub use cgroup::{CgroupPaths, CgroupSample, cpu_percent};
pub use command::combine_command;
pub use config::{
    ContainerConfig, Device, Hook, Hooks, LogConfig, LogDriver, Mount, Network, ProcessConfig,
    Resources, Rlimit, Rootfs, Security,
};
pub use create::{CreateOptions, ShimEvent, ShimHandle};
pub use error::{Error, ErrorKind, Result};
pub use exec::ExecOptions;
pub use health::{Health, HealthStatus, Healthcheck, ProbeResult};
pub use hooks::HookKind;
pub use kill::{parse_signal, proxy_signals};
pub use names::{new_id, random_name, valid_name};
pub use nix::sys::signal::Signal;
pub use process::{DEFAULT_CAPS, DEFAULT_PATH, default_sigpipe, merge_env};
pub use remove::mounts_under;
pub use resident::release_setup_text;
pub use restart_policy::{RestartCondition, RestartPolicy};
pub use rlimits::{Clamped, clamp_to_host as clamp_rlimits_to_host, validate as validate_rlimits};
pub use rootfs::{DEFAULT_SHM_SIZE, MASKED_PATHS, READONLY_PATHS, overlay_options, secure_join};
pub use runtime::{ContainerInfo, Observed, Runtime, observe};
pub use shim_args::OwnerProcess;
pub use state::{ContainerDir, State, StateRoot, Status, now_rfc3339, proc_start_time};
pub use stats::host_memory;
pub use sysctl::{Refusal as SysctlRefusal, Scope as SysctlScope, classify as classify_sysctl};
pub use tmpfs::tmpfs_options;
pub use user::{ExecUser, resolve_user};

/// The default state root.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";
/// The default cgroup root.
pub const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";
