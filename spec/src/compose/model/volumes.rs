//! Service mounts: [`ServiceVolume`] (long syntax) and [`parse_volume_spec`],
//! a port of compose-go `format.ParseVolume` for the short syntax
//! (`./data:/data:ro`, `data:/data`, `/data`).

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::de::{self, Hinted, describe, is_false};
use super::{ByteSize, Mapping};

/// One mount of a service, long syntax.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: String,
    /// Host path for binds (the loader makes it absolute), volume name for
    /// volumes, image reference for image mounts; `None` for anonymous
    /// volumes and tmpfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub target: String,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageOptions>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BindOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// Defaults to true when a `bind:` block is given (compose-go).
    #[serde(
        default = "yes",
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub create_host_path: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive: Option<String>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeOptions {
    #[serde(
        default,
        deserialize_with = "de::mapping",
        skip_serializing_if = "IndexMap::is_empty",
        serialize_with = "de::sorted"
    )]
    pub labels: Mapping,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub nocopy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TmpfsOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
    /// File mode; a string is read as octal.
    #[serde(
        default,
        deserialize_with = "opt_mode",
        skip_serializing_if = "Option::is_none"
    )]
    pub mode: Option<u32>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

/// A file mode: an integer as is, a string as octal (`"0440"` = 288).
pub(crate) fn parse_mode(v: &Value) -> Result<u32, Hinted> {
    let bad = || {
        Hinted::new(format!("invalid file mode {}", describe(v)))
            .hint("use an octal string like \"0440\" or a number")
    };
    match v {
        Value::String(s) => {
            u32::from_str_radix(s.trim().trim_start_matches("0o"), 8).map_err(|_| bad())
        }
        other => de::parse_u64(other)
            .ok()
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(bad),
    }
}

pub(crate) fn opt_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    de::via_opt(d, parse_mode)
}

/// `volumes:` items of a service: short-syntax strings or mappings.
pub(crate) fn de_service_volumes<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<ServiceVolume>, D::Error> {
    Ok(Option::<Vec<VolumeItem>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.0)
        .collect())
}

struct VolumeItem(ServiceVolume);

impl<'de> Deserialize<'de> for VolumeItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::short_or_long(d, |v| match v {
            Value::String(s) => parse_volume_spec(&s),
            other => {
                Err(Hinted::new(format!("invalid volume {}", describe(&other))).hint(VOLUME_HINT))
            }
        })?
        .map(VolumeItem)
        .ok_or_else(|| serde::de::Error::custom("invalid volume null"))
    }
}

const VOLUME_HINT: &str = "use [SOURCE:]TARGET[:OPTIONS], like \"./data:/data:ro\" or \"data:/var/lib/data\", or the long syntax";

/// Parses `[SOURCE:]TARGET[:MODE]`.
pub fn parse_volume_spec(spec: &str) -> Result<ServiceVolume, Hinted> {
    let mut vol = ServiceVolume::default();
    let chars: Vec<char> = spec.chars().collect();
    if chars.is_empty() {
        return Err(Hinted::new("invalid empty volume spec").hint(VOLUME_HINT));
    }
    if chars.len() <= 2 {
        vol.kind = "volume".into();
        vol.target = spec.to_string();
        return Ok(vol);
    }
    let mut buffer: Vec<char> = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    for &c in &chars {
        // `C:` at the start of a section is a Windows drive, not a separator.
        if c == ':' && buffer.len() == 1 && buffer[0].is_alphabetic() {
            buffer.push(c);
        } else if c == ':' {
            fields.push(buffer.iter().collect());
            buffer.clear();
        } else {
            buffer.push(c);
        }
    }
    fields.push(buffer.iter().collect());
    let err =
        |why: &str| Hinted::new(format!("invalid volume \"{spec}\": {why}")).hint(VOLUME_HINT);
    if fields.iter().any(String::is_empty) {
        return Err(err("empty section between colons"));
    }
    match fields.len() {
        1 => vol.target = fields.remove(0),
        2 | 3 => {
            vol.source = Some(fields[0].clone());
            vol.target = fields[1].clone();
            if let Some(options) = fields.get(2) {
                apply_options(&mut vol, options);
            }
        }
        _ => return Err(err("too many colons")),
    }
    let is_path = vol.source.as_deref().is_some_and(is_file_path);
    if is_path {
        vol.kind = "bind".into();
        // Short syntax binds create a missing host path (docker-compose v1
        // compatibility).
        vol.bind
            .get_or_insert_with(BindOptions::default)
            .create_host_path = true;
    } else {
        vol.kind = "volume".into();
        vol.volume.get_or_insert_with(VolumeOptions::default);
    }
    Ok(vol)
}

fn apply_options(vol: &mut ServiceVolume, options: &str) {
    for option in options.split(',') {
        match option {
            "ro" => vol.read_only = true,
            "rw" => vol.read_only = false,
            "nocopy" => vol.volume.get_or_insert_with(VolumeOptions::default).nocopy = true,
            "z" | "Z" => {
                vol.bind.get_or_insert_with(BindOptions::default).selinux = Some(option.to_string())
            }
            "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                vol.bind
                    .get_or_insert_with(BindOptions::default)
                    .propagation = Some(option.to_string())
            }
            // compose-go ignores the rest (consistent, cached, delegated...).
            _ => {}
        }
    }
}

fn is_file_path(source: &str) -> bool {
    let mut chars = source.chars();
    match chars.next() {
        Some('.' | '/' | '~') => true,
        Some('\\') => source.starts_with("\\\\"),
        Some(c) if c.is_alphabetic() => chars.next() == Some(':'),
        _ => false,
    }
}
