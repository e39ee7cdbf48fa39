//! Reading one Compose file into an interpolated, path-resolved [`Node`]
//! tree, with its `include` and `extends` resolved.
//!
//! Every file is read through a [`FileReader`] that records what it read (the
//! project's inputs, for revision hashes) and catches include and extends
//! cycles.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::Diagnostic;
use crate::yaml::{self, Node, Value};

use super::merge;
use super::paths::{self, PathBase};

/// The variables interpolation sees.
pub type Environment = BTreeMap<String, String>;

/// Reads files and collects what went wrong, without stopping at the first
/// problem where going on still makes sense.
#[derive(Default)]
pub struct FileReader {
    pub inputs: Vec<PathBuf>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// Files being included, outermost first, to catch include cycles.
    include_stack: Vec<PathBuf>,
    /// `(file, service)` pairs being extended, to catch extends cycles.
    extends_stack: Vec<(PathBuf, String)>,
    /// The members of each extends cycle reported, so a cycle reached again
    /// from another of its services is not reported twice.
    reported_cycles: HashSet<Vec<(PathBuf, String)>>,
    /// Files already parsed: the name pre-pass, extends and includes reach
    /// the same file more than once, and parsing is the expensive part.
    parsed: HashMap<PathBuf, Node>,
    /// Files that failed to read or parse, so their error is reported once.
    failed: HashSet<PathBuf>,
}

impl FileReader {
    /// Reads a file's text and remembers it as an input.
    pub fn read_text(&mut self, path: &Path) -> Option<String> {
        match std::fs::read(path) {
            Ok(bytes) => {
                if !self.inputs.iter().any(|p| p == path) {
                    self.inputs.push(path.to_path_buf());
                }
                match String::from_utf8(bytes) {
                    Ok(text) => Some(text),
                    Err(_) => {
                        self.errors.push(
                            Diagnostic::error("file is not valid UTF-8")
                                .in_file(path)
                                .hint("save the file as UTF-8"),
                        );
                        None
                    }
                }
            }
            Err(e) => {
                self.errors.push(
                    Diagnostic::error(format!("cannot read file: {e}"))
                        .in_file(path)
                        .hint("check the path given with -f, include or extends"),
                );
                None
            }
        }
    }

    /// Reads and parses a YAML file; `None` after recording the error. The
    /// documents of a multi-document file are merged in order, as compose-go
    /// does, so later stages see one document per file.
    pub fn parse(&mut self, path: &Path) -> Option<Node> {
        self.peek(path).cloned()
    }

    /// Like [`Self::parse`] but lends the cached tree: the name pre-pass only
    /// reads it, and a 1,000-service document is costly to copy.
    pub fn peek(&mut self, path: &Path) -> Option<&Node> {
        if !self.parsed.contains_key(path) {
            let node = self.parse_uncached(path)?;
            self.parsed.insert(path.to_path_buf(), node);
        }
        self.parsed.get(path)
    }

    /// Takes the parsed tree out of the cache: for the one consumer that
    /// transforms it in place. A later [`Self::parse`] of the same file
    /// (extends of the main file) parses it again.
    pub fn take(&mut self, path: &Path) -> Option<Node> {
        match self.parsed.remove(path) {
            Some(node) => Some(node),
            None => self.parse_uncached(path),
        }
    }

    fn parse_uncached(&mut self, path: &Path) -> Option<Node> {
        if self.failed.contains(path) {
            return None;
        }
        let Some(text) = self.read_text(path) else {
            self.failed.insert(path.to_path_buf());
            return None;
        };
        let file: Arc<Path> = Arc::from(path);
        match yaml::parse_documents(&text, file.clone()) {
            Ok(documents) => {
                let mut documents = documents.into_iter();
                let first = documents
                    .next()
                    .unwrap_or_else(|| Node::new(Value::Null, yaml::Span::new(file, 1, 1)));
                Some(documents.fold(first, merge::merge_documents))
            }
            Err(e) => {
                self.errors.push(e);
                self.failed.insert(path.to_path_buf());
                None
            }
        }
    }

    /// Files interpolation and checks report into: warnings (an unset
    /// variable) must not fail the load.
    pub fn report(&mut self, diagnostics: Vec<Diagnostic>) {
        for d in diagnostics {
            if d.is_error() {
                self.errors.push(d);
            } else {
                self.warnings.push(d);
            }
        }
    }

