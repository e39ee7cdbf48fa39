//! berth-image: the OCI content store on disk, image import and load,
//! layer unpacking and snapshots.
//!
//! The principal type is [`Store`], opened on a state root (default
//! [`DEFAULT_ROOT`]); every operation is a method on it, each in the module
//! for its job:
//!
//! - [`store`]: blobs by [`Digest`], references in `index.json`
//!   ([`Reference`]), resolving and listing [`Image`]s, removal and GC.
//! - [`import`]: `docker import` of a rootfs tarball ([`ImportOptions`]).
//! - [`load`]: `docker load` of `docker save` and OCI-layout archives.
//! - [`config`]: the image config as runtime-neutral types
//!   ([`ImageConfig`], [`Healthcheck`]).
//! - [`snapshot`]: [`Store::prepare_rootfs`], layers unpacked once into
//!   overlayfs lower dirs (lowest first; see [`overlay_lowerdir`]).
//!
//! - [`commit`]: images made by a builder (layers from tar streams,
//!   adopted snapshots, GC roots for a build cache).
//!
//! Errors are one [`Error`] type; branch on [`Error::kind`].
//!
//! **Invariant:** knows nothing of Compose, containers or the CLI; it takes
//! references, digests and readers. Whether an image is in use is asked of
//! the caller (`Store::remove`'s `in_use`).

pub mod commit;
pub mod compress;
pub mod config;
pub mod digest;
pub mod error;
pub mod import;
pub mod load;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod save;
pub mod snapshot;
pub mod store;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use commit::{BuiltLayer, GcRoot};
pub use config::{ConfigFile, ExposedPort, HealthTest, Healthcheck, ImageConfig};
pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub use import::ImportOptions;
pub use load::LoadedImage;
pub use reference::Reference;
pub use snapshot::{UnpackOptions, overlay_lowerdir};
pub use store::{DEFAULT_ROOT, Image, ImageSummary, Lease, Store};
