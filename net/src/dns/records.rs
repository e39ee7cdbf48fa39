//! The records file (`dns.json` in a network's state dir): everything the
//! network's DNS server answers from, written by the networking code and
//! only read by the server.
//!
//! ```json
//! {
//!   "version": 1,
//!   "listen": ["10.89.0.1:53"],
//!   "domain": "berth.internal",
//!   "upstreams": ["10.255.255.53:53", "127.0.0.53:53"],
//!   "containers": {
//!     "3f1c…": { "names": ["shop-web-1", "web", "3f1c2a9b8e7d"], "ipv4": "10.89.0.2" },
//!     "9a0b…": { "names": ["shop-web-2", "web", "9a0b1c2d3e4f"], "ipv4": "10.89.0.3" }
//!   }
//! }
//! ```
//!
//! One entry per container on the network, keyed by whatever the caller
//! identifies containers by (berth uses the container id), so a container
//! is added and removed as a whole. A name shared by several containers
//! (a service with replicas, a shared alias) resolves to all of their
//! addresses. The first name of an entry is the container's own name: the
//! one reverse (PTR) lookups of its address answer.
//!
//! Writers replace the file atomically (temp file + rename) under
//! `dns.json.lock`, so the server, which re-reads it when its identity
//! changes, never sees half a file, and two writers never lose each
//! other's update ([`DnsRecords::update`]).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::{RECORDS_FILE, RECORDS_LOCK_FILE};

/// The records file's format version this berth writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The port a network's DNS server listens on unless told otherwise: the
/// one a container's `/etc/resolv.conf` cannot name a different one for.
pub const DEFAULT_PORT: u16 = 53;

/// Everything a network's DNS server answers from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsRecords {
    version: u32,
    /// Where the server listens, UDP and TCP: the network's gateway address
    /// on port 53. Read when the server starts; changing it needs a restart.
    listen: Vec<SocketAddr>,
    /// A suffix under which every name also resolves (`web.<domain>`), and
    /// under which unknown names are answered NXDOMAIN instead of being
    /// forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    /// Where names that are not the network's own are forwarded, in order.
    #[serde(default)]
    upstreams: Vec<SocketAddr>,
    #[serde(default)]
    containers: BTreeMap<String, ContainerRecord>,
}

/// One container's names and address on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecord {
    /// Lower-case, deduplicated, the container's own name first.
    pub names: Vec<String>,
    pub ipv4: Ipv4Addr,
    /// On a network with IPv6: answered to AAAA queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    /// The state dirs of the container's other networks: its queries to
    /// this network's server also resolve their names (see
    /// [`DnsRecords::set_other_networks`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_networks: Vec<PathBuf>,
    /// `links` of the container: alias → the name it stands for, answered
    /// for the container's own queries only (Docker's per-container link
    /// aliases on user-defined networks).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub links: BTreeMap<String, String>,
}

impl DnsRecords {
    /// Records for a new network: its server listens on `listen` and
    /// forwards other names to `upstreams` (see [`super::host_upstreams`]).
    pub fn new(listen: Vec<SocketAddr>, upstreams: Vec<SocketAddr>) -> Self {
        DnsRecords {
            version: FORMAT_VERSION,
            listen,
            domain: None,
            upstreams,
            containers: BTreeMap::new(),
        }
    }

    pub fn listen(&self) -> &[SocketAddr] {
        &self.listen
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    pub fn containers(&self) -> &BTreeMap<String, ContainerRecord> {
        &self.containers
    }

    /// Sets (or clears) the search domain; validated like a name.
    pub fn set_domain(&mut self, domain: Option<&str>) -> Result<()> {
        self.domain = domain.map(normalize_name).transpose()?;
        Ok(())
    }

    pub fn set_upstreams(&mut self, upstreams: Vec<SocketAddr>) {
        self.upstreams = upstreams;
    }

    /// Adds a container, or replaces its entry: `names` (its own name
    /// first, then service name, aliases, hostname, short id...) resolve to
    /// `ipv4`. Names are case-insensitive: stored lower-case, duplicates
    /// dropped.
    pub fn set_container<I, S>(&mut self, id: &str, names: I, ipv4: Ipv4Addr) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut normalized: Vec<String> = Vec::new();
        for name in names {
            let name = normalize_name(name.as_ref())?;
            if !normalized.contains(&name) {
                normalized.push(name);
            }
        }
        let (other_networks, links, ipv6) = self
            .containers
            .remove(id)
            .map(|c| (c.other_networks, c.links, c.ipv6))
            .unwrap_or_default();
        self.containers.insert(
            id.to_owned(),
            ContainerRecord {
                names: normalized,
                ipv4,
                ipv6,
                other_networks,
                links,
            },
        );
        Ok(())
    }

