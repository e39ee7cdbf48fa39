//! Validation against the official Compose JSON schema (vendored in
//! `spec/schema/compose-spec.json`), with messages written for people:
//! [`validate`] returns [`SchemaViolation`]s that name the key path, say what
//! is wrong in plain words, and suggest a fix (`did you mean "image"?`).
//!
//! jsonschema reports `oneOf` failures as a dump of every branch; here the
//! branch that best matches the value's shape is chosen and only its errors
//! are reported.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::compose::model::de::describe;
use crate::yaml::PathSeg;

pub use crate::compose::decode::coerce::coerce;

/// The Compose Specification JSON schema this build validates against.
pub const SCHEMA_JSON: &str = include_str!("../../schema/compose-spec.json");

/// One schema problem at a key path.
pub type SchemaViolation = crate::compose::problem::PathProblem;

struct Compiled {
    schema: Value,
    validator: Validator,
}

fn compiled() -> Result<&'static Compiled, &'static str> {
    static COMPILED: OnceLock<Result<Compiled, String>> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            let schema: Value = serde_json::from_str(SCHEMA_JSON)
                .map_err(|e| format!("the built-in compose schema is not JSON: {e}"))?;
            let validator = jsonschema::validator_for(&schema)
                .map_err(|e| format!("the built-in compose schema does not compile: {e}"))?;
            Ok(Compiled { schema, validator })
        })
        .as_ref()
        .map_err(String::as_str)
}

/// Validates a whole (merged, interpolated) compose document.
pub fn validate(value: &Value) -> Vec<SchemaViolation> {
    let c = match compiled() {
        Ok(c) => c,
        Err(msg) => return vec![SchemaViolation::new(Vec::new(), msg)],
    };
    // Valid documents are the common case, and `is_valid` stops early
    // without building error values.
    if c.validator.is_valid(value) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for err in c.validator.iter_errors(value) {
        translate(&c.schema, value, &err, &mut out);
    }
    out.dedup();
    out
}

fn instance_path(err: &ValidationError<'_>) -> Vec<PathSeg> {
    use jsonschema::paths::LocationSegment;
    err.instance_path()
        .iter()
        .map(|s| match s {
            LocationSegment::Property(p) => PathSeg::Key(p.to_string()),
            LocationSegment::Index(i) => PathSeg::Index(i),
        })
        .collect()
}

/// The schema object holding the keyword that failed.
fn schema_parent<'s>(schema: &'s Value, err: &ValidationError<'_>) -> Option<&'s Value> {
    let ptr = err.schema_path().as_str();
    let parent = ptr.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    schema.pointer(parent)
}

fn translate(
    schema: &Value,
    root: &Value,
    err: &ValidationError<'_>,
    out: &mut Vec<SchemaViolation>,
) {
    let path = instance_path(err);
    let instance = root
        .pointer(err.instance_path().as_str())
        .unwrap_or(&Value::Null);
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let parent = schema_parent(schema, err);
            for key in unexpected {
                let mut p = path.clone();
                p.push(PathSeg::Key(key.clone()));
                out.push(unknown_key(parent, &path, key, p));
            }
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => type_name(&t.to_string()).to_string(),
                TypeKind::Multiple(set) => join_or(
                    &set.iter()
                        .map(|t| type_name(&t.to_string()))
                        .collect::<Vec<_>>(),
                ),
            };
            out.push(SchemaViolation::new(
                path,
                format!("must be {expected}, got {}", kind_of(instance)),
            ));
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            one_of(schema, root, &path, instance, context, out)
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => out.push(SchemaViolation::new(
            path,
            "matches more than one allowed form",
        )),
        ValidationErrorKind::Enum { options } => {
            let opts: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(|o| o.to_string()).collect())
                .unwrap_or_default();
            let got = instance.as_str().unwrap_or_default();
            let names: Vec<&str> = options
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let hint = suggest(got, &names).map(|s| format!("did you mean \"{s}\"?"));
            out.push(
                SchemaViolation::new(
                    path,
                    format!(
                        "must be one of {}, got {}",
                        opts.join(", "),
                        describe(instance)
                    ),
                )
                .with_hint(hint),
            );
        }
        ValidationErrorKind::Pattern { pattern } => {
            let (message, hint) = pattern_message(&path, instance, pattern);
            out.push(SchemaViolation::new(path, message).with_hint(Some(hint)));
        }
        ValidationErrorKind::Required { property } => out.push(SchemaViolation::new(
            path,
            format!("missing required key {property}"),
        )),
        ValidationErrorKind::Minimum { limit } => out.push(SchemaViolation::new(
            path,
            format!("must be at least {limit}, got {}", describe(instance)),
        )),
        ValidationErrorKind::Maximum { limit } => out.push(SchemaViolation::new(
            path,
            format!("must be at most {limit}, got {}", describe(instance)),
        )),
        ValidationErrorKind::UniqueItems => {
            let (p, dup) = first_duplicate(instance)
                .map(|(i, v)| {
                    let mut p = path.clone();
                    p.push(PathSeg::Index(i));
                    (p, describe(v))
                })
                .unwrap_or((path, "an item".into()));
            out.push(
                SchemaViolation::new(p, format!("duplicate item {dup}"))
                    .with_hint(Some("items of this list must be unique".into())),
            );
        }
        _ => out.push(SchemaViolation::new(path, err.to_string())),
    }
}

