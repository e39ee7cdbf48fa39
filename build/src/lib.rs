//! berth-build: executes parsed Dockerfiles (from `berth-spec`) as build steps
//! on `berth-image` and `berth-runtime`, with a layer cache.
//!
//! Not built yet: this crate lands with the images issue. It exists now so
//! that the dependency rules in ARCHITECTURE.md hold from the first commit.
