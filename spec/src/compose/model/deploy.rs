//! [`DeployConfig`]: replicas, resources, restart and update policies, and
//! [`DeviceRequest`] (also used by `gpus`).

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::de::{self, Hinted};
use super::{ByteSize, Duration, Mapping};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub replicas: Option<i64>,
    #[serde(
        default,
        deserialize_with = "de::mapping",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub labels: Mapping,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Placement::is_empty")]
    pub placement: Placement,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_mode: Option<String>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateConfig {
    #[serde(
        default,
        deserialize_with = "de::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub parallelism: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "de::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_failure_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<Resource>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        self == &Resources::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(
        default,
        deserialize_with = "de::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpus: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    #[serde(
        default,
        deserialize_with = "de::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub pids: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRequest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generic_resources: Vec<GenericResource>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenericResource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete_resource_spec: Option<DiscreteResourceSpec>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscreteResourceSpec {
    #[serde(default)]
    pub kind: String,
    #[serde(default, deserialize_with = "de_i64")]
    pub value: i64,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

fn de_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    de::via(d, de::parse_i64)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestartPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "de::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub constraints: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<PlacementPreference>,
    #[serde(
        default,
        deserialize_with = "de::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_replicas_per_node: Option<u64>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

impl Placement {
    pub fn is_empty(&self) -> bool {
        self == &Placement::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlacementPreference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<String>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

/// A device reservation (`deploy.resources.reservations.devices`, `gpus`).
/// `count: all` is stored as -1, as compose-go does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceRequest {
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(
        default,
        deserialize_with = "de_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub count: Option<i64>,
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub device_ids: Vec<String>,
    #[serde(
        default,
        deserialize_with = "de::mapping",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub options: Mapping,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

fn de_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    de::via_opt(d, |v| match v {
        Value::String(s) if s.eq_ignore_ascii_case("all") => Ok(-1),
        other => de::parse_i64(other).map_err(|_| {
            Hinted::new(format!("invalid device count {}", de::describe(other)))
                .hint("use a number or \"all\"")
        }),
    })
}

/// `gpus: all` or a list of device requests.
pub(crate) fn de_gpus<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeviceRequest>, D::Error> {
    match Option::<Gpus>::deserialize(d)? {
        None => Ok(Vec::new()),
        Some(Gpus(list)) => Ok(list),
    }
}

struct Gpus(Vec<DeviceRequest>);

impl<'de> Deserialize<'de> for Gpus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match v {
            Value::String(s) if s == "all" => Ok(Gpus(vec![DeviceRequest {
                count: Some(-1),
                ..DeviceRequest::default()
            }])),
            Value::Array(_) => serde_json::from_value(v)
                .map(Gpus)
                .map_err(|e| serde::de::Error::custom(e.to_string())),
            other => Err(
                Hinted::new(format!("invalid gpus {}", de::describe(&other)))
                    .hint("use \"all\" or a list of device requests")
                    .into_de(),
            ),
        }
    }
}
