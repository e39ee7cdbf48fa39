//! [`BuildConfig`]: how to build a service's image. `build: ./dir` is short
//! for `build: {context: ./dir}`.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::de::{self, Hinted, is_false};
use super::misc::{HostsList, Ulimit, de_hosts, ser_hosts};
use super::{ByteSize, FileRef, Mapping, MappingWithEquals};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildConfig {
    /// A path (the loader makes it absolute) or a URL (kept verbatim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub entitlements: Vec<String>,
    /// `None` values are taken from the environment at build time.
    #[serde(
        default,
        deserialize_with = "de::mapping_with_equals",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub args: MappingWithEquals,
    #[serde(
        default,
        deserialize_with = "de::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub provenance: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub sbom: Option<String>,
    #[serde(
        default,
        deserialize_with = "de_ssh",
        serialize_with = "ser_ssh",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ssh: Vec<SshKey>,
    #[serde(
        default,
        deserialize_with = "de::mapping",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub labels: Mapping,
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cache_from: Vec<String>,
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cache_to: Vec<String>,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub no_cache: bool,
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub no_cache_filter: Vec<String>,
    /// Name -> path or URL (the loader makes paths absolute).
    #[serde(
        default,
        deserialize_with = "de::mapping",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub additional_contexts: Mapping,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub pull: bool,
    #[serde(
        default,
        deserialize_with = "de_hosts",
        serialize_with = "ser_hosts",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub extra_hosts: HostsList,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(
        default,
        deserialize_with = "super::misc::de_file_refs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub secrets: Vec<FileRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
    #[serde(
        default,
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub ulimits: IndexMap<String, Ulimit>,
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub platforms: Vec<String>,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub privileged: bool,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

/// `build:` as a context string or a mapping.
pub(crate) fn de_build<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BuildConfig>, D::Error> {
    de::short_or_long(d, |v| match v {
        Value::String(context) => Ok(BuildConfig {
            context: Some(context),
            ..BuildConfig::default()
        }),
        other => Err(
            Hinted::new(format!("invalid build {}", de::describe(&other)))
                .hint("use a context path or URL, or a mapping with context, dockerfile, args..."),
        ),
    })
}

/// An SSH agent socket or key made available to the build: `default`, or
/// `id=path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey {
    pub id: String,
    pub path: Option<String>,
}

fn de_ssh<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SshKey>, D::Error> {
    de::via(d, |v| {
        Ok(de::parse_mapping_with_equals(v)?
            .into_iter()
            .map(|(id, path)| SshKey {
                id,
                path: path.filter(|p| !p.is_empty()),
            })
            .collect())
    })
}

fn ser_ssh<S: Serializer>(keys: &[SshKey], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(keys.iter().map(|k| match &k.path {
        Some(p) => format!("{}={p}", k.id),
        None => k.id.clone(),
    }))
}
