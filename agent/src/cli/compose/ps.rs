//! `ps`: the project's containers as `docker compose ps` lists them:
//! running ones (all with `-a` or `--status`), sorted by name, in its
//! columns (NAME IMAGE COMMAND SERVICE CREATED STATUS PORTS, padded like
//! Docker's tables), as IDs (`-q`), service names (`--services`) or one
//! JSON object per line (`--format json`, Compose's keys).

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use berth_reconcilers::ContainerRuntime;
use berth_reconcilers::observed::Health;
use serde::Serialize;

use super::project::{ComposeProject, Files, ProjectContainer};
use super::table::{ellipsis, quote, render};
use crate::cli::images::human_since;
use crate::cli::ps::status_text;
use crate::cli::{GlobalOpts, ProjectOpts};
use crate::containers;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct PsFlags {
    /// Show all containers, stopped ones too (by default only running
    /// ones).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display services.
    #[arg(long)]
    pub services: bool,
    /// `table` (the default) or `json` (one object per line).
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    pub format: String,
    /// Filter by status: paused, restarting, removing, running, dead,
    /// created, exited (repeatable).
    #[arg(long, value_name = "STATUS")]
    pub status: Vec<String>,
    /// Filter by a property: `status=STATUS`.
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Option<String>,
    /// Include containers of services the file no longer declares.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub orphans: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(value_name = "SERVICE")]
    pub services_filter: Vec<String>,
}

pub fn run(opts: &ProjectOpts, flags: &PsFlags, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let Some(cp) = ComposeProject::open(opts, global, Files::Optional)? else {
        return Ok(ExitCode::FAILURE);
    };
    print(&cp, flags)
}

