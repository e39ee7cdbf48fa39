//! Normalization that needs the project's context: what `docker compose
//! config` adds to what the user wrote.
//!
//! - `env_file`s read and merged under `environment`; bare `KEY`s filled from
//!   the environment; `label_file`s merged under `labels`.
//! - Build contexts defaulted; `Dockerfile` as the default dockerfile.
//! - The `default` network attached to services that name none, and created
//!   when used; resource names (`<project>_<key>`) filled in.
//! - Services outside the active profiles set aside.
//!
//! Paths were made absolute per file, before merging (see `paths`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::diag::Diagnostic;

use super::files::FileReader;
use super::model::{NetworkConfig, Project, Service};

/// What normalization needs besides the project.
pub struct Context<'a> {
    pub project_dir: &'a Path,
    /// The interpolation environment: process environment over `.env`.
    pub environment: &'a BTreeMap<String, String>,
    /// Active profiles (`--profile`, `COMPOSE_PROFILES`); `*` enables all.
    pub profiles: Vec<String>,
    /// The merged document, to place errors.
    pub doc: &'a crate::yaml::Node,
}

impl Context<'_> {
    /// Where item `index` of the list at dotted `key` was written (a single
    /// string value counts as item 0), or the nearest existing parent.
    fn locate_item(&self, key: &str, index: usize) -> &crate::yaml::Span {
        use crate::yaml::{PathSeg, Value};
        let keys: Vec<&str> = key.split('.').collect();
        let node = keys.iter().try_fold(self.doc, |node, k| node.get(k));
        let mut path: Vec<PathSeg> = keys.iter().map(|k| PathSeg::Key((*k).into())).collect();
        if matches!(node.map(|n| &n.value), Some(Value::Seq(_))) {
            path.push(PathSeg::Index(index));
        }
        self.doc.locate(&path)
    }
}

/// Normalizes in place; returns the services set aside by profile, with
/// their profiles, for the semantic checks' hints.
pub fn normalize(
    project: &mut Project,
    context: &Context,
    reader: &mut FileReader,
) -> Vec<(String, Vec<String>)> {
    let disabled = select_profiles(project, &context.profiles, &mut reader.warnings);
    let project_name = project.name.clone();
    for (name, service) in project.services.iter_mut() {
        resolve_environment(name, service, context, reader);
        resolve_labels(name, service, context, reader);
        default_build(service, context.project_dir);
        if service.networks.is_empty() && service.network_mode.is_none() {
            service.networks.insert("default".into(), None);
        }
    }
    let uses_default = project
        .services
        .values()
        .any(|s| s.networks.contains_key("default"));
    if uses_default && !project.networks.contains_key("default") {
        project
            .networks
            .insert("default".into(), NetworkConfig::default());
    }
    name_resources(project, &project_name);
    disabled
}

/// Services whose `profiles` are all inactive are not part of the project.
fn select_profiles(
    project: &mut Project,
    active: &[String],
    warnings: &mut Vec<Diagnostic>,
) -> Vec<(String, Vec<String>)> {
    if active.iter().any(|p| p == "*") {
        return Vec::new();
    }
    let enabled =
        |s: &Service| s.profiles.is_empty() || s.profiles.iter().any(|p| active.contains(p));
    let disabled: Vec<(String, Vec<String>)> = project
        .services
        .iter()
        .filter(|(_, s)| !enabled(s))
        .map(|(n, s)| (n.clone(), s.profiles.clone()))
        .collect();
    for (name, _) in &disabled {
        project.services.shift_remove(name);
    }
    // An optional dependency on a disabled service is dropped; a required
    // one is reported by the semantic checks with the profile to enable.
    for (service_name, service) in project.services.iter_mut() {
        service.depends_on.retain(|dep, d| {
            let off = disabled.iter().find(|(n, _)| n == dep);
            match off {
                Some((_, profiles)) if !d.required => {
                    warnings.push(
                        Diagnostic::warning(format!(
                            "optional dependency {dep:?} of service {service_name:?} is not enabled (profiles: {})",
                            profiles.join(", ")
                        ))
                        .key(format!("services.{service_name}.depends_on.{dep}")),
                    );
                    false
                }
                _ => true,
            }
        });
    }
    disabled
}

