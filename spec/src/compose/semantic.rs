//! The checks the Compose schema cannot express: references between
//! services and to networks, volumes, configs and secrets; dependency
//! cycles; published ports claimed twice; replicas with a fixed name.
//!
//! Each problem is placed at the key that causes it, found in the merged
//! document by path.

use std::collections::{BTreeMap, HashMap};

use crate::diag::Diagnostic;
use crate::yaml::{Node, Span, Value};

use super::model::{Project, Service};

/// Runs every check; errors and warnings go to `out`.
pub fn check(
    project: &Project,
    doc: &Node,
    disabled: &[(String, Vec<String>)],
    out: &mut Vec<Diagnostic>,
) {
    let problem = |path: &[Seg], message: String, hint: String| {
        let (span, key) = place(doc, path);
        Diagnostic::error(message).at(span).key(key).hint(hint)
    };
    let names: Vec<&str> = project.services.keys().map(String::as_str).collect();
    for (name, service) in &project.services {
        check_service_refs(project, name, service, disabled, &names, &problem, out);
    }
    check_cycles(project, &problem, out);
    check_ports(project, doc, &problem, out);
    check_names(project, &problem, out);
}

/// One step of the path to the spot an error is about.
#[derive(Debug, Clone, Copy)]
enum Seg<'a> {
    /// A map key.
    Key(&'a str),
    /// An entry named `name`: the map key, or the list item whose text is
    /// `name` or starts with `name:` (`links: [db:database]`).
    Named(&'a str),
    /// A list item by position.
    Index(usize),
}

/// The span of the deepest node found along `path` (the item itself when
/// it exists, so an error about one `depends_on` entry points at that
/// entry), and the dotted key path shown, `services.web.depends_on[1]`.
fn place<'d>(doc: &'d Node, path: &[Seg]) -> (&'d Span, String) {
    let mut node: Option<&Node> = Some(doc);
    let mut span = &doc.span;
    let mut key = String::new();
    for seg in path {
        let (shown, next) = step(node, *seg);
        match shown {
            Shown::Key(k) => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
            }
            Shown::Index(i) => key.push_str(&format!("[{i}]")),
        }
        node = next.map(|(s, n)| {
            span = s;
            n
        });
    }
    (span, key)
}

enum Shown<'a> {
    Key(&'a str),
    Index(usize),
}

/// One step of [`place`]: how the step is shown, and the span and node it
/// leads to when the document has it.
fn step<'d, 's>(node: Option<&'d Node>, seg: Seg<'s>) -> (Shown<'s>, Option<(&'d Span, &'d Node)>) {
    match (seg, node.map(|n| &n.value)) {
        (Seg::Key(k) | Seg::Named(k), Some(Value::Map(entries))) => (
            Shown::Key(k),
            entries
                .iter()
                .find(|e| e.key == k)
                .map(|e| (&e.key_span, &e.value)),
        ),
        (Seg::Named(k), Some(Value::Seq(items))) => {
            let named = |item: &Node| {
                item.as_str().is_some_and(|t| {
                    t == k || t.strip_prefix(k).is_some_and(|r| r.starts_with(':'))
                }) || item.get("source").and_then(Node::as_str) == Some(k)
            };
            match items.iter().enumerate().find(|(_, item)| named(item)) {
                Some((i, item)) => (Shown::Index(i), Some((&item.span, item))),
                None => (Shown::Key(k), None),
            }
        }
        (Seg::Index(i), Some(Value::Seq(items))) => {
            (Shown::Index(i), items.get(i).map(|item| (&item.span, item)))
        }
        (Seg::Key(k) | Seg::Named(k), _) => (Shown::Key(k), None),
        (Seg::Index(i), _) => (Shown::Index(i), None),
    }
}

type Problem<'a> = dyn Fn(&[Seg], String, String) -> Diagnostic + 'a;

