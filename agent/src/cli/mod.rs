//! The command line: global flags, and one module per command.
//!
//! Each command module owns its clap arguments and a `run` that returns the
//! process exit code; errors bubble up to `main`, which prints them once.

mod agent;
mod agent_client;
mod agent_git;
mod build;
mod builder_cmd;
mod compose;
mod config;
mod dns;
mod down;
mod exec;
mod history;
mod image;
mod image_import;
mod image_inspect;
mod image_load;
mod image_prune;
mod image_rm;
mod images;
mod inspect;
mod kill;
mod login;
mod logs;
mod network;
mod pause;
mod port;
mod procs;
mod project_opts;
mod ps;
mod pull;
mod push;
mod registry_opts;
mod restart;
mod rm;
mod rollback;
pub(crate) mod run;
mod run_net;
mod save;
mod secret_file;
pub(crate) mod shim;
mod start;
mod stats;
mod stop;
mod top;
mod up;
mod version;
mod wait;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use project_opts::ProjectOpts;

/// berth: a single-binary, daemonless GitOps container engine for Compose
/// projects.
#[derive(Debug, Parser)]
#[command(name = "berth", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalOpts {
    /// Log line format: `text` for people, `json` (one object per line) for
    /// machines.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "BERTH_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Log filter (`info`, `debug`, `berth=trace,warn`, ...); when
    /// absent `RUST_LOG` is used, then `info`.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// State directory: the image store, snapshots, containers and their
    /// logs.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "BERTH_ROOT",
        default_value = berth_image::DEFAULT_ROOT
    )]
    pub root: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, resolve and render the Compose project in canonical form (like
    /// `docker compose config`).
    Config(config::ConfigArgs),
    /// Watch a directory (or follow a git repository) of Compose
    /// projects, keep their containers as declared, and serve their
    /// status over HTTP.
    Agent(agent::AgentArgs),
    /// Roll a project back to an earlier revision, through the running
    /// agent (`--to N`, or the previous applied one).
    Rollback(rollback::RollbackArgs),
    /// List a project's revisions, as the running agent keeps them
    /// (`history` is an image's, as with docker).
    Revisions(rollback::HistoryArgs),
    /// Print berth's version.
    Version(version::VersionArgs),
    /// Manage images: import, inspect, ls, rm, load, tag.
    Image(image::ImageArgs),
    /// List images (like `docker images`).
    Images(images::ImagesArgs),
    /// Remove images (like `docker rmi`).
    Rmi(image_rm::RmiArgs),
    /// Load images from a `docker save` or OCI archive (like `docker load`).
    Load(image_load::LoadArgs),
    /// Give an image another name (like `docker tag`).
    Tag(image_rm::TagArgs),
    /// Download an image from a registry (like `docker pull`).
    Pull(pull::PullArgs),
    /// Upload an image to a registry (like `docker push`).
    Push(push::PushArgs),
    /// Log in to a registry (like `docker login`).
    Login(login::LoginArgs),
    /// Log out from a registry (like `docker logout`).
    Logout(login::LogoutArgs),
    /// Save images to a tar archive (like `docker save`).
    Save(save::SaveArgs),
    /// Run a command in a new container, from an image or a rootfs
    /// directory.
    #[command(
        override_usage = "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n       berth run [OPTIONS] --rootfs DIR COMMAND [ARG...]"
    )]
    Run(Box<run::RunArgs>),
    /// Create a container that waits for `start`.
    #[command(
        override_usage = "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]\n       berth create [OPTIONS] --rootfs DIR COMMAND [ARG...]"
    )]
    Create(Box<run::RunArgs>),
    /// Start created containers.
    Start(start::StartArgs),
    /// Block until containers exit and print their exit codes.
    Wait(wait::WaitArgs),
    /// List containers.
    Ps(ps::PsArgs),
    /// Print a container's logs.
    Logs(logs::LogsArgs),
    /// Stop containers (stop signal, then SIGKILL after the timeout).
    Stop(stop::StopArgs),
    /// Send a signal to containers.
    Kill(kill::KillArgs),
    /// Stop, then start containers again.
    Restart(restart::RestartArgs),
    /// Remove containers.
    Rm(rm::RmArgs),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Show containers' CPU, memory and pids usage.
    Stats(stats::StatsArgs),
    /// Show containers' configuration and state as JSON.
    Inspect(inspect::InspectArgs),
    /// Create and start a project's containers and stream their logs
    /// (`-d`: in the background; `--dry-run`: print the plan), like
    /// `docker compose up`.
    Up(up::UpArgs),
    /// Stop and remove a project's containers and networks, like `docker
    /// compose down`.
    Down(down::DownArgs),
    /// Docker Compose's verbs: `berth compose [-f FILE] [-p NAME] up|down|ps|logs|...`.
    Compose(compose::ComposeArgs),
    /// Manage networks: create, ls, inspect, rm, prune, connect, disconnect.
    Network(network::NetworkArgs),
    /// List a container's published ports (like `docker port`).
    Port(port::PortArgs),
    /// Display a container's running processes (or a service's).
    Top(top::TopArgs),
    /// Pause all processes within containers (or services).
    Pause(pause::PauseArgs),
    /// Unpause all processes within containers (or services).
    Unpause(pause::PauseArgs),
    /// Build an image from a Dockerfile (like `docker build`).
    Build(Box<build::BuildArgs>),
    /// Manage the build cache (`berth builder prune`).
    Builder(builder_cmd::BuilderArgs),
    /// Show an image's history (like `docker history`).
    History(history::HistoryArgs),
    /// The per-container supervisor (internal).
    #[command(hide = true)]
    Shim(shim::ShimArgs),
    /// A network's DNS server (internal).
    #[command(hide = true)]
    Dns(dns::DnsArgs),
}