/// `env_file`s in order (later wins), then `environment` over them; bare
/// keys take their value from the environment, or stay unset.
///
/// Inside an env file, `${X}` is looked up in the project environment
/// first, then in the service's own `environment`, then among the keys read
/// earlier in the same file (compose-go's `WithServicesEnvironmentResolved`).
fn resolve_environment(
    name: &str,
    service: &mut Service,
    context: &Context,
    reader: &mut FileReader,
) {
    let own: IndexMap<String, Option<String>> = std::mem::take(&mut service.environment)
        .into_iter()
        .map(|(k, v)| {
            let v = v.or_else(|| context.environment.get(&k).cloned());
            (k, v)
        })
        .collect();
    let mut merged: IndexMap<String, Option<String>> = IndexMap::new();
    for (index, env_file) in service.env_file.iter().enumerate() {
        let path = PathBuf::from(&env_file.path);
        if !path.is_file() {
            if env_file.required {
                let key = format!("services.{name}.env_file");
                reader.errors.push(
                    Diagnostic::error(format!("env file {} not found", path.display()))
                        .at(context.locate_item(&key, index))
                        .key(format!("{key}[{index}]"))
                        .hint("create the file, or mark it `required: false`"),
                );
            }
            continue;
        }
        let lookup = |k: &str| {
            context
                .environment
                .get(k)
                .cloned()
                .or_else(|| own.get(k).cloned().flatten())
        };
        if let Some(vars) = reader.read_env_file(&path, &lookup) {
            for (k, v) in vars {
                merged.insert(k, Some(v));
            }
        }
    }
    merged.extend(own);
    merged.sort_keys();
    service.environment = merged;
}

fn resolve_labels(name: &str, service: &mut Service, context: &Context, reader: &mut FileReader) {
    if service.label_file.is_empty() {
        return;
    }
    let mut merged = IndexMap::new();
    for (index, file) in service.label_file.iter().enumerate() {
        let path = PathBuf::from(file);
        let lookup = |k: &str| context.environment.get(k).cloned();
        if !path.is_file() {
            let key = format!("services.{name}.label_file");
            reader.errors.push(
                Diagnostic::error(format!("label file {} not found", path.display()))
                    .at(context.locate_item(&key, index))
                    .key(format!("{key}[{index}]"))
                    .hint("create the file or remove it from label_file"),
            );
            continue;
        }
        if let Some(vars) = reader.read_env_file(&path, &lookup) {
            merged.extend(vars);
        }
    }
    for (k, v) in std::mem::take(&mut service.labels) {
        merged.insert(k, v);
    }
    merged.sort_keys();
    service.labels = merged;
}

fn default_build(service: &mut Service, project_dir: &Path) {
    let Some(build) = service.build.as_mut() else {
        return;
    };
    if build.context.is_none() {
        build.context = Some(project_dir.to_string_lossy().into_owned());
    }
    if build.dockerfile.is_none() && build.dockerfile_inline.is_none() {
        build.dockerfile = Some("Dockerfile".into());
    }
}

/// `<project>_<key>` for networks, volumes, secrets and configs that do not
/// set `name:`; external ones are known by their key.
fn name_resources(project: &mut Project, project_name: &str) {
    let name_for = |key: &str, external: bool| {
        if external {
            key.to_string()
        } else {
            format!("{project_name}_{key}")
        }
    };
    for (key, network) in project.networks.iter_mut() {
        if network.name.is_none() {
            network.name = Some(name_for(key, network.external));
        }
    }
    for (key, volume) in project.volumes.iter_mut() {
        if volume.name.is_none() {
            volume.name = Some(name_for(key, volume.external));
        }
    }
    for (key, object) in project.secrets.iter_mut().chain(project.configs.iter_mut()) {
        if object.name.is_none() {
            object.name = Some(name_for(key, object.external));
        }
    }
}
