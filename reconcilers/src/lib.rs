//! berth-reconcilers: desired state (the `berth-spec` model) against observed
//! state, planned into ordered actions. Reaches the runtime, network and image
//! store only through traits defined here.
//!
//! Not built yet: this crate lands with the compose engine issue. It exists
//! now so that the dependency rules in ARCHITECTURE.md hold from the first
//! commit.
