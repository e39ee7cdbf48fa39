//! What berth's networking keeps on disk, under the state root:
//!
//! ```text
//! networks/.lock                     flock: every change holds it
//! networks/.nft-applied              boot id + the nft script last applied
//! networks/<name>/network.json       NetworkState (addressing, bridge, options)
//! networks/<name>/dns.json           the names the network's DNS answers
//! endpoints/<container-id>.json      Endpoint: a container's interfaces and ports
//! netns/<container-id>               its network namespace, bound in place
//! ```
//!
//! Addresses in use are the endpoints' addresses: there is no separate
//! allocation table to drift from them.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ipv4::Ipv4Net;
use crate::ipv6::Ipv6Net;
use crate::ports::{PortRequest, PublishedPort};

/// A bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkState {
    pub name: String,
    /// 64 hex digits, like Docker's network IDs.
    pub id: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub driver: String,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    /// `br-<id12>` unless `com.docker.network.bridge.name` says otherwise.
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    #[serde(default)]
    pub ip_range: Option<Ipv4Net>,
    /// No default route for its containers, no masquerade, no published
    /// ports, no traffic to or from other interfaces.
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// `com.docker.network.bridge.enable_ip_masquerade` (default true).
    #[serde(default = "yes")]
    pub masquerade: bool,
    /// `com.docker.network.bridge.host_binding_ipv4`: the address ports
    /// are published on when a port names none.
    #[serde(default)]
    pub host_binding: Option<Ipv4Addr>,
    /// `com.docker.network.bridge.enable_icc` (default true): false keeps
    /// its containers from talking to each other (the host, the outside
    /// and published ports still answer).
    #[serde(default = "yes")]
    pub icc: bool,
    /// `enable_ipv6`: the IPv6 subnet (from `ipam.config`, else a unique
    /// local /64) and the bridge's address on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<Ipv6Net>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    pub created: String,
}

impl NetworkState {
    /// Docker's default `bridge` network (see [`crate::DEFAULT_BRIDGE`]).
    pub fn is_default_bridge(&self) -> bool {
        self.driver_opts
            .get(crate::DEFAULT_BRIDGE)
            .is_some_and(|v| v == "true")
    }
}

fn yes() -> bool {
    true
}

/// One interface of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub network: String,
    /// `eth0`, `eth1`... inside the container.
    pub ifname: String,
    /// The host end of the veth, on the network's bridge.
    pub host_veth: String,
    pub ip: Ipv4Addr,
    /// On a network with IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    pub mac: String,
    /// DNS names on this network: the service name and `aliases`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Whether the default route goes through this network's gateway.
    #[serde(default)]
    pub default_route: bool,
}

/// A container's networking: its namespace, interfaces and ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub container_id: String,
    pub container_name: String,
    #[serde(default)]
    pub hostname: Option<String>,
    pub netns: PathBuf,
    pub attachments: Vec<Attachment>,
    /// The host ports the container had when it last ran (or was
    /// created): in the nftables table only while `running`, and chosen
    /// again from `port_requests` where taken meanwhile when it starts.
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
    /// What `ports:` asked for, one per entry of `ports`.
    #[serde(default)]
    pub port_requests: Vec<PortRequest>,
    /// The address published ports lead to (on the first network that is
    /// not internal); `None` when nothing is published.
    #[serde(default)]
    pub port_target: Option<Ipv4Addr>,
    /// Where IPv6 published ports lead (the same interface's IPv6
    /// address), when that network has IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_target6: Option<Ipv6Addr>,
    /// Set when the container was started, cleared when it was stopped
    /// (by berth): only running containers are in the DNS records and
    /// publish their ports, as with Docker. The shim clears it when the
    /// container exits for good while no berth runs (see the agent's
    /// `shim`).
    #[serde(default)]
    pub running: bool,
    /// `links`: alias → the name it stands for, resolved by the DNS
    /// server for this container's queries only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, String>,
    /// Out of service: a start-first replacement not yet promoted, or a
    /// container its replacement was promoted over. Its ports are not
    /// forwarded and its names are not in DNS, running or not.
    #[serde(default)]
    pub standby: bool,
}

/// Paths under the state root.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub fn networks(&self) -> PathBuf {
        self.root.join("networks")
    }
    pub fn network_dir(&self, name: &str) -> PathBuf {
        self.networks().join(name)
    }
    pub fn network_file(&self, name: &str) -> PathBuf {
        self.network_dir(name).join("network.json")
    }
    pub fn dns_file(&self, name: &str) -> PathBuf {
        self.network_dir(name).join("dns.json")
    }
    pub fn endpoints(&self) -> PathBuf {
        self.root.join("endpoints")
    }
    pub fn endpoint_file(&self, id: &str) -> PathBuf {
        self.endpoints().join(format!("{id}.json"))
    }
    /// The nftables script last applied, with the boot it was applied in.
    pub fn nft_cache(&self) -> PathBuf {
        self.networks().join(".nft-applied")
    }
    pub fn netns(&self, id: &str) -> PathBuf {
        self.root.join("netns").join(id)
    }
}

