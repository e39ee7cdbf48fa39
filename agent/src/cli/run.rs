//! `berth run`: create and start a container from an image (or, like
//! podman's `--rootfs`, from a directory); foreground (streams output,
//! exits with the container's code) or `-d`. Also the helpers the other
//! container verbs share.
//!
//! How image defaults and flags combine lives in [`crate::containers`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use berth_image::{ImageConfig, Lease};
use berth_runtime::{
    ContainerConfig, CreateOptions, LogConfig, Mount, Network, ProcessConfig, Resources, Rootfs,
    Runtime, ShimEvent, new_id, random_name,
};
use clap::Args;

use super::GlobalOpts;
use super::image::open_store;
use crate::containers::{self, Overrides};
use crate::healthcheck::HealthOverride;

/// Docker's exit status when `run`/`create` itself fails (bad flags, a
/// missing image), as opposed to the container's own.
pub const RUN_FAILED: u8 = 125;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Forward signals this process receives to the container (foreground).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (`KEY=VALUE`, or `KEY` to copy it).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Add a label (`KEY=VALUE`).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Memory limit (`64m`, `1g`, bytes).
    #[arg(short = 'm', long, value_parser = parse_bytes)]
    pub memory: Option<i64>,
    #[arg(long, value_parser = parse_bytes)]
    pub memory_reservation: Option<i64>,
    /// Memory plus swap; `-1` for unlimited swap.
    #[arg(long, value_parser = parse_swap, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// Number of CPUs (CFS quota over a 100 ms period).
    #[arg(long)]
    pub cpus: Option<f64>,
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// `uid[:gid]` or `name[:group]`.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Overwrite the entrypoint (`""` clears it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container hostname (default: the id's first 12 characters).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Run a reaper as pid 1 that forwards signals.
    #[arg(long)]
    pub init: bool,
    /// `none` (own namespace with only lo: the default unless ports are
    /// published), `bridge` (berth's default network, made on first use),
    /// a network's name (`berth network create`), `host`, or
    /// `container:NAME`.
    #[arg(long, visible_alias = "net", value_name = "NETWORK")]
    pub network: Option<String>,
    /// Another name for the container on its (user-defined) network.
    #[arg(
        long = "network-alias",
        visible_alias = "net-alias",
        value_name = "ALIAS"
    )]
    pub network_alias: Vec<String>,
    /// The container's IPv4 address on its (user-defined) network.
    #[arg(long)]
    pub ip: Option<String>,
    /// The container's IPv6 address on its network (one with IPv6).
    #[arg(long)]
    pub ip6: Option<String>,
    /// The container's MAC address (`02:42:ac:11:00:02`; default: derived
    /// from its IPv4 address, as Docker does).
    #[arg(long)]
    pub mac_address: Option<String>,
    /// Publish a port: `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`
    /// (ranges too; no host port: an ephemeral one).
    #[arg(short = 'p', long = "publish", value_name = "PORT")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes, on ephemeral host ports.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// DNS server for the container's resolv.conf.
    #[arg(long)]
    pub dns: Vec<String>,
    /// DNS search domain.
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// resolv.conf option (`ndots:2`).
    #[arg(long, visible_alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add `NAME:ADDRESS` to /etc/hosts (`host-gateway`: the network's
    /// gateway, i.e. the host).
    #[arg(long = "add-host", value_name = "NAME:ADDRESS")]
    pub add_host: Vec<String>,
    /// Bind mount `SRC:DST[:ro]` (SRC an absolute host path).
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    pub volume: Vec<String>,
    /// tmpfs mount `DST[:size=N,mode=M]`.
    #[arg(long, value_name = "DST[:OPTS]")]
    pub tmpfs: Vec<String>,
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds to wait for the stop signal before SIGKILL.
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    /// json log rotation size (`10m`).
    #[arg(long, value_parser = parse_bytes)]
    pub log_max_size: Option<i64>,
    #[arg(long, default_value_t = 1)]
    pub log_max_file: u32,
    /// Use a directory as the root filesystem, in place and writable,
    /// instead of an image (podman's `--rootfs`); the first argument is
    /// then the command.
    #[arg(long, value_name = "DIR", conflicts_with = "layer")]
    pub rootfs: Option<PathBuf>,
    /// A read-only lower dir for an overlayfs rootfs, lowest first
    /// (repeatable), instead of an image; for testing the overlay path.
    #[arg(long, hide = true, value_name = "DIR")]
    pub layer: Vec<PathBuf>,
    /// Restart policy: `no`, `always`, `unless-stopped`,
    /// `on-failure[:max-retries]`.
    #[arg(long)]
    pub restart: Option<String>,
    /// Command to run to check health (run by `/bin/sh -c`).
    #[arg(long, value_name = "COMMAND")]
    pub health_cmd: Option<String>,
    /// Time between health checks (`30s`, `1m`, `500ms`).
    #[arg(long, value_parser = parse_go_duration, value_name = "DURATION")]
    pub health_interval: Option<std::time::Duration>,
    /// Maximum time a health check may run.
    #[arg(long, value_parser = parse_go_duration, value_name = "DURATION")]
    pub health_timeout: Option<std::time::Duration>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long)]
    pub health_retries: Option<u32>,
    /// Start period, during which failures do not count.
    #[arg(long, value_parser = parse_go_duration, value_name = "DURATION")]
    pub health_start_period: Option<std::time::Duration>,
    /// Time between health checks during the start period.
    #[arg(long, value_parser = parse_go_duration, value_name = "DURATION")]
    pub health_start_interval: Option<std::time::Duration>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    pub no_healthcheck: bool,
    /// `IMAGE [COMMAND [ARG...]]`: an image (name, ID or ID prefix) and
    /// the command that replaces its CMD; with `--rootfs`, `COMMAND
    /// [ARG...]`.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// The runtime for `--root`, with this binary as the shim.
