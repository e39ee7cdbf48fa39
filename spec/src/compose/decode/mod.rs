//! Typed decoding: a merged, interpolated, schema-checked JSON value to the
//! [`Project`] model, short syntax normalized to long syntax.
//!
//! [`decode`] collects every error it can instead of stopping at the first:
//! each service, network, volume, secret and config is decoded on its own,
//! and when one fails the offending key is set aside and the entity decoded
//! again, so one bad key does not hide the next. Every error carries the
//! key path ([`PathSeg`]s) the loader turns into file, line and column.
//!
//! [`coerce`] runs earlier, on the YAML [`crate::yaml::Node`] tree, to turn
//! interpolated strings back into the booleans and numbers the schema
//! expects.

pub mod coerce;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::compose::model::{Hinted, Project};
use crate::yaml::PathSeg;

pub use coerce::coerce;

/// A problem found while decoding, at a key path.
pub type DecodeError = crate::compose::problem::PathProblem;

/// A decoded project with the warnings found on the way (obsolete
/// `version`, deprecated `external.name`...).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub project: Project,
    pub warnings: Vec<DecodeError>,
}

/// Decodes a project; warnings are dropped (see [`decode_with_warnings`]).
pub fn decode(value: Value) -> Result<Project, Vec<DecodeError>> {
    decode_with_warnings(value).map(|d| d.project)
}

/// Decodes a project, returning every error found.
pub fn decode_with_warnings(value: Value) -> Result<Decoded, Vec<DecodeError>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut top = match value {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return Err(vec![DecodeError::from_hinted(
                Vec::new(),
                Hinted::new(format!(
                    "a compose file must be a mapping, got {}",
                    crate::compose::model::de::describe(&other)
                ))
                .hint("start with `services:`"),
            )]);
        }
    };
    if top.remove("version").is_some() {
        warnings.push(DecodeError::from_hinted(
            vec![key("version")],
            Hinted::new("the attribute `version` is obsolete, it will be ignored")
                .hint("remove it to avoid confusion"),
        ));
    }
    let mut project = Project::default();
    for (k, v) in top {
        let path = vec![key(&k)];
        match k.as_str() {
            "name" => match v {
                Value::String(s) => project.name = s,
                Value::Null => {}
                other => errors.push(DecodeError::from_hinted(
                    path,
                    Hinted::new(format!(
                        "the project name must be a string, got {}",
                        crate::compose::model::de::describe(&other)
                    )),
                )),
            },
            "include" => {
                let wrapped = Value::Object(Map::from_iter([(k, v)]));
                if let Some(inc) = decode_entity::<IncludeList>(wrapped, &[], &mut errors) {
                    project.include = inc.include;
                }
            }
            "services" => project.services = decode_section(v, &path, &mut errors, |_| {}),
            "networks" => {
                project.networks = decode_section(v, &path, &mut errors, |e| {
                    legacy_external_name(e, &mut warnings)
                })
            }
            "volumes" => {
                project.volumes = decode_section(v, &path, &mut errors, |e| {
                    legacy_external_name(e, &mut warnings)
                })
            }
            "secrets" => {
                project.secrets = decode_section(v, &path, &mut errors, |e| {
                    legacy_external_name(e, &mut warnings)
                })
            }
            "configs" => {
                project.configs = decode_section(v, &path, &mut errors, |e| {
                    legacy_external_name(e, &mut warnings)
                })
            }
            "models" => project.models = decode_section(v, &path, &mut errors, |_| {}),
            x if x.starts_with("x-") => {
                project.extensions.insert(k, v);
            }
            _ => errors.push(DecodeError::from_hinted(
                path,
                Hinted::new(format!("additional property \"{k}\" is not allowed")).hint(
                    crate::compose::schema::suggest(&k, TOP_LEVEL_KEYS)
                        .map(|s| format!("did you mean \"{s}\"?"))
                        .unwrap_or_else(|| {
                            "top-level keys are name, services, networks, volumes, secrets, configs, models, include and x-* extensions".into()
                        }),
                ),
            )),
        }
    }
    if errors.is_empty() {
        Ok(Decoded { project, warnings })
    } else {
        Err(errors)
    }
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models",
];

#[derive(serde::Deserialize)]
struct IncludeList {
    #[serde(deserialize_with = "crate::compose::model::de_includes")]
    include: Vec<crate::compose::model::Include>,
}

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

