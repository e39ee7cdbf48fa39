//! berth-build: executes parsed Dockerfiles (from `berth-spec`) as build
//! steps on `berth-image` and `berth-runtime`, with a layer cache.
//!
//! Public API: [`Builder::new`]`(store, runtime)` then
//! [`Builder::build`]`(&`[`BuildRequest`]`, &dyn `[`Progress`]`)` →
//! [`BuildOutcome`] (the image ID, its tags, and per step whether it ran
//! or came from the cache). [`prune`] empties the build cache.
//!
//! ```text
//! let builder = Builder::new(store.clone(), runtime.clone());
//! let outcome = builder.build(
//!     &BuildRequest {
//!         context: project_dir.join("web"),
//!         dockerfile: Some(DockerfileSource::Path(project_dir.join("web/Dockerfile"))),
//!         build_args: [("VERSION".into(), "2".into())].into(),
//!         tags: vec!["shop-web:latest".into()],
//!         ..Default::default()
//!     },
//!     &NoProgress,
//! )?;
//! // outcome.image_id, outcome.executed() == 0 when nothing changed
//! ```
//!
//! `build` blocks (RUN steps are containers; stages run on their own
//! threads): call it from a blocking thread, never a tokio worker. A
//! rebuild with nothing changed reads only file metadata (and the files
//! whose stat changed) and a few cache entries, so calling it on every
//! reconcile is cheap. `BuildRequest::cancel` stops a build.
//!
//! How a build runs:
//! - `builder`: reads the Dockerfile and `.dockerignore`, picks the
//!   stages the target needs, runs one thread per stage (a stage blocks
//!   only on the stages it reads), commits the target's image.
//! - `stage`: FROM (scratch, an image in the store, an earlier stage;
//!   ONBUILD triggers of the base), then each instruction: metadata ones
//!   change the config (`imageconfig`), COPY/ADD/WORKDIR write through an
//!   overlay mount of the stage (`fsop`, `copy`, `archive`), RUN runs a
//!   container on the runtime (`run`). A step's upper dir becomes the
//!   layer (`layer`: overlayfs whiteouts → OCI `.wh.` entries) and, by
//!   rename, the snapshot the next step mounts.
//! - `network`: a RUN step's network (none, host, or a bridge through the
//!   [`RunNetworks`] the binary wires in with
//!   [`Builder::with_run_networks`]), its BuildKit-like `/etc/hosts` and
//!   `/etc/resolv.conf`, and the entitlements `--security=insecure` and
//!   `--network=host` need.
//! - `cache`: keys chain parent key, the step as executed and the digest
//!   of what it reads (`context`, with `statcache` so unchanged files are
//!   not re-read); entries are GC roots of the image store.
//!   `COPY --link` / `ADD --link` layers are made on an empty dir and
//!   keyed without their parent, so they survive a change of base.
//! - `inline_cache`: the steps' keys written into the image config
//!   (`--cache-to type=inline`) and read back from `--cache-from` images.
//! - `args`: ARG scoping, `--build-arg`, predefined platform and proxy args.
//! - [`git`]: git URLs (ADD, git contexts), resolved with `ls-remote` into
//!   the step's key, checked out by commit; `ssh`: agents and the relay
//!   sockets of `RUN --mount=type=ssh`; `named`: `--build-context`s, looked
//!   up before stages and images.

mod archive;
mod args;
mod builder;
mod cache;
mod context;
mod copy;
mod error;
mod fetch;
mod fsop;
pub mod git;
mod git_url;
mod imageconfig;
mod inline_cache;
mod layer;
mod mounts;
mod named;
mod network;
mod prune;
mod request;
mod run;
mod run_endpoints;
mod ssh;
mod stage;
mod statcache;

pub use builder::{Builder, Leftovers, parse_key_values};
pub use error::{BuildError, Result, StepAt};
pub use inline_cache::CONFIG_KEY as INLINE_CACHE_CONFIG_KEY;
pub use network::{NetworkFailure, RunAttachment, RunNetworks};
pub use prune::{PruneOptions, Pruned, prune};
pub use request::{
    BuildNetwork, BuildOutcome, BuildRequest, DockerfileSource, Entitlements, Event, ExtraHost,
    HostAddress, NamedContext, NoProgress, Progress, SecretSource, StepReport, StepStatus,
};
