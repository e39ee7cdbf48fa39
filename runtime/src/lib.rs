//! berth-runtime: native containers (per-container supervisor, namespaces,
//! overlayfs rootfs, cgroups, logs, exec, stats).
//!
//! Not built yet: this crate lands with the runtime issue. It exists now so
//! that the dependency rules in ARCHITECTURE.md hold from the first commit.