/// Decodes a `name -> definition` section entry by entry. A null entry
/// means all defaults.
fn decode_section<T: DeserializeOwned + Default>(
    v: Value,
    path: &[PathSeg],
    errors: &mut Vec<DecodeError>,
    mut fixup: impl FnMut(&mut EntityCtx),
) -> IndexMap<String, T> {
    let mut out = IndexMap::new();
    let map = match v {
        Value::Null => return out,
        Value::Object(m) => m,
        other => {
            errors.push(DecodeError::from_hinted(
                path.to_vec(),
                Hinted::new(format!(
                    "must be a mapping of names to definitions, got {}",
                    crate::compose::model::de::describe(&other)
                )),
            ));
            return out;
        }
    };
    for (name, mut entity) in map {
        let mut entity_path = path.to_vec();
        entity_path.push(key(&name));
        if entity.is_null() {
            entity = Value::Object(Map::new());
        }
        let mut ctx = EntityCtx {
            value: entity,
            path: entity_path.clone(),
            errors: Vec::new(),
        };
        fixup(&mut ctx);
        errors.append(&mut ctx.errors);
        if let Some(t) = decode_entity::<T>(ctx.value, &entity_path, errors) {
            out.insert(name, t);
        }
    }
    out
}

/// One entity on its way to decoding, for pre-decode fix-ups.
struct EntityCtx {
    value: Value,
    path: Vec<PathSeg>,
    errors: Vec<DecodeError>,
}

/// `external: {name: x}` (deprecated) becomes `name: x` + `external: true`.
fn legacy_external_name(ctx: &mut EntityCtx, warnings: &mut Vec<DecodeError>) {
    let Value::Object(m) = &mut ctx.value else {
        return;
    };
    let Some(Value::Object(ext)) = m.get("external") else {
        return;
    };
    let ext_name = ext.get("name").cloned();
    let mut path = ctx.path.clone();
    path.extend([key("external"), key("name")]);
    if let Some(Value::String(ext_name)) = ext_name {
        match m.get("name") {
            Some(Value::String(n)) if n != &ext_name => ctx.errors.push(DecodeError::from_hinted(
                path,
                Hinted::new(format!(
                    "conflicting names: name \"{n}\" and external.name \"{ext_name}\""
                ))
                .hint("keep only `name`"),
            )),
            _ => {
                warnings.push(DecodeError::from_hinted(
                    path,
                    Hinted::new("external.name is deprecated")
                        .hint(format!("use `name: {ext_name}` with `external: true`")),
                ));
                m.insert("name".into(), Value::String(ext_name));
            }
        }
    }
    m.insert("external".into(), Value::Bool(true));
}

/// Decodes one entity, collecting an error per failing top-level key.
fn decode_entity<T: DeserializeOwned>(
    mut value: Value,
    base: &[PathSeg],
    errors: &mut Vec<DecodeError>,
) -> Option<T> {
    let mut failed = false;
    // Each retry removes one key, so this ends; the bound is a safety net.
    let budget = match &value {
        Value::Object(m) => m.len() + 1,
        _ => 1,
    };
    for _ in 0..budget {
        // Deserializing from a reference: no copy of the entity per attempt.
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(t) => return (!failed).then_some(t),
            Err(e) => {
                failed = true;
                let rel = convert_path(e.path());
                let mut path = base.to_vec();
                path.extend(rel.iter().cloned());
                errors.push(DecodeError::from_hinted(
                    path,
                    humanize(&e.inner().to_string()),
                ));
                match (rel.first(), &mut value) {
                    (Some(PathSeg::Key(k)), Value::Object(m)) if m.contains_key(k) => {
                        m.shift_remove(k);
                    }
                    _ => return None,
                }
            }
        }
    }
    None
}

fn convert_path(p: &serde_path_to_error::Path) -> Vec<PathSeg> {
    use serde_path_to_error::Segment;
    p.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(PathSeg::Index(*index)),
            Segment::Map { key } => Some(PathSeg::Key(key.clone())),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// Serde's own messages, reworded for people who write YAML.
fn humanize(msg: &str) -> Hinted {
    let h = Hinted::split(msg);
    if h.hint.is_some() {
        return h;
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        if let Some((got, expected)) = rest.split_once(", expected ") {
            let expected = match expected {
                "a string" | "a borrowed string" => "a string",
                "u32" | "u64" | "i64" | "u16" | "i32" | "usize" => "an integer",
                "f64" | "f32" => "a number",
                "a boolean" => "a boolean",
                e if e.starts_with("a sequence") => "a list",
                e if e.starts_with("a map") || e.starts_with("struct ") => "a mapping",
                other => other,
            };
            let got = got
                .replace("sequence", "list")
                .replace("map", "mapping")
                .replace('`', "");
            return Hinted::new(format!("must be {expected}, got {got}"));
        }
    }
    if let Some(field) = msg.strip_prefix("missing field `") {
        return Hinted::new(format!(
            "missing required key \"{}\"",
            field.trim_end_matches('`')
        ));
    }
    h
}
