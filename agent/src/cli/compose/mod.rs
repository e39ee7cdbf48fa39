//! `berth compose <verb>`: docker compose's verbs with its semantics and
//! output, so a script written for `docker compose` ports by replacing
//! one word. The project flags (`-f`, `-p`, `--project-directory`,
//! `--env-file`, `--profile`) go before the verb, as with docker compose.
//!
//! One module per verb; what they share: [`project`] (loading the project,
//! or knowing it by name), [`apply`] (observe, plan, execute),
//! [`progress`] (Compose's progress lines), [`printer`] and [`logfile`]
//! (prefixed, merged logs), [`table`] (Docker's table layout). `up` and
//! `down` are top-level verbs too; the container verbs' compose usage at
//! the top level is in [`toplevel`].

mod apply;
mod attach;
pub mod build;
#[cfg(debug_assertions)]
mod crashpoint;
pub mod down;
mod images;
pub mod kill;
mod logfile;
pub mod logs;
pub mod pause;
mod printer;
pub mod progress;
pub mod project;
pub mod ps;
mod pull;
pub mod restart;
pub mod rm;
pub mod start;
pub mod stop;
pub mod table;
pub mod top;
pub mod toplevel;
pub mod up;
mod wait;

use std::process::ExitCode;

use clap::Subcommand;

pub use toplevel::{Targets, TopLevelProject};

use super::{GlobalOpts, ProjectOpts};

#[derive(Debug, clap::Args)]
pub struct ComposeArgs {
    #[command(flatten)]
    pub project: ProjectOpts,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Create and start containers; attached, stream their logs.
    Up(up::UpFlags),
    /// Stop and remove containers and networks (and volumes, images).
    Down(down::DownFlags),
    /// Create containers without starting them (`up --no-start`).
    Create(CreateFlags),
    /// List containers.
    Ps(ps::PsFlags),
    /// View output from containers.
    Logs(logs::LogsFlags),
    /// Stop services.
    Stop(stop::StopFlags),
    /// Start services.
    Start(start::StartFlags),
    /// Restart service containers.
    Restart(restart::RestartFlags),
    /// Force stop service containers.
    Kill(kill::KillFlags),
    /// Removes stopped service containers.
    Rm(rm::RmFlags),
    /// Display the running processes.
    Top(top::TopFlags),
    /// Pause services.
    Pause(pause::PauseFlags),
    /// Unpause services.
    Unpause(pause::PauseFlags),
    /// List images used by the created containers.
    Images(images::ImagesFlags),
    /// Pull service images.
    Pull(pull::PullFlags),
    /// Build or rebuild services.
    Build(build::BuildFlags),
    /// Parse, resolve and render the compose file in canonical format.
    Config(super::config::ConfigArgs),
}

/// `create`'s flags: `up --no-start`'s.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CreateFlags {
    /// Build images before creating containers.
    #[arg(long, conflicts_with = "no_build")]
    pub build: bool,
    /// Don't build an image, even if it's missing.
    #[arg(long)]
    pub no_build: bool,
    /// Recreate containers even if their configuration and image have
    /// not changed.
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// Keep existing containers even if their configuration changed.
    #[arg(long)]
    pub no_recreate: bool,
    /// Pull images: `always`, `missing` or `never`.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub pull: Option<up::Pull>,
    /// Remove containers for services not defined in the Compose file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Scale SERVICE to NUM replicas (repeatable).
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub fn run(args: ComposeArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let p = &args.project;
    match args.verb {
        Verb::Up(flags) => up::run(p, &flags, global),
        Verb::Down(flags) => down::run(p, &flags, global),
        Verb::Create(c) => {
            let flags = up::UpFlags {
                no_start: true,
                build: c.build,
                no_build: c.no_build,
                force_recreate: c.force_recreate,
                no_recreate: c.no_recreate,
                pull: c.pull,
                remove_orphans: c.remove_orphans,
                scale: c.scale,
                services: c.services,
                ..up::UpFlags::default()
            };
            up::run(p, &flags, global)
        }
        Verb::Ps(flags) => ps::run(p, &flags, global),
        Verb::Logs(flags) => logs::run(p, &flags, global),
        Verb::Stop(flags) => stop::run(p, &flags, global),
        Verb::Start(flags) => start::run(p, &flags, global),
        Verb::Restart(flags) => restart::run(p, &flags, global),
        Verb::Kill(flags) => kill::run(p, &flags, global),
        Verb::Rm(flags) => rm::run(p, &flags, global),
        Verb::Top(flags) => top::run(p, &flags, global),
        Verb::Pause(flags) => pause::run(p, &flags, global, true),
        Verb::Unpause(flags) => pause::run(p, &flags, global, false),
        Verb::Images(flags) => images::run(p, &flags, global),
        Verb::Pull(flags) => pull::run(p, &flags, global),
        Verb::Build(flags) => build::run(p, &flags, global),
        Verb::Config(mut config) => {
            config.project = merged(p, &config.project);
            super::config::run(config)
        }
    }
}

/// `compose -f a.yml config`: the flags before the verb, unless the verb
/// was given its own.
fn merged(before: &ProjectOpts, after: &ProjectOpts) -> ProjectOpts {
    ProjectOpts {
        files: pick(&after.files, &before.files),
        project_name: after
            .project_name
            .clone()
            .or_else(|| before.project_name.clone()),
        project_directory: after
            .project_directory
            .clone()
            .or_else(|| before.project_directory.clone()),
        env_files: pick(&after.env_files, &before.env_files),
        profiles: pick(&after.profiles, &before.profiles),
    }
}

fn pick<T: Clone>(first: &[T], second: &[T]) -> Vec<T> {
    if first.is_empty() {
        second.to_vec()
    } else {
        first.to_vec()
    }
}
