//! Less common service keys: [`ServiceDependency`] (`depends_on`),
//! [`BlkioConfig`], [`CredentialSpec`], [`DevelopConfig`], lifecycle hooks
//! ([`ServiceHook`], [`PreStartHook`]), [`Provider`] and [`ServiceModel`].

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::de::{self, Hinted, describe, is_false};
use super::misc::de_command;
use super::{ByteSize, MappingWithEquals};

/// One `depends_on` entry. The list form means `service_started`, required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceDependency {
    #[serde(default = "started")]
    pub condition: String,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub restart: bool,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
    #[serde(default = "yes", deserialize_with = "de::bool_lenient")]
    pub required: bool,
}

fn started() -> String {
    "service_started".into()
}

fn yes() -> bool {
    true
}

impl Default for ServiceDependency {
    fn default() -> Self {
        Self {
            condition: started(),
            restart: false,
            extensions: IndexMap::new(),
            required: true,
        }
    }
}

pub(crate) fn de_depends_on<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, ServiceDependency>, D::Error> {
    de::short_or_long(d, |v| match v {
        Value::Array(items) => items
            .iter()
            .map(|i| de::parse_string(i).map(|s| (s, ServiceDependency::default())))
            .collect::<Result<_, _>>()
            .map(de::NullDefaultMap),
        other => Err(Hinted::new(format!("invalid depends_on {}", describe(&other)))
            .hint("use a list of service names or a mapping of name to {condition, required, restart}")),
    })
    .map(|m| m.map(|m| m.0).unwrap_or_default())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlkioConfig {
    #[serde(
        default,
        deserialize_with = "de::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub weight: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<ThrottleDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<ThrottleDevice>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightDevice {
    #[serde(default)]
    pub path: String,
    #[serde(
        default,
        deserialize_with = "de::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub weight: Option<u64>,
}

/// A rate: bytes per second (`"1mb"` allowed) or operations per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThrottleDevice {
    #[serde(default)]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<ByteSize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CredentialSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DevelopConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<WatchRule>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WatchRule {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ServiceHook>,
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub include: Vec<String>,
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ignore: Vec<String>,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub initial_sync: bool,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

/// A command run inside the service container (`post_start`, `pre_stop`,
/// `develop.watch[].exec`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceHook {
    #[serde(
        default,
        deserialize_with = "de_command",
        skip_serializing_if = "Option::is_none"
    )]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::mapping_with_equals",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub environment: MappingWithEquals,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

/// An init container run to completion before the service starts (berth's
/// `pre_start` extension of the spec).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreStartHook {
    #[serde(
        default,
        deserialize_with = "de_command",
        skip_serializing_if = "Option::is_none"
    )]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::mapping_with_equals",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub environment: MappingWithEquals,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub per_replica: bool,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

/// A service managed by an external provider instead of a container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Each option may be given once or several times.
    #[serde(
        default,
        deserialize_with = "de_multi_options",
        serialize_with = "ser_multi_options",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub options: IndexMap<String, Vec<String>>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

fn de_multi_options<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Vec<String>>, D::Error> {
    de::via(d, |v| match v {
        Value::Null => Ok(IndexMap::new()),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| de::parse_string_or_list(v).map(|l| (k.clone(), l)))
            .collect(),
        other => Err(Hinted::new(format!(
            "invalid provider options {}",
            describe(other)
        ))),
    })
}

fn ser_multi_options<S: Serializer>(
    m: &IndexMap<String, Vec<String>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut entries: Vec<(&String, Value)> = m
        .iter()
        .map(|(k, v)| {
            let v = match v.as_slice() {
                [one] => Value::String(one.clone()),
                many => Value::from(many.to_vec()),
            };
            (k, v)
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    s.collect_map(entries)
}

/// How a service uses a top-level model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceModel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_var: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_var: Option<String>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

pub(crate) fn de_service_models<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Option<ServiceModel>>, D::Error> {
    de::short_or_long(d, |v| match v {
        Value::Array(items) => items
            .iter()
            .map(|i| de::parse_string(i).map(|s| (s, None)))
            .collect(),
        other => Err(Hinted::new(format!("invalid models {}", describe(&other)))),
    })
    .map(Option::unwrap_or_default)
}
