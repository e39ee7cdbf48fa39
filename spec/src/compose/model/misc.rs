//! Small service-level types with a short syntax: [`FileRef`] (configs and
//! secrets), [`EnvFile`], [`Ulimit`], extra hosts ([`HostsList`]),
//! [`DeviceMapping`], [`Extends`], [`Logging`], and commands.

use indexmap::IndexMap;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::de::{self, Hinted, describe};
use super::shellwords;
use super::volumes::opt_mode;

/// A service's reference to a top-level config or secret. `- name` is short
/// for `{source: name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub uid: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub gid: Option<String>,
    /// File mode (a string is octal: `"0440"` = 288).
    #[serde(
        default,
        deserialize_with = "opt_mode",
        skip_serializing_if = "Option::is_none"
    )]
    pub mode: Option<u32>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

pub(crate) fn de_file_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FileRef>, D::Error> {
    Ok(Option::<Vec<FileRefItem>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.0)
        .collect())
}

struct FileRefItem(FileRef);

impl<'de> Deserialize<'de> for FileRefItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::short_or_long(d, |v| match v {
            Value::String(source) => Ok(FileRef {
                source,
                ..FileRef::default()
            }),
            other => Err(
                Hinted::new(format!("invalid reference {}", describe(&other)))
                    .hint("use a name or a mapping with source, target, uid, gid and mode"),
            ),
        })?
        .map(FileRefItem)
        .ok_or_else(|| D::Error::custom("invalid reference null"))
    }
}

/// One `env_file` entry. `required` defaults to true.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvFile {
    /// As written; the loader makes it absolute.
    pub path: String,
    #[serde(default = "yes", deserialize_with = "de::bool_lenient")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

fn yes() -> bool {
    true
}

pub(crate) fn de_env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFile>, D::Error> {
    Ok(de::one_or_many::<_, EnvFileItem>(d)?
        .into_iter()
        .map(|i| i.0)
        .collect())
}

struct EnvFileItem(EnvFile);

impl<'de> Deserialize<'de> for EnvFileItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::short_or_long(d, |v| match v {
            Value::String(path) => Ok(EnvFile {
                path,
                required: true,
                format: None,
            }),
            other => Err(
                Hinted::new(format!("invalid env_file {}", describe(&other)))
                    .hint("use a path or a mapping with path, required and format"),
            ),
        })?
        .map(EnvFileItem)
        .ok_or_else(|| D::Error::custom("invalid env_file null"))
    }
}

/// A resource limit: one value for soft and hard, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ulimit {
    Single(i64),
    Range { soft: i64, hard: i64 },
}

impl Ulimit {
    /// `(soft, hard)`: a single number is both.
    pub fn soft_hard(&self) -> (i64, i64) {
        match *self {
            Ulimit::Single(n) => (n, n),
            Ulimit::Range { soft, hard } => (soft, hard),
        }
    }
}

impl Serialize for Ulimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ulimit::Single(n) => s.serialize_i64(*n),
            Ulimit::Range { soft, hard } => s.collect_map([("soft", soft), ("hard", hard)]),
        }
    }
}

impl<'de> Deserialize<'de> for Ulimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::via(d, |v| match v {
            Value::Object(m) => {
                let get = |k: &str| {
                    m.get(k)
                        .ok_or_else(|| {
                            Hinted::new(format!("missing \"{k}\" in ulimit"))
                                .hint("give both soft and hard, or a single number")
                        })
                        .and_then(de::parse_i64)
                };
                if let Some(bad) = m
                    .keys()
                    .find(|k| !matches!(k.as_str(), "soft" | "hard") && !k.starts_with("x-"))
                {
                    return Err(Hinted::new(format!(
                        "additional property \"{bad}\" is not allowed"
                    ))
                    .hint("a ulimit has soft and hard"));
                }
                Ok(Ulimit::Range {
                    soft: get("soft")?,
                    hard: get("hard")?,
                })
            }
            other => de::parse_i64(other).map(Ulimit::Single),
        })
    }
}

/// Host name -> addresses (`extra_hosts`). Printed as sorted `host=ip`
/// strings like compose-go.
pub type HostsList = IndexMap<String, Vec<String>>;

