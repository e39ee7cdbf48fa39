//! berth-net: bridges, veths, IPAM, service DNS and published ports.
//!
//! [`dns`]: the per-network DNS server for service discovery.

pub mod dns;
