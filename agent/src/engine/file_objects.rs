//! Configs and secrets, prepared for planning: the inputs the reconciler's
//! config hash needs but cannot read itself (it does no I/O).
//!
//! - `environment:` sources take their value from the project's
//!   environment (`.env` under the process environment, compose-go's
//!   `Project.Environment`) and become inline content, so the value is what
//!   the hash covers and what the container gets.
//! - `file:` sources are hashed by `reconcile::digests::file_digests`
//!   (the one the agent and the CLI share), so editing the file recreates
//!   the containers that mount it.

use std::collections::BTreeMap;

use berth_spec::compose::model::{FileObjectConfig, Project};

/// Replaces each `environment: VAR` source with `content:` from `env`.
/// A variable that is not set stays a reference: creating a container
/// that uses it then fails, naming the variable.
pub fn resolve_environment_sources(project: &mut Project, env: &BTreeMap<String, String>) {
    let objects = project
        .configs
        .values_mut()
        .chain(project.secrets.values_mut());
    for object in objects {
        resolve(object, env);
    }
}

fn resolve(object: &mut FileObjectConfig, env: &BTreeMap<String, String>) {
    if object.external || object.file.is_some() || object.content.is_some() {
        return;
    }
    if let Some(value) = object.environment.as_ref().and_then(|var| env.get(var)) {
        object.content = Some(value.clone());
        object.environment = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(value: serde_json::Value) -> Project {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn environment_sources_become_content() {
        let mut p = project(serde_json::json!({
            "name": "p",
            "services": {},
            "secrets": {
                "token": {"environment": "TOKEN"},
                "missing": {"environment": "NOPE"},
                "inline": {"content": "x"}
            },
            "configs": {"site": {"environment": "SITE"}}
        }));
        let env = BTreeMap::from([
            ("TOKEN".to_string(), "t0k".to_string()),
            ("SITE".to_string(), "server {}".to_string()),
        ]);
        resolve_environment_sources(&mut p, &env);
        assert_eq!(p.secrets["token"].content.as_deref(), Some("t0k"));
        assert_eq!(p.secrets["token"].environment, None);
        assert_eq!(p.configs["site"].content.as_deref(), Some("server {}"));
        assert_eq!(p.secrets["missing"].environment.as_deref(), Some("NOPE"));
        assert_eq!(p.secrets["inline"].content.as_deref(), Some("x"));
    }
}
