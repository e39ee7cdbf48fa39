//! Making a Compose file's relative paths absolute, against the folder they
//! are relative to, before files are merged.
//!
//! Doing it per file, on the [`Node`] tree, is what makes `extends` and
//! `include` right: a path in an extended or included file is relative to
//! that file's folder (or the include's `project_directory`), not to the
//! project's. `~` expands to the home directory given in the environment.
//! Remote build contexts (git URLs, `http(s)://`) are kept verbatim.

use std::path::{Component, Path, PathBuf};

use crate::yaml::{Node, Value};

/// What relative paths are resolved against.
pub struct PathBase<'a> {
    /// The folder relative paths start from.
    pub dir: &'a Path,
    /// `$HOME`, for `~`; when unknown, `~` paths are left as written.
    pub home: Option<&'a Path>,
}

impl PathBase<'_> {
    /// `rel` made absolute and lexically clean. A leading `~` is the home
    /// directory, whatever follows it (compose-go's `ExpandUser` joins the
    /// rest to `$HOME`, so `~other/x` is `$HOME/other/x`); with no home
    /// known, such a path is left as written rather than made relative.
    pub fn resolve(&self, rel: &str) -> String {
        let expanded = match (rel.strip_prefix('~'), self.home) {
            (Some(rest), Some(home)) => home.join(rest.trim_start_matches('/')),
            (Some(_), None) => return rel.to_string(),
            (None, _) => PathBuf::from(rel),
        };
        let joined = if expanded.is_absolute() {
            expanded
        } else {
            self.dir.join(expanded)
        };
        clean(&joined).to_string_lossy().into_owned()
    }
}

/// Lexical clean like Go's `filepath.Clean`: drops `.`, folds `..`.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// True for build contexts that name something remote, not a folder.
pub fn is_remote_context(context: &str) -> bool {
    const PREFIXES: [&str; 5] = ["http://", "https://", "git://", "git@", "ssh://"];
    PREFIXES.iter().any(|p| context.starts_with(p))
        || context.starts_with("github.com/")
        || context.ends_with(".git")
        || context.contains(".git#")
}

/// True for an `additional_contexts` value that is not a local folder.
fn is_non_path_context(value: &str) -> bool {
    is_remote_context(value)
        || value.starts_with("docker-image://")
        || value.starts_with("service:")
        || value.starts_with("oci-layout://")
        || value.starts_with("target:")
}

/// Resolves every relative path in a whole Compose document.
pub fn resolve_document(doc: &mut Node, base: &PathBase) {
    if let Some(services) = doc.get_mut("services") {
        if let Value::Map(entries) = &mut services.value {
            for entry in entries.iter_mut() {
                resolve_service(&mut entry.value, base);
            }
        }
    }
    for section in ["configs", "secrets"] {
        if let Some(Value::Map(entries)) = doc.get_mut(section).map(|n| &mut n.value) {
            for entry in entries.iter_mut() {
                if let Some(file) = entry.value.get_mut("file") {
                    resolve_string(file, base);
                }
            }
        }
    }
}

/// Resolves the relative paths of one service definition.
pub fn resolve_service(service: &mut Node, base: &PathBase) {
    if let Some(build) = service.get_mut("build") {
        resolve_build(build, base);
    }
    for key in ["env_file", "label_file"] {
        if let Some(node) = service.get_mut(key) {
            resolve_file_list(node, base);
        }
    }
    if let Some(Value::Seq(volumes)) = service.get_mut("volumes").map(|n| &mut n.value) {
        for volume in volumes.iter_mut() {
            resolve_volume(volume, base);
        }
    }
    if let Some(extends) = service.get_mut("extends") {
        if let Some(file) = extends.get_mut("file") {
            resolve_string(file, base);
        }
    }
    if let Some(Value::Seq(rules)) = service
        .get_mut("develop")
        .and_then(|d| d.get_mut("watch"))
        .map(|n| &mut n.value)
    {
        for rule in rules.iter_mut() {
            if let Some(path) = rule.get_mut("path") {
                resolve_string(path, base);
            }
        }
    }
}