    /// The state dirs of the other networks container `id` is attached
    /// to; false when it has no entry here. A container resolves the names
    /// of every network it shares with others (as in Docker), but its
    /// resolv.conf can only usefully name one server: glibc asks the next
    /// nameserver on a timeout, not on NXDOMAIN. So the server it asks (the
    /// one of its first network) answers, for queries from its address,
    /// the names of these networks too, read from their `dns.json`.
    pub fn set_other_networks(&mut self, id: &str, dirs: Vec<PathBuf>) -> bool {
        match self.containers.get_mut(id) {
            Some(c) => {
                c.other_networks = dirs;
                true
            }
            None => false,
        }
    }

    /// Sets (or clears) the IPv6 address of container `id`; false when it
    /// has no entry here.
    pub fn set_ipv6(&mut self, id: &str, ipv6: Option<Ipv6Addr>) -> bool {
        match self.containers.get_mut(id) {
            Some(c) => {
                c.ipv6 = ipv6;
                true
            }
            None => false,
        }
    }

    /// Sets the link aliases of container `id` (alias → name, any case);
    /// false when it has no entry here.
    pub fn set_links(&mut self, id: &str, links: BTreeMap<String, String>) -> Result<bool> {
        let mut normalized = BTreeMap::new();
        for (alias, name) in links {
            normalized.insert(normalize_name(&alias)?, normalize_name(&name)?);
        }
        match self.containers.get_mut(id) {
            Some(c) => {
                c.links = normalized;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Removes a container's entry; false when it had none.
    pub fn remove_container(&mut self, id: &str) -> bool {
        self.containers.remove(id).is_some()
    }

    /// Every address `name` resolves to (any case, no domain), lowest first.
    pub fn addresses(&self, name: &str) -> Vec<Ipv4Addr> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut found: Vec<Ipv4Addr> = self
            .containers
            .values()
            .filter(|c| c.names.contains(&name))
            .map(|c| c.ipv4)
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// Reads `<dir>/dns.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(RECORDS_FILE);
        let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        Self::from_slice(&bytes, &path)
    }

    pub(crate) fn from_slice(bytes: &[u8], path: &Path) -> Result<Self> {
        let mut records: DnsRecords =
            serde_json::from_slice(bytes).map_err(|source| Error::Json {
                path: path.to_owned(),
                source,
            })?;
        if records.version > FORMAT_VERSION {
            return Err(Error::NewerVersion {
                path: path.to_owned(),
                found: records.version,
                supported: FORMAT_VERSION,
            });
        }
        // A hand-edited file may have upper case; lookups compare lower case.
        for c in records.containers.values_mut() {
            for name in &mut c.names {
                name.make_ascii_lowercase();
            }
            c.links = std::mem::take(&mut c.links)
                .into_iter()
                .map(|(a, n)| (a.to_ascii_lowercase(), n.to_ascii_lowercase()))
                .collect();
        }
        if let Some(domain) = &mut records.domain {
            domain.make_ascii_lowercase();
        }
        Ok(records)
    }

    /// Writes `<dir>/dns.json` atomically: a temp file in the same dir,
    /// renamed over the old one. Not fsynced (like the runtime's
    /// `state.json`): after a power loss the networking code rewrites the
    /// records when it reconciles the network again.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(RECORDS_FILE);
        let tmp = temp_path(dir);
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        bytes.push(b'\n');
        let written = File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes))
            .map_err(|e| Error::io("write", &tmp, e));
        let renamed = written.and_then(|()| {
            std::fs::rename(&tmp, &path).map_err(|e| Error::io("replace", &path, e))
        });
        if renamed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        renamed
    }

    /// Loads, changes and saves `<dir>/dns.json` under its writers' lock,
    /// so concurrent updates (two `up`s adding containers to one network)
    /// are never lost. `f`'s error leaves the file as it was.
    pub fn update<R>(dir: &Path, f: impl FnOnce(&mut DnsRecords) -> Result<R>) -> Result<R> {
        let _lock = WritersLock::take(dir)?;
        let mut records = Self::load(dir)?;
        let result = f(&mut records)?;
        records.save(dir)?;
        Ok(result)
    }
}

