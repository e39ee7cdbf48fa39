//! The config hash: one sha256 over everything that shapes a container, so
//! "did this service change?" is a label comparison.
//!
//! What it covers: the service's canonical JSON (the model's own
//! serialization, the `docker compose config` form), with every object's
//! keys sorted (maps whose order means nothing, such as `environment` and
//! `labels`, hash the same however they were written; lists such as
//! `command`, `entrypoint` and `ports` keep their order, which matters);
//! the resolved names of the networks and volumes it uses; the definitions
//! of the configs and secrets it mounts with their files' content digests
//! (passed in, so this crate reads no files); and the image digest.
//!
//! What it leaves out, because it does not change the container:
//! `deploy.replicas`/`scale` (how many, not what), `deploy.update_config`,
//! `rollback_config`, `placement` and `mode`; `depends_on` (ordering, and
//! whether a dependent restarts, are the planner's); `profiles`; `build`
//! (the built image's digest stands for it); `pull_policy`; `develop`;
//! `extends`; `x-*` extensions. `env_file` and `label_file` paths are left
//! out too: their contents are already merged into `environment` and
//! `labels`, which are hashed value by value; hashing the raw files as well
//! would recreate containers when only a comment changed.
//!
//! Besides the hash, [`HashInput::keys_label`] gives a short digest per
//! top-level key, stored in a label, so a plan can name the keys that
//! changed without keeping their values (possibly secrets) in labels.

use std::collections::BTreeMap;

use berth_spec::compose::model::{Project, Service};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// Keys of a service that do not shape its containers.
const EXCLUDED_KEYS: &[&str] = &[
    "profiles",
    "build",
    "pull_policy",
    "pull_refresh_after",
    "scale",
    "depends_on",
    "develop",
    "extends",
    "env_file",
    "label_file",
];

/// Keys of `deploy` that do not shape a container.
const EXCLUDED_DEPLOY_KEYS: &[&str] = &[
    "replicas",
    "update_config",
    "rollback_config",
    "placement",
    "mode",
];

/// The canonical inputs of one service's containers, by top-level key.
#[derive(Debug, Clone, PartialEq)]
pub struct HashInput {
    keys: BTreeMap<String, Value>,
}

impl HashInput {
    /// `file_digests` maps absolute file paths (configs' and secrets'
    /// `file:`) to their content digests; a file missing from it hashes as
    /// `"unknown"`, so a digest appearing later counts as a change.
    pub fn new(
        project: &Project,
        service: &Service,
        file_digests: &BTreeMap<String, String>,
    ) -> Self {
        let mut keys = BTreeMap::new();
        if let Ok(Value::Object(map)) = serde_json::to_value(service) {
            for (key, value) in map {
                if EXCLUDED_KEYS.contains(&key.as_str()) || key.starts_with("x-") {
                    continue;
                }
                let value = if key == "deploy" {
                    strip_deploy(value)
                } else {
                    value
                };
                if value == Value::Object(Map::new()) {
                    continue;
                }
                keys.insert(key, canonical(value));
            }
        }
        add_resolved_names(&mut keys, project, service);
        add_file_objects(&mut keys, project, service, file_digests);
        Self { keys }
    }

    /// `sha256:<hex>` over the canonical inputs and the image digest.
    pub fn hash(&self, image_digest: Option<&str>) -> String {
        let mut whole = Map::new();
        whole.insert(
            "image_digest".into(),
            image_digest.map_or(Value::Null, Value::from),
        );
        whole.insert(
            "service".into(),
            Value::Object(self.keys.clone().into_iter().collect()),
        );
        format!("sha256:{}", sha256_hex(&Value::Object(whole)))
    }

    /// `key=digest12,...` sorted by key: the `berth.config-keys` label.
    pub fn keys_label(&self) -> String {
        self.keys
            .iter()
            .map(|(k, v)| format!("{k}={}", &sha256_hex(v)[..12]))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The top-level keys whose digests differ from a `berth.config-keys`
    /// label (added, removed or changed), sorted.
    pub fn changed_keys(&self, label: &str) -> Vec<String> {
        let old: BTreeMap<&str, &str> = label
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let new_label = self.keys_label();
        let new: BTreeMap<&str, &str> = new_label
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let mut changed: Vec<String> = old
            .keys()
            .chain(new.keys())
            .filter(|k| old.get(*k) != new.get(*k))
            .map(|k| (*k).to_string())
            .collect();
        changed.sort();
        changed.dedup();
        changed
    }
}

fn strip_deploy(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            for key in EXCLUDED_DEPLOY_KEYS {
                map.shift_remove(*key);
            }
            Value::Object(map)
        }
        other => other,
    }
}

/// Every object's keys sorted, recursively; arrays keep their order.
pub(crate) fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