    /// Reads a `.env`-format file into `(key, value)` pairs, in order. Keys
    /// listed without a value take it from `lookup` or are dropped.
    pub fn read_env_file(
        &mut self,
        path: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Vec<(String, String)>> {
        let text = self.read_text(path)?;
        match crate::dotenv::parse(&text, path, lookup) {
            Ok(vars) => Some(
                vars.into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v)))
                    .collect(),
            ),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// Loads one Compose file: parse, interpolate, validate its own shape,
    /// resolve its relative paths against `base_dir`, then its `include`s
    /// and `extends`. Returns the document ready to merge.
    pub fn load_file(&mut self, path: &Path, base_dir: &Path, env: &Environment) -> Option<Node> {
        let mut doc = self.take(path)?;
        if matches!(doc.value, Value::Null) {
            // An empty file adds nothing; the loader reports "empty compose
            // file" only when every file is empty, as compose-go does.
            return Some(Node::new(Value::Map(Vec::new()), doc.span));
        }
        if !matches!(doc.value, Value::Map(_)) {
            self.errors.push(
                Diagnostic::error("a compose file must be a mapping at the top level")
                    .at(&doc.span)
                    .hint("start with `services:`"),
            );
            return None;
        }
        if !self.interpolate(&mut doc, env) {
            return None;
        }
        if !super::validate::check_file_shape(&mut doc, &mut self.errors) {
            return None;
        }
        self.drop_version(&mut doc);
        resolve_paths(&mut doc, base_dir, env);
        let doc = self.apply_includes(path, base_dir, doc, env)?;
        self.apply_extends(path, doc, env)
    }

    /// The obsolete top-level `version` is accepted, warned about once per
    /// file that has it (compose-go names the file), and removed.
    fn drop_version(&mut self, doc: &mut Node) {
        let Value::Map(entries) = &mut doc.value else {
            return;
        };
        if let Some(i) = entries.iter().position(|e| e.key == "version") {
            let entry = entries.remove(i);
            self.warnings.push(
                Diagnostic::warning("the attribute `version` is obsolete, it will be ignored")
                    .at(&entry.key_span)
                    .key("version")
                    .hint("remove it to avoid potential confusion"),
            );
        }
    }

    /// Resolves `include:`: each entry is a project of its own (its folder,
    /// its `.env`), loaded and merged under this file. The including file's
    /// definitions win over included ones.
    fn apply_includes(
        &mut self,
        path: &Path,
        base_dir: &Path,
        mut doc: Node,
        env: &Environment,
    ) -> Option<Node> {
        let Some(position) = doc.entries().iter().position(|e| e.key == "include") else {
            return Some(doc);
        };
        let include = match &mut doc.value {
            Value::Map(entries) => entries.remove(position).value,
            _ => return Some(doc),
        };
        self.include_stack.push(path.to_path_buf());
        let mut base: Option<Node> = None;
        let mut seen: Vec<PathBuf> = Vec::new();
        let items = match include.value {
            Value::Seq(items) => items,
            _ => Vec::new(),
        };
        for item in items {
            let Some(spec) = IncludeSpec::from_node(&item, base_dir) else {
                continue;
            };
            if let Some(looping) = spec.paths.iter().find(|p| self.include_stack.contains(p)) {
                // Reported at the entry that closes the loop.
                let chain: Vec<String> = self
                    .include_stack
                    .iter()
                    .chain(std::iter::once(looping))
                    .map(|p| p.display().to_string())
                    .collect();
                self.errors.push(
                    Diagnostic::error(format!("include cycle detected: {}", chain.join(" -> ")))
                        .at(&item.span)
                        .key("include")
                        .hint("a file cannot include itself, directly or through others"),
                );
                continue;
            }
            if spec.paths.iter().all(|p| seen.contains(p)) {
                // The same file reached twice is one include, not a conflict.
                continue;
            }
            seen.extend(spec.paths.iter().cloned());
            if let Some(included) = self.load_included(&spec, env) {
                base = Some(match base {
                    None => included,
                    Some(earlier) => self.merge_included(earlier, included),
                });
            }
        }
        self.include_stack.pop();
        Some(match base {
            Some(base) => merge::merge_documents(base, doc),
            None => doc,
        })
    }

