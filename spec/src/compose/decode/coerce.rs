//! [`coerce`]: after interpolation every `${VAR}` value is a string; turn
//! those at typed paths back into booleans and numbers, as compose-go's
//! interpolation casts do, so `tty: ${TTY}` with `TTY=true` is `true`.
//!
//! Strings that are legal as strings stay strings when they do not parse
//! (`mem_limit: 512m`, `cpu_rt_period: 1400us`, `count: all`); where only a
//! boolean or an integer makes sense, a bad value is an error at its span.

use crate::diag::Diagnostic;
use crate::yaml::{Node, PathSeg, Value, display_path};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cast {
    /// Must be a boolean (YAML 1.1 spellings accepted).
    Bool,
    /// A boolean when it spells one, else left as a string.
    BoolOrString,
    /// Must be an integer.
    Int,
    /// An integer when it parses, else left as a string (sizes, `all`...).
    IntOrString,
    /// Must be a number.
    Float,
    /// A file mode: decimal digits become an integer; octal strings
    /// (`"0440"`) stay strings, decoded as octal later.
    Mode,
}

use Cast::*;

/// `*` matches any map key, `[]` any list index.
const CASTS: &[(&str, Cast)] = &[
    ("services.*.attach", Bool),
    ("services.*.build.no_cache", Bool),
    ("services.*.build.pull", Bool),
    ("services.*.build.privileged", Bool),
    ("services.*.build.provenance", BoolOrString),
    ("services.*.build.sbom", BoolOrString),
    ("services.*.build.shm_size", IntOrString),
    ("services.*.build.ulimits.*", Int),
    ("services.*.build.ulimits.*.soft", Int),
    ("services.*.build.ulimits.*.hard", Int),
    ("services.*.blkio_config.weight", Int),
    ("services.*.blkio_config.weight_device.[].weight", Int),
    ("services.*.blkio_config.*.[].rate", IntOrString),
    ("services.*.configs.[].mode", Mode),
    ("services.*.secrets.[].mode", Mode),
    ("services.*.build.secrets.[].mode", Mode),
    ("services.*.cpu_count", Int),
    ("services.*.cpu_percent", Float),
    ("services.*.cpu_period", Int),
    ("services.*.cpu_quota", Int),
    ("services.*.cpu_rt_period", IntOrString),
    ("services.*.cpu_rt_runtime", IntOrString),
    ("services.*.cpu_shares", Int),
    ("services.*.cpus", Float),
    ("services.*.depends_on.*.required", Bool),
    ("services.*.depends_on.*.restart", Bool),
    ("services.*.deploy.replicas", Int),
    ("services.*.deploy.update_config.parallelism", Int),
    ("services.*.deploy.update_config.max_failure_ratio", Float),
    ("services.*.deploy.rollback_config.parallelism", Int),
    ("services.*.deploy.rollback_config.max_failure_ratio", Float),
    ("services.*.deploy.restart_policy.max_attempts", Int),
    ("services.*.deploy.placement.max_replicas_per_node", Int),
    ("services.*.deploy.resources.*.cpus", Float),
    ("services.*.deploy.resources.*.memory", IntOrString),
    ("services.*.deploy.resources.*.pids", Int),
    (
        "services.*.deploy.resources.*.devices.[].count",
        IntOrString,
    ),
    (
        "services.*.deploy.resources.*.generic_resources.[].discrete_resource_spec.value",
        Float,
    ),
    ("services.*.develop.watch.[].initial_sync", Bool),
    ("services.*.env_file.[].required", Bool),
    ("services.*.gpus.[].count", IntOrString),
    ("services.*.healthcheck.disable", Bool),
    ("services.*.healthcheck.retries", Int),
    ("services.*.init", Bool),
    ("services.*.mem_limit", IntOrString),
    ("services.*.mem_reservation", IntOrString),
    ("services.*.memswap_limit", IntOrString),
    ("services.*.mem_swappiness", Int),
    ("services.*.networks.*.priority", Int),
    ("services.*.networks.*.gw_priority", Int),
    ("services.*.oom_kill_disable", Bool),
    ("services.*.oom_score_adj", Int),
    ("services.*.pids_limit", Int),
    ("services.*.ports.[].target", Int),
    ("services.*.post_start.[].privileged", Bool),
    ("services.*.pre_stop.[].privileged", Bool),
    ("services.*.pre_start.[].privileged", Bool),
    ("services.*.pre_start.[].per_replica", Bool),
    ("services.*.privileged", Bool),
    ("services.*.read_only", Bool),
    ("services.*.scale", Int),
    ("services.*.shm_size", IntOrString),
    ("services.*.stdin_open", Bool),
    ("services.*.tty", Bool),
    ("services.*.ulimits.*", Int),
    ("services.*.ulimits.*.soft", Int),
    ("services.*.ulimits.*.hard", Int),
    ("services.*.use_api_socket", Bool),
    ("services.*.volumes.[].read_only", Bool),
    ("services.*.volumes.[].bind.create_host_path", Bool),
    ("services.*.volumes.[].volume.nocopy", Bool),
    ("services.*.volumes.[].tmpfs.size", IntOrString),
    ("services.*.volumes.[].tmpfs.mode", Mode),
    ("networks.*.external", Bool),
    ("networks.*.internal", Bool),
    ("networks.*.attachable", Bool),
    ("networks.*.enable_ipv4", Bool),
    ("networks.*.enable_ipv6", Bool),
    ("volumes.*.external", Bool),
    ("secrets.*.external", Bool),
    ("configs.*.external", Bool),
    ("models.*.context_size", Int),
];