pub fn runtime(global: &GlobalOpts) -> Runtime {
    // BERTH_CGROUP_ROOT (undocumented) points at another cgroup root: on a
    // hybrid machine, the cgroup2 mount exercises the v2 code path.
    let cgroup_root = std::env::var_os("BERTH_CGROUP_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(berth_runtime::DEFAULT_CGROUP_ROOT));
    Runtime::new(
        &global.root,
        cgroup_root,
        PathBuf::from("/proc/self/exe")
            .read_link()
            .unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
    )
}

/// A process exit code from a container's (0..=255).
pub fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

pub fn run(args: RunArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let opts = CreateOptions {
        start: true,
        attach: !args.detach,
        die_with_caller: false,
    };
    Ok(or_run_failed(run_or_create(&args, global, opts)))
}

/// `berth create`: like `run -d`, but the container waits for `start`.
pub fn create(args: RunArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let opts = CreateOptions {
        start: false,
        attach: false,
        die_with_caller: false,
    };
    let mut args = args;
    args.detach = true;
    Ok(or_run_failed(run_or_create(&args, global, opts)))
}

/// Reports a failure of `run`/`create` itself with Docker's 125, so a
/// script can tell it from the container's own exit status.
fn or_run_failed(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|err| {
        eprintln!("berth: {err:#}");
        ExitCode::from(RUN_FAILED)
    })
}

fn run_or_create(
    args: &RunArgs,
    global: &GlobalOpts,
    opts: CreateOptions,
) -> anyhow::Result<ExitCode> {
    let rt = runtime(global);
    let (mut config, lease, exposed) = build_config(args_to_parts(args)?, args, global)?;
    let networking = super::run_net::prepare(args, global, &rt, &mut config, &exposed, opts.start)?;
    create_and_follow(&rt, &config, args, opts, lease, &networking)
}

