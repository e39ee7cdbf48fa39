//! `berth network create|ls|inspect|rm|prune|connect|disconnect`: Docker's
//! standalone network verbs over [`berth_net::Net`]. A network made here
//! belongs to no Compose project (no `com.docker.compose.project` label),
//! so `down` and the agent's sweep leave it alone, and a project can use
//! it as an `external: true` network.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use berth_net::ipam::IpamRequest;
use berth_net::{Endpoint, JoinRequest, Net, NetworkRequest, NetworkState};
use clap::Subcommand;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct NetworkArgs {
    #[command(subcommand)]
    command: NetworkCommand,
}

#[derive(Debug, Subcommand)]
enum NetworkCommand {
    /// Create a bridge network (prints its ID).
    Create(CreateArgs),
    /// List networks.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Show networks as JSON, with their containers.
    Inspect(InspectArgs),
    /// Remove networks (refused while a running container uses one).
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove every network no container is attached to.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Driver: only `bridge`.
    #[arg(short = 'd', long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR form (default: the next free one of Docker's pools).
    #[arg(long)]
    subnet: Vec<String>,
    /// Gateway address (default: the subnet's first address).
    #[arg(long)]
    gateway: Vec<String>,
    /// Allocate container addresses from this sub-range.
    #[arg(long)]
    ip_range: Vec<String>,
    /// No route out: containers only reach each other.
    #[arg(long)]
    internal: bool,
    /// Driver options (`com.docker.network.bridge.name=br0`, `...driver.mtu=1400`).
    #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
    opt: Vec<String>,
    #[arg(long = "label", value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// IPv6 too: on an IPv6 `--subnet`, else a random unique local /64.
    #[arg(long)]
    ipv6: bool,
    /// Accepted for Docker compatibility (every berth network is attachable).
    #[arg(long)]
    attachable: bool,
    name: String,
}

#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only IDs.
    #[arg(short, long)]
    quiet: bool,
    #[arg(long)]
    no_trunc: bool,
    /// `name=X`, `id=X`, `driver=X`, `label=K` or `label=K=V`.
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    #[arg(required = true)]
    networks: Vec<String>,
    /// Do not fail when a network does not exist.
    #[arg(short, long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Do not ask (berth never asks).
    #[arg(short, long)]
    force: bool,
    /// `label=K`, `label=K=V`, `label!=K...`.
    #[arg(long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Another name for the container on this network.
    #[arg(long = "alias")]
    alias: Vec<String>,
    /// Its IPv4 address on this network.
    #[arg(long)]
    ip: Option<String>,
    /// Its IPv6 address on this network (one with IPv6).
    #[arg(long)]
    ip6: Option<String>,
    network: String,
    container: String,
}

#[derive(Debug, clap::Args)]
pub struct DisconnectArgs {
    /// Accepted for Docker compatibility.
    #[arg(short, long)]
    force: bool,
    network: String,
    container: String,
}

pub fn run(args: NetworkArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let rt = super::run::runtime(global);
    let net = crate::engine::open_net(&global.root, rt.shim_exe());
    match args.command {
        NetworkCommand::Create(a) => create(&net, a),
        NetworkCommand::Ls(a) => ls(&net, &a),
        NetworkCommand::Inspect(a) => inspect(&net, &a),
        NetworkCommand::Rm(a) => rm(&net, &rt, &a),
        NetworkCommand::Prune(a) => prune(&net, &rt, &a),
        NetworkCommand::Connect(a) => connect(&net, &rt, &a),
        NetworkCommand::Disconnect(a) => disconnect(&net, &rt, &a),
    }
}

