//! The sysctls berth turns on, as Docker does.

use crate::error::{Error, Result};
use crate::state::NetworkState;

pub(crate) fn write_sysctl(path: &str, value: &str) -> Result<()> {
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == value => Ok(()),
        _ => std::fs::write(path, value).map_err(|e| Error::io("write", path, e)),
    }
}

/// Forwarding on, as Docker turns it on: containers reach the outside and
/// each other's published ports through the host.
pub(crate) fn enable_forwarding() -> Result<()> {
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
}

/// `route_localnet` lets DNAT'd packets from 127.0.0.1 leave through the
/// bridge, so ports published on localhost answer from the host.
pub(crate) fn bridge_sysctls(n: &NetworkState) -> Result<()> {
    write_sysctl(
        &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", n.bridge),
        "1",
    )
}
