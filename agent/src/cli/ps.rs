//! `berth ps [-a] [-q]`: containers found in the state dir, checked against
//! the live processes. With `-p NAME`, `--file` or `--project-directory`
//! it is `compose ps` of that project (see `compose::toplevel`).

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use berth_image::Store;
use berth_runtime::{ContainerInfo, HealthStatus, Rootfs};
use clap::Args;

use super::GlobalOpts;
use super::compose::TopLevelProject;
use super::compose::ps::PsFlags;
use crate::containers;

#[derive(Debug, Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub project: TopLevelProject,
    /// Show all containers (by default only running ones).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only print ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not truncate ids and commands.
    #[arg(long)]
    pub no_trunc: bool,
}

pub fn run(args: PsArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    if args.project.given() {
        let cp = args.project.project(global)?;
        let flags = PsFlags {
            all: args.all,
            quiet: args.quiet,
            no_trunc: args.no_trunc,
            format: "table".to_owned(),
            orphans: true,
            ..PsFlags::default()
        };
        return super::compose::ps::print(&cp, &flags);
    }
    let rt = super::run::runtime(global);
    let list = rt.list(args.all);
    if args.quiet {
        for c in &list {
            println!("{}", short(&c.config.id, args.no_trunc));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut images = ImageNames::new(global);
    let net = berth_net::Net::open(&global.root);
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|c| {
            let mut cmd = format!("\"{}\"", c.config.process.args.join(" "));
            if !args.no_trunc && cmd.chars().count() > 22 {
                cmd = format!("{}…\"", cmd.chars().take(20).collect::<String>());
            }
            [
                short(&c.config.id, args.no_trunc),
                images.column(c, args.no_trunc),
                cmd,
                ago(&c.state.created_at),
                if c.is_running() && rt.is_paused(&c.config.id) {
                    format!("{} (Paused)", status_text(c))
                } else {
                    status_text(c)
                },
                ports_text(&net, c),
                c.config.name.clone(),
            ]
        })
        .collect();
    let header = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}   ", w = *w));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    Ok(ExitCode::SUCCESS)
}

/// The PORTS column: a running container's published ports, Docker's
/// way (`0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp`).
pub(crate) fn ports_text(net: &berth_net::Net, c: &ContainerInfo) -> String {
    if c.observed.status != "running" {
        return String::new();
    }
    net.endpoint(&c.config.id)
        .ok()
        .flatten()
        .map(|ep| display_ports(&ep.ports))
        .unwrap_or_default()
}

