//! [`ContainerSpec`]: one container as the runtime should create it. No
//! Compose types: every value is resolved (volume and network names,
//! resource limits in bytes and CPU periods, the restart policy normalized),
//! so a runtime adapter translates it field by field.
//!
//! Entrypoint and command are kept as *overrides*: `None` means "the
//! image's", `Some(vec![])` means "cleared". Merging them with the image
//! config (Entrypoint, Cmd, Env, WorkingDir, User) is the runtime adapter's
//! job, because only it reads the image.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::restart::RestartPolicy;

/// Label names. Compose's own where one exists, so tools that know
/// `docker compose` recognise berth's containers, volumes and networks.
pub mod labels {
    pub const PROJECT: &str = "com.docker.compose.project";
    pub const SERVICE: &str = "com.docker.compose.service";
    pub const NUMBER: &str = "com.docker.compose.container-number";
    /// `"False"` for service containers; `"True"` for `run` containers,
    /// which the reconciler never adopts or removes as orphans.
    pub const ONEOFF: &str = "com.docker.compose.oneoff";
    pub const NETWORK: &str = "com.docker.compose.network";
    pub const VOLUME: &str = "com.docker.compose.volume";
    /// sha256 over every input that shapes the container (see `hash`).
    pub const CONFIG_HASH: &str = "berth.config-hash";
    /// The image digest the container was created from.
    pub const IMAGE_DIGEST: &str = "berth.image-digest";
    /// `key=digest12,...`: a short digest per top-level service key, so a
    /// plan can say which keys changed without storing their values (which
    /// may be secrets) in labels.
    pub const CONFIG_KEYS: &str = "berth.config-keys";
}

/// Everything needed to create one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    /// `<project>-<service>-<number>`, or the service's `container_name`.
    pub name: String,
    pub project: String,
    pub service: String,
    /// 1-based replica number.
    pub number: u32,
    /// The image reference as the service names it (normalization into
    /// `docker.io/library/...` is the image store's).
    pub image: String,
    /// The image digest, when known at planning time. A plan that pulls or
    /// builds the image first leaves it `None`; the executor then fills it
    /// with [`ContainerSpec::with_image_digest`], which also finishes the
    /// config hash.
    pub image_digest: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// Variables without a value (`- KEY` unset in the environment) are
    /// left out, as Docker does.
    pub env: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    /// Files from `configs:` and `secrets:`.
    pub files: Vec<FileMount>,
    pub ports: Vec<PortBinding>,
    /// Ignored when `network_mode` is set.
    pub networks: Vec<NetworkAttachment>,
    /// `host`, `none`, `container:<id>`, `service:<name>` (resolved by the
    /// adapter to that service's first container).
    pub network_mode: Option<String>,
    /// `mac_address` of the service: its first network's interface's
    /// (a network's own `mac_address` wins).
    #[serde(default)]
    pub mac_address: Option<String>,
    /// `links` and `external_links` as (alias, name it stands for): the
    /// alias resolves, in this container only, to what the name resolves
    /// to (a service, or another container by name).
    #[serde(default)]
    pub links: Vec<(String, String)>,
    pub resources: ResourceLimits,
    pub ulimits: Vec<UlimitSpec>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub read_only: bool,
    pub privileged: bool,
    pub tty: bool,
    pub stdin_open: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub init: bool,
    pub sysctls: BTreeMap<String, String>,
    pub extra_hosts: Vec<(String, String)>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_opt: Vec<String>,
    pub devices: Vec<Device>,
    pub security_opt: Vec<String>,
    pub group_add: Vec<String>,
    /// Default `SIGTERM` (the image's `StopSignal` when the adapter knows
    /// it and this is `None`).
    pub stop_signal: Option<String>,
    /// Default 10 s, like Docker.
    pub stop_grace_period: Duration,
    pub restart: RestartPolicy,
    pub healthcheck: Option<HealthcheckSpec>,
    /// `logging:` as declared; the adapter maps the driver and refuses
    /// what it cannot do.
    pub logging: Option<LoggingSpec>,
    /// Commands run inside the container right after it starts, in order;
    /// a failing one fails the start (Compose's `post_start`).
    pub post_start: Vec<HookSpec>,
    /// Commands run inside the container before it is stopped, within the
    /// grace period (Compose's `pre_stop`).
    pub pre_stop: Vec<HookSpec>,
    pub labels: BTreeMap<String, String>,
    /// What the config hash covers, kept so the executor can finish the
    /// hash once a pulled or built image's digest is known.
    #[serde(skip)]
    pub(crate) hash_input: Option<crate::hash::HashInput>,
}

impl ContainerSpec {
    /// The `berth.config-hash` label.
    pub fn config_hash(&self) -> Option<&str> {
        self.labels.get(labels::CONFIG_HASH).map(String::as_str)
    }