/// Picks the `oneOf` branch that fits the value's shape best and reports
/// its errors only.
fn one_of(
    schema: &Value,
    root: &Value,
    path: &[PathSeg],
    instance: &Value,
    context: &[Vec<ValidationError<'static>>],
    out: &mut Vec<SchemaViolation>,
) {
    let depth = |e: &ValidationError<'_>| e.instance_path().iter().count();
    let here = path.len();
    // A branch whose only complaint is the type of the value itself does not
    // describe this value; prefer the others, the deepest complaint first.
    let shape_mismatch = |errs: &Vec<ValidationError<'static>>| {
        errs.iter()
            .all(|e| depth(e) == here && matches!(e.kind(), ValidationErrorKind::Type { .. }))
    };
    let best = context
        .iter()
        .filter(|errs| !errs.is_empty() && !shape_mismatch(errs))
        .max_by_key(|errs| errs.iter().map(depth).max().unwrap_or(0));
    match best {
        Some(errs) => {
            for e in errs {
                translate(schema, root, e, out);
            }
        }
        None => {
            let mut expected: Vec<&'static str> = Vec::new();
            for errs in context {
                for e in errs {
                    if let ValidationErrorKind::Type { kind } = e.kind() {
                        let names: Vec<String> = match kind {
                            TypeKind::Single(t) => vec![t.to_string()],
                            TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
                        };
                        for n in names {
                            let n = type_name(&n);
                            if !expected.contains(&n) {
                                expected.push(n);
                            }
                        }
                    }
                }
            }
            out.push(SchemaViolation::new(
                path.to_vec(),
                format!("must be {}, got {}", join_or(&expected), kind_of(instance)),
            ));
        }
    }
}

fn unknown_key(
    parent: Option<&Value>,
    owner: &[PathSeg],
    key: &str,
    path: Vec<PathSeg>,
) -> SchemaViolation {
    let props: Vec<&str> = parent
        .and_then(|p| p.get("properties"))
        .and_then(Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let patterns: Vec<&str> = parent
        .and_then(|p| p.get("patternProperties"))
        .and_then(Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if props.is_empty() && patterns.contains(&NAME_PATTERN) {
        // A map of user-chosen names (services, volumes...).
        let what = match owner.last() {
            Some(PathSeg::Key(k)) if k == "services" => "service",
            Some(PathSeg::Key(k)) if k == "volumes" => "volume",
            Some(PathSeg::Key(k)) if k == "networks" => "network",
            Some(PathSeg::Key(k)) if k == "secrets" => "secret",
            Some(PathSeg::Key(k)) if k == "configs" => "config",
            Some(PathSeg::Key(k)) if k == "depends_on" => "service",
            _ => "name",
        };
        return SchemaViolation::new(path, format!("invalid {what} name \"{key}\"")).with_hint(
            Some("names may contain only letters, digits, '.', '_' and '-'".into()),
        );
    }
    let mut hint = suggest(key, &props).map(|s| format!("did you mean \"{s}\"?"));
    if hint.is_none() && patterns.contains(&"^x-") {
        hint = Some(if props.len() <= 12 && !props.is_empty() {
            format!(
                "allowed keys are {}; extension keys must start with \"x-\"",
                props.join(", ")
            )
        } else {
            "extension keys must start with \"x-\"".into()
        });
    } else if hint.is_none() && !props.is_empty() && props.len() <= 12 {
        hint = Some(format!("allowed keys are {}", props.join(", ")));
    }
    SchemaViolation::new(
        path,
        format!("additional property \"{key}\" is not allowed"),
    )
    .with_hint(hint)
}

const NAME_PATTERN: &str = "^[a-zA-Z0-9._-]+$";

fn pattern_message(path: &[PathSeg], instance: &Value, pattern: &str) -> (String, String) {
    let last = match path.last() {
        Some(PathSeg::Key(k)) => k.as_str(),
        _ => "",
    };
    let got = describe(instance);
    match last {
        "pull_policy" => (
            format!("invalid pull policy {got}"),
            "use always, never, missing, build, if_not_present, refresh, daily, weekly or every_<duration> (every_12h)".into(),
        ),
        "container_name" => (
            format!("invalid container name {got}"),
            "a container name starts with a letter or digit, followed by letters, digits, '_', '.' or '-'".into(),
        ),
        _ => (
            format!("invalid value {got}"),
            format!("the value must match the pattern {pattern}"),
        ),
    }
}

fn first_duplicate(v: &Value) -> Option<(usize, &Value)> {
    let items = v.as_array()?;
    items
        .iter()
        .enumerate()
        .find(|(j, item)| items[..*j].contains(item))
}

fn type_name(t: &str) -> &'static str {
    match t {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean",
        "array" => "a list",
        "object" => "a mapping",
        "null" => "null",
        _ => "another type",
    }
}

fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) if n.is_i64() || n.is_u64() => format!("integer {n}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => "another type".into(),
        [one] => (*one).into(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

pub use crate::suggest::suggest;
