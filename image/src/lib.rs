//! berth-image: the OCI content store on disk, registry pull and push, layer
//! unpacking and snapshots.
//!
//! Not built yet: this crate lands with the runtime issue. It exists now so
//! that the dependency rules in ARCHITECTURE.md hold from the first commit.
