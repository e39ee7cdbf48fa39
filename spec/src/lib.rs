//! berth-spec: what the user wrote, parsed, checked and normalized.
//!
//! Two front ends live here:
//! - Compose: YAML text ([`yaml`]) → interpolation ([`interpolate`], [`dotenv`])
//!   → merge, include, extends, profiles ([`compose`]) → schema and semantic
//!   validation → the normalized [`compose::model::Project`].
//! - Dockerfile: text → [`dockerfile`] instructions, plus [`dockerignore`].
//!
//! Architecture invariant: this crate is pure. It reads files and the
//! environment it is handed; it never spawns, writes, opens sockets or uses
//! async. Every problem it finds is a [`diag::Diagnostic`] that names the file,
//! line, column and key.

pub mod compose;
pub mod diag;
pub mod dockerfile;
pub mod dockerignore;
pub mod dotenv;
pub mod interpolate;
pub mod suggest;
pub mod units;
pub mod yaml;
