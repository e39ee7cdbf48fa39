//! Merging Compose files (`-f a -f b`, override files, `extends`) by the
//! Compose Specification's merge rules, on the positioned [`Node`] tree so
//! every value keeps the file and line it came from.
//!
//! The rules follow compose-go's `override` package: maps merge key by key,
//! scalars are replaced, sequences are appended, and a set of paths have
//! their own rule (`command` is replaced whole, `environment` merges by
//! variable name, `ports` and `volumes` are unique by their target, and so
//! on). `!reset` removes the earlier value and `!override` replaces it
//! without merging.

use crate::yaml::{Entry, Node, Tag, Value};

/// Merges `over` onto `base` at the root of a Compose document.
pub fn merge_documents(base: Node, over: Node) -> Node {
    let mut path = Vec::new();
    merge_at(&mut path, base, over)
}

/// Merges an extending service definition (`over`) onto the service it
/// extends (`base`), with the same rules as files at `services.<name>`.
pub fn merge_service(base: Node, over: Node) -> Node {
    let mut path = vec!["services".to_string(), "*".to_string()];
    merge_at(&mut path, base, over)
}

/// Removes every map entry tagged `!reset` (and clears `!override` tags) in
/// a document that has nothing to merge onto: there the tags mean "no value"
/// and "this value", respectively.
pub fn strip_tags(node: &mut Node) {
    node.tag = None;
    match &mut node.value {
        Value::Map(entries) => {
            entries.retain(|e| e.value.tag != Some(Tag::Reset));
            for e in entries.iter_mut() {
                strip_tags(&mut e.value);
            }
        }
        Value::Seq(items) => {
            items.retain(|n| n.tag != Some(Tag::Reset));
            for n in items.iter_mut() {
                strip_tags(n);
            }
        }
        _ => {}
    }
}

/// How the sequence or map at a path merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The later value replaces the earlier one whole.
    Replace,
    /// `KEY=VALUE` lists and maps merge by key, the later value winning.
    KeyValue,
    /// Sequences append, items with the same key replace earlier ones.
    Unique(Indexer),
    /// `build: ./dir` is short for `build: {context: ./dir}`.
    Build,
    /// `depends_on: [a]` is short for `depends_on: {a: {condition: service_started}}`.
    DependsOn,
    /// `networks: [a]` is short for `networks: {a: null}`.
    Networks,
    /// A different logging driver replaces the options too.
    Logging,
    /// `nofile: 1024` is replaced, `{soft, hard}` merges.
    Ulimit,
    /// Recursive map merge, appended sequences.
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Indexer {
    /// A string's part before `=`, else the item itself.
    KeyValue,
    /// Ports by `host_ip:published:target/protocol`.
    Port,
    /// Volumes and devices by container path.
    Volume,
    /// Secrets and configs by their target in the container.
    Mount(&'static str),
    /// env_file and label_file entries by path.
    Path,
}

/// Path patterns, `*` matching any one key, in compose-go's spelling.
const RULES: &[(&str, Rule)] = &[
    ("services.*.command", Rule::Replace),
    ("services.*.entrypoint", Rule::Replace),
    ("services.*.healthcheck.test", Rule::Replace),
    ("services.*.build", Rule::Build),
    ("services.*.depends_on", Rule::DependsOn),
    ("services.*.networks", Rule::Networks),
    ("services.*.logging", Rule::Logging),
    ("services.*.ulimits.*", Rule::Ulimit),
    ("services.*.build.ulimits.*", Rule::Ulimit),
    ("services.*.environment", Rule::KeyValue),
    ("services.*.labels", Rule::KeyValue),
    ("services.*.annotations", Rule::KeyValue),
    ("services.*.sysctls", Rule::KeyValue),
    ("services.*.build.args", Rule::KeyValue),
    ("services.*.build.labels", Rule::KeyValue),
    ("services.*.build.additional_contexts", Rule::KeyValue),
    ("services.*.deploy.labels", Rule::KeyValue),
    ("services.*.volumes.*.volume.labels", Rule::KeyValue),
    ("networks.*.labels", Rule::KeyValue),
    ("networks.*.ipam.options", Rule::KeyValue),
    ("volumes.*.labels", Rule::KeyValue),
    ("services.*.ports", Rule::Unique(Indexer::Port)),
    ("services.*.volumes", Rule::Unique(Indexer::Volume)),
    ("services.*.devices", Rule::Unique(Indexer::Volume)),
    (
        "services.*.secrets",
        Rule::Unique(Indexer::Mount("/run/secrets/")),
    ),
    ("services.*.configs", Rule::Unique(Indexer::Mount("/"))),
    ("services.*.env_file", Rule::Unique(Indexer::Path)),
    ("services.*.label_file", Rule::Unique(Indexer::Path)),
    ("services.*.expose", Rule::Unique(Indexer::KeyValue)),
    ("services.*.cap_add", Rule::Unique(Indexer::KeyValue)),
    ("services.*.cap_drop", Rule::Unique(Indexer::KeyValue)),
    ("services.*.dns", Rule::Unique(Indexer::KeyValue)),
    ("services.*.dns_opt", Rule::Unique(Indexer::KeyValue)),
    ("services.*.dns_search", Rule::Unique(Indexer::KeyValue)),
    ("services.*.links", Rule::Unique(Indexer::KeyValue)),
    ("services.*.profiles", Rule::Unique(Indexer::KeyValue)),
    ("services.*.tmpfs", Rule::Unique(Indexer::KeyValue)),
    ("services.*.build.tags", Rule::Unique(Indexer::KeyValue)),
    (
        "services.*.build.platforms",
        Rule::Unique(Indexer::KeyValue),
    ),
    (
        "services.*.networks.*.aliases",
        Rule::Unique(Indexer::KeyValue),
    ),
    (
        "services.*.networks.*.link_local_ips",
        Rule::Unique(Indexer::KeyValue),
    ),
];

fn rule_for(path: &[String]) -> Rule {
    RULES
        .iter()
        .find(|(pattern, _)| pattern_matches(pattern, path))
        .map(|(_, rule)| *rule)
        .unwrap_or(Rule::Default)
}

fn pattern_matches(pattern: &str, path: &[String]) -> bool {
    let mut parts = pattern.split('.');
    let mut segs = path.iter();
    loop {
        match (parts.next(), segs.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) if p == "*" || p == s => {}
            _ => return false,
        }
    }
}

