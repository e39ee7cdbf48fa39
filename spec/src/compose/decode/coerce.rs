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
    let all: Vec<usize> = (0..CASTS.len()).collect();
    walk(node, &mut path, &all, &mut errors);
    errors
}

/// `candidates` are the indexes of the [`CASTS`] patterns that still match
/// `path`; a subtree that no pattern can reach is skipped whole, which keeps
/// this linear in the size of the typed parts of the document rather than
/// in documents × patterns.
fn walk(
    node: &mut Node,
    path: &mut Vec<PathSeg>,
    candidates: &[usize],
    errors: &mut Vec<Diagnostic>,
) {
    let depth = path.len();
    match &mut node.value {
        Value::Map(entries) => {
            for e in entries.iter_mut() {
                let next: Vec<usize> = candidates
                    .iter()
                    .copied()
                    .filter(
                        |&i| matches!(segment(i, depth), Some(seg) if seg == "*" || seg == e.key),
                    )
                    .collect();
                if next.is_empty() {
                    continue;
                }
                path.push(PathSeg::Key(e.key.clone()));
                walk(&mut e.value, path, &next, errors);
                path.pop();
            }
        }
        Value::Seq(items) => {
            let next: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&i| segment(i, depth) == Some("[]"))
                .collect();
            if next.is_empty() {
                return;
            }
            for (i, item) in items.iter_mut().enumerate() {
                path.push(PathSeg::Index(i));
                walk(item, path, &next, errors);
                path.pop();
            }
        }
        Value::String(s) => {
            let Some(cast) = candidates
                .iter()
                .find(|&&i| segment(i, depth).is_none())
                .map(|&i| CASTS[i].1)
            else {
                return;
            };
            match apply(cast, s) {
                Ok(Some(v)) => node.value = v,
                Ok(None) => {}
                Err(what) => {
                    let p = display_path(path);
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
        }
        _ => {}
    }
}

/// The [`CASTS`] patterns split into segments once.
fn split_patterns() -> &'static [Vec<&'static str>] {
    static SPLIT: std::sync::OnceLock<Vec<Vec<&'static str>>> = std::sync::OnceLock::new();
    SPLIT.get_or_init(|| CASTS.iter().map(|(p, _)| p.split('.').collect()).collect())
}

/// The `depth`-th segment of pattern `index`.
fn segment(index: usize, depth: usize) -> Option<&'static str> {
    split_patterns().get(index)?.get(depth).copied()
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
