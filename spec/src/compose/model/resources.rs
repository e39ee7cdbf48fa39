//! Top-level resources besides networks: [`VolumeConfig`], secrets and
//! configs ([`FileObjectConfig`]), AI [`ModelConfig`]s, and [`Include`]
//! entries (kept as written; the loader resolves them).

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::Mapping;
use super::de::{self, Hinted, is_false};
use super::networks::de_external;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::mapping",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub driver_opts: Mapping,
    #[serde(
        default,
        deserialize_with = "de_external",
        skip_serializing_if = "is_false"
    )]
    pub external: bool,
    #[serde(
        default,
        deserialize_with = "de::mapping",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub labels: Mapping,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

/// A secret or a config: from a file (the loader makes `file` absolute), an
/// environment variable, inline `content` (configs only), or external.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileObjectConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(
        default,
        deserialize_with = "de_external",
        skip_serializing_if = "is_false"
    )]
    pub external: bool,
    #[serde(
        default,
        deserialize_with = "de::mapping",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub labels: Mapping,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::mapping",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub driver_opts: Mapping,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_driver: Option<String>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

pub type SecretConfig = FileObjectConfig;
pub type ConfigObjConfig = FileObjectConfig;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub model: String,
    #[serde(
        default,
        deserialize_with = "de::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub context_size: Option<i64>,
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub runtime_flags: Vec<String>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

/// One `include:` entry. Paths are as written (relative to the including
/// file); the loader resolves and loads them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Include {
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub path: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_directory: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env_file: Vec<String>,
}

pub(crate) fn de_includes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Include>, D::Error> {
    Ok(Option::<Vec<IncludeItem>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.0)
        .collect())
}

struct IncludeItem(Include);

impl<'de> Deserialize<'de> for IncludeItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::short_or_long(d, |v| match v {
            Value::String(path) => Ok(Include {
                path: vec![path],
                ..Include::default()
            }),
            other => Err(
                Hinted::new(format!("invalid include {}", de::describe(&other)))
                    .hint("use a path or a mapping with path, env_file and project_directory"),
            ),
        })?
        .map(IncludeItem)
        .ok_or_else(|| serde::de::Error::custom("invalid include null"))
    }
}