/// Creates the container; a generated name that another container took
/// meanwhile is drawn again (as Docker does), a name the user gave is not.
fn create_named(
    rt: &Runtime,
    config: &ContainerConfig,
    generated: bool,
    opts: CreateOptions,
) -> berth_runtime::Result<berth_runtime::ShimHandle> {
    let mut attempt = rt.create(config, opts);
    let mut config = config.clone();
    for retry in 0..10 {
        match &attempt {
            Err(e) if generated && e.kind() == berth_runtime::ErrorKind::AlreadyExists => {
                // After a few draws, a digit widens the space, like Docker.
                config.name = if retry < 3 {
                    random_name()
                } else {
                    format!("{}{}", random_name(), retry)
                };
                attempt = rt.create(&config, opts);
            }
            _ => break,
        }
    }
    attempt
}

fn create_and_follow(
    rt: &Runtime,
    config: &ContainerConfig,
    args: &RunArgs,
    opts: CreateOptions,
    lease: Option<Lease>,
    networking: &super::run_net::Prepared,
) -> anyhow::Result<ExitCode> {
    let created = create_named(rt, config, args.name.is_none(), opts);
    match &created {
        // The container stays (exited): its ports go back.
        Err(berth_runtime::Error::Start { .. }) if !args.rm => {
            if let Some(net) = &networking.net {
                let _ = net.set_running(&config.id, false);
            }
        }
        Err(_) => networking.release(&config.id),
        Ok(_) => {}
    }
    // config.json (which names the image) is on disk now, or the create
    // failed: either way `rmi` may look.
    drop(lease);
    let mut handle = match created {
        Ok(h) => h,
        Err(berth_runtime::Error::Start { code, message, .. }) => {
            eprintln!("berth: {message}");
            if args.rm {
                let _ = rt.remove(&config.id, true);
            }
            return Ok(exit_code(code));
        }
        Err(e) => return Err(e).context("cannot create the container"),
    };
    if args.detach {
        println!("{}", config.id);
        return Ok(ExitCode::SUCCESS);
    }
    if args.sig_proxy {
        // Ctrl-C and friends go to the container (as with Docker, a pid 1
        // without a handler ignores them: use --init).
        // A short-lived container may already have exited, and with --rm
        // been removed: then there is nothing to forward signals to, and its
        // exit status is still waiting in the shim's event pipe.
        match rt.inspect(&config.id) {
            Ok(info) => berth_runtime::proxy_signals(info.state.pid, info.state.pid_start_time)?,
            Err(e) if e.kind() == berth_runtime::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    loop {
        match handle.next_event() {
            Ok(Some(ShimEvent::Exited(code))) => return Ok(exit_code(code)),
            Ok(Some(_)) => continue,
            Ok(None) => bail!(
                "the shim of {} exited without reporting the container's exit",
                config.id
            ),
            Err(berth_runtime::Error::Start { code, message, .. }) => {
                eprintln!("berth: {message}");
                return Ok(exit_code(code));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

struct Parts {
    env: Vec<String>,
    mounts: Vec<Mount>,
}

fn args_to_parts(args: &RunArgs) -> anyhow::Result<Parts> {
    let mut env = Vec::new();
    for f in &args.env_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            push_env(&mut env, line);
        }
    }
    for e in &args.env {
        push_env(&mut env, e);
    }
    let mut mounts = Vec::new();
    for v in &args.volume {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, m] => (*s, *d, *m),
            _ => bail!("invalid volume {v:?}: expected SRC:DST[:ro]"),
        };
        if !src.starts_with('/') {
            bail!(
                "invalid volume {v:?}: named volumes are not supported yet; use an absolute host path"
            );
        }
        if !dst.starts_with('/') {
            bail!("invalid volume {v:?}: the container path must be absolute");
        }
        let readonly = match mode {
            "" | "rw" => false,
            "ro" => true,
            other => bail!("invalid volume mode {other:?} in {v:?}: expected ro or rw"),
        };
        mounts.push(Mount::Bind {
            source: PathBuf::from(src),
            target: dst.to_owned(),
            readonly,
            copy_up: false,
        });
    }
    for t in &args.tmpfs {
        let (dst, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        let (mut size, mut mode) = (None, None);
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o.split_once('=') {
                Some(("size", s)) => {
                    size = Some(parse_bytes(s).map_err(anyhow::Error::msg)? as u64)
                }
                Some(("mode", m)) => {
                    mode = Some(
                        u32::from_str_radix(m, 8)
                            .with_context(|| format!("invalid tmpfs mode {m:?}"))?,
                    )
                }
                _ => bail!("unsupported tmpfs option {o:?} (size=, mode= are)"),
            }
        }
        mounts.push(Mount::Tmpfs {
            target: dst.to_owned(),
            size,
            mode,
            options: Vec::new(),
        });
    }
    Ok(Parts { env, mounts })
}

fn push_env(env: &mut Vec<String>, kv: &str) {
    if kv.contains('=') {
        env.push(kv.to_owned());
    } else if let Ok(v) = std::env::var(kv) {
        env.push(format!("{kv}={v}"));
    }
}

/// The config `run`/`create` asks for (its networking still to decide,
/// `run_net`), for an image the lease that keeps its snapshots until the
/// container's config records it, and the ports the image exposes (`-P`).
fn build_config(
    parts: Parts,
    args: &RunArgs,
    global: &GlobalOpts,
) -> anyhow::Result<(
    ContainerConfig,
    Option<Lease>,
    Vec<berth_image::ExposedPort>,
)> {
    let no_image = ImageConfig::default();
    let (rootfs, cmd, image) = match (&args.rootfs, args.layer.is_empty()) {
        (Some(dir), _) => {
            let dir = absolute(dir)?;
            if !dir.is_dir() {
                bail!("--rootfs {} is not a directory", dir.display());
            }
            (Rootfs::Dir(dir), args.command.clone(), None)
        }
        (None, false) => (
            Rootfs::Layers(
                args.layer
                    .iter()
                    .map(|l| absolute(l))
                    .collect::<anyhow::Result<_>>()?,
            ),
            args.command.clone(),
            None,
        ),
        (None, true) => {
            let Some((name, cmd)) = args.command.split_first() else {
                bail!(
                    "requires at least 1 argument: IMAGE [COMMAND] [ARG...] (or --rootfs DIR COMMAND [ARG...])"
                );
            };
            let store = open_store(global)?;
            let prepared = containers::prepare_image(&store, name)?;
            let layers = prepared.layers.clone();
            (Rootfs::Layers(layers), cmd.to_vec(), Some((name, prepared)))
        }
    };
    let merged = containers::merge(
        image.as_ref().map_or(&no_image, |(_, p)| p.image.config()),
        Overrides {
            entrypoint: args.entrypoint.clone().map(|e| vec![e]),
            cmd: (!cmd.is_empty()).then_some(cmd),
            env: parts.env,
            workdir: args.workdir.clone(),
            user: args.user.clone(),
            stop_signal: args.stop_signal.clone(),
            labels: args
                .label
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
                    (k.to_owned(), v.to_owned())
                })
                .collect(),
        },
    )?;
    let mut resources = Resources {
        memory: args.memory,
        memory_reservation: args.memory_reservation,
        memory_swap: args.memory_swap,
        cpu_shares: args.cpu_shares,
        cpuset_cpus: args.cpuset_cpus.clone(),
        cpuset_mems: args.cpuset_mems.clone(),
        pids_limit: args.pids_limit,
        ..Default::default()
    };
    if let Some(c) = args.cpus {
        if c <= 0.0 {
            bail!("--cpus must be positive");
        }
        resources.set_cpus(c);
    }
    let name = args.name.clone().unwrap_or_else(random_name);
    let mut config = ContainerConfig {
        id: new_id(),
        name,
        labels: merged.labels,
        annotations: Default::default(),
        rootfs,
        process: ProcessConfig {
            args: merged.args,
            env: merged.env,
            cwd: merged.cwd,
            user: merged.user,
            tty: false,
            additional_groups: Vec::new(),
        },
        hostname: args.hostname.clone(),
        mounts: parts.mounts,
        resources,
        init: args.init,
        stop_signal: merged.stop_signal,
        stop_timeout: args.stop_timeout,
        log: LogConfig {
            max_size: args.log_max_size.map(|s| s as u64),
            max_files: args.log_max_file.max(1),
            ..Default::default()
        },
        network: Network::None,
        auto_remove: args.rm,
        etc_hosts: None,
        resolv_conf: None,
        security: Default::default(),
        rlimits: Vec::new(),
        sysctls: Default::default(),
        devices: Vec::new(),
        domainname: None,
        shm_size: None,
        oom_score_adj: None,
        hooks: Default::default(),
        healthcheck: healthcheck(
            image.as_ref().map_or(&no_image, |(_, p)| p.image.config()),
            args,
        )?,
        restart_policy: match &args.restart {
            Some(r) => berth_runtime::RestartPolicy::parse(r).map_err(anyhow::Error::msg)?,
            None => Default::default(),
        },
    };
    let exposed = image
        .as_ref()
        .map(|(_, p)| p.image.config().exposed_ports.clone())
        .unwrap_or_default();
    let lease = image.map(|(name, prepared)| {
        containers::annotate(&mut config, name, &prepared.image.id);
        prepared.lease
    });
    Ok((config, lease, exposed))
}

