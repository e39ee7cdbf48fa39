//! `sysctls`: kernel parameters set inside the container.
//!
//! Only parameters that belong to one of the container's own namespaces
//! may be set, or the container would change the host: `net.*` (its
//! network namespace, so not with the host's network), and the IPC ones
//! (`kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`). The rest is
//! refused with the key and the reason, as Docker (runc) refuses them.
//! Values are written under `/proc/sys` after `pivot_root`, before
//! `/proc/sys` is made read-only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::Network;
use crate::error::{Error, Result};

/// The namespace a parameter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Ipc,
    Net,
}

/// Why a parameter cannot be set in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not namespaced: setting it would change the whole host.
    NotNamespaced,
    /// A `net.*` key while the container shares the host's network.
    HostNetwork,
    /// `kernel.hostname`/`kernel.domainname`: set through their own fields.
    ConflictsWith(&'static str),
    /// Empty parts, `..`, or characters no sysctl has.
    Malformed,
}

/// The scope of `key` (dots or slashes as separators).
pub fn classify(key: &str) -> std::result::Result<Scope, Refusal> {
    let key = normalize(key).ok_or(Refusal::Malformed)?;
    match key.as_str() {
        "kernel.hostname" => return Err(Refusal::ConflictsWith("hostname")),
        "kernel.domainname" => return Err(Refusal::ConflictsWith("domainname")),
        "kernel.sem" => return Ok(Scope::Ipc),
        _ => {}
    }
    if key.starts_with("net.") {
        Ok(Scope::Net)
    } else if key.starts_with("kernel.shm")
        || key.starts_with("kernel.msg")
        || key.starts_with("fs.mqueue.")
    {
        Ok(Scope::Ipc)
    } else {
        Err(Refusal::NotNamespaced)
    }
}

/// `net/ipv4/ip_forward` → `net.ipv4.ip_forward`; `None` when malformed.
fn normalize(key: &str) -> Option<String> {
    let key = key.trim().replace('/', ".");
    let ok = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        });
    ok.then_some(key)
}

/// Refuses any parameter the container cannot have, naming it and why.
pub fn validate(sysctls: &BTreeMap<String, String>, network: &Network) -> Result<()> {
    for key in sysctls.keys() {
        let why = match classify(key) {
            Ok(Scope::Net) if *network == Network::Host => {
                "it is not allowed in the host's network namespace (the container uses network_mode: host)".to_owned()
            }
            Ok(_) => continue,
            Err(Refusal::NotNamespaced) => {
                "it is not in a separate kernel namespace: setting it would change the host (only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* are)".to_owned()
            }
            Err(Refusal::HostNetwork) => {
                "it is not allowed in the host's network namespace".to_owned()
            }
            Err(Refusal::ConflictsWith(field)) => {
                format!("it conflicts with the container's {field}: set {field} instead")
            }
            Err(Refusal::Malformed) => "it is not a sysctl name".to_owned(),
        };
        return Err(Error::invalid("sysctl", format!("{key:?}: {why}")));
    }
    Ok(())
}

/// `/proc/sys/...` for a valid key.
pub fn proc_path(key: &str) -> Option<PathBuf> {
    let key = normalize(key)?;
    let mut p = PathBuf::from("/proc/sys");
    p.extend(key.split('.'));
    Some(p)
}

/// Writes every value; call inside the container's namespaces with its
/// `/proc` mounted read-write.
pub fn apply(sysctls: &BTreeMap<String, String>) -> Result<()> {
    for (key, value) in sysctls {
        let Some(path) = proc_path(key) else {
            return Err(Error::invalid(
                "sysctl",
                format!("{key:?} is not a sysctl name"),
            ));
        };
        tracing::debug!(key = %key, value = %value, "sysctl");
        std::fs::write(&path, value).map_err(|e| Error::Invalid {
            what: "sysctl",
            reason: format!("cannot set {key} to {value:?}: {e}"),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn namespaced_keys_are_classified() {
        for (k, s) in [
            ("net.ipv4.ip_forward", Scope::Net),
            ("net/core/somaxconn", Scope::Net),
            ("net.ipv4.conf.all.rp_filter", Scope::Net),
            ("kernel.shmmax", Scope::Ipc),
            ("kernel.shm_rmid_forced", Scope::Ipc),
            ("kernel.msgmnb", Scope::Ipc),
            ("kernel.sem", Scope::Ipc),
            ("fs.mqueue.msg_max", Scope::Ipc),
        ] {
            assert_eq!(classify(k), Ok(s), "{k}");
        }
        for k in [
            "kernel.pid_max",
            "vm.swappiness",
            "fs.file-max",
            "kernel.semx",
        ] {
            assert_eq!(classify(k), Err(Refusal::NotNamespaced), "{k}");
        }
        assert_eq!(
            classify("kernel.hostname"),
            Err(Refusal::ConflictsWith("hostname"))
        );
        for k in ["", "net..x", "net/../../etc", "net.ipv4 x"] {
            assert_eq!(classify(k), Err(Refusal::Malformed), "{k:?}");
        }
    }

    #[test]
    fn refusals_name_the_key_and_why() {
        let one = |k: &str| BTreeMap::from([(k.to_string(), "1".to_string())]);
        let err = validate(&one("vm.swappiness"), &Network::None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"vm.swappiness\""), "{err}");
        assert!(err.contains("not in a separate kernel namespace"), "{err}");
        let err = validate(&one("net.ipv4.ip_forward"), &Network::Host)
            .unwrap_err()
            .to_string();
        assert!(err.contains("host's network namespace"), "{err}");
        assert!(validate(&one("net.ipv4.ip_forward"), &Network::None).is_ok());
        assert!(validate(&one("kernel.shmmax"), &Network::Host).is_ok());
    }

    #[test]
    fn proc_paths() {
        assert_eq!(
            proc_path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(proc_path("net/../x"), None);
    }
}
