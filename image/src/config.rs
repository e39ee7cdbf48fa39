//! Image configuration: the config blob read into runtime-neutral types.
//!
//! [`ConfigFile`] is the whole blob (platform, creation time, layer diff
//! IDs); [`ImageConfig`] is its `config` object, the defaults a container
//! starts with (Env, Entrypoint, Cmd, WorkingDir, User, ExposedPorts,
//! Volumes, Labels, StopSignal) plus Docker's `Healthcheck` extension,
//! which the OCI spec and oci-spec do not model.
//!
//! The blob is read from raw JSON rather than through oci-spec's
//! `ImageConfiguration`: real configs carry Docker-only keys
//! (`Healthcheck`, `Shell`, `ArgsEscaped`, `container_config`) and
//! tolerate `null` where the spec says array, and a runtime must start
//! what `docker save` produced.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The config blob: what an image is and how its containers start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// GOARCH-style, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// GOOS-style, e.g. `linux`.
    pub os: String,
    pub variant: Option<String>,
    /// RFC 3339, as written in the blob.
    pub created: Option<String>,
    pub author: Option<String>,
    /// The uncompressed digest of each layer, lowest first
    /// (`rootfs.diff_ids`).
    pub diff_ids: Vec<Digest>,
    pub history: Vec<History>,
    pub config: ImageConfig,
}

/// One `history` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct History {
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: bool,
}

/// How containers of this image start unless told otherwise. Lists keep
/// the image's order; `None` means "not set" where that differs from empty
/// (an empty `Entrypoint` resets a parent's, Docker distinguishes them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageConfig {
    /// `KEY=value` strings, in order.
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`, unresolved.
    pub user: Option<String>,
    pub exposed_ports: Vec<ExposedPort>,
    /// Container paths the image declares as volumes.
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// A signal name (`SIGTERM`) or number, as written.
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    /// Docker's `Shell` (for shell-form commands); `None` means
    /// `["/bin/sh", "-c"]`.
    pub shell: Option<Vec<String>>,
}

impl ImageConfig {
    /// Looks up `key` in [`ImageConfig::env`] (the last one wins, as in a
    /// shell).
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then_some(v)
        })
    }
}

/// A port the image says it listens on (`ExposedPorts` key `80/tcp`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExposedPort {
    pub port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

/// Docker's healthcheck (`config.Healthcheck`). Durations of zero mean
/// "inherit the default" and read as `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    pub test: HealthTest,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    /// Consecutive failures before unhealthy; `None` is the default (3).
    pub retries: Option<u32>,
}

/// What a healthcheck runs (`Test`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthTest {
    /// `[]`: inherit the parent image's test.
    Inherit,
    /// `["NONE"]`: healthchecks are disabled.
    None,
    /// `["CMD", args...]`: run args directly.
    Exec(Vec<String>),
    /// `["CMD-SHELL", command]`: run through the image's shell.
    Shell(String),
}

/// The blob's top level, leniently typed: every field may be absent or
/// null.
#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    rootfs: Option<RawRootFs>,
    #[serde(default)]
    history: Option<Vec<RawHistory>>,
    #[serde(default)]
    config: Option<Value>,
}