fn sha256_hex(value: &Value) -> String {
    // serde_json's compact form of a canonical value is deterministic.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// Network and volume keys map to project-level names; renaming the
/// top-level resource moves the container, so the names join the hash
/// under the key the user wrote (`networks`, `volumes`).
fn add_resolved_names(keys: &mut BTreeMap<String, Value>, project: &Project, service: &Service) {
    let networks: Map<String, Value> = service
        .networks
        .keys()
        .map(|key| {
            let name = crate::desired::network_name(project, key);
            (key.clone(), Value::from(name))
        })
        .collect();
    if !networks.is_empty() {
        wrap(keys, "networks", "resolved", Value::Object(networks));
    }
    let volumes: Map<String, Value> = service
        .volumes
        .iter()
        .filter(|v| v.kind == "volume")
        .filter_map(|v| v.source.as_ref())
        .map(|key| {
            let name = crate::desired::volume_name(project, key);
            (key.clone(), Value::from(name))
        })
        .collect();
    if !volumes.is_empty() {
        wrap(keys, "volumes", "resolved", Value::Object(volumes));
    }
}

/// `configs`/`secrets`: the references, the top-level definitions they
/// point at, and the content digests of their files.
fn add_file_objects(
    keys: &mut BTreeMap<String, Value>,
    project: &Project,
    service: &Service,
    file_digests: &BTreeMap<String, String>,
) {
    for (key, refs, defs) in [
        ("configs", &service.configs, &project.configs),
        ("secrets", &service.secrets, &project.secrets),
    ] {
        if refs.is_empty() {
            continue;
        }
        let resolved: Map<String, Value> = refs
            .iter()
            .map(|r| {
                let def = defs.get(&r.source);
                let digest = def
                    .and_then(|d| d.file.as_ref())
                    .map(|f| file_digests.get(f).map_or("unknown", String::as_str));
                let value = serde_json::json!({
                    "definition": def.map(|d| canonical(serde_json::to_value(d).unwrap_or_default())),
                    "digest": digest,
                });
                (r.source.clone(), value)
            })
            .collect();
        wrap(keys, key, "resolved", Value::Object(resolved));
    }
}

/// `keys[key] = {"declared": <as it was>, extra_name: extra}`.
fn wrap(keys: &mut BTreeMap<String, Value>, key: &str, extra_name: &str, extra: Value) {
    let declared = keys.remove(key).unwrap_or(Value::Null);
    let mut map = Map::new();
    map.insert("declared".into(), declared);
    map.insert(extra_name.into(), extra);
    keys.insert(key.into(), Value::Object(map));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn project(value: Value) -> Project {
        serde_json::from_value(value).unwrap()
    }

    fn hash_of(p: &Project, service: &str, digest: Option<&str>) -> String {
        HashInput::new(p, &p.services[service], &BTreeMap::new()).hash(digest)
    }

    fn base() -> Value {
        json!({
            "name": "shop",
            "services": {
                "web": {
                    "image": "nginx:1.25",
                    "command": ["nginx", "-g", "daemon off;"],
                    "environment": {"A": "1", "B": "2"},
                    "labels": {"x": "1", "y": "2"},
                    "ports": [{"target": 80, "published": "8080"}, {"target": 443, "published": "8443"}],
                    "depends_on": {"db": {"condition": "service_healthy"}},
                    "networks": {"default": null},
                },
                "db": {"image": "postgres:16", "environment": {"P": "x"}, "networks": {"default": null}}
            },
            "networks": {"default": {"name": "shop_default"}}
        })
    }

    /// Each edit of the base project, and whether web's hash must change.
    #[test]
    fn what_changes_the_hash() {
        let original = hash_of(&project(base()), "web", Some("sha256:aaa"));
        type Edit = Box<dyn Fn(&mut Value)>;
        let edits: Vec<(&str, Edit, bool)> = vec![
            (
                "env value",
                Box::new(|v| v["services"]["web"]["environment"]["A"] = json!("9")),
                true,
            ),
            (
                "env added",
                Box::new(|v| v["services"]["web"]["environment"]["C"] = json!("3")),
                true,
            ),
            (
                "env reordered",
                Box::new(|v| v["services"]["web"]["environment"] = json!({"B": "2", "A": "1"})),
                false,
            ),
            (
                "labels reordered",
                Box::new(|v| v["services"]["web"]["labels"] = json!({"y": "2", "x": "1"})),
                false,
            ),
            (
                "command reordered",
                Box::new(|v| {
                    v["services"]["web"]["command"] = json!(["nginx", "daemon off;", "-g"])
                }),
                true,
            ),
            (
                "ports reordered",
                Box::new(
                    |v| v["services"]["web"]["ports"] = json!([{"target": 443, "published": "8443"}, {"target": 80, "published": "8080"}]),
                ),
                true,
            ),
            (
                "image tag",
                Box::new(|v| v["services"]["web"]["image"] = json!("nginx:1.26")),
                true,
            ),
            (
                "replicas",
                Box::new(|v| v["services"]["web"]["deploy"] = json!({"replicas": 3})),
                false,
            ),
            (
                "scale",
                Box::new(|v| v["services"]["web"]["scale"] = json!(2)),
                false,
            ),
            (
                "depends_on",
                Box::new(|v| {
                    v["services"]["web"]["depends_on"] =
                        json!({"db": {"condition": "service_started", "restart": true}})
                }),
                false,
            ),
            (
                "profiles",
                Box::new(|v| v["services"]["web"]["profiles"] = json!(["prod"])),
                false,
            ),
            (
                "pull_policy",
                Box::new(|v| v["services"]["web"]["pull_policy"] = json!("always")),
                false,
            ),
            (
                "build",
                Box::new(|v| v["services"]["web"]["build"] = json!({"context": "/src"})),
                false,
            ),
            (
                "extension",
                Box::new(|v| v["services"]["web"]["x-note"] = json!("hi")),
                false,
            ),
            (
                "memory limit",
                Box::new(|v| {
                    v["services"]["web"]["deploy"] =
                        json!({"resources": {"limits": {"memory": "512m"}}})
                }),
                true,
            ),
            (
                "healthcheck",
                Box::new(|v| {
                    v["services"]["web"]["healthcheck"] =
                        json!({"test": ["CMD", "true"], "interval": "5s"})
                }),
                true,
            ),
            (
                "restart policy",
                Box::new(|v| v["services"]["web"]["restart"] = json!("on-failure:3")),
                true,
            ),
            (
                "deploy restart policy",
                Box::new(|v| {
                    v["services"]["web"]["deploy"] =
                        json!({"restart_policy": {"condition": "on-failure", "delay": "2s"}})
                }),
                true,
            ),
            (
                "dependency's env",
                Box::new(|v| v["services"]["db"]["environment"]["P"] = json!("y")),
                false,
            ),
            (
                "dependency's image",
                Box::new(|v| v["services"]["db"]["image"] = json!("postgres:17")),
                false,
            ),
            (
                "network renamed",
                Box::new(|v| v["networks"]["default"]["name"] = json!("other")),
                true,
            ),
        ];
        for (what, edit, changes) in edits {
            let mut v = base();
            edit(&mut v);
            let got = hash_of(&project(v), "web", Some("sha256:aaa"));
            assert_eq!(got != original, changes, "{what}");
        }
    }

    #[test]
    fn image_digest_changes_the_hash_and_is_stable() {
        let p = project(base());
        let a = hash_of(&p, "web", Some("sha256:aaa"));
        assert_eq!(a, hash_of(&p, "web", Some("sha256:aaa")));
        assert_ne!(a, hash_of(&p, "web", Some("sha256:bbb")));
        assert_ne!(a, hash_of(&p, "web", None));
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64, "{a}");
    }

    #[test]
    fn config_and_secret_file_contents_count() {
        let mut v = base();
        v["services"]["web"]["configs"] = json!([{"source": "site"}]);
        v["configs"] = json!({"site": {"file": "/srv/site.conf", "name": "shop_site"}});
        let p = project(v);
        let digests = |d: &str| BTreeMap::from([("/srv/site.conf".to_string(), d.to_string())]);
        let h = |d: &str| HashInput::new(&p, &p.services["web"], &digests(d)).hash(None);
        assert_eq!(h("sha256:1"), h("sha256:1"));
        assert_ne!(h("sha256:1"), h("sha256:2"));
        let input = HashInput::new(&p, &p.services["web"], &digests("sha256:1"));
        let label = input.keys_label();
        let changed = HashInput::new(&p, &p.services["web"], &digests("sha256:2"));
        assert_eq!(changed.changed_keys(&label), ["configs"]);
    }

    #[test]
    fn changed_keys_name_top_level_keys() {
        let before = project(base());
        let label = HashInput::new(&before, &before.services["web"], &BTreeMap::new()).keys_label();
        assert!(label.starts_with("command="), "{label}");
        let mut v = base();
        v["services"]["web"]["environment"]["A"] = json!("9");
        v["services"]["web"]["user"] = json!("1000");
        v["services"]["web"]["labels"] = json!({});
        let after = project(v);
        let input = HashInput::new(&after, &after.services["web"], &BTreeMap::new());
        assert_eq!(
            input.changed_keys(&label),
            ["environment", "labels", "user"]
        );
        assert!(input.changed_keys(&input.keys_label()).is_empty());
    }
}
