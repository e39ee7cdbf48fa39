//! The checks the Compose schema cannot express: references between
//! services and to networks, volumes, configs and secrets; dependency
//! cycles; published ports claimed twice; replicas with a fixed name.
//!
//! Each problem is placed at the key that causes it, found in the merged
//! document by path.

use std::collections::{BTreeMap, HashMap};

use crate::diag::Diagnostic;
use crate::yaml::{Node, PathSeg};

use super::model::{Project, Service};

/// Runs every check; errors and warnings go to `out`.
pub fn check(
    project: &Project,
    doc: &Node,
    disabled: &[(String, Vec<String>)],
    out: &mut Vec<Diagnostic>,
) {
    let at = |path: &[&str]| -> Diagnostic {
        let segs: Vec<PathSeg> = path
            .iter()
            .map(|s| PathSeg::Key((*s).to_string()))
            .collect();
        Diagnostic::error(String::new())
            .at(doc.locate(&segs))
            .key(path.join("."))
    };
    let problem = |path: &[&str], message: String, hint: String| {
        let mut d = at(path);
        d.message = message;
        d.hint = Some(hint);
        d
    };
    let names: Vec<&str> = project.services.keys().map(String::as_str).collect();
    for (name, service) in &project.services {
        check_service_refs(project, name, service, disabled, &names, &problem, out);
    }
    check_cycles(project, &problem, out);
    check_ports(project, &problem, out);
    check_names(project, &problem, out);
}

type Problem<'a> = dyn Fn(&[&str], String, String) -> Diagnostic + 'a;

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
    let undefined_service = |target: &str, path: &[&str]| -> Diagnostic {
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
    for dep in service.depends_on.keys() {
        if !known(dep) {
            out.push(undefined_service(
                dep,
                &["services", name, "depends_on", dep],
            ));
        }
    }
    for link in &service.links {
        let target = link.split(':').next().unwrap_or_default();
        if !known(target) {
            out.push(undefined_service(target, &["services", name, "links"]));
        }
    }
    for from in &service.volumes_from {
        let target = from.split(':').next().unwrap_or_default();
        if !target.starts_with("container:") && !known(target) {
            out.push(undefined_service(
                target,
                &["services", name, "volumes_from"],
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
                out.push(undefined_service(target, &["services", name, key]));
            }
        }
    }
    let defined = |keys: Vec<&String>| {
        keys.iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for network in service.networks.keys() {
        if !project.networks.contains_key(network) {
            out.push(problem(
                &["services", name, "networks", network],
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
            &["services", name, "network_mode"],
            format!("service {name:?} sets both network_mode and networks"),
            "use one of them".into(),
        ));
    }
    for volume in &service.volumes {
        if volume.kind != "volume" {
            continue;
        }
        let Some(source) = volume.source.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        if !project.volumes.contains_key(source) {
            out.push(problem(
                &["services", name, "volumes"],
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
                    &["services", name, section],
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
            &["services", name, "container_name"],
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
                &["services", name, "scale"],
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
            out.push(problem(
                &["services", first, "depends_on"],
                format!("dependency cycle detected: {}", cycle.join(" -> ")),
                "remove one depends_on entry of the cycle".into(),
            ));
            return;
        }
    }
}

/// Two published ports on the same host address, port and protocol cannot
/// both be bound; an unspecified address overlaps every address.
fn check_ports(project: &Project, problem: &Problem, out: &mut Vec<Diagnostic>) {
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
            if replicas > 1 && range.0 == range.1 {
                out.push(problem(
                    &["services", name, "ports"],
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
                        &["services", name, "ports"],
                        format!(
                            "host port {shown}:{number}/{} of service {name:?} (ports[{index}]) is already published by service {other:?}",
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
                    &["services", name, "container_name"],
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