impl Command {
    /// The log filter when neither `--log-level` nor `RUST_LOG` says.
    /// libcgroups reports every controller this machine lacks at WARN:
    /// noise for container commands. Compose verbs report their steps as
    /// Compose's progress lines, which the executor's and the image
    /// store's info events would only repeat; so do the container verbs
    /// when given services. The agent has no such lines: it keeps them.
    /// Processes that serve sockets for long (they must see `EPIPE` from
    /// a write to a gone peer, not die of `SIGPIPE`).
    pub fn is_server(&self) -> bool {
        matches!(self, Command::Agent(_) | Command::Dns(_) | Command::Shim(_))
    }

    pub fn default_log_filter(&self) -> &'static str {
        match self {
            Command::Agent(_) => "info,libcgroups=error",
            Command::Up(_) | Command::Down(_) | Command::Compose(_) | Command::Network(_) => {
                "warn,libcgroups=error"
            }
            // The build's progress lines say what happens (also for
            // `berth build [SERVICE...]` in compose's meaning).
            Command::Build(_) => "warn,libcgroups=error",
            _ => "info,libcgroups=error,berth_reconcilers=warn,berth_net=warn",
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = &cli.global;
    match cli.command {
        Command::Config(args) => config::run(args),
        Command::Agent(args) => agent::run(args, global),
        Command::Version(args) => version::run(&args),
        Command::Rollback(args) => rollback::rollback(args),
        Command::Revisions(args) => rollback::history(args),
        Command::Image(args) => image::run(args, global),
        Command::Images(args) => images::run(&args, global),
        Command::Rmi(args) => image_rm::run_rmi(&args, global),
        Command::Load(args) => image_load::run(&args, global),
        Command::Tag(args) => image_rm::run_tag(&args, global),
        Command::Pull(args) => pull::run(&args, global),
        Command::Push(args) => push::run(&args, global),
        Command::Login(args) => login::run_login(&args),
        Command::Logout(args) => login::run_logout(&args),
        Command::Save(args) => save::run(&args, global),
        Command::Run(args) => run::run(*args, global),
        Command::Create(args) => run::create(*args, global),
        Command::Start(args) => start::run(args, global),
        Command::Wait(args) => wait::run(args, global),
        Command::Ps(args) => ps::run(args, global),
        Command::Logs(args) => logs::run(args, global),
        Command::Stop(args) => stop::run(args, global),
        Command::Kill(args) => kill::run(args, global),
        Command::Restart(args) => restart::run(args, global),
        Command::Rm(args) => rm::run(args, global),
        Command::Exec(args) => exec::run(args, global),
        Command::Stats(args) => stats::run(args, global),
        Command::Inspect(args) => inspect::run(args, global),
        Command::Up(args) => up::run(args, global),
        Command::Down(args) => down::run(args, global),
        Command::Compose(args) => compose::run(args, global),
        Command::Network(args) => network::run(args, global),
        Command::Port(args) => port::run(&args, global),
        Command::Top(args) => top::run(args, global),
        Command::Pause(args) => pause::run(args, global, true),
        Command::Unpause(args) => pause::run(args, global, false),
        Command::Build(args) => build::run(*args, global),
        Command::Builder(args) => builder_cmd::run(args, global),
        Command::History(args) => history::run(&args, global),
        Command::Shim(args) => shim::run(args, global),
        Command::Dns(args) => dns::run(args),
    }
}

/// The process environment as the Compose loader takes it. Variables whose
/// name or value is not UTF-8 are left out: Compose interpolation works on
/// text, and `std::env::vars` would panic on them.
pub fn process_environment() -> std::collections::BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_after_the_command_too() {
        let cli = Cli::try_parse_from([
            "berth",
            "config",
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(cli.global.log_format, LogFormat::Json);
        assert_eq!(cli.global.log_level.as_deref(), Some("debug"));
    }
}