/// Gives every `build:` without a `context` the folder `dir`. Done once a
/// (sub-)project's files are merged, not per file: an override file that
/// only adds build args must not replace the base file's context.
pub fn default_build_contexts(doc: &mut Node, dir: &Path) {
    let Some(Value::Map(services)) = doc.get_mut("services").map(|n| &mut n.value) else {
        return;
    };
    for service in services.iter_mut() {
        let Some(build) = service.value.get_mut("build") else {
            continue;
        };
        let span = build.span.clone();
        if let Value::Map(entries) = &mut build.value {
            if !entries.iter().any(|e| e.key == "context") {
                entries.insert(
                    0,
                    crate::yaml::Entry {
                        key: "context".into(),
                        key_span: span.clone(),
                        value: Node::new(Value::String(dir.to_string_lossy().into_owned()), span),
                    },
                );
            }
        }
    }
}

fn resolve_string(node: &mut Node, base: &PathBase) {
    if let Value::String(s) = &mut node.value {
        *s = base.resolve(s);
    }
}

fn resolve_build(build: &mut Node, base: &PathBase) {
    match &mut build.value {
        Value::String(context) if !is_remote_context(context) => {
            *context = base.resolve(context);
        }
        Value::Map(_) => {
            if let Some(context) = build.get_mut("context") {
                if let Value::String(c) = &mut context.value {
                    if !is_remote_context(c) {
                        *c = base.resolve(c);
                    }
                }
            }
            if let Some(extra) = build.get_mut("additional_contexts") {
                match &mut extra.value {
                    Value::Map(entries) => {
                        for entry in entries.iter_mut() {
                            if let Value::String(v) = &mut entry.value.value {
                                if !is_non_path_context(v) {
                                    *v = base.resolve(v);
                                }
                            }
                        }
                    }
                    Value::Seq(items) => {
                        for item in items.iter_mut() {
                            if let Value::String(s) = &mut item.value {
                                if let Some((name, v)) = s.split_once('=') {
                                    if !is_non_path_context(v) {
                                        *s = format!("{name}={}", base.resolve(v));
                                    }
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn resolve_file_list(node: &mut Node, base: &PathBase) {
    match &mut node.value {
        Value::String(s) => *s = base.resolve(s),
        Value::Seq(items) => {
            for item in items.iter_mut() {
                match &mut item.value {
                    Value::String(s) => *s = base.resolve(s),
                    Value::Map(_) => {
                        if let Some(path) = item.get_mut("path") {
                            resolve_string(path, base);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// True when a short volume spec's source is a host path rather than a
/// volume name: Compose's rule is that it starts with `.`, `/` or `~`.
fn is_path_source(source: &str) -> bool {
    source.starts_with('.') || source.starts_with('/') || source.starts_with('~')
}

fn resolve_volume(volume: &mut Node, base: &PathBase) {
    match &mut volume.value {
        Value::String(spec) => {
            if let Some((source, rest)) = spec.split_once(':') {
                if is_path_source(source) && !source.starts_with('/') {
                    *spec = format!("{}:{rest}", base.resolve(source));
                }
            }
        }
        Value::Map(_) => {
            let is_bind = volume.get("type").and_then(Node::as_str) == Some("bind");
            if let Some(source) = volume.get_mut("source") {
                if let Value::String(s) = &mut source.value {
                    if is_bind || (is_path_source(s) && !s.starts_with('/')) {
                        *s = base.resolve(s);
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_and_home_paths() {
        let base = PathBase {
            dir: Path::new("/p/app"),
            home: Some(Path::new("/home/me")),
        };
        assert_eq!(base.resolve("."), "/p/app");
        assert_eq!(base.resolve("./data"), "/p/app/data");
        assert_eq!(base.resolve("../shared/x"), "/p/shared/x");
        assert_eq!(base.resolve("/abs"), "/abs");
        assert_eq!(base.resolve("~/cfg"), "/home/me/cfg");
        assert_eq!(base.resolve("~"), "/home/me");
        assert_eq!(base.resolve("~other/x"), "/home/me/other/x");
        let no_home = PathBase {
            dir: Path::new("/p/app"),
            home: None,
        };
        assert_eq!(no_home.resolve("~/cfg"), "~/cfg");
    }

    #[test]
    fn remote_contexts_are_recognised() {
        assert!(is_remote_context(
            "https://github.com/docker/rootfs.git#main"
        ));
        assert!(is_remote_context("git@github.com:x/y.git"));
        assert!(!is_remote_context("./web"));
    }

    #[test]
    fn path_sources_start_with_dot_slash_or_tilde() {
        assert!(is_path_source("./data"));
        assert!(is_path_source("~/data"));
        assert!(!is_path_source("dbdata"));
    }
}
