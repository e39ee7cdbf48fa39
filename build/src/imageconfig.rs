//! The image config a stage builds up: Docker's config JSON (`config`
//! object with `Env`, `Cmd`, `Entrypoint`, ... as Docker names them, so
//! keys berth does not model survive from the base image), the layers,
//! and the history, one entry per instruction as BuildKit writes it.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_image::{BuiltLayer, Digest};
use berth_spec::dockerfile::{CommandLine, Healthcheck};
use serde_json::{Map, Value, json};

use crate::inline_cache::{CONFIG_KEY, CacheRecord};

/// The default shell of shell-form commands.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];
/// Docker's PATH for images that set none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A stage's image as it is built.
#[derive(Debug, Clone, Default)]
pub struct ImageState {
    /// The `config` object.
    pub config: Map<String, Value>,
    pub author: Option<String>,
    pub history: Vec<Value>,
    pub layers: Vec<BuiltLayer>,
    /// RFC 3339 time of the newest step (from the cache when cached).
    pub created: String,
    /// CMD was set in this stage: a later ENTRYPOINT keeps it.
    pub cmd_set: bool,
    /// The cache keys of the filesystem steps that made `layers` (from
    /// this build's stages; a base image's own steps are not known).
    pub cache_records: Vec<CacheRecord>,
}

impl ImageState {
    /// From a base image's raw config blob.
    pub fn from_base(raw: &Value, layers: Vec<BuiltLayer>) -> Self {
        let config = raw
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let history = raw
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Self {
            config,
            author: raw.get("author").and_then(Value::as_str).map(str::to_owned),
            history,
            layers,
            created: raw
                .get("created")
                .and_then(Value::as_str)
                .unwrap_or("1970-01-01T00:00:00Z")
                .to_owned(),
            cmd_set: false,
            cache_records: Vec::new(),
        }
    }

    /// `FROM scratch`: no layers; Docker's default PATH.
    pub fn scratch() -> Self {
        let mut s = Self {
            created: "1970-01-01T00:00:00Z".to_owned(),
            ..Self::default()
        };
        s.config
            .insert("Env".into(), json!([format!("PATH={DEFAULT_PATH}")]));
        s
    }

