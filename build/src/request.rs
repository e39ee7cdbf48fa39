//! What a caller asks for ([`BuildRequest`]), what it gets back
//! ([`BuildOutcome`]) and how it hears about progress ([`Progress`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use berth_image::Digest;

/// The Dockerfile: a file (`-f`, default `<context>/Dockerfile`) or text
/// given inline (`-f -`, compose's `dockerfile_inline`). A relative path
/// is taken from the current directory, as `docker build -f` does; callers
/// with a path relative to the context (compose's `dockerfile:`) join it
/// first. `<path>.dockerignore` beside a file wins over the context's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    Path(PathBuf),
    Inline(String),
}

/// The network of RUN steps that do not say `--network`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BuildNetwork {
    /// The builder's bridge network with egress (NAT), as BuildKit on
    /// dockerd uses the default bridge. Only with [`RunNetworks`](crate::RunNetworks) wired
    /// ([`crate::Builder::with_run_networks`]): a builder without them
    /// (library use) runs these steps with no network (only loopback).
    #[default]
    Default,
    /// No network: only loopback.
    None,
    /// The host's network namespace. Asking for it for the whole build
    /// grants the `network.host` entitlement, as buildx does for
    /// `--network host`.
    Host,
    /// A bridge network by name (`docker build --network NAME`), resolved
    /// by the [`RunNetworks`](crate::RunNetworks) wired in.
    Named(String),
}

/// Where an extra `/etc/hosts` entry points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAddress {
    Ip(std::net::IpAddr),
    /// `host-gateway`: the gateway of the RUN container's bridge network.
    HostGateway,
}

/// `--add-host NAME:ADDRESS`, compose `build.extra_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    pub name: String,
    pub address: HostAddress,
}

impl ExtraHost {
    /// `address` is an IPv4 or IPv6 address (brackets allowed around an
    /// IPv6 one) or `host-gateway`.
    pub fn new(name: &str, address: &str) -> std::result::Result<ExtraHost, String> {
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(format!(
                "invalid extra host name {name:?}: give a host name without spaces"
            ));
        }
        let address = if address == "host-gateway" {
            HostAddress::HostGateway
        } else {
            let bare = address
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(address);
            HostAddress::Ip(bare.parse().map_err(|_| {
                format!(
                    "invalid address {address:?} for extra host {name}: give an IPv4 or IPv6 address, or host-gateway"
                )
            })?)
        };
        Ok(ExtraHost {
            name: name.to_owned(),
            address,
        })
    }
}

/// What a build may do beyond a sandboxed RUN (BuildKit's `--allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Entitlements {
    /// `network.host`: `RUN --network=host`.
    pub network_host: bool,
    /// `security.insecure`: `RUN --security=insecure`, which runs the step
    /// privileged (all capabilities, every device, no masked paths).
    pub security_insecure: bool,
}

/// A `--secret id=ID,src=FILE` or `--secret id=ID,env=VAR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    /// The value itself (read by the caller from its environment).
    Value(Vec<u8>),
}

/// A `--build-context NAME=VALUE`: what `FROM NAME`, `COPY --from=NAME`
/// and `RUN --mount=from=NAME` read instead of the image or stage NAME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local folder.
    Dir(PathBuf),
    /// `docker-image://REF`: an image in the store.
    Image(String),
    /// A git URL, checked out like a git build context.
    Git(String),
}

impl NamedContext {
    /// BuildKit's value forms: `docker-image://REF`, a git URL, or a
    /// folder. `oci-layout://` and http(s) tarballs are refused by name.
    pub fn parse(value: &str) -> Result<NamedContext, String> {
        if let Some(reference) = value.strip_prefix("docker-image://") {
            if reference.is_empty() {
                return Err("docker-image:// needs an image reference".into());
            }
            return Ok(NamedContext::Image(reference.to_owned()));
        }
        if crate::git::is_git_url(value) {
            return Ok(NamedContext::Git(value.to_owned()));
        }
        for (prefix, what) in [
            ("oci-layout://", "OCI layout contexts"),
            ("http://", "tarball URL contexts"),
            ("https://", "tarball URL contexts"),
        ] {
            if value.starts_with(prefix) {
                return Err(format!(
                    "{value}: {what} are not supported; `berth load` the image and use docker-image://REF, or give a folder"
                ));
            }
        }
        if value.contains("://") {
            return Err(format!(
                "{value}: unknown context type; use a folder, docker-image://REF or a git URL"
            ));
        }
        Ok(NamedContext::Dir(PathBuf::from(value)))
    }
}