    /// Sets the image digest and the labels that depend on it.
    pub fn with_image_digest(mut self, digest: &str) -> Self {
        self.image_digest = Some(digest.to_string());
        self.labels
            .insert(labels::IMAGE_DIGEST.into(), digest.to_string());
        if let Some(input) = &self.hash_input {
            self.labels
                .insert(labels::CONFIG_HASH.into(), input.hash(Some(digest)));
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Mount {
    /// A host path (already absolute).
    Bind {
        source: String,
        target: String,
        read_only: bool,
        create_host_path: bool,
        propagation: Option<String>,
        selinux: Option<String>,
    },
    /// A named volume, by its resolved name (`<project>_<key>`, the
    /// declared `name:`, or an external volume's name). An anonymous volume
    /// has `source: None`: the runtime creates one per container.
    Volume {
        source: Option<String>,
        target: String,
        read_only: bool,
        nocopy: bool,
        subpath: Option<String>,
    },
    Tmpfs {
        target: String,
        size: Option<i64>,
        mode: Option<u32>,
        /// Mount options besides size and mode, as written (`noexec`,
        /// `uid=1000`, `ro`...).
        options: Vec<String>,
    },
    /// Another image's filesystem (`type: image`).
    Image {
        source: String,
        target: String,
        subpath: Option<String>,
    },
}

impl Mount {
    pub fn target(&self) -> &str {
        match self {
            Mount::Bind { target, .. }
            | Mount::Volume { target, .. }
            | Mount::Tmpfs { target, .. }
            | Mount::Image { target, .. } => target,
        }
    }
}

/// A config or secret file placed in the container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileMount {
    pub kind: FileKind,
    /// The top-level name (`<project>_<key>` unless named).
    pub name: String,
    pub source: FileSource,
    /// Absolute: secrets default to `/run/secrets/<key>`, configs to
    /// `/<key>`.
    pub target: String,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FileKind {
    Config,
    Secret,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FileSource {
    /// An absolute host path.
    File(String),
    /// Inline `content:`.
    Content(String),
    /// The value of this variable in the agent's environment.
    Environment(String),
    /// Declared `external`: provided by the host by name.
    External,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortBinding {
    pub container_port: u32,
    pub protocol: String,
    pub host_ip: Option<String>,
    /// A port, a range (`"8000-8010"`), or `None` for "any free port".
    pub host_port: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAttachment {
    /// The resolved network name.
    pub name: String,
    /// The service name first (Compose's DNS name for it), then the
    /// declared aliases.
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    pub mac_address: Option<String>,
    /// Interface order: higher first (eth0 is the highest).
    pub priority: Option<i64>,
    /// Which network carries the default route: the highest.
    #[serde(default)]
    pub gw_priority: Option<i64>,
    #[serde(default)]
    pub link_local_ips: Vec<String>,
    /// The interface's name in the container (`eth<n>` when unset).
    #[serde(default)]
    pub interface_name: Option<String>,
}

/// Resource limits in runtime units.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceLimits {
    /// Bytes.
    pub memory_limit: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// Memory plus swap, bytes; -1 for unlimited swap.
    pub memory_swap: Option<i64>,
    pub memory_swappiness: Option<i64>,
    /// CFS quota and period in microseconds: `cpus: 0.5` is 50000/100000.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpuset: Option<String>,
    pub pids_limit: Option<i64>,
    pub shm_size: Option<i64>,
    pub oom_kill_disable: bool,
    pub oom_score_adj: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UlimitSpec {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub source: String,
    pub target: String,
    pub permissions: String,
}

/// A service's `logging:` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggingSpec {
    /// `None`: the runtime's default (json-file).
    pub driver: Option<String>,
    pub options: BTreeMap<String, String>,
}

/// One lifecycle hook (`post_start`, `pre_stop`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookSpec {
    pub command: Vec<String>,
    /// The container's user when `None`.
    pub user: Option<String>,
    pub privileged: bool,
    /// The container's working dir when `None`.
    pub working_dir: Option<String>,
    /// Added to the container's environment for the hook (unset entries
    /// are left out).
    pub env: BTreeMap<String, String>,
}

/// Docker's health probe. `test` starts with `CMD` or `CMD-SHELL`;
/// `disable: true` in Compose becomes `["NONE"]` (turn off the image's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthcheckSpec {
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u64>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
}

impl HealthcheckSpec {
    /// Whether this probe actually runs (a `NONE` test turns it off).
    pub fn is_enabled(&self) -> bool {
        self.test.first().is_some_and(|t| t != "NONE")
    }
}

/// A volume to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    pub name: String,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    /// The declared labels plus `com.docker.compose.project` and
    /// `com.docker.compose.volume`.
    pub labels: BTreeMap<String, String>,
}

/// A network to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    pub name: String,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub internal: bool,
    pub enable_ipv6: bool,
    pub subnets: Vec<Subnet>,
    /// The declared labels plus `com.docker.compose.project` and
    /// `com.docker.compose.network`.
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
}

/// An image to build: the service's `build:` section, tagged `reference`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildRequest {
    pub service: String,
    pub reference: String,
    pub build: berth_spec::compose::model::BuildConfig,
    /// The project's definitions (`secrets:` at the top level) of the
    /// secrets `build.secrets` names: where each one's value comes from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, berth_spec::compose::model::SecretConfig>,
    /// The image reference of each service a `service:NAME` entry of
    /// `build.additional_contexts` names (built first: see
    /// [`BuildRequest::service_contexts`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_images: BTreeMap<String, String>,
}

impl BuildRequest {
    /// The services whose images this build reads (`service:NAME`
    /// additional contexts).
    pub fn service_contexts(&self) -> impl Iterator<Item = &str> {
        self.build
            .additional_contexts
            .values()
            .filter_map(|v| v.strip_prefix("service:"))
    }
}