    pub fn env(&self) -> Vec<String> {
        self.config
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn env_var(&self, key: &str) -> Option<String> {
        self.env().into_iter().rev().find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
            (k == key).then(|| v.to_owned())
        })
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        let entry = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == key)
        {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
        self.config.insert("Env".into(), json!(env));
    }

    fn string(&self, key: &str) -> Option<String> {
        self.config
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    pub fn user(&self) -> Option<String> {
        self.string("User")
    }

    pub fn workdir(&self) -> String {
        self.string("WorkingDir").unwrap_or_else(|| "/".to_owned())
    }

    pub fn shell(&self) -> Vec<String> {
        self.config
            .get("Shell")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| (*s).to_owned()).collect())
    }

    /// An argv for a command line: exec form as is, shell form through
    /// the stage's SHELL.
    pub fn argv(&self, command: &CommandLine) -> Vec<String> {
        match command {
            CommandLine::Exec(args) => args.clone(),
            CommandLine::Shell(s) => {
                let mut argv = self.shell();
                argv.push(s.clone());
                argv
            }
        }
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.config.insert(key.to_owned(), value);
    }

    fn map_insert(&mut self, key: &str, entry: &str, value: Value) {
        let slot = self
            .config
            .entry(key.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Some(map) = slot.as_object_mut() {
            map.insert(entry.to_owned(), value);
        }
    }

    pub fn add_label(&mut self, key: &str, value: &str) {
        self.map_insert("Labels", key, json!(value));
    }

    pub fn add_volume(&mut self, path: &str) {
        self.map_insert("Volumes", path, json!({}));
    }

    /// EXPOSE `80`, `80/udp`, `8000-8002/tcp`.
    pub fn expose(&mut self, spec: &str) -> Result<(), String> {
        let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
        let proto = proto.to_ascii_lowercase();
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("invalid protocol {proto:?} in EXPOSE {spec}"));
        }
        let parse = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| format!("invalid port {p:?} in EXPOSE {spec}"))
        };
        let (lo, hi) = match ports.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let p = parse(ports)?;
                (p, p)
            }
        };
        if hi < lo {
            return Err(format!("invalid port range in EXPOSE {spec}"));
        }
        for p in lo..=hi {
            self.map_insert("ExposedPorts", &format!("{p}/{proto}"), json!({}));
        }
        Ok(())
    }

    pub fn set_healthcheck(&mut self, hc: &Healthcheck) {
        let value = match hc {
            Healthcheck::None => json!({"Test": ["NONE"]}),
            Healthcheck::Check {
                test,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            } => {
                let test = match test {
                    CommandLine::Exec(args) => {
                        let mut t = vec!["CMD".to_owned()];
                        t.extend(args.iter().cloned());
                        t
                    }
                    CommandLine::Shell(s) => vec!["CMD-SHELL".to_owned(), s.clone()],
                };
                let mut m = Map::new();
                m.insert("Test".into(), json!(test));
                let ns = |d: &Option<Duration>| d.map(|d| d.as_nanos() as u64);
                for (k, v) in [
                    ("Interval", ns(interval)),
                    ("Timeout", ns(timeout)),
                    ("StartPeriod", ns(start_period)),
                    ("StartInterval", ns(start_interval)),
                ] {
                    if let Some(v) = v {
                        m.insert(k.into(), json!(v));
                    }
                }
                if let Some(r) = retries {
                    m.insert("Retries".into(), json!(r));
                }
                Value::Object(m)
            }
        };
        self.config.insert("Healthcheck".into(), value);
    }

    pub fn add_onbuild(&mut self, trigger: &str) {
        let slot = self
            .config
            .entry("OnBuild".to_owned())
            .or_insert_with(|| json!([]));
        if !slot.is_array() {
            *slot = json!([]);
        }
        if let Some(a) = slot.as_array_mut() {
            a.push(json!(trigger));
        }
    }

    /// The base's ONBUILD triggers, taken out (they run once, in the
    /// child, and are not inherited further).
    pub fn take_onbuild(&mut self) -> Vec<String> {
        match self.config.remove("OnBuild") {
            Some(Value::Array(a)) => a
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn push_history(&mut self, created_by: &str, empty_layer: bool) {
        let mut h = Map::new();
        h.insert("created".into(), json!(self.created));
        h.insert("created_by".into(), json!(created_by));
        h.insert("comment".into(), json!("buildkit.dockerfile.v0"));
        if empty_layer {
            h.insert("empty_layer".into(), json!(true));
        }
        self.history.push(Value::Object(h));
    }

    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// The config blob, byte-stable for equal states; with `inline_cache`,
    /// the steps' cache keys are in it (see `inline_cache`).
    pub fn to_config_json(&self, arch: &str, os: &str, inline_cache: bool) -> Vec<u8> {
        let mut top = Map::new();
        top.insert("architecture".into(), json!(arch));
        if inline_cache {
            top.insert(
                CONFIG_KEY.into(),
                crate::inline_cache::to_value(&self.cache_records),
            );
        }
        if let Some(a) = &self.author {
            top.insert("author".into(), json!(a));
        }
        top.insert("config".into(), Value::Object(sorted(&self.config)));
        top.insert("created".into(), json!(self.created));
        top.insert("history".into(), Value::Array(self.history.clone()));
        top.insert("os".into(), json!(os));
        top.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": self.diff_ids().iter().map(ToString::to_string).collect::<Vec<_>>()}),
        );
        serde_json::to_vec(&Value::Object(top)).unwrap_or_default()
    }
}

/// The config object with keys in a fixed order (the map keeps insertion
/// order, which depends on the instructions' order).
fn sorted(map: &Map<String, Value>) -> Map<String, Value> {
    let ordered: BTreeMap<&String, &Value> = map.iter().collect();
    ordered
        .into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn env_replaces_in_place_and_appends() {
        let mut s = ImageState::scratch();
        s.set_env("A", "1");
        s.set_env("PATH", "/x");
        assert_eq!(s.env(), vec!["PATH=/x".to_owned(), "A=1".to_owned()]);
        assert_eq!(s.env_var("A").as_deref(), Some("1"));
    }

    #[test]
    fn expose_ranges_and_protocols() {
        let mut s = ImageState::default();
        s.expose("8000-8001/udp").unwrap();
        s.expose("80").unwrap();
        let ports: Vec<&String> = s.config["ExposedPorts"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(ports, ["8000/udp", "8001/udp", "80/tcp"]);
        assert!(s.expose("80/xyz").is_err());
    }

    #[test]
    fn shell_form_uses_the_stage_shell() {
        let mut s = ImageState::default();
        assert_eq!(
            s.argv(&CommandLine::Shell("echo hi".into())),
            ["/bin/sh", "-c", "echo hi"]
        );
        s.set("Shell", json!(["/bin/bash", "-ec"]));
        assert_eq!(
            s.argv(&CommandLine::Shell("x".into())),
            ["/bin/bash", "-ec", "x"]
        );
    }
}