/// The temp file a save writes first: unique per process and save, so two
/// writers (even without the lock) never write into the same temp file.
fn temp_path(dir: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{RECORDS_FILE}.{}.{n}.tmp", std::process::id()))
}

/// `dns.json.lock`, held exclusively for the length of an update.
struct WritersLock {
    _file: File,
}

impl WritersLock {
    fn take(dir: &Path) -> Result<Self> {
        let path = dir.join(RECORDS_LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        super::daemon::flock(file.as_raw_fd(), nix::fcntl::FlockArg::LockExclusive)
            .map_err(|e| Error::sys("lock dns.json.lock", e))?;
        // Closing the file releases the lock.
        Ok(WritersLock { _file: file })
    }
}

/// A name as the server compares it: lower case, no trailing dot, made of
/// DNS labels (1 to 63 of `[a-z0-9_-]`, 253 bytes in all). Underscores are
/// allowed because Compose's v1 names (`project_web_1`) have them.
pub(crate) fn normalize_name(name: &str) -> Result<String> {
    let invalid = |reason| Error::InvalidName {
        name: name.to_owned(),
        reason,
    };
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    if trimmed.len() > 253 {
        return Err(invalid("it is longer than 253 characters"));
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err(invalid(
                "it has an empty label (two dots in a row, or a leading dot)",
            ));
        }
        if label.len() > 63 {
            return Err(invalid(
                "a label (the text between dots) is longer than 63 characters",
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "only letters, digits, '-', '_' and '.' are allowed",
            ));
        }
    }
    Ok(trimmed.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn sample() -> DnsRecords {
        let mut r = DnsRecords::new(
            vec!["10.89.0.1:53".parse().unwrap()],
            vec!["192.0.2.53:53".parse().unwrap()],
        );
        r.set_container("c1", ["Shop-Web-1", "web", "WEB"], ip("10.89.0.3"))
            .unwrap();
        r.set_container("c2", ["shop-web-2", "web"], ip("10.89.0.2"))
            .unwrap();
        r
    }

    #[test]
    fn names_are_case_insensitive_and_deduplicated() {
        let r = sample();
        assert_eq!(r.containers()["c1"].names, ["shop-web-1", "web"]);
        assert_eq!(r.addresses("SHOP-WEB-1."), [ip("10.89.0.3")]);
        assert_eq!(r.addresses("Web"), [ip("10.89.0.2"), ip("10.89.0.3")]);
        assert!(r.addresses("db").is_empty());
    }

    #[test]
    fn a_container_is_replaced_and_removed_as_a_whole() {
        let mut r = sample();
        r.set_container("c1", ["shop-web-1"], ip("10.89.0.9"))
            .unwrap();
        assert_eq!(r.addresses("web"), [ip("10.89.0.2")]);
        assert_eq!(r.addresses("shop-web-1"), [ip("10.89.0.9")]);
        assert!(r.remove_container("c2"));
        assert!(!r.remove_container("c2"));
        assert!(r.addresses("web").is_empty());
    }

    #[test]
    fn other_networks_survive_a_names_update() {
        let mut r = sample();
        assert!(!r.set_other_networks("nope", vec![PathBuf::from("/n/b")]));
        assert!(r.set_other_networks("c1", vec![PathBuf::from("/n/b")]));
        r.set_container("c1", ["shop-web-1", "web", "www"], ip("10.89.0.3"))
            .unwrap();
        assert_eq!(r.containers()["c1"].other_networks, [PathBuf::from("/n/b")]);
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""otherNetworks":["/n/b"]"#), "{text}");
        assert_eq!(
            text.matches("otherNetworks").count(),
            1,
            "empty lists are left out"
        );
    }

    #[test]
    fn invalid_names_are_refused_with_the_reason() {
        let mut r = sample();
        for (name, reason) in [
            ("", "empty"),
            ("a..b", "empty label"),
            (".a", "empty label"),
            ("web server", "only letters"),
            ("wéb", "only letters"),
        ] {
            let err = r
                .set_container("c3", [name], ip("10.89.0.4"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(reason), "{name:?}: {err}");
        }
        let long_label = "a".repeat(64);
        assert!(
            r.set_container("c3", [&long_label], ip("10.89.0.4"))
                .is_err()
        );
        let long_name = vec!["a".repeat(60); 5].join(".");
        assert!(
            r.set_container("c3", [&long_name], ip("10.89.0.4"))
                .is_err()
        );
        assert!(!r.containers().contains_key("c3"), "nothing was half-added");
        r.set_container("c3", ["project_web_1", "db.internal."], ip("10.89.0.4"))
            .unwrap();
        assert_eq!(r.containers()["c3"].names, ["project_web_1", "db.internal"]);
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = sample();
        r.set_domain(Some("Berth.Internal")).unwrap();
        r.save(dir.path()).unwrap();
        assert_eq!(DnsRecords::load(dir.path()).unwrap(), r);
        assert_eq!(r.domain(), Some("berth.internal"));
        let files: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files, [RECORDS_FILE]);
        let text = std::fs::read_to_string(dir.path().join(RECORDS_FILE)).unwrap();
        assert!(
            text.contains("\"listen\": [\n    \"10.89.0.1:53\""),
            "{text}"
        );
    }

    #[test]
    fn hand_edited_upper_case_is_folded_on_load() {
        let text = r#"{"version":1,"listen":["127.0.0.1:53"],"domain":"X.Test",
            "containers":{"a":{"names":["Web"],"ipv4":"10.0.0.2"}},"futureField":true}"#;
        let r = DnsRecords::from_slice(text.as_bytes(), Path::new("dns.json")).unwrap();
        assert_eq!(r.addresses("web"), [ip("10.0.0.2")]);
        assert_eq!(r.domain(), Some("x.test"));
        assert!(r.upstreams().is_empty());
    }