pub(crate) fn de_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<HostsList, D::Error> {
    de::via(d, parse_hosts)
}

pub(crate) fn parse_hosts(v: &Value) -> Result<HostsList, Hinted> {
    let mut out: HostsList = IndexMap::new();
    match v {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                let s = de::parse_string(item)?;
                // `=` first: with `:` an IPv6 address would be split.
                let (host, ip) =
                    s.split_once('=')
                        .or_else(|| s.split_once(':'))
                        .ok_or_else(|| {
                            Hinted::new(format!("invalid extra host \"{s}\": missing IP"))
                                .hint("use \"host=ip\" or \"host:ip\"")
                        })?;
                out.entry(host.to_string())
                    .or_default()
                    .extend(ip.split(',').map(str::to_string));
            }
        }
        Value::Object(map) => {
            for (host, ips) in map {
                let ips = match ips {
                    Value::Null => vec![String::new()],
                    other => de::parse_string_or_list(other)?,
                };
                out.insert(host.clone(), ips);
            }
        }
        other => {
            return Err(Hinted::new(format!(
                "invalid extra_hosts {}",
                describe(other)
            )));
        }
    }
    for (host, ips) in &mut out {
        if host.is_empty() || host.contains([':', '=']) {
            return Err(Hinted::new(format!("bad host name \"{host}\"")));
        }
        for ip in ips.iter_mut() {
            if let Some(inner) = ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                *ip = inner.to_string();
            }
        }
    }
    Ok(out)
}

pub(crate) fn ser_hosts<S: Serializer>(h: &HostsList, s: S) -> Result<S::Ok, S::Error> {
    let mut list: Vec<String> = h
        .iter()
        .flat_map(|(host, ips)| ips.iter().map(move |ip| format!("{host}={ip}")))
        .collect();
    list.sort();
    s.collect_seq(list)
}

/// A host device made available in the container. `"/dev/x:/dev/y:rw"` is
/// the short form; permissions default to `rwm`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceMapping {
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

pub(crate) fn de_devices<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeviceMapping>, D::Error> {
    Ok(Option::<Vec<DeviceItem>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.0)
        .collect())
}

struct DeviceItem(DeviceMapping);

impl<'de> Deserialize<'de> for DeviceItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::short_or_long(d, |v| {
            let s = match v {
                Value::String(s) => s,
                other => return Err(Hinted::new(format!("invalid device {}", describe(&other)))),
            };
            let parts: Vec<&str> = s.split(':').collect();
            let (source, target, perms) = match parts.as_slice() {
                [a] => (*a, *a, "rwm"),
                [a, b] => (*a, *b, "rwm"),
                [a, b, c] => (*a, *b, *c),
                _ => {
                    return Err(Hinted::new(format!("confusing device mapping \"{s}\""))
                        .hint("use the long syntax with source, target and permissions"));
                }
            };
            Ok(DeviceMapping {
                source: source.to_string(),
                target: Some(target.to_string()),
                permissions: Some(perms.to_string()),
                extensions: IndexMap::new(),
            })
        })?
        .map(DeviceItem)
        .ok_or_else(|| D::Error::custom("invalid device null"))
    }
}

/// `extends:` a service, in this file or in `file` (as written; the loader
/// resolves it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extends {
    #[serde(default)]
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

pub(crate) fn de_extends<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Extends>, D::Error> {
    de::short_or_long(d, |v| match v {
        Value::String(service) => Ok(Extends {
            service,
            file: None,
        }),
        other => Err(Hinted::new(format!("invalid extends {}", describe(&other)))),
    })
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Logging {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(
        default,
        deserialize_with = "de::mapping",
        serialize_with = "de::sorted",
        skip_serializing_if = "IndexMap::is_empty"
    )]
    pub options: super::Mapping,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

/// `command`/`entrypoint`: a string is split with shell-word rules, a list
/// is kept; `Some(vec![])` (from `""` or `[]`) clears the image's value.
pub(crate) fn de_command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    de::via_opt(d, |v| match v {
        Value::String(s) => shellwords::split(s),
        Value::Array(items) => items.iter().map(de::parse_string).collect(),
        other => Err(Hinted::new(format!("invalid command {}", describe(other)))
            .hint("use a string or a list of strings")),
    })
}