fn check_service_refs(
    project: &Project,
    name: &str,
    service: &Service,
    disabled: &[(String, Vec<String>)],
    names: &[&str],
    problem: &Problem,
    out: &mut Vec<Diagnostic>,
) {
    let known = |s: &str| project.services.contains_key(s);
    let undefined_service = |target: &str, path: &[Seg]| -> Diagnostic {
        let hint = match disabled.iter().find(|(n, _)| n == target) {
            Some((_, profiles)) => format!(
                "{target:?} is only enabled with profile {}: pass --profile {}, or mark the dependency `required: false`",
                profiles.join(" or "),
                profiles.first().map(String::as_str).unwrap_or_default()
            ),
            None => match super::schema::suggest(target, names) {
                Some(s) => format!("did you mean {s:?}? services defined: {}", names.join(", ")),
                None => format!("services defined: {}", names.join(", ")),
            },
        };
        problem(
            path,
            format!("service {name:?} depends on undefined service {target:?}"),
            hint,
        )
    };
    // Every list that names other services: `links` and `volumes_from`
    // entries may carry `:alias` or `:ro`, and `volumes_from` may name a
    // container (`container:NAME`) instead of a service.
    let references = service
        .depends_on
        .keys()
        .map(|dep| ("depends_on", dep.as_str()))
        .chain(service.links.iter().map(|l| ("links", first_field(l))))
        .chain(
            service
                .volumes_from
                .iter()
                .filter(|v| !v.starts_with("container:"))
                .map(|v| ("volumes_from", first_field(v))),
        );
    for (key, target) in references {
        if !known(target) {
            out.push(undefined_service(
                target,
                &[
                    Seg::Key("services"),
                    Seg::Key(name),
                    Seg::Key(key),
                    Seg::Named(target),
                ],
            ));
        }
    }
    for (key, value) in [
        ("network_mode", &service.network_mode),
        ("ipc", &service.ipc),
        ("pid", &service.pid),
    ] {
        if let Some(target) = value.as_deref().and_then(|v| v.strip_prefix("service:")) {
            if !known(target) {
                out.push(undefined_service(
                    target,
                    &[Seg::Key("services"), Seg::Key(name), Seg::Key(key)],
                ));
            }
        }
    }
    // `service:NAME` contexts are built from another service's image.
    let contexts = service.build.iter().flat_map(|b| &b.additional_contexts);
    for (context, value) in contexts {
        if let Some(target) = value.strip_prefix("service:") {
            if !known(target) {
                out.push(undefined_service(
                    target,
                    &[
                        Seg::Key("services"),
                        Seg::Key(name),
                        Seg::Key("build"),
                        Seg::Key("additional_contexts"),
                        Seg::Key(context),
                    ],
                ));
            }
        }
    }
    let defined = |keys: Vec<&String>| {
        if keys.is_empty() {
            return "none".to_string();
        }
        keys.iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for network in service.networks.keys() {
        if !project.networks.contains_key(network) {
            out.push(problem(
                &[
                    Seg::Key("services"),
                    Seg::Key(name),
                    Seg::Key("networks"),
                    Seg::Named(network),
                ],
                format!("service {name:?} refers to undefined network {network:?}"),
                format!(
                    "declare it under top-level `networks:`; defined: {}",
                    defined(project.networks.keys().collect())
                ),
            ));
        }
    }
    if service.network_mode.is_some() && !service.networks.is_empty() {
        out.push(problem(
            &[
                Seg::Key("services"),
                Seg::Key(name),
                Seg::Key("network_mode"),
            ],
            format!("service {name:?} sets both network_mode and networks"),
            "use one of them".into(),
        ));
    }
    for (index, volume) in service.volumes.iter().enumerate() {
        if volume.kind != "volume" {
            continue;
        }
        let Some(source) = volume.source.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        if !project.volumes.contains_key(source) {
            out.push(problem(
                &[
                    Seg::Key("services"),
                    Seg::Key(name),
                    Seg::Key("volumes"),
                    Seg::Index(index),
                ],
                format!("service {name:?} refers to undefined volume {source:?}"),
                format!(
                    "declare it under top-level `volumes:`, or write a path starting with ./ or / for a bind mount; defined: {}",
                    defined(project.volumes.keys().collect())
                ),
            ));
        }
    }
    for (section, refs, defs) in [
        ("secrets", &service.secrets, &project.secrets),
        ("configs", &service.configs, &project.configs),
    ] {
        for r in refs {
            if !defs.contains_key(&r.source) {
                out.push(problem(
                    &[
                        Seg::Key("services"),
                        Seg::Key(name),
                        Seg::Key(section),
                        Seg::Named(&r.source),
                    ],
                    format!(
                        "service {name:?} refers to undefined {} {:?}",
                        &section[..section.len() - 1],
                        r.source
                    ),
                    format!("declare it under top-level `{section}:`"),
                ));
            }
        }
    }
    let replicas = service
        .deploy
        .as_ref()
        .and_then(|d| d.replicas)
        .or(service.scale)
        .unwrap_or(1);
    if replicas > 1 && service.container_name.is_some() {
        out.push(problem(
            &[
                Seg::Key("services"),
                Seg::Key(name),
                Seg::Key("container_name"),
            ],
            format!("service {name:?} sets container_name but asks for {replicas} replicas"),
            "container names are unique: remove container_name or use one replica".into(),
        ));
    }
    if let (Some(scale), Some(replicas)) = (
        service.scale,
        service.deploy.as_ref().and_then(|d| d.replicas),
    ) {
        if scale != replicas {
            out.push(problem(
                &[Seg::Key("services"), Seg::Key(name), Seg::Key("scale")],
                format!("service {name:?} sets scale: {scale} and deploy.replicas: {replicas}"),
                "set only one of them, or give them the same value".into(),
            ));
        }
    }
}

/// `depends_on`, `links`, `volumes_from` and `service:` modes all order
/// start-up, so a cycle through any of them can never start.
fn check_cycles(project: &Project, problem: &Problem, out: &mut Vec<Diagnostic>) {
    let mut state: HashMap<&str, u8> = HashMap::new(); // 1 visiting, 2 done
    let mut stack: Vec<&str> = Vec::new();
    fn visit<'a>(
        project: &'a Project,
        name: &'a str,
        state: &mut HashMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match state.get(name) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|s| *s == name).unwrap_or(0);
                let mut cycle: Vec<&str> = stack[start..].to_vec();
                cycle.push(name);
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(name, 1);
        stack.push(name);
        if let Some(service) = project.services.get(name) {
            for dep in service.depends_on.keys() {
                if project.services.contains_key(dep) {
                    if let Some(cycle) = visit(project, dep, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(name, 2);
        None
    }
    for name in project.services.keys() {
        if let Some(cycle) = visit(project, name, &mut state, &mut stack) {
            let first = cycle.first().copied().unwrap_or_default();
            let next = cycle.get(1).copied().unwrap_or(first);
            out.push(problem(
                &[
                    Seg::Key("services"),
                    Seg::Key(first),
                    Seg::Key("depends_on"),
                    Seg::Named(next),
                ],
                format!("dependency cycle detected: {}", cycle.join(" -> ")),
                "remove one depends_on entry of the cycle".into(),
            ));
            return;
        }
    }
}

/// Two published ports on the same host address, port and protocol cannot
/// both be bound; an unspecified address overlaps every address.
fn check_ports(project: &Project, doc: &Node, problem: &Problem, out: &mut Vec<Diagnostic>) {
    let mut claimed: BTreeMap<(u32, String), Vec<(String, String)>> = BTreeMap::new();
    for (name, service) in &project.services {
        let replicas = service
            .deploy
            .as_ref()
            .and_then(|d| d.replicas)
            .or(service.scale)
            .unwrap_or(1);
        for (index, port) in service.ports.iter().enumerate() {
            let Some(published) = port.published.as_deref().filter(|p| !p.is_empty()) else {
                continue;
            };
            let Some(range) = parse_range(published) else {
                continue;
            };
            let host = port.host_ip.clone().unwrap_or_default();
            let host = if host == "0.0.0.0" || host == "::" {
                String::new()
            } else {
                host
            };
            let written = port_item(doc, name, index);
            let at = [
                Seg::Key("services"),
                Seg::Key(name),
                Seg::Key("ports"),
                Seg::Index(written),
            ];
            if replicas > 1 && range.0 == range.1 {
                out.push(problem(
                    &at,
                    format!("service {name:?} publishes host port {published} but asks for {replicas} replicas"),
                    "only one replica can bind a host port: use a range (\"8000-8003:80\") or omit the host port".into(),
                ));
            }
            for number in range.0..=range.1 {
                let key = (number, port.protocol.clone());
                let holders = claimed.entry(key).or_default();
                if let Some((other, _)) = holders
                    .iter()
                    .find(|(_, h)| h.is_empty() || host.is_empty() || *h == host)
                {
                    let shown = if host.is_empty() {
                        "*".to_string()
                    } else {
                        host.clone()
                    };
                    out.push(problem(
                        &at,
                        format!(
                            "host port {shown}:{number}/{} of service {name:?} is already published by service {other:?}",
                            port.protocol
                        ),
                        "publish a different host port, or bind to another host address".into(),
                    ));
                    break;
                }
                holders.push((name.clone(), host.clone()));
            }
        }
    }
}

/// Which written `ports:` item produced decoded port `index`: a short
/// range (`"9090-9091:8080-8081"`) becomes several ports.
fn port_item(doc: &Node, service: &str, index: usize) -> usize {
    let items = match doc
        .get("services")
        .and_then(|s| s.get(service))
        .and_then(|s| s.get("ports"))
        .map(|p| &p.value)
    {
        Some(Value::Seq(items)) => items,
        _ => return index,
    };
    let mut seen = 0;
    for (written, item) in items.iter().enumerate() {
        let count = match &item.value {
            Value::String(s) => super::model::parse_port_spec(s).map_or(1, |p| p.len()),
            Value::Int(i) => super::model::parse_port_spec(&i.to_string()).map_or(1, |p| p.len()),
            _ => 1,
        };
        seen += count;
        if index < seen {
            return written;
        }
    }
    index
}

/// `name[:rest]` → `name`.
fn first_field(entry: &str) -> &str {
    entry.split(':').next().unwrap_or_default()
}

fn parse_range(published: &str) -> Option<(u32, u32)> {
    match published.split_once('-') {
        Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
        None => {
            let p = published.trim().parse().ok()?;
            Some((p, p))
        }
    }
}

fn check_names(project: &Project, problem: &Problem, out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (name, service) in &project.services {
        if let Some(container) = service.container_name.as_deref() {
            if let Some(other) = seen.insert(container, name) {
                out.push(problem(
                    &[
                        Seg::Key("services"),
                        Seg::Key(name),
                        Seg::Key("container_name"),
                    ],
                    format!("container name {container:?} of service {name:?} is already used by service {other:?}"),
                    "container names must be unique".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("8080"), Some((8080, 8080)));
        assert_eq!(parse_range("8000-8005"), Some((8000, 8005)));
        assert_eq!(parse_range("x"), None);
    }
}