    #[test]
    fn a_newer_format_or_broken_json_is_an_error_naming_the_file() {
        let err = DnsRecords::from_slice(br#"{"version":2,"listen":[]}"#, Path::new("/n/dns.json"))
            .unwrap_err();
        assert!(
            err.to_string().contains("/n/dns.json has version 2"),
            "{err}"
        );
        let err = DnsRecords::from_slice(b"{", Path::new("/n/dns.json")).unwrap_err();
        assert_eq!(err.to_string(), "cannot decode /n/dns.json");
    }

    #[test]
    fn concurrent_updates_are_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        DnsRecords::new(vec![], vec![]).save(dir.path()).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let dir = dir.path();
                s.spawn(move || {
                    for i in 0..25u8 {
                        DnsRecords::update(dir, |r| {
                            r.set_container(
                                &format!("c{t}-{i}"),
                                ["web"],
                                Ipv4Addr::new(10, 0, t, i),
                            )
                        })
                        .unwrap();
                    }
                });
            }
        });
        let r = DnsRecords::load(dir.path()).unwrap();
        assert_eq!(r.containers().len(), 100);
        assert_eq!(r.addresses("web").len(), 100);
    }

    #[test]
    fn a_failed_update_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        sample().save(dir.path()).unwrap();
        let err = DnsRecords::update(dir.path(), |r| {
            r.remove_container("c1");
            r.set_container("c9", ["bad name"], ip("10.89.0.9"))
        });
        assert!(err.is_err());
        assert_eq!(DnsRecords::load(dir.path()).unwrap(), sample());
    }
}
