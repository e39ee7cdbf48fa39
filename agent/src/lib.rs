//! The agent's library half: what the `berth` binary and the end-to-end
//! tests both drive. [`containers`] joins image and runtime (`berth run`);
//! [`engine`] implements the reconciler's traits over the real runtime,
//! image store and volume folders, so `tests/engine_*.rs` can run the
//! shared conformance suites against them without going through the CLI.

pub mod containers;
pub mod engine;
pub mod healthcheck;
pub mod interrupt;
