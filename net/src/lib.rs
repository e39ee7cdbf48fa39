//! berth-net: bridges, veths, IPAM, service DNS and published ports.
//!
//! Not built yet: this crate lands with the networking issue. It exists now so
//! that the dependency rules in ARCHITECTURE.md hold from the first commit.