#[derive(Deserialize)]
struct RawRootFs {
    #[serde(default)]
    diff_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawHistory {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    empty_layer: Option<bool>,
}

impl ConfigFile {
    /// Parses a config blob. `what` names it in errors (e.g. the digest).
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self> {
        let json_err = |source| Error::InvalidJson {
            what: format!("image config {what}"),
            source,
        };
        let value: Value = serde_json::from_slice(bytes).map_err(json_err)?;
        // serde would also read a struct from a JSON array, positionally.
        if !value.is_object() {
            return Err(Error::invalid(
                format!("image config {what}"),
                "not a JSON object",
            ));
        }
        let raw = RawFile::deserialize(value).map_err(json_err)?;
        let diff_ids = raw
            .rootfs
            .and_then(|r| r.diff_ids)
            .unwrap_or_default()
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<Vec<_>>>()?;
        let config = match raw.config {
            Some(Value::Object(map)) => parse_image_config(&map, what)?,
            Some(Value::Null) | None => ImageConfig::default(),
            Some(_) => {
                return Err(Error::invalid(
                    format!("image config {what}"),
                    "`config` is not an object",
                ));
            }
        };
        Ok(Self {
            architecture: raw.architecture.unwrap_or_default(),
            os: raw.os.unwrap_or_default(),
            variant: raw.variant,
            created: raw.created,
            author: raw.author,
            diff_ids,
            history: raw
                .history
                .unwrap_or_default()
                .into_iter()
                .map(|h| History {
                    created: h.created,
                    created_by: h.created_by,
                    comment: h.comment,
                    empty_layer: h.empty_layer.unwrap_or(false),
                })
                .collect(),
            config,
        })
    }
}

type Map = serde_json::Map<String, Value>;

fn parse_image_config(map: &Map, what: &str) -> Result<ImageConfig> {
    let bad = |key: &str, reason: &str| {
        Error::invalid(format!("image config {what}"), format!("{key}: {reason}"))
    };
    let strings = |key: &str| -> Result<Option<Vec<String>>> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad(key, "expected strings"))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            // Some old tools wrote a bare string.
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(_) => Err(bad(key, "expected a list of strings")),
        }
    };
    let string = |key: &str| -> Result<Option<String>> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(key, "expected a string")),
        }
    };
    // ExposedPorts and Volumes are Go `map[string]struct{}`: the keys are
    // the values.
    let keys = |key: &str| -> Result<Vec<String>> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(m)) => Ok(m.keys().cloned().collect()),
            Some(_) => Err(bad(key, "expected an object")),
        }
    };
    let mut exposed_ports = keys("ExposedPorts")?
        .iter()
        .map(|k| parse_port(k).ok_or_else(|| bad("ExposedPorts", &format!("bad port {k:?}"))))
        .collect::<Result<Vec<_>>>()?;
    exposed_ports.sort();
    let mut volumes = keys("Volumes")?;
    volumes.sort();
    let labels = match map.get("Labels") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|v| (k.clone(), v.to_owned()))
                    .ok_or_else(|| bad("Labels", "expected string values"))
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(bad("Labels", "expected an object")),
    };
    let healthcheck = match map.get("Healthcheck") {
        None | Some(Value::Null) => None,
        Some(Value::Object(h)) => Some(parse_healthcheck(h).map_err(|r| bad("Healthcheck", &r))?),
        Some(_) => return Err(bad("Healthcheck", "expected an object")),
    };
    Ok(ImageConfig {
        env: strings("Env")?.unwrap_or_default(),
        entrypoint: strings("Entrypoint")?,
        cmd: strings("Cmd")?,
        working_dir: string("WorkingDir")?,
        user: string("User")?,
        exposed_ports,
        volumes,
        labels,
        stop_signal: string("StopSignal")?,
        healthcheck,
        shell: strings("Shell")?,
    })
}

/// `80/tcp`, `53/udp`, or `80` (tcp).
fn parse_port(key: &str) -> Option<ExposedPort> {
    let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
    Some(ExposedPort {
        port: port.parse().ok()?,
        protocol: protocol.to_ascii_lowercase(),
    })
}