/// Casts interpolated strings at typed paths, in place. Returns one error
/// per value that cannot be cast.
pub fn coerce(node: &mut Node) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let mut path = Vec::new();
    walk(node, &mut path, &[trie()], &mut errors);
    errors
}

/// [`CASTS`] as a tree keyed by path segment, built once, so each node of
/// the document costs a lookup or two whatever the number of patterns.
#[derive(Default)]
struct Trie {
    literal: std::collections::HashMap<&'static str, Trie>,
    any_key: Option<Box<Trie>>,
    any_index: Option<Box<Trie>>,
    /// The cast of the pattern ending here, with its index in [`CASTS`]:
    /// where two patterns match one path the earlier one wins.
    cast: Option<(usize, Cast)>,
}

fn trie() -> &'static Trie {
    static TRIE: std::sync::OnceLock<Trie> = std::sync::OnceLock::new();
    TRIE.get_or_init(|| {
        let mut root = Trie::default();
        for (index, (pattern, cast)) in CASTS.iter().enumerate() {
            let mut node = &mut root;
            for segment in pattern.split('.') {
                node = match segment {
                    "*" => node.any_key.get_or_insert_with(Box::default),
                    "[]" => node.any_index.get_or_insert_with(Box::default),
                    literal => node.literal.entry(literal).or_default(),
                };
            }
            node.cast.get_or_insert((index, *cast));
        }
        root
    })
}

/// A step of the path being walked, borrowed from the document: the path is
/// only turned into text when there is an error to report.
#[derive(Clone, Copy)]
enum Step<'t> {
    Key(&'t str),
    Index(usize),
}

fn owned_path(path: &[Step<'_>]) -> Vec<PathSeg> {
    path.iter()
        .map(|step| match step {
            Step::Key(k) => PathSeg::Key((*k).to_string()),
            Step::Index(i) => PathSeg::Index(*i),
        })
        .collect()
}

/// `active` are the trie nodes that match the path so far; a subtree that no
/// pattern can reach is skipped whole.
fn walk<'t>(
    node: &'t mut Node,
    path: &mut Vec<Step<'t>>,
    active: &[&'static Trie],
    errors: &mut Vec<Diagnostic>,
) {
    if let Value::String(s) = &node.value {
        let Some((_, cast)) = active.iter().filter_map(|t| t.cast).min_by_key(|(i, _)| *i) else {
            return;
        };
        match apply(cast, s) {
            Ok(Some(v)) => node.value = v,
            Ok(None) => {}
            Err(what) => {
                let p = display_path(&owned_path(path));
                errors.push(
                    Diagnostic::error(format!("invalid {what} \"{s}\" for {p}"))
                        .at(&node.span)
                        .key(p)
                        .hint(match what {
                            "boolean" => "use true or false",
                            "integer" => "use a whole number",
                            _ => "use a number like 1 or 0.5",
                        }),
                );
            }
        }
        return;
    }
    match &mut node.value {
        Value::Map(entries) => {
            for entry in entries.iter_mut() {
                let key = entry.key.as_str();
                let next: Vec<&'static Trie> = active
                    .iter()
                    .flat_map(|t| [t.literal.get(key), t.any_key.as_deref()])
                    .flatten()
                    .collect();
                if next.is_empty() {
                    continue;
                }
                path.push(Step::Key(key));
                walk(&mut entry.value, path, &next, errors);
                path.pop();
            }
        }
        Value::Seq(items) => {
            let next: Vec<&'static Trie> = active
                .iter()
                .filter_map(|t| t.any_index.as_deref())
                .collect();
            if next.is_empty() {
                return;
            }
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Step::Index(i));
                walk(item, path, &next, errors);
                path.pop();
            }
        }
        _ => {}
    }
}

fn apply(cast: Cast, s: &str) -> Result<Option<Value>, &'static str> {
    let t = s.trim();
    let as_bool = || match t.to_ascii_lowercase().as_str() {
        "y" | "yes" | "true" | "on" => Some(true),
        "n" | "no" | "false" | "off" => Some(false),
        _ => None,
    };
    let as_int = || t.parse::<i64>().ok();
    let as_float = || t.parse::<f64>().ok().filter(|f| f.is_finite());
    Ok(match cast {
        Bool => Some(Value::Bool(as_bool().ok_or("boolean")?)),
        BoolOrString => as_bool().map(Value::Bool),
        Int => Some(Value::Int(as_int().ok_or("integer")?)),
        IntOrString => as_int().map(Value::Int),
        Float => Some(
            as_int()
                .map(Value::Int)
                .or_else(|| as_float().map(Value::Float))
                .ok_or("number")?,
        ),
        Mode if t.starts_with('0') && t.len() > 1 => None,
        Mode => as_int().map(Value::Int),
    })
}