    fn load_included(&mut self, spec: &IncludeSpec, env: &Environment) -> Option<Node> {
        let first = spec.paths.first()?;
        let project_dir = spec
            .project_directory
            .clone()
            .or_else(|| first.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        // The included project's own env file, under the caller's
        // environment: a variable the caller sets wins.
        let mut include_env = Environment::new();
        let env_files = if spec.env_files.is_empty() {
            let default = project_dir.join(".env");
            if default.is_file() {
                vec![default]
            } else {
                Vec::new()
            }
        } else {
            spec.env_files.clone()
        };
        for file in &env_files {
            let lookup = |k: &str| env.get(k).or_else(|| include_env.get(k)).cloned();
            if let Some(vars) = self.read_env_file(file, &lookup) {
                include_env.extend(vars);
            }
        }
        include_env.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut merged: Option<Node> = None;
        for path in &spec.paths {
            let doc = self.load_file(path, &project_dir, &include_env)?;
            merged = Some(match merged {
                None => doc,
                Some(earlier) => merge::merge_documents(earlier, doc),
            });
        }
        let mut merged = merged?;
        // The included project's defaults are its own: a build without a
        // context builds in the include's project directory, not ours.
        paths::default_build_contexts(&mut merged, &project_dir);
        Some(merged)
    }

    /// Two included projects may not define the same resource differently.
    fn merge_included(&mut self, earlier: Node, later: Node) -> Node {
        for section in ["services", "networks", "volumes", "configs", "secrets"] {
            for entry in later.get(section).map(Node::entries).unwrap_or_default() {
                let Some(existing) = earlier.get(section).and_then(|s| s.get(&entry.key)) else {
                    continue;
                };
                if existing.to_json() != entry.value.to_json() {
                    self.errors.push(
                        Diagnostic::error(format!(
                            "imported compose file {} defines conflicting {section} {:?}",
                            entry.key_span.file.display(),
                            entry.key
                        ))
                        .at(&entry.key_span)
                        .key(format!("{section}.{}", entry.key))
                        .hint(format!(
                            "it is already defined in {}; rename one of them",
                            existing.span.file.display()
                        )),
                    );
                }
            }
        }
        merge::merge_documents(earlier, later)
    }

    /// Replaces each `extends:` by the merge of the extended service and the
    /// extending one.
    fn apply_extends(&mut self, path: &Path, mut doc: Node, env: &Environment) -> Option<Node> {
        // Only services that extend something are rebuilt; copying every
        // service of a large file would cost more than the rest of loading.
        let names: Vec<String> = doc
            .get("services")
            .map(|s| {
                s.entries()
                    .iter()
                    .filter(|e| e.value.get("extends").is_some())
                    .map(|e| e.key.clone())
                    .collect()
            })
            .unwrap_or_default();
        for name in names {
            let resolved = self.resolve_service_extends(path, &doc, &name, env);
            if let (Some(resolved), Some(slot)) = (
                resolved,
                doc.get_mut("services").and_then(|s| s.get_mut(&name)),
            ) {
                *slot = resolved;
            }
        }
        Some(doc)
    }

    /// The service `name` of `doc` (read from `path`) with its `extends`
    /// chain applied; `None` after recording an error.
    fn resolve_service_extends(
        &mut self,
        path: &Path,
        doc: &Node,
        name: &str,
        env: &Environment,
    ) -> Option<Node> {
        let service = doc.get("services")?.get(name)?.clone();
        let Some(extends) = service.get("extends").cloned() else {
            return Some(service);
        };
        let key = (path.to_path_buf(), name.to_string());
        if self.extends_stack.contains(&key) {
            // Only the part of the stack that loops; a service from another
            // file is shown with that file's name.
            let start = self
                .extends_stack
                .iter()
                .position(|k| *k == key)
                .unwrap_or(0);
            let mut members = self.extends_stack[start..].to_vec();
            members.sort();
            if !self.reported_cycles.insert(members) {
                return None;
            }
            let chain: Vec<String> = self.extends_stack[start..]
                .iter()
                .chain(std::iter::once(&key))
                .map(|(file, service)| {
                    if file == path {
                        service.clone()
                    } else {
                        let shown = file.file_name().unwrap_or(file.as_os_str());
                        format!("{service} ({})", shown.to_string_lossy())
                    }
                })
                .collect();
            self.errors.push(
                Diagnostic::error(format!(
                    "circular reference in extends: {}",
                    chain.join(" -> ")
                ))
                .at(&extends.span)
                .key(format!("services.{name}.extends"))
                .hint("a service cannot extend itself, directly or through others"),
            );
            return None;
        }
        let (target_service, target_file) = match &extends.value {
            Value::String(s) => (s.clone(), None),
            _ => (
                extends
                    .get("service")
                    .and_then(Node::as_str)
                    .unwrap_or_default()
                    .to_string(),
                extends
                    .get("file")
                    .and_then(Node::as_str)
                    .map(PathBuf::from),
            ),
        };
        self.extends_stack.push(key);
        let base = match &target_file {
            None => self.lookup_extended(path, doc, &target_service, &extends, name, env),
            Some(file) => {
                let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
                // The extended file is loaded on its own, relative to its own
                // folder, so its paths point where its author meant.
                let saved_include = std::mem::take(&mut self.include_stack);
                let other = self.load_file_shallow(file, &base_dir, env);
                self.include_stack = saved_include;
                match other {
                    Some(other) => {
                        self.lookup_extended(file, &other, &target_service, &extends, name, env)
                    }
                    None => None,
                }
            }
        };
        self.extends_stack.pop();
        let base = base?;
        let mut over = service;
        if let Value::Map(entries) = &mut over.value {
            entries.retain(|e| e.key != "extends");
        }
        Some(merge::merge_service(base, over))
    }

    fn lookup_extended(
        &mut self,
        file: &Path,
        doc: &Node,
        target: &str,
        extends: &Node,
        name: &str,
        env: &Environment,
    ) -> Option<Node> {
        if doc.get("services").and_then(|s| s.get(target)).is_none() {
            let names: Vec<&str> = doc
                .get("services")
                .map(|s| s.entries().iter().map(|e| e.key.as_str()).collect())
                .unwrap_or_default();
            let hint = match super::schema::suggest(target, &names) {
                Some(s) => format!("did you mean {s:?}? services there: {}", names.join(", ")),
                None => format!("services there: {}", names.join(", ")),
            };
            // Point at the `service:` value when written out, so the
            // mistyped name is what is underlined.
            let at = extends.get("service").unwrap_or(extends);
            self.errors.push(
                Diagnostic::error(format!(
                    "cannot extend service {target:?}: no such service in {}",
                    file.display()
                ))
                .at(&at.span)
                .key(format!("services.{name}.extends"))
                .hint(hint),
            );
            return None;
        }
        self.resolve_service_extends(file, doc, target, env)
    }

    /// Loads a file for `extends`: like [`Self::load_file`] but without
    /// resolving its own extends (done service by service on demand).
    fn load_file_shallow(
        &mut self,
        path: &Path,
        base_dir: &Path,
        env: &Environment,
    ) -> Option<Node> {
        let mut doc = self.parse(path)?;
        let interpolated = self.interpolate(&mut doc, env);
        // Not schema-checked as a whole: only the extended service is used,
        // and it is checked in the merged document (compose-go skips
        // validation of extended files too, so `nil:` beside it is fine).
        let coerced = crate::compose::schema::coerce(&mut doc);
        let failed = !interpolated || coerced.iter().any(Diagnostic::is_error);
        self.report(coerced);
        if failed {
            return None;
        }
        resolve_paths(&mut doc, base_dir, env);
        Some(doc)
    }

    /// Interpolates a whole document, reporting what it finds; false when
    /// an error (not only a warning) was found.
    fn interpolate(&mut self, doc: &mut Node, env: &Environment) -> bool {
        let lookup = |name: &str| env.get(name).cloned();
        let problems = crate::interpolate::interpolate_node(doc, &lookup);
        let failed = problems.iter().any(Diagnostic::is_error);
        self.report(problems);
        !failed
    }
}

/// Makes a document's relative paths absolute against `base_dir`, with `~`
/// from the environment's `HOME`.
fn resolve_paths(doc: &mut Node, base_dir: &Path, env: &Environment) {
    let home = env.get("HOME").map(PathBuf::from);
    paths::resolve_document(
        doc,
        &PathBase {
            dir: base_dir,
            home: home.as_deref(),
        },
    );
}

/// One `include:` entry in long form.
struct IncludeSpec {
    paths: Vec<PathBuf>,
    env_files: Vec<PathBuf>,
    project_directory: Option<PathBuf>,
}

impl IncludeSpec {
    fn from_node(node: &Node, base_dir: &Path) -> Option<Self> {
        let resolve = |s: &str| {
            PathBuf::from(
                PathBase {
                    dir: base_dir,
                    home: None,
                }
                .resolve(s),
            )
        };
        let strings = |n: Option<&Node>| -> Vec<PathBuf> {
            match n.map(|n| &n.value) {
                Some(Value::String(s)) => vec![resolve(s)],
                Some(Value::Seq(items)) => {
                    items.iter().filter_map(Node::as_str).map(resolve).collect()
                }
                _ => Vec::new(),
            }
        };
        match &node.value {
            Value::String(s) => Some(Self {
                paths: vec![resolve(s)],
                env_files: Vec::new(),
                project_directory: None,
            }),
            Value::Map(_) => Some(Self {
                paths: strings(node.get("path")),
                env_files: strings(node.get("env_file")),
                project_directory: node
                    .get("project_directory")
                    .and_then(Node::as_str)
                    .map(resolve),
            }),
            _ => None,
        }
    }
}