/// Lists `cp`'s containers per `flags` (also `berth ps -p NAME`).
pub fn print(cp: &ComposeProject, flags: &PsFlags) -> anyhow::Result<ExitCode> {
    cp.check_services(&flags.services_filter)?;
    let mut statuses = flags.status.clone();
    if let Some(f) = &flags.filter {
        match f.split_once('=') {
            Some(("status", v)) => statuses.push(v.to_owned()),
            Some((key, _)) => bail!("unknown filter {key}"),
            None => bail!("arguments to --filter should be in form KEY=VAL"),
        }
    }
    let json = match flags.format.as_str() {
        "table" | "" => false,
        "json" => true,
        other => bail!(
            "unsupported --format {other:?}: berth prints `table` or `json` (Go templates are not supported)"
        ),
    };
    let all = flags.all || !statuses.is_empty();
    let health = health_by_id(cp);
    let declared = |c: &ProjectContainer| {
        flags.orphans || !cp.declared || cp.project.services.contains_key(&c.service)
    };
    let rows: Vec<Row> = cp
        .containers(&flags.services_filter, flags.all)
        .iter()
        .filter(|c| declared(c))
        .map(|c| Row::new(c, cp, health.get(c.id()).copied().unwrap_or_default()))
        .filter(|r| all || matches!(r.state.as_str(), "running" | "paused" | "restarting"))
        .filter(|r| statuses.is_empty() || statuses.contains(&r.state))
        .collect();
    let mut out = std::io::stdout().lock();
    if flags.quiet {
        for r in &rows {
            writeln!(out, "{}", r.id).context("cannot write to stdout")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if flags.services {
        let mut seen: Vec<&str> = Vec::new();
        for r in &rows {
            if !seen.contains(&r.service.as_str()) {
                seen.push(&r.service);
            }
        }
        for s in seen {
            writeln!(out, "{s}").context("cannot write to stdout")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let trunc = !flags.no_trunc;
    if json {
        for r in &rows {
            let line = serde_json::to_string(&r.json(trunc))?;
            writeln!(out, "{line}").context("cannot write to stdout")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![
        [
            "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for r in &rows {
        table.push(vec![
            r.name.clone(),
            r.image.clone(),
            r.command(trunc),
            r.service.clone(),
            r.running_for.clone(),
            r.status.clone(),
            String::new(),
        ]);
    }
    write!(out, "{}", render(&table, 20, 3)).context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Health as the engine reports it, by container id.
fn health_by_id(cp: &ComposeProject) -> HashMap<String, Health> {
    cp.engine
        .containers
        .list(cp.name())
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.id, c.health))
        .collect()
}

/// One container, with the values Compose shows.
struct Row {
    id: String,
    name: String,
    image: String,
    command: String,
    service: String,
    project: String,
    created: SystemTime,
    running_for: String,
    state: String,
    status: String,
    health: String,
    exit_code: i32,
    labels: Vec<(String, String)>,
    networks: String,
}

impl Row {
    fn new(c: &ProjectContainer, cp: &ComposeProject, health: Health) -> Row {
        let info = &c.info;
        let created =
            humantime::parse_rfc3339_weak(&info.state.created_at).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut state = state_of(c);
        let paused = state == "running" && cp.runtime.is_paused(c.id());
        if paused {
            state = "paused".to_owned();
        }
        let health = match health {
            Health::None => "",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        };
        let mut status = status_text(info);
        if paused {
            status.push_str(" (Paused)");
        } else if state == "running" && !health.is_empty() {
            status = match health {
                "starting" => format!("{status} (health: starting)"),
                h => format!("{status} ({h})"),
            };
        }
        Row {
            id: c.id().to_owned(),
            name: c.name().to_owned(),
            image: containers::image_of(&info.config)
                .map(|(name, _)| name.to_owned())
                .unwrap_or_default(),
            command: info.config.process.args.join(" "),
            service: c.service.clone(),
            project: cp.name().to_owned(),
            created,
            running_for: human_since(SystemTime::now(), created),
            state,
            status,
            health: health.to_owned(),
            exit_code: info.state.exit_code.unwrap_or(0),
            labels: info
                .config
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            networks: info
                .config
                .annotations
                .get(crate::engine::NETWORKS_ANNOTATION)
                .cloned()
                .unwrap_or_default(),
        }
    }

    fn command(&self, trunc: bool) -> String {
        if trunc {
            quote(&ellipsis(&self.command, 20))
        } else {
            quote(&self.command)
        }
    }

    fn json(&self, trunc: bool) -> Json {
        Json {
            command: self.command(trunc),
            created_at: go_time(self.created),
            exit_code: self.exit_code,
            health: self.health.clone(),
            id: if trunc {
                self.id.chars().take(12).collect()
            } else {
                self.id.clone()
            },
            image: self.image.clone(),
            labels: self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            local_volumes: "0".into(),
            mounts: String::new(),
            name: self.name.clone(),
            names: self.name.clone(),
            networks: self.networks.clone(),
            ports: String::new(),
            project: self.project.clone(),
            publishers: Vec::new(),
            running_for: self.running_for.clone(),
            service: self.service.clone(),
            size: "0B".into(),
            state: self.state.clone(),
            status: self.status.clone(),
        }
    }
}

/// `docker compose ps --format json`'s keys.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Json {
    command: String,
    created_at: String,
    exit_code: i32,
    health: String,
    #[serde(rename = "ID")]
    id: String,
    image: String,
    labels: String,
    local_volumes: String,
    mounts: String,
    name: String,
    names: String,
    networks: String,
    ports: String,
    project: String,
    publishers: Vec<serde_json::Value>,
    running_for: String,
    service: String,
    size: String,
    state: String,
    status: String,
}

/// Docker's State: created, running, paused, restarting, removing,
/// exited, dead.
fn state_of(c: &ProjectContainer) -> String {
    match c.info.observed.status.as_str() {
        "creating" | "created" => "created",
        "running" | "unknown" => "running",
        "exited" => "exited",
        _ => "dead",
    }
    .to_owned()
}

/// Go's `time.Time.String()` for a whole second in local time:
/// `2026-12-04 18:00:00 +0000 UTC`.
fn go_time(t: SystemTime) -> String {
    let local: chrono::DateTime<chrono::Local> = t.into();
    let offset = local.format("%z").to_string();
    let zone = if offset == "+0000" {
        "UTC".to_owned()
    } else {
        offset.clone()
    };
    format!("{} {offset} {zone}", local.format("%Y-%m-%d %H:%M:%S"))
}
