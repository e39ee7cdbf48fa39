//! `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: a container's published
//! ports, in `docker port`'s form (`80/tcp -> 0.0.0.0:8080`).

use std::process::ExitCode;

use anyhow::{Context, bail};
use berth_net::PublishedPort;

use super::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct PortArgs {
    container: String,
    /// Only this container port (`80` or `80/udp`).
    private_port: Option<String>,
}

pub fn run(args: &PortArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let rt = super::run::runtime(global);
    let info = rt
        .inspect(&args.container)
        .with_context(|| format!("no such container: {}", args.container))?;
    let ep = berth_net::Net::open(&global.root).endpoint(&info.config.id)?;
    // Docker lists ports only while they are published, i.e. while the
    // container runs.
    let ports: Vec<PublishedPort> = match ep {
        Some(ep) if ep.running => ep.ports,
        _ => Vec::new(),
    };
    let lines = select(&ports, args.private_port.as_deref())?;
    if lines.is_empty()
        && let Some(p) = &args.private_port
    {
        bail!("no public port '{p}' published for {}", args.container);
    }
    for l in lines {
        println!("{l}");
    }
    Ok(ExitCode::SUCCESS)
}

fn select(ports: &[PublishedPort], private: Option<&str>) -> anyhow::Result<Vec<String>> {
    let wanted = match private {
        None => None,
        Some(p) => {
            let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            let num: u16 = num
                .parse()
                .with_context(|| format!("invalid port {p:?}: expected PORT[/PROTO]"))?;
            Some((num, berth_net::Proto::parse(proto)?))
        }
    };
    let mut sorted = ports.to_vec();
    sorted.sort_by_key(|p| (p.container_port, p.protocol, p.host_ip, p.host_port));
    Ok(sorted
        .iter()
        .filter(|p| wanted.is_none_or(|(n, proto)| p.container_port == n && p.protocol == proto))
        .map(|p| match wanted {
            Some(_) => format!("{}:{}", p.host_ip, p.host_port),
            None => format!(
                "{}/{} -> {}:{}",
                p.container_port,
                p.protocol.as_str(),
                p.host_ip,
                p.host_port
            ),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_net::Proto;

    #[test]
    fn lists_like_docker_port() {
        let ports = [
            PublishedPort {
                host_ip: "0.0.0.0".parse().unwrap(),
                host_port: 8080,
                container_port: 80,
                protocol: Proto::Tcp,
            },
            PublishedPort {
                host_ip: "127.0.0.1".parse().unwrap(),
                host_port: 5353,
                container_port: 53,
                protocol: Proto::Udp,
            },
        ];
        assert_eq!(
            select(&ports, None).unwrap(),
            ["53/udp -> 127.0.0.1:5353", "80/tcp -> 0.0.0.0:8080"]
        );
        assert_eq!(select(&ports, Some("80")).unwrap(), ["0.0.0.0:8080"]);
        assert_eq!(select(&ports, Some("53/udp")).unwrap(), ["127.0.0.1:5353"]);
        assert!(select(&ports, Some("53")).unwrap().is_empty());
        assert!(select(&ports, Some("x")).is_err());
    }
}