fn key_values(items: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            None if !kv.is_empty() && what == "label" => Ok((kv.clone(), String::new())),
            _ => bail!("invalid {what} {kv:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// `--subnet`, `--gateway`, `--ip-range` paired by position, as Docker
/// pairs them (one of each per subnet).
fn ipam_requests(a: &CreateArgs) -> anyhow::Result<Vec<IpamRequest>> {
    if a.subnet.is_empty() && !(a.gateway.is_empty() && a.ip_range.is_empty()) {
        bail!("--gateway and --ip-range need a --subnet");
    }
    if a.gateway.len() > a.subnet.len() || a.ip_range.len() > a.subnet.len() {
        bail!("one --gateway and one --ip-range at most per --subnet");
    }
    Ok(a.subnet
        .iter()
        .enumerate()
        .map(|(i, s)| IpamRequest {
            subnet: Some(s.clone()),
            gateway: a.gateway.get(i).cloned(),
            ip_range: a.ip_range.get(i).cloned(),
        })
        .collect())
}

fn create(net: &Net, a: CreateArgs) -> anyhow::Result<ExitCode> {
    if a.name == "bridge" || a.name == "host" || a.name == "none" {
        bail!(
            "network name {:?} is reserved: it names a network mode of `run --network`",
            a.name
        );
    }
    let request = NetworkRequest {
        name: a.name.clone(),
        labels: key_values(&a.label, "label")?,
        driver: Some(a.driver.clone()),
        driver_opts: key_values(&a.opt, "option")?,
        internal: a.internal,
        enable_ipv6: a.ipv6,
        ipam: ipam_requests(&a)?,
    };
    let n = net.create_network(&request)?;
    println!("{}", n.id);
    Ok(ExitCode::SUCCESS)
}

/// One `--filter` of `ls`/`prune`.
fn matches(n: &NetworkState, filter: &str) -> anyhow::Result<bool> {
    let (key, value, negate) = match filter.split_once("!=") {
        Some((k, v)) => (k, v, true),
        None => {
            let (k, v) = filter
                .split_once('=')
                .with_context(|| format!("invalid filter {filter:?}: expected KEY=VALUE"))?;
            (k, v, false)
        }
    };
    let hit = match key {
        "name" => n.name.contains(value),
        "id" => n.id.starts_with(value),
        "driver" => n.driver == value,
        "scope" => value == "local",
        "type" => value == "custom" || (value == "builtin" && n.is_default_bridge()),
        "label" => match value.split_once('=') {
            Some((k, v)) => n.labels.get(k).is_some_and(|x| x == v),
            None => n.labels.contains_key(value),
        },
        other => bail!("invalid filter {other:?}: name, id, driver, scope, type and label are"),
    };
    Ok(hit != negate)
}

fn ls(net: &Net, a: &LsArgs) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    for n in net.networks()? {
        let mut keep = true;
        for f in &a.filter {
            keep &= matches(&n, f)?;
        }
        if keep {
            rows.push(n);
        }
    }
    let id = |n: &NetworkState| {
        if a.no_trunc {
            n.id.clone()
        } else {
            n.id.chars().take(12).collect()
        }
    };
    if a.quiet {
        for n in &rows {
            println!("{}", id(n));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<[String; 4]> = rows
        .iter()
        .map(|n| [id(n), n.name.clone(), n.driver.clone(), "local".to_owned()])
        .collect();
    print!(
        "{}",
        render_table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &table)
    );
    Ok(ExitCode::SUCCESS)
}

/// Docker's table layout: columns padded to the widest cell, three spaces
/// apart, no trailing blanks.
fn render_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (cell, w) in cells.iter().zip(&widths) {
            s.push_str(&format!("{cell:<w$}   ", w = *w));
        }
        format!("{}\n", s.trim_end())
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// Docker's endpoint IDs are random; berth derives one that stays the
/// same for a container on a network.
fn endpoint_id(container_id: &str, network_id: &str) -> String {
    let d = Sha256::digest(format!("{container_id}/{network_id}"));
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// `docker network inspect`'s document for one network.
pub fn inspect_json(n: &NetworkState, endpoints: &[Endpoint]) -> Value {
    let mut containers = serde_json::Map::new();
    for ep in endpoints {
        for a in ep.attachments.iter().filter(|a| a.network == n.name) {
            containers.insert(
                ep.container_id.clone(),
                json!({
                    "Name": ep.container_name,
                    "EndpointID": endpoint_id(&ep.container_id, &n.id),
                    "MacAddress": a.mac,
                    "IPv4Address": format!("{}/{}", a.ip, n.subnet.prefix()),
                    "IPv6Address": match (a.ip6, n.subnet6) {
                        (Some(ip6), Some(s6)) => format!("{ip6}/{}", s6.prefix()),
                        _ => String::new(),
                    },
                }),
            );
        }
    }
    let mut config = serde_json::Map::new();
    config.insert("Subnet".into(), json!(n.subnet.to_string()));
    if let Some(r) = n.ip_range {
        config.insert("IPRange".into(), json!(r.to_string()));
    }
    config.insert("Gateway".into(), json!(n.gateway.to_string()));
    let mut configs = vec![Value::Object(config)];
    if let (Some(subnet6), Some(gateway6)) = (n.subnet6, n.gateway6) {
        configs.push(json!({"Subnet": subnet6.to_string(), "Gateway": gateway6.to_string()}));
    }
    let options = n.driver_opts.clone();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": true,
        "EnableIPv6": n.subnet6.is_some(),
        "IPAM": {"Driver": "default", "Options": {}, "Config": configs},
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": n.labels,
    })
}

/// A network by name, full ID or unique ID prefix, as Docker finds them.
fn find(net: &Net, name: &str) -> anyhow::Result<NetworkState> {
    let all = net.networks()?;
    if let Some(n) = all.iter().find(|n| n.name == name || n.id == name) {
        return Ok(n.clone());
    }
    let by_prefix: Vec<&NetworkState> = all.iter().filter(|n| n.id.starts_with(name)).collect();
    match by_prefix.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("network {name} not found"),
        _ => bail!("network ID prefix {name} is ambiguous: give more of it or the name"),
    }
}