fn merge_at(path: &mut Vec<String>, base: Node, over: Node) -> Node {
    match over.tag {
        Some(Tag::Override) => {
            let mut over = over;
            strip_tags(&mut over);
            return over;
        }
        // A reset value is removed by the caller (merge_maps); reaching
        // here means a reset root or sequence item: the base goes.
        Some(Tag::Reset) => return Node::new(Value::Null, over.span),
        None => {}
    }
    // `key:` with no value in an override file adds nothing: compose-go
    // keeps the earlier value rather than wiping it.
    if matches!(over.value, Value::Null) {
        return base;
    }
    match rule_for(path) {
        Rule::Replace => finish(over),
        Rule::KeyValue => merge_maps(path, to_key_value_map(base), to_key_value_map(over)),
        Rule::Unique(indexer) => merge_unique(path, base, over, indexer),
        Rule::Build => merge_maps(path, build_to_map(base), build_to_map(over)),
        Rule::DependsOn => merge_maps(path, depends_on_to_map(base), depends_on_to_map(over)),
        Rule::Networks => merge_maps(path, list_to_null_map(base), list_to_null_map(over)),
        Rule::Logging => {
            let driver = |n: &Node| n.get("driver").and_then(Node::as_str).map(str::to_owned);
            match (driver(&base), driver(&over)) {
                (Some(a), Some(b)) if a != b => finish(over),
                _ => merge_maps(path, base, over),
            }
        }
        Rule::Ulimit => match (&base.value, &over.value) {
            (Value::Map(_), Value::Map(_)) => merge_maps(path, base, over),
            _ => finish(over),
        },
        Rule::Default => match (&base.value, &over.value) {
            (Value::Map(_), Value::Map(_)) => merge_maps(path, base, over),
            (Value::Seq(_), Value::Seq(_)) => append(base, over),
            _ => finish(over),
        },
    }
}

fn finish(mut node: Node) -> Node {
    strip_tags(&mut node);
    node
}

