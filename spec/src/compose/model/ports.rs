//! Published ports: [`ServicePort`] and the short syntax parser
//! [`parse_port_spec`], a port of docker/go-connections `nat.ParsePortSpec`
//! as compose-go uses it (one entry per port of a range, sorted the way
//! compose-go sorts them).

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::de::{self, Hinted, describe};

/// One port mapping in long syntax. `published` stays a string: it may be a
/// range (`"8000-8010"`) or empty (an ephemeral host port).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServicePort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "ingress")]
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    pub target: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

fn ingress() -> String {
    "ingress".into()
}

fn tcp() -> String {
    "tcp".into()
}

impl ServicePort {
    fn new(target: u32) -> Self {
        Self {
            name: None,
            mode: ingress(),
            host_ip: None,
            target,
            published: None,
            protocol: tcp(),
            app_protocol: None,
            extensions: IndexMap::new(),
        }
    }
}

/// `ports:` items: a number, a short-syntax string (which may expand to
/// several entries) or a long-syntax mapping.
pub(crate) fn de_ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServicePort>, D::Error> {
    let items = Option::<Vec<PortItem>>::deserialize(d)?.unwrap_or_default();
    Ok(items.into_iter().flat_map(|i| i.0).collect())
}

struct PortItem(Vec<ServicePort>);

impl<'de> Deserialize<'de> for PortItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::via(d, port_item).map(PortItem)
    }
}

fn port_item(v: &Value) -> Result<Vec<ServicePort>, Hinted> {
    match v {
        Value::Number(n) => parse_port_spec(&n.to_string()),
        Value::String(s) => parse_port_spec(s),
        Value::Object(map) => {
            let mut port = ServicePort::new(0);
            for (k, val) in map {
                match k.as_str() {
                    "name" => port.name = Some(de::parse_string(val)?),
                    "mode" => port.mode = de::parse_string(val)?,
                    "host_ip" => port.host_ip = Some(de::parse_string(val)?),
                    "target" => port.target = port_number(val)?,
                    "published" => {
                        port.published = match val {
                            Value::Null => None,
                            other => Some(de::parse_string(other)?),
                        }
                    }
                    "protocol" => port.protocol = de::parse_string(val)?.to_ascii_lowercase(),
                    "app_protocol" => port.app_protocol = Some(de::parse_string(val)?),
                    x if x.starts_with("x-") => {
                        port.extensions.insert(k.clone(), val.clone());
                    }
                    other => {
                        return Err(Hinted::new(format!(
                            "additional property \"{other}\" is not allowed"
                        ))
                        .hint("a port mapping has name, mode, host_ip, target, published, protocol and app_protocol"));
                    }
                }
            }
            Ok(vec![port])
        }
        other => Err(Hinted::new(format!("invalid port {}", describe(other))).hint(PORT_HINT)),
    }
}

const PORT_HINT: &str = "use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], like \"8080:80\" or \"127.0.0.1:53:53/udp\"";

fn port_number(v: &Value) -> Result<u32, Hinted> {
    let i = de::parse_i64(v).map_err(|_| {
        Hinted::new(format!("invalid port {}", describe(v)))
            .hint("a port is a number from 0 to 65535")
    })?;
    u16::try_from(i).map(u32::from).map_err(|_| {
        Hinted::new(format!("invalid port {i}")).hint("a port is a number from 0 to 65535")
    })
}

/// Expands one short-syntax port spec.
pub fn parse_port_spec(raw: &str) -> Result<Vec<ServicePort>, Hinted> {
    let spec_err =
        |msg: String| Hinted::new(format!("invalid port \"{raw}\": {msg}")).hint(PORT_HINT);
    let (ip, host_port, container) = split_parts(raw);
    let (proto, container) = split_proto_port(container);
    let mut ip = ip.to_string();
    if ip.starts_with('[') {
        // `[::1]` -> `::1`
        match ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) => ip = inner.to_string(),
            None => return Err(spec_err(format!("invalid IP address {ip}"))),
        }
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(spec_err(format!("invalid IP address {ip}")));
    }
    if container.is_empty() {
        return Err(spec_err("no container port specified".into()));
    }
    let (start, end) = parse_port_range(container)
        .map_err(|_| spec_err(format!("invalid container port {container}")))?;
    let (mut host_start, mut host_end) = (0u64, 0u64);
    if !host_port.is_empty() {
        (host_start, host_end) = parse_port_range(host_port)
            .map_err(|_| spec_err(format!("invalid host port {host_port}")))?;
    }
    // A host range may back a single container port (dynamic allocation);
    // otherwise both ranges must have the same length.
    if !host_port.is_empty() && end - start != host_end - host_start && end != start {
        return Err(spec_err(format!(
            "the container range {container} and host range {host_port} differ in length"
        )));
    }
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(
            spec_err(format!("invalid protocol {proto}")).hint("the protocol is tcp, udp or sctp")
        );
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let target = (start + i) as u32;
        let published = if host_port.is_empty() {
            None
        } else if start == end && host_start != host_end {
            Some(format!("{host_start}-{host_end}"))
        } else {
            Some((host_start + i).to_string())
        };
        let mut port = ServicePort::new(target);
        port.host_ip = (!ip.is_empty()).then(|| ip.clone());
        port.published = published;
        port.protocol = proto.clone();
        out.push(port);
    }
    // compose-go collects the ports in a map and sorts the keys as strings
    // ("10000/tcp" < "9999/tcp"); keep its order so output matches.
    out.sort_by_key(|p| format!("{}/{}", p.target, p.protocol));
    Ok(out)
}

/// `ip:host:container`, where the IP itself may contain colons (IPv6).
fn split_parts(raw: &str) -> (&str, &str, &str) {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    match n {
        1 => ("", "", parts[0]),
        2 => ("", parts[0], parts[1]),
        3 => (parts[0], parts[1], parts[2]),
        _ => {
            // Everything before the last two parts is the IP.
            let host_start = raw.len() - parts[n - 1].len() - parts[n - 2].len() - 1;
            (&raw[..host_start - 1], parts[n - 2], parts[n - 1])
        }
    }
}

fn split_proto_port(raw: &str) -> (&str, &str) {
    let mut parts = raw.splitn(3, '/');
    let port = parts.next().unwrap_or("");
    match parts.next() {
        Some(proto) if !proto.is_empty() && !port.is_empty() => (proto, port),
        _ => ("tcp", port),
    }
}

fn parse_port_range(s: &str) -> Result<(u64, u64), ()> {
    let one = |p: &str| p.parse::<u16>().map(u64::from).map_err(|_| ());
    match s.split_once('-') {
        None => one(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if b < a { Err(()) } else { Ok((a, b)) }
        }
    }
}