/// The image's healthcheck under the `--health-*` flags (Docker's rules:
/// `crate::healthcheck::merge`).
fn healthcheck(
    image: &ImageConfig,
    args: &RunArgs,
) -> anyhow::Result<Option<berth_runtime::Healthcheck>> {
    let any_flag = args.health_cmd.is_some()
        || args.health_interval.is_some()
        || args.health_timeout.is_some()
        || args.health_retries.is_some()
        || args.health_start_period.is_some()
        || args.health_start_interval.is_some();
    if args.no_healthcheck && any_flag {
        bail!("--no-healthcheck conflicts with --health-* options");
    }
    let user = if args.no_healthcheck {
        Some(HealthOverride {
            test: vec!["NONE".to_owned()],
            ..Default::default()
        })
    } else if any_flag {
        Some(HealthOverride {
            test: match &args.health_cmd {
                Some(cmd) if !cmd.is_empty() => vec!["CMD-SHELL".to_owned(), cmd.clone()],
                _ => Vec::new(),
            },
            interval: args.health_interval,
            timeout: args.health_timeout,
            start_period: args.health_start_period,
            start_interval: args.health_start_interval,
            retries: args.health_retries,
        })
    } else {
        None
    };
    Ok(crate::healthcheck::merge(
        image.healthcheck.as_ref(),
        image.shell.as_deref(),
        user.as_ref(),
    ))
}

/// Go's duration syntax (`1m30s`, `500ms`), as Docker's flags take it.
fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    berth_spec::units::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("rootfs {}", p.display()))
}

/// Docker's byte sizes: `1024`, `64m`, `1.5g`, `512k`, `10b` (base 1024).
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').filter(|r| !r.is_empty()).unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    if n < 0.0 {
        return Err(format!("invalid size {s:?}"));
    }
    Ok((n * mult as f64) as i64)
}

fn parse_swap(s: &str) -> Result<i64, String> {
    if s.trim() == "-1" {
        Ok(-1)
    } else {
        parse_bytes(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("64MB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1.5g"), Ok(3 << 29));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert!(parse_bytes("lots").is_err());
        assert_eq!(parse_swap("-1"), Ok(-1));
    }
}