fn merge_maps(path: &mut Vec<String>, base: Node, over: Node) -> Node {
    let (Value::Map(mut entries), Value::Map(over_entries)) = (base.value, over.value) else {
        // Callers only pass maps here; anything else means the later file
        // used another shape, and the later file wins.
        return Node::new(Value::Null, over.span);
    };
    for over_entry in over_entries {
        let existing = entries.iter().position(|e| e.key == over_entry.key);
        if over_entry.value.tag == Some(Tag::Reset) {
            if let Some(i) = existing {
                entries.remove(i);
            }
            continue;
        }
        match existing {
            Some(i) => {
                let old = std::mem::replace(
                    &mut entries[i].value,
                    Node::new(Value::Null, over_entry.key_span.clone()),
                );
                path.push(over_entry.key.clone());
                let merged = merge_at(path, old, over_entry.value);
                path.pop();
                entries[i].value = merged;
            }
            None => {
                let mut value = over_entry.value;
                strip_tags(&mut value);
                entries.push(Entry {
                    key: over_entry.key,
                    key_span: over_entry.key_span,
                    value,
                });
            }
        }
    }
    Node {
        value: Value::Map(entries),
        span: base.span,
        tag: None,
    }
}

fn append(base: Node, over: Node) -> Node {
    let over = finish(over);
    match (base.value, over.value) {
        (Value::Seq(mut items), Value::Seq(more)) => {
            items.extend(more);
            Node::new(Value::Seq(items), base.span)
        }
        (_, other) => Node::new(other, over.span),
    }
}

fn merge_unique(path: &mut Vec<String>, base: Node, over: Node, indexer: Indexer) -> Node {
    let over = finish(over);
    let (Value::Seq(mut items), Value::Seq(more)) = (base.value, over.value) else {
        return over_or_base_shape(over.span);
    };
    for item in more {
        let key = index_key(indexer, &item);
        match items.iter().position(|old| index_key(indexer, old) == key) {
            Some(i) => {
                // Long-form items with the same key merge field by field
                // (an override can change `mode` of a port); short forms
                // are replaced.
                let old =
                    std::mem::replace(&mut items[i], Node::new(Value::Null, item.span.clone()));
                path.push("*".to_string());
                let merged = match (&old.value, &item.value) {
                    (Value::Map(_), Value::Map(_)) => merge_maps(path, old, item),
                    _ => item,
                };
                path.pop();
                items[i] = merged;
            }
            None => items.push(item),
        }
    }
    Node::new(Value::Seq(items), base.span)
}

fn over_or_base_shape(span: crate::yaml::Span) -> Node {
    Node::new(Value::Null, span)
}

fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        Value::String(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn index_key(indexer: Indexer, item: &Node) -> String {
    let text = scalar_text(item);
    match indexer {
        Indexer::KeyValue => match text {
            Some(s) => s.split('=').next().unwrap_or_default().to_string(),
            None => item.to_json().to_string(),
        },
        Indexer::Port => match text {
            Some(s) => short_port_key(&s),
            None => {
                let field = |k: &str| item.get(k).and_then(scalar_text).unwrap_or_default();
                let protocol = item.get("protocol").and_then(scalar_text);
                format!(
                    "{}:{}:{}/{}",
                    field("host_ip"),
                    field("published"),
                    field("target"),
                    protocol.as_deref().unwrap_or("tcp")
                )
            }
        },
        Indexer::Volume => match text {
            Some(s) => short_volume_target(&s),
            None => item
                .get("target")
                .and_then(scalar_text)
                .unwrap_or_else(|| item.to_json().to_string()),
        },
        Indexer::Mount(prefix) => {
            let source = match &text {
                Some(s) => Some(s.clone()),
                None => item.get("source").and_then(scalar_text),
            };
            match item.get("target").and_then(scalar_text) {
                Some(t) => t,
                None => format!("{prefix}{}", source.unwrap_or_default()),
            }
        }
        Indexer::Path => match text {
            Some(s) => s,
            None => item.get("path").and_then(scalar_text).unwrap_or_default(),
        },
    }
}

/// `[host_ip:][published:]target[/protocol]` → the port indexer's key, so a
/// short `"8080:80"` and a long `{published: 8080, target: 80}` collide.
fn short_port_key(spec: &str) -> String {
    let (addr, protocol) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p),
        None => (spec, "tcp"),
    };
    let mut parts: Vec<&str> = addr.rsplitn(3, ':').collect();
    parts.reverse();
    let (host_ip, published, target) = match parts.as_slice() {
        [target] => ("", "", *target),
        [published, target] => ("", *published, *target),
        [host_ip, published, target] => (*host_ip, *published, *target),
        _ => ("", "", addr),
    };
    let host_ip = host_ip.trim_start_matches('[').trim_end_matches(']');
    format!("{host_ip}:{published}:{target}/{protocol}")
}

