//! The normalized Compose model: [`Project`], [`Service`] and every type
//! they hold, covering the whole Compose Specification.
//!
//! Two directions, two jobs:
//! - **Deserialize** accepts what users write: every short syntax (ports
//!   `"8080:80"`, volumes `./data:/data:ro`, `environment` lists, `depends_on`
//!   lists, `command` strings, sizes `512m`, durations `1m30s`, booleans and
//!   numbers given as strings after interpolation...) and the long syntax,
//!   so the canonical output deserializes back to the same value.
//!   [`crate::compose::decode`] drives it and collects every error with its
//!   path.
//! - **Serialize** writes `docker compose config`'s canonical form
//!   (compose-go v2 `types.Project`): long syntax everywhere, fields in
//!   compose-go's order, unset keys omitted, maps sorted by key, `published`
//!   as a string, durations in Go syntax (`1m0s`), sizes as decimal strings
//!   (`"52428800"`), `x-*` extensions last.
//!
//! Paths are kept as written: making them absolute (build contexts, binds,
//! env files...) is the loader's job, after decoding.

mod build;
pub(crate) mod de;
mod deploy;
mod extras;
mod healthcheck;
mod misc;
mod networks;
mod ports;
mod resources;
mod service;
pub mod shellwords;
mod units;
mod volumes;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use build::{BuildConfig, SshKey};
pub use de::Hinted;
pub use deploy::{
    DeployConfig, DeviceRequest, DiscreteResourceSpec, GenericResource, Placement,
    PlacementPreference, Resource, Resources, RestartPolicy, UpdateConfig,
};
pub use extras::{
    BlkioConfig, CredentialSpec, DevelopConfig, PreStartHook, Provider, ServiceDependency,
    ServiceHook, ServiceModel, ThrottleDevice, WatchRule, WeightDevice,
};
pub use healthcheck::Healthcheck;
pub use misc::{DeviceMapping, EnvFile, Extends, FileRef, HostsList, Logging, Ulimit};
pub use networks::{Ipam, IpamPool, NetworkConfig, ServiceNetwork};
pub use ports::{ServicePort, parse_port_spec};
pub(crate) use resources::de_includes;
pub use resources::{
    ConfigObjConfig, FileObjectConfig, Include, ModelConfig, SecretConfig, VolumeConfig,
};
pub use service::Service;
pub use units::{ByteSize, Duration};
pub use volumes::{
    BindOptions, ImageOptions, ServiceVolume, TmpfsOptions, VolumeOptions, parse_volume_spec,
};

/// Labels-like maps: a missing value is `""`.
pub type Mapping = IndexMap<String, String>;
/// Environment-like maps: `None` is a variable named without a value, to be
/// taken from the environment.
pub type MappingWithEquals = IndexMap<String, Option<String>>;

/// A whole Compose project, after merging, in long syntax.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Project {
    #[serde(default)]
    pub name: String,
    /// `include:` entries as written. The loader resolves and removes them,
    /// so a fully loaded project has none.
    #[serde(
        default,
        deserialize_with = "resources::de_includes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub include: Vec<Include>,
    #[serde(
        default,
        deserialize_with = "de::map_null_default",
        serialize_with = "de::sorted"
    )]
    pub services: IndexMap<String, Service>,
    #[serde(
        default,
        deserialize_with = "de::map_null_default",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub networks: IndexMap<String, NetworkConfig>,
    #[serde(
        default,
        deserialize_with = "de::map_null_default",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub volumes: IndexMap<String, VolumeConfig>,
    #[serde(
        default,
        deserialize_with = "de::map_null_default",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub secrets: IndexMap<String, SecretConfig>,
    #[serde(
        default,
        deserialize_with = "de::map_null_default",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub configs: IndexMap<String, ConfigObjConfig>,
    #[serde(
        default,
        deserialize_with = "de::map_null_default",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub models: IndexMap<String, ModelConfig>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}