/// One build, as `docker build` flags describe it.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The context directory.
    pub context: PathBuf,
    /// `None`: `<context>/Dockerfile`.
    pub dockerfile: Option<DockerfileSource>,
    /// `--build-arg K=V`; a `None` value means "take it from the caller's
    /// environment" and is resolved by the caller (absent: skipped).
    pub build_args: BTreeMap<String, String>,
    /// `--target`: build up to this stage.
    pub target: Option<String>,
    /// `--label`, added to the image's labels.
    pub labels: BTreeMap<String, String>,
    /// `-t`: references to tag the result with.
    pub tags: Vec<String>,
    /// `--no-cache`: run every step (results still fill the cache).
    pub no_cache: bool,
    pub network: BuildNetwork,
    /// `--add-host`: lines added to RUN containers' `/etc/hosts`.
    pub extra_hosts: Vec<ExtraHost>,
    /// `--ulimit`: resource limits of RUN containers.
    pub ulimits: Vec<berth_runtime::Rlimit>,
    /// `--allow`.
    pub entitlements: Entitlements,
    /// `/dev/shm` size of RUN containers, bytes.
    pub shm_size: Option<u64>,
    /// `--cache-from`: images in the store (names or IDs) whose inline
    /// cache is imported; callers pull registry sources first. A missing
    /// image is warned about and skipped. The local cache is always used.
    pub cache_from: Vec<String>,
    /// `--cache-to type=inline`: write the steps' cache keys into the
    /// image config, for `--cache-from` elsewhere (the build arg
    /// `BUILDKIT_INLINE_CACHE=1` asks for it too).
    pub inline_cache: bool,
    pub secrets: BTreeMap<String, SecretSource>,
    /// `--ssh ID=PATH[,PATH]`: per id one agent socket or key files (the
    /// caller turns a bare `default` into `$SSH_AUTH_SOCK`), for
    /// `RUN --mount=type=ssh` and ssh git remotes.
    pub ssh: BTreeMap<String, Vec<PathBuf>>,
    /// `--build-context NAME=VALUE`.
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// `--platform`: only the host's platform can be built.
    pub platform: Option<String>,
    /// Set (by a signal handler, say) to stop the build: a running RUN is
    /// killed, its container removed, and the build fails as cancelled.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Taken from the build cache: nothing ran.
    Cached,
    /// Executed (a container ran, files were copied, ...).
    Executed,
    /// Metadata only (ENV, LABEL, CMD, ...): nothing to run or cache.
    Metadata,
}

/// One instruction of the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The stage's name (`AS name`) or `stage-N`.
    pub stage: String,
    /// `[stage i/n] INSTRUCTION`, as shown in progress.
    pub name: String,
    pub status: StepStatus,
}

/// What a successful build produced.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The image ID (the config digest).
    pub image_id: Digest,
    /// The full references it was tagged with.
    pub tags: Vec<String>,
    /// Every step of every stage built, in the order they finished.
    pub steps: Vec<StepReport>,
    /// Build args given but never declared with ARG.
    pub unused_args: Vec<String>,
}

impl BuildOutcome {
    /// Steps that ran (not cached, not metadata).
    pub fn executed(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.status == StepStatus::Executed)
            .count()
    }

    /// Steps taken from the cache.
    pub fn cached(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.status == StepStatus::Cached)
            .count()
    }
}

/// A progress event. `vertex` numbers steps like BuildKit's `#N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started {
        vertex: u32,
        name: String,
    },
    Cached {
        vertex: u32,
    },
    /// One line of a RUN's output (without the newline), `elapsed` since
    /// the step started.
    Output {
        vertex: u32,
        elapsed: Duration,
        line: String,
    },
    Done {
        vertex: u32,
        elapsed: Duration,
    },
    Failed {
        vertex: u32,
        elapsed: Duration,
        error: String,
    },
    /// A warning or note not tied to one step.
    Warning(String),
}

/// Where progress goes (`berth build` renders it as BuildKit's plain
/// progress). Called from the stage threads, hence `Sync`.
pub trait Progress: Send + Sync {
    fn event(&self, event: Event);
}

/// Drops every event.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: Event) {}
}