/// `src:dst[:mode]` or `dst` → `dst`.
fn short_volume_target(spec: &str) -> String {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [target] => (*target).to_string(),
        [_, target] => (*target).to_string(),
        [_, target, ..] => (*target).to_string(),
        [] => String::new(),
    }
}

/// `["A=1", "B"]` → `{A: "1", B: null}`; maps stay as they are.
fn to_key_value_map(node: Node) -> Node {
    let Value::Seq(items) = node.value else {
        return node;
    };
    let mut entries: Vec<Entry> = Vec::with_capacity(items.len());
    for item in items {
        let Some(text) = scalar_text(&item) else {
            continue;
        };
        let (key, value) = match text.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => (text, Value::Null),
        };
        let value = Node::new(value, item.span.clone());
        match entries.iter_mut().find(|e| e.key == key) {
            Some(e) => e.value = value,
            None => entries.push(Entry {
                key,
                key_span: item.span,
                value,
            }),
        }
    }
    Node::new(Value::Map(entries), node.span)
}

fn build_to_map(node: Node) -> Node {
    match node.value {
        Value::String(_) => {
            let span = node.span.clone();
            Node::new(
                Value::Map(vec![Entry {
                    key: "context".into(),
                    key_span: span.clone(),
                    value: node,
                }]),
                span,
            )
        }
        _ => node,
    }
}

fn depends_on_to_map(node: Node) -> Node {
    list_to_map(node, |span| {
        let entry = |key: &str, value: Value| Entry {
            key: key.into(),
            key_span: span.clone(),
            value: Node::new(value, span.clone()),
        };
        let condition = entry("condition", Value::String("service_started".into()));
        let required = entry("required", Value::Bool(true));
        Node::new(Value::Map(vec![condition, required]), span.clone())
    })
}

fn list_to_null_map(node: Node) -> Node {
    list_to_map(node, |span| Node::new(Value::Null, span.clone()))
}

/// `[a, b]` → `{a: value(span of a), b: ...}`; maps stay as they are.
fn list_to_map(node: Node, value: impl Fn(&crate::yaml::Span) -> Node) -> Node {
    let Value::Seq(items) = node.value else {
        return node;
    };
    let entries = items
        .into_iter()
        .filter_map(|item| {
            let name = scalar_text(&item)?;
            Some(Entry {
                key: name,
                value: value(&item.span),
                key_span: item.span,
            })
        })
        .collect();
    Node::new(Value::Map(entries), node.span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matching_uses_star_for_one_key() {
        let p = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        assert!(pattern_matches(
            "services.*.ports",
            &p("services.web.ports")
        ));
        assert!(!pattern_matches("services.*.ports", &p("services.web")));
        assert!(!pattern_matches(
            "services.*.ports",
            &p("services.web.ports.x")
        ));
    }

    #[test]
    fn short_and_long_ports_share_a_key() {
        assert_eq!(short_port_key("8080:80"), ":8080:80/tcp");
        assert_eq!(short_port_key("127.0.0.1:53:53/udp"), "127.0.0.1:53:53/udp");
        assert_eq!(short_port_key("[::1]:80:80"), "::1:80:80/tcp");
        assert_eq!(short_port_key("80"), "::80/tcp");
    }

    #[test]
    fn volume_targets() {
        assert_eq!(short_volume_target("./data:/data:ro"), "/data");
        assert_eq!(short_volume_target("/data"), "/data");
        assert_eq!(short_volume_target("db:/var/lib/db"), "/var/lib/db");
    }
}