fn parse_healthcheck(h: &Map) -> std::result::Result<Healthcheck, String> {
    let test: Vec<String> = match h.get("Test") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("Test: {e}"))?,
    };
    let test = match test.split_first() {
        None => HealthTest::Inherit,
        Some((first, _)) if first == "NONE" => HealthTest::None,
        Some((first, rest)) if first == "CMD" => HealthTest::Exec(rest.to_vec()),
        Some((first, rest)) if first == "CMD-SHELL" => HealthTest::Shell(rest.join(" ")),
        Some((first, _)) => return Err(format!("unknown Test kind {first:?}")),
    };
    // Go's time.Duration: integer nanoseconds.
    let duration = |key: &str| -> std::result::Result<Option<Duration>, String> {
        match h.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_i64() {
                Some(0) => Ok(None),
                Some(n) if n > 0 => Ok(Some(Duration::from_nanos(n.unsigned_abs()))),
                _ => Err(format!("{key}: expected positive nanoseconds")),
            },
        }
    };
    let retries = match h.get("Retries") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(0) => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| "Retries: too large".to_owned())?),
            None => return Err("Retries: expected a count".into()),
        },
    };
    Ok(Healthcheck {
        test,
        interval: duration("Interval")?,
        timeout: duration("Timeout")?,
        start_period: duration("StartPeriod")?,
        start_interval: duration("StartInterval")?,
        retries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_docker_config() {
        let blob = br#"{
          "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05.123456789Z",
          "config": {
            "Env": ["PATH=/usr/bin:/bin", "A=1", "A=2"],
            "Entrypoint": ["/docker-entrypoint.sh"],
            "Cmd": ["nginx", "-g", "daemon off;"],
            "WorkingDir": "/srv", "User": "101:101",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Volumes": {"/data": {}},
            "Labels": {"maintainer": "x"},
            "StopSignal": "SIGQUIT",
            "Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://localhost/"],
                            "Interval": 30000000000, "Timeout": 0, "Retries": 3},
            "ArgsEscaped": true, "OnBuild": null
          },
          "rootfs": {"type": "layers", "diff_ids": [
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},
          "history": [{"created_by": "ADD rootfs", "empty_layer": false}]
        }"#;
        let file = ConfigFile::parse(blob, "test").unwrap();
        assert_eq!(file.architecture, "amd64");
        assert_eq!(file.diff_ids.len(), 1);
        assert_eq!(file.history[0].created_by.as_deref(), Some("ADD rootfs"));
        let c = &file.config;
        assert_eq!(c.env_var("A"), Some("2"));
        assert_eq!(c.env_var("PATH"), Some("/usr/bin:/bin"));
        assert_eq!(
            c.entrypoint.as_deref(),
            Some(&["/docker-entrypoint.sh".to_owned()][..])
        );
        assert_eq!(c.cmd.as_ref().map(Vec::len), Some(3));
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert_eq!(c.user.as_deref(), Some("101:101"));
        assert_eq!(
            c.exposed_ports,
            vec![
                ExposedPort {
                    port: 53,
                    protocol: "udp".into()
                },
                ExposedPort {
                    port: 80,
                    protocol: "tcp".into()
                },
            ]
        );
        assert_eq!(c.volumes, vec!["/data".to_owned()]);
        assert_eq!(c.labels["maintainer"], "x");
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        let h = c.healthcheck.as_ref().unwrap();
        assert_eq!(
            h.test,
            HealthTest::Shell("curl -f http://localhost/".into())
        );
        assert_eq!(h.interval, Some(Duration::from_secs(30)));
        assert_eq!(h.timeout, None);
        assert_eq!(h.retries, Some(3));
    }

    #[test]
    fn tolerates_nulls_and_absence() {
        let file = ConfigFile::parse(br#"{"architecture":"arm64","os":"linux","config":{"Env":null,"Cmd":null,"Entrypoint":[]}}"#, "t").unwrap();
        assert!(file.config.env.is_empty());
        assert_eq!(file.config.cmd, None);
        assert_eq!(file.config.entrypoint, Some(vec![]));
        assert!(file.diff_ids.is_empty());
        let file = ConfigFile::parse(br#"{}"#, "t").unwrap();
        assert_eq!(file.config, ImageConfig::default());
    }

    #[test]
    fn healthcheck_kinds() {
        let parse = |test: &str| {
            let blob = format!(r#"{{"config":{{"Healthcheck":{{"Test":{test}}}}}}}"#);
            ConfigFile::parse(blob.as_bytes(), "t").map(|f| f.config.healthcheck.unwrap().test)
        };
        assert_eq!(parse(r#"["NONE"]"#).unwrap(), HealthTest::None);
        assert_eq!(parse("[]").unwrap(), HealthTest::Inherit);
        assert_eq!(
            parse(r#"["CMD","true"]"#).unwrap(),
            HealthTest::Exec(vec!["true".into()])
        );
        assert!(parse(r#"["BOGUS"]"#).is_err());
    }

    #[test]
    fn refuses_malformed_configs() {
        for bad in [
            &br#"[]"#[..],
            br#"{"config":{"Env":"#,
            br#"{"config":{"ExposedPorts":{"http":{}}}}"#,
            br#"{"rootfs":{"diff_ids":["md5:x"]}}"#,
            br#"{"config":{"Labels":{"a":1}}}"#,
        ] {
            assert!(
                ConfigFile::parse(bad, "t").is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
