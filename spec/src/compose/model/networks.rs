//! Networks: a service's attachments ([`ServiceNetwork`]) and the top-level
//! definitions ([`NetworkConfig`], [`Ipam`]).

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::Mapping;
use super::de::{self, Hinted, is_false};

/// How a service joins one network; `None` in the service's map means "join
/// with defaults" (`networks: [front]` or `front:` with no value).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceNetwork {
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aliases: Vec<String>,
    #[serde(
        default,
        deserialize_with = "de::mapping",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub driver_opts: Mapping,
    #[serde(
        default,
        deserialize_with = "de::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub gw_priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub link_local_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub priority: Option<i64>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

/// `networks:` of a service: a list of names or a mapping.
pub(crate) fn de_service_networks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Option<ServiceNetwork>>, D::Error> {
    de::short_or_long(d, |v| match v {
        Value::Array(items) => items
            .iter()
            .map(|i| de::parse_string(i).map(|name| (name, None)))
            .collect(),
        other => Err(
            Hinted::new(format!("invalid networks {}", de::describe(&other)))
                .hint("use a list of network names or a mapping of name to options"),
        ),
    })
    .map(Option::unwrap_or_default)
}

/// A top-level network definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
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
    #[serde(default, skip_serializing_if = "Ipam::is_empty")]
    pub ipam: Ipam,
    #[serde(
        default,
        deserialize_with = "de_external",
        skip_serializing_if = "is_false"
    )]
    pub external: bool,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub internal: bool,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub attachable: bool,
    #[serde(
        default,
        deserialize_with = "de::mapping",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub labels: Mapping,
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_ipv4: Option<bool>,
    #[serde(
        default,
        deserialize_with = "de::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_ipv6: Option<bool>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ipam {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
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

impl Ipam {
    pub fn is_empty(&self) -> bool {
        self == &Ipam::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpamPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::mapping",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub aux_addresses: Mapping,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

/// `external: true`, `"true"`, or the legacy `{name: ...}` (decode moves the
/// name to the resource's `name` before this runs).
pub(crate) fn de_external<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    de::via(d, |v| match v {
        Value::Null => Ok(false),
        Value::Object(_) => Ok(true),
        other => de::parse_bool(other),
    })
}
