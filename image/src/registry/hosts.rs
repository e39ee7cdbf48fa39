//! Which registries are spoken to over plain http, and the names hosts go
//! by.
//!
//! As dockerd: a registry on a loopback address (`localhost`, `127.0.0.0/8`,
//! `::1`) is reached over http, every other over https, unless it is listed
//! as insecure. Lists come from `--insecure-registry`, the
//! `BERTH_INSECURE_REGISTRIES` environment variable (comma-separated) and
//! the `insecure-registries` array of `/etc/berth/registries.json` (the
//! key dockerd's `daemon.json` uses). An entry is a host (`reg.lan`), a
//! host and port (`reg.lan:5000`) or an IPv4 CIDR (`10.0.0.0/8`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use crate::error::{Error, Result};
use crate::reference::DEFAULT_DOMAIN;

/// Where berth reads its registry settings.
pub const REGISTRIES_CONFIG: &str = "/etc/berth/registries.json";

/// The environment variable listing insecure registries.
pub const INSECURE_ENV: &str = "BERTH_INSECURE_REGISTRIES";

/// The Docker Hub's API host (what `docker.io` names).
const HUB_API_HOST: &str = "index.docker.io";

/// Registries reached over plain http.
#[derive(Debug, Clone, Default)]
pub struct Insecure {
    entries: Vec<String>,
}

impl Insecure {
    /// Only loopback registries are insecure.
    pub fn loopback_only() -> Self {
        Self::default()
    }

    /// `extra` entries (flags) plus the environment's and the config
    /// file's (when it exists; a malformed one is an error, not ignored).
    pub fn from_sources(
        extra: &[String],
        env: Option<&str>,
        config_file: Option<&Path>,
    ) -> Result<Self> {
        let mut entries: Vec<String> = extra.to_vec();
        if let Some(env) = env {
            entries.extend(
                env.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
        if let Some(path) = config_file {
            match std::fs::read(path) {
                Ok(bytes) => {
                    let value: serde_json::Value =
                        serde_json::from_slice(&bytes).map_err(|source| Error::InvalidJson {
                            what: format!("registry settings {}", path.display()),
                            source,
                        })?;
                    if let Some(list) = value.get("insecure-registries").and_then(|v| v.as_array())
                    {
                        entries.extend(list.iter().filter_map(|v| v.as_str()).map(str::to_owned));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("read", path, e)),
            }
        }
        Ok(Insecure { entries })
    }

    /// `http` for an insecure `domain`, else `https`.
    pub(crate) fn scheme(&self, domain: &str) -> &'static str {
        if self.is_insecure(domain) {
            "http"
        } else {
            "https"
        }
    }

    /// Whether `domain` (a reference's registry part, `host[:port]`) is
    /// spoken to over http.
    pub fn is_insecure(&self, domain: &str) -> bool {
        if is_loopback(domain) {
            return true;
        }
        let host = host_of(domain);
        self.entries.iter().any(|entry| {
            let entry = entry
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .trim_end_matches('/');
            if entry == domain || entry == host {
                return true;
            }
            match (entry.split_once('/'), host.parse::<Ipv4Addr>()) {
                (Some((net, bits)), Ok(ip)) => in_cidr(ip, net, bits),
                _ => false,
            }
        })
    }
}

/// Whether `domain` names this machine: `localhost`, `127.0.0.0/8`, `::1`.
pub fn is_loopback(domain: &str) -> bool {
    let host = host_of(domain);
    if host == "localhost" {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// `host` of `host:port` (and of `[v6]:port`).
fn host_of(domain: &str) -> &str {
    if domain.starts_with('[') {
        return match domain.find(']') {
            Some(end) => &domain[..=end],
            None => domain,
        };
    }
    match domain.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => domain,
    }
}

fn in_cidr(ip: Ipv4Addr, net: &str, bits: &str) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<Ipv4Addr>(), bits.parse::<u32>()) else {
        return false;
    };
    if bits > 32 {
        return false;
    }
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

/// The host oci-client talks to for `domain` (Docker Hub's API host for
/// `docker.io`).
pub(crate) fn api_host(domain: &str) -> &str {
    if domain == DEFAULT_DOMAIN {
        HUB_API_HOST
    } else {
        domain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_insecure_and_the_rest_only_when_listed() {
        let none = Insecure::loopback_only();
        for d in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.3.2.1",
            "[::1]:80",
        ] {
            assert!(none.is_insecure(d), "{d}");
        }
        for d in [
            "docker.io",
            "reg.lan:5000",
            "10.1.2.3:5000",
            "localhost.evil.com",
        ] {
            assert!(!none.is_insecure(d), "{d}");
        }
        let listed = Insecure::from_sources(
            &["reg.lan".to_owned()],
            Some(" other:5000 , 10.0.0.0/8"),
            None,
        )
        .unwrap();
        assert!(listed.is_insecure("reg.lan:5000"));
        assert!(listed.is_insecure("other:5000"));
        assert!(!listed.is_insecure("other:6000"));
        assert!(listed.is_insecure("10.1.2.3:5000"));
        assert!(!listed.is_insecure("11.1.2.3:5000"));
    }

    #[test]
    fn the_config_file_lists_more_and_a_broken_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registries.json");
        std::fs::write(&path, r#"{"insecure-registries": ["files.lan:443"]}"#).unwrap();
        let i = Insecure::from_sources(&[], None, Some(&path)).unwrap();
        assert!(i.is_insecure("files.lan:443"));
        std::fs::write(&path, "{").unwrap();
        assert!(Insecure::from_sources(&[], None, Some(&path)).is_err());
        let missing = dir.path().join("nope.json");
        assert!(Insecure::from_sources(&[], None, Some(&missing)).is_ok());
    }
}