fn inspect(net: &Net, a: &InspectArgs) -> anyhow::Result<ExitCode> {
    let endpoints = net.endpoints()?;
    let mut docs = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for name in &a.networks {
        match find(net, name) {
            Ok(n) => docs.push(inspect_json(&n, &endpoints)),
            Err(e) => {
                eprintln!("berth: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&Value::Array(docs))?);
    Ok(code)
}

fn running_check(rt: &berth_runtime::Runtime) -> impl Fn(&str) -> bool + '_ {
    |id: &str| {
        rt.inspect(id)
            .map(|i| i.observed.container_alive && i.observed.status != "created")
            .unwrap_or(false)
    }
}

fn rm(net: &Net, rt: &berth_runtime::Runtime, a: &RmArgs) -> anyhow::Result<ExitCode> {
    let running = running_check(rt);
    let mut code = ExitCode::SUCCESS;
    for name in &a.networks {
        let result = find(net, name).and_then(|n| {
            if n.is_default_bridge() {
                bail!("{} is a pre-defined network and cannot be removed", n.name);
            }
            net.remove_network(&n.name, &running)
                .with_context(|| format!("error while removing network {name}"))
        });
        match result {
            Ok(()) => println!("{name}"),
            Err(_) if a.force && find(net, name).is_err() => {}
            Err(e) => {
                eprintln!("berth: {e:#}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

fn prune(net: &Net, rt: &berth_runtime::Runtime, a: &PruneArgs) -> anyhow::Result<ExitCode> {
    let endpoints = net.endpoints()?;
    let running = running_check(rt);
    let mut removed = Vec::new();
    for n in net.networks()? {
        let mut keep = false;
        for f in &a.filter {
            keep |= !matches(&n, f)?;
        }
        let used = endpoints
            .iter()
            .any(|e| e.attachments.iter().any(|x| x.network == n.name));
        if keep || used || n.is_default_bridge() {
            continue;
        }
        net.remove_network(&n.name, &running)?;
        removed.push(n.name);
    }
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in &removed {
            println!("{n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn container_id(rt: &berth_runtime::Runtime, name: &str) -> anyhow::Result<(String, String)> {
    let info = rt
        .inspect(name)
        .with_context(|| format!("no such container: {name}"))?;
    Ok((info.config.id, info.config.name))
}

fn connect(net: &Net, rt: &berth_runtime::Runtime, a: &ConnectArgs) -> anyhow::Result<ExitCode> {
    let (id, _) = container_id(rt, &a.container)?;
    let n = find(net, &a.network)?;
    if n.is_default_bridge() && !a.alias.is_empty() {
        bail!("network-scoped aliases are supported only for containers in user-defined networks");
    }
    net.connect(
        &id,
        &JoinRequest {
            network: n.name.clone(),
            aliases: a.alias.clone(),
            ipv4_address: a.ip.clone(),
            ipv6_address: a.ip6.clone(),
            ..JoinRequest::default()
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

fn disconnect(
    net: &Net,
    rt: &berth_runtime::Runtime,
    a: &DisconnectArgs,
) -> anyhow::Result<ExitCode> {
    let (id, _) = container_id(rt, &a.container)?;
    let n = find(net, &a.network)?;
    net.disconnect(&id, &n.name)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network() -> NetworkState {
        NetworkState {
            name: "mynet".into(),
            id: "ab".repeat(32),
            labels: BTreeMap::from([("team".to_owned(), "web".to_owned())]),
            driver: "bridge".into(),
            driver_opts: BTreeMap::new(),
            bridge: "br-abababababab".into(),
            subnet: "172.20.0.0/16".parse().unwrap(),
            gateway: "172.20.0.1".parse().unwrap(),
            ip_range: None,
            internal: false,
            mtu: None,
            masquerade: true,
            host_binding: None,
            icc: true,
            subnet6: None,
            gateway6: None,
            created: "2026-12-04T00:00:00Z".into(),
        }
    }

    #[test]
    fn filters_like_docker() {
        let n = network();
        assert!(matches(&n, "name=my").unwrap());
        assert!(!matches(&n, "name=other").unwrap());
        assert!(matches(&n, "label=team").unwrap());
        assert!(matches(&n, "label=team=web").unwrap());
        assert!(!matches(&n, "label=team=db").unwrap());
        assert!(matches(&n, "label!=team=db").unwrap());
        assert!(matches(&n, "id=abab").unwrap());
        assert!(matches(&n, "bogus=1").is_err());
    }

    #[test]
    fn inspect_lists_containers_with_their_addresses() {
        let mut n = network();
        n.subnet6 = Some("fd00:1::/64".parse().unwrap());
        n.gateway6 = Some("fd00:1::1".parse().unwrap());
        let ep = Endpoint {
            container_id: "c1".repeat(32),
            container_name: "web".into(),
            hostname: None,
            netns: "/x".into(),
            attachments: vec![berth_net::Attachment {
                network: "mynet".into(),
                ifname: "eth0".into(),
                host_veth: "vethc1".into(),
                ip: "172.20.0.2".parse().unwrap(),
                ip6: Some("fd00:1::2".parse().unwrap()),
                mac: "02:42:ac:14:00:02".into(),
                aliases: vec![],
                default_route: true,
            }],
            ports: vec![],
            port_requests: vec![],
            port_target: None,
            port_target6: None,
            running: true,
            links: BTreeMap::new(),
            standby: false,
        };
        let v = inspect_json(&n, &[ep]);
        assert_eq!(v["Name"], "mynet");
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "172.20.0.0/16");
        assert_eq!(v["IPAM"]["Config"][0]["Gateway"], "172.20.0.1");
        let c = &v["Containers"]["c1".repeat(32)];
        assert_eq!(c["Name"], "web");
        assert_eq!(c["IPv4Address"], "172.20.0.2/16");
        assert_eq!(c["IPv6Address"], "fd00:1::2/64");
        assert_eq!(v["EnableIPv6"], true);
        assert_eq!(v["IPAM"]["Config"][1]["Subnet"], "fd00:1::/64");
        assert_eq!(v["IPAM"]["Config"][1]["Gateway"], "fd00:1::1");
        assert_eq!(c["MacAddress"], "02:42:ac:14:00:02");
        assert_eq!(c["EndpointID"].as_str().unwrap().len(), 64);
        assert_eq!(v["Labels"]["team"], "web");
    }

    #[test]
    fn tables_pad_like_docker() {
        let t = render_table(
            ["NETWORK ID", "NAME"],
            &[["0123456789ab".to_owned(), "n".to_owned()]],
        );
        assert_eq!(t, "NETWORK ID     NAME\n0123456789ab   n\n");
    }
}