/// Docker's grouping: consecutive ports (host and container both one
/// more, same address and protocol) as one range,
/// `0.0.0.0:8000-8002->80-82/tcp`.
pub(crate) fn display_ports(ports: &[berth_net::PublishedPort]) -> String {
    let mut sorted = ports.to_vec();
    sorted.sort_by_key(|p| (p.protocol, p.host_ip, p.container_port, p.host_port));
    let mut groups: Vec<(berth_net::PublishedPort, berth_net::PublishedPort)> = Vec::new();
    for p in sorted {
        match groups.last_mut() {
            Some((_, last))
                if last.protocol == p.protocol
                    && last.host_ip == p.host_ip
                    && last.container_port.checked_add(1) == Some(p.container_port)
                    && last.host_port.checked_add(1) == Some(p.host_port) =>
            {
                *last = p;
            }
            _ => groups.push((p, p)),
        }
    }
    groups
        .iter()
        .map(|(first, last)| {
            if first == last {
                first.to_string()
            } else {
                format!(
                    "{}:{}-{}->{}-{}/{}",
                    first.host_ip,
                    first.host_port,
                    last.host_port,
                    first.container_port,
                    last.container_port,
                    first.protocol.as_str()
                )
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The IMAGE column, as Docker fills it: the reference the container was
/// created with while it still names the same image, else the image ID
/// (the tag moved, or the image was untagged with `rmi -f`).
struct ImageNames {
    store: Option<Store>,
    resolved: HashMap<String, Option<String>>,
}

impl ImageNames {
    fn new(global: &GlobalOpts) -> Self {
        // Opened only when a container names an image, and an unreadable
        // store just means IDs are shown.
        let has_images = global.root.join("content").is_dir();
        ImageNames {
            store: has_images.then(|| Store::open(&global.root).ok()).flatten(),
            resolved: HashMap::new(),
        }
    }

    fn column(&mut self, c: &ContainerInfo, full: bool) -> String {
        let Some((name, id)) = containers::image_of(&c.config) else {
            return match &c.config.rootfs {
                Rootfs::Dir(dir) => dir.display().to_string(),
                Rootfs::Layers(_) => "-".to_owned(),
            };
        };
        let store = &self.store;
        let now = self.resolved.entry(name.to_owned()).or_insert_with(|| {
            store
                .as_ref()
                .and_then(|s| s.image(name).ok())
                .map(|i| i.id.to_string())
        });
        if now.as_deref() == Some(id) {
            name.to_owned()
        } else if full {
            id.to_owned()
        } else {
            short(id.strip_prefix("sha256:").unwrap_or(id), false)
        }
    }
}

fn short(id: &str, full: bool) -> String {
    if full {
        id.to_owned()
    } else {
        id.chars().take(12).collect()
    }
}

/// `Up 5 seconds (healthy)`, `Restarting (1) 2 seconds ago`, `Exited (0)
/// 3 minutes ago`, `Created`, ...
pub fn status_text(c: &ContainerInfo) -> String {
    match c.observed.status.as_str() {
        "running" => {
            let up = format!("Up {}", since(c.state.started_at.as_deref()));
            match &c.state.health {
                Some(h) if h.status == HealthStatus::Starting => format!("{up} (health: starting)"),
                Some(h) => format!("{up} ({})", h.status.as_str()),
                None => up,
            }
        }
        "restarting" => format!(
            "Restarting ({}) {}",
            c.state.exit_code.unwrap_or(0),
            ago(c
                .state
                .finished_at
                .as_deref()
                .unwrap_or(&c.state.created_at))
        ),
        "exited" => format!(
            "Exited ({}) {}",
            c.state.exit_code.map_or("?".to_owned(), |x| x.to_string()),
            ago(c
                .state
                .finished_at
                .as_deref()
                .unwrap_or(&c.state.created_at))
        ),
        "created" => "Created".to_owned(),
        "creating" => "Creating".to_owned(),
        "unknown" => "Unknown (shim died, container running)".to_owned(),
        "dead" => "Dead (shim died)".to_owned(),
        other => other.to_owned(),
    }
}

fn elapsed(t: &str) -> Option<Duration> {
    let t = humantime::parse_rfc3339(t).ok()?;
    SystemTime::now().duration_since(t).ok()
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".to_owned(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".to_owned(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

fn since(t: Option<&str>) -> String {
    t.and_then(elapsed).map(human).unwrap_or_default()
}

fn ago(t: &str) -> String {
    elapsed(t)
        .map(|d| format!("{} ago", human(d)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_net::{Proto, PublishedPort};

    fn p(ip: &str, host: u16, container: u16, protocol: Proto) -> PublishedPort {
        PublishedPort {
            host_ip: ip.parse().unwrap(),
            host_port: host,
            container_port: container,
            protocol,
        }
    }

    #[test]
    fn consecutive_ports_are_one_range_like_docker() {
        let ports = [
            p("0.0.0.0", 8001, 81, Proto::Tcp),
            p("0.0.0.0", 8000, 80, Proto::Tcp),
            p("0.0.0.0", 8002, 82, Proto::Tcp),
            p("127.0.0.1", 5353, 53, Proto::Udp),
            p("0.0.0.0", 9000, 90, Proto::Tcp),
        ];
        assert_eq!(
            display_ports(&ports),
            "0.0.0.0:8000-8002->80-82/tcp, 0.0.0.0:9000->90/tcp, 127.0.0.1:5353->53/udp"
        );
        assert_eq!(display_ports(&[]), "");
    }
}