/// The exclusive lock every change to networks, endpoints and the nft
/// table holds, across processes (CLI, agent, a second CLI).
pub struct Lock(#[allow(dead_code)] nix::fcntl::Flock<File>);

impl Lock {
    pub fn acquire(paths: &Paths) -> Result<Lock> {
        let dir = paths.networks();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let path = dir.join(".lock");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        loop {
            match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive) {
                Ok(l) => return Ok(Lock(l)),
                Err((back, nix::errno::Errno::EINTR)) => f = back,
                Err((_, e)) => return Err(Error::io("lock", &path, e.into())),
            }
        }
    }
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| Error::Json {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Atomic: temp file + rename, so readers (the DNS server, `ps`) see the
/// old file or the new one.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into place", path, e))
}

/// Removes the temporary files of [`write_json`]s whose writer is gone
/// (killed between the write and the rename): `NAME.tmp.PID` with no
/// process PID. Best effort: what cannot be removed now is tried again
/// next time.
pub fn remove_orphaned_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(pid) = temp_writer(&path) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            tracing::debug!(path = %path.display(), "removing a write its process never finished");
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The pid in a [`write_json`] temporary file's name (`x.tmp.PID`).
fn temp_writer(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let (rest, pid) = name.rsplit_once('.')?;
    if !rest.ends_with(".tmp") {
        return None;
    }
    pid.parse().ok()
}

pub fn networks(paths: &Paths) -> Result<Vec<NetworkState>> {
    let dir = paths.networks();
    let entries = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", &dir, e)),
    };
    let mut out = Vec::new();
    for e in entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
    {
        if let Some(n) = read_json::<NetworkState>(&e.path().join("network.json"))? {
            out.push(n);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn endpoints(paths: &Paths) -> Result<Vec<Endpoint>> {
    let dir = paths.endpoints();
    let entries = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", &dir, e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            if let Some(ep) = read_json::<Endpoint>(&p)? {
                out.push(ep);
            }
        }
    }
    out.sort_by(|a, b| a.container_name.cmp(&b.container_name));
    Ok(out)
}

/// 64 random hex digits.
pub fn new_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    let mut f = File::open("/dev/urandom").map_err(|e| Error::io("open", "/dev/urandom", e))?;
    std::io::Read::read_exact(&mut f, &mut bytes)
        .map_err(|e| Error::io("read", "/dev/urandom", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Five random bytes (a unique local prefix's global ID).
pub fn random_bytes() -> Result<[u8; 5]> {
    let mut bytes = [0u8; 5];
    let mut f = File::open("/dev/urandom").map_err(|e| Error::io("open", "/dev/urandom", e))?;
    std::io::Read::read_exact(&mut f, &mut bytes)
        .map_err(|e| Error::io("read", "/dev/urandom", e))?;
    Ok(bytes)
}

/// Now, RFC 3339 in UTC (seconds), without a date crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_atomic_write() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: tmp.path().to_owned(),
        };
        let n = NetworkState {
            name: "p_default".into(),
            id: new_id().unwrap(),
            labels: BTreeMap::from([("a".into(), "b".into())]),
            driver: "bridge".into(),
            driver_opts: BTreeMap::new(),
            bridge: "br-123".into(),
            subnet: "172.18.0.0/16".parse().unwrap(),
            gateway: Ipv4Addr::new(172, 18, 0, 1),
            ip_range: None,
            internal: false,
            mtu: None,
            masquerade: true,
            host_binding: None,
            icc: true,
            subnet6: None,
            gateway6: None,
            created: now_rfc3339(),
        };
        write_json(&paths.network_file("p_default"), &n).unwrap();
        assert_eq!(networks(&paths).unwrap(), std::slice::from_ref(&n));
        assert_eq!(n.id.len(), 64);
        let text = std::fs::read_to_string(paths.network_file("p_default")).unwrap();
        assert!(text.contains("\"subnet\": \"172.18.0.0/16\""), "{text}");
        let _lock = Lock::acquire(&paths).unwrap();
    }

    #[test]
    fn dates_are_rfc3339() {
        let s = now_rfc3339();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'), "{s}");
    }
}

#[cfg(test)]
mod temp_tests {
    use super::*;

    #[test]
    fn only_temps_of_dead_writers_are_removed() {
        let dir = std::env::temp_dir().join(format!("berth-net-temps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // No process has pid 0x7fff_fff0 (above the kernel's pid_max).
        let dead = dir.join(format!("a.tmp.{}", 0x7fff_fff0u32));
        let alive = dir.join(format!("b.tmp.{}", std::process::id()));
        let record = dir.join("c.json");
        for f in [&dead, &alive, &record] {
            std::fs::write(f, b"{}").unwrap();
        }
        remove_orphaned_temps(&dir);
        assert!(!dead.exists());
        assert!(alive.exists());
        assert!(record.exists());
        assert_eq!(temp_writer(Path::new("x.json")), None);
        assert_eq!(temp_writer(Path::new("x.tmp.42")), Some(42));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
