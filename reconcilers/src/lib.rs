//! berth-reconcilers: where Compose meets the runtime. Desired state (the
//! `berth-spec` [`Project`](berth_spec::compose::model::Project)) against
//! observed state, planned into ordered, reasoned actions and executed
//! through traits.
//!
//! The pieces, in the order a reconcile uses them:
//! - [`desired`]: each service replica as a runtime-level
//!   [`ContainerSpec`], named and labelled as Compose does;
//! - [`hash`]: the config hash over every input that shapes a container;
//! - [`observed`]: what the backends report ([`Observed`]);
//! - [`plan()`]: desired vs observed into a [`Plan`] of [`Action`]s, each
//!   with [`Reason`]s, grouped into waves by [`order`];
//! - [`restart`]: restart policies and backoff;
//! - [`execute()`]: runs a plan against the [`traits`] wave by wave;
//!   [`converge`] observes, plans and executes until nothing is left;
//! - [`status`]: per-service summaries for the agent's API.
//!
//! **Invariant:** the runtime, the image store, volumes and networks are
//! reached only through [`traits`]; planning is pure (no I/O, no clock:
//! "now" is an input), so every rule is tested against in-memory fakes
//! (feature `fakes`).

pub mod container;
pub mod desired;
mod error;
pub mod execute;
pub mod hash;
pub mod observed;
pub mod order;
pub mod plan;
mod replace;
pub mod restart;
pub mod status;
pub mod traits;

#[cfg(any(test, feature = "fakes"))]
pub mod conformance;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;

pub use container::{ContainerSpec, labels};
pub use error::{BackendError, Error, ErrorKind, GateFailure, describe_chain};
pub use execute::{
    Clock, ExecuteOptions, Outcome, Report, SystemClock, converge, execute, observe,
};
pub use observed::Observed;
pub use plan::{
    Action, Gate, Operation, Plan, PlanOptions, PlannedAction, Reason, ReasonKind, UpdateOrder,
    plan,
};
pub use traits::{Backends, ContainerRuntime, ImageSource, NetworkStore, VolumeStore};
