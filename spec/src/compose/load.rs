//! The loader: options → files → environment → name → documents → merged,
//! validated, decoded and normalized project.

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};
use crate::yaml::{Node, Value};

use super::discover;
use super::files::{Environment, FileReader};
use super::merge;
use super::paths::clean;
use super::project_name;
use super::{LoadOptions, Loaded};

/// See [`super::load`].
pub fn load(options: &LoadOptions, consistency_check: bool) -> Result<Loaded, Diagnostics> {
    let mut reader = FileReader::default();
    let working_dir = if options.working_dir.as_os_str().is_empty() {
        PathBuf::from("/")
    } else {
        clean(&options.working_dir)
    };
    let absolute = |p: &Path| clean(&working_dir.join(p));

    let explicit_files: Vec<PathBuf> = options.files.iter().map(|p| absolute(p)).collect();
    let explicit_project_dir = options.project_directory.as_deref().map(absolute);

    // The `.env` file is read before the files are known, because it may
    // say which files to use (COMPOSE_FILE) and the project name.
    let env_dir = explicit_project_dir
        .clone()
        .or_else(|| {
            explicit_files
                .first()
                .and_then(|f| f.parent().map(Path::to_path_buf))
        })
        .unwrap_or_else(|| working_dir.clone());
    let mut env = read_dot_env(&mut reader, options, &working_dir, &env_dir);

    let files = if !explicit_files.is_empty() {
        explicit_files
    } else if let Some(list) = env.get("COMPOSE_FILE").filter(|v| !v.is_empty()) {
        // COMPOSE_FILE may come from the `.env` just read; its relative
        // paths are taken against the working dir, like `-f`.
        let separator = env
            .get("COMPOSE_PATH_SEPARATOR")
            .and_then(|s| s.chars().next())
            .unwrap_or(':');
        list.split(separator)
            .filter(|s| !s.is_empty())
            .map(|s| absolute(Path::new(s)))
            .collect()
    } else {
        discover_upwards(&working_dir)
    };
    let Some(first) = files.first() else {
        return Err(Diagnostic::error(format!(
            "no compose file found in {} or its parent folders",
            working_dir.display()
        ))
        .hint(format!(
            "create one of {} or pass -f FILE",
            discover::COMPOSE_FILE_NAMES.join(", ")
        ))
        .into());
    };
    let project_dir = explicit_project_dir
        .clone()
        .unwrap_or_else(|| first.parent().map(Path::to_path_buf).unwrap_or_default());
    if options.env_files.is_empty() && project_dir != env_dir {
        // Discovery found the project in a parent folder (or COMPOSE_FILE
        // pointed elsewhere): docker compose then also reads that folder's
        // `.env`, where values already set (process, first `.env`) win.
        for (k, v) in read_dot_env(&mut reader, options, &working_dir, &project_dir) {
            env.entry(k).or_insert(v);
        }
    }
    if reader.errors.iter().any(Diagnostic::is_error) {
        return Err(Diagnostics(reader.errors));
    }

    let name = match choose_name(&mut reader, options, &env, &files, &project_dir) {
        Some(name) => name,
        None => return Err(Diagnostics(reader.errors)),
    };
    env.entry("COMPOSE_PROJECT_NAME".into())
        .or_insert_with(|| name.clone());

    let mut merged: Option<Node> = None;
    for file in &files {
        if let Some(doc) = reader.load_file(file, &project_dir, &env) {
            merged = Some(match merged {
                None => doc,
                Some(earlier) => merge::merge_documents(earlier, doc),
            });
        }
    }
    if reader.errors.iter().any(Diagnostic::is_error) {
        return Err(Diagnostics(reader.errors));
    }
    let Some(mut doc) = merged else {
        return Err(Diagnostic::error("no compose file could be loaded").into());
    };
    if doc.entries().is_empty() {
        // compose-go: only when every file is empty (an empty override
        // file on its own adds nothing and is fine).
        return Err(Diagnostic::error("empty compose file")
            .in_file(first)
            .hint("a compose file needs at least `services:`")
            .into());
    }
    merge::strip_tags(&mut doc);
    // Each file was checked on its own; extended services come from files
    // that are not (compose-go validates the merge result instead), so the
    // merged document is checked once more.
    if !super::validate::check_file_shape(&mut doc, &mut reader.errors) {
        return Err(Diagnostics(reader.errors));
    }
    set_name(&mut doc, &name);

    let mut project = match super::decode::decode_with_warnings(doc.to_json()) {
        Ok(decoded) => {
            reader
                .warnings
                .extend(decoded.warnings.iter().map(|w| w.to_warning(&doc)));
            decoded.project
        }
        Err(errors) => {
            return Err(Diagnostics(
                errors.iter().map(|e| e.to_diagnostic(&doc)).collect(),
            ));
        }
    };

    let context = super::normalize::Context {
        project_dir: &project_dir,
        environment: &env,
        profiles: active_profiles(options, &env),
        doc: &doc,
    };
    let disabled = super::normalize::normalize(&mut project, &context, &mut reader);
    if consistency_check {
        super::semantic::check(&project, &doc, &disabled, &mut reader.errors);
    }
    if reader.errors.iter().any(Diagnostic::is_error) {
        return Err(Diagnostics(reader.errors));
    }
    // Warnings come from several passes; show them file by file in the
    // order the files were read, top to bottom in each.
    let mut warnings = reader.warnings;
    let inputs = &reader.inputs;
    warnings.sort_by_key(|w| {
        let file = inputs
            .iter()
            .position(|p| *p == w.file)
            .unwrap_or(usize::MAX);
        (file, w.line, w.column)
    });
    Ok(Loaded {
        project,
        inputs: reader.inputs,
        warnings,
        environment: env.into_iter().collect(),
    })
}

/// `.env` (or the `--env-file`s) under the process environment, which wins.
fn read_dot_env(
    reader: &mut FileReader,
    options: &LoadOptions,
    working_dir: &Path,
    env_dir: &Path,
) -> Environment {
    let files: Vec<PathBuf> = if options.env_files.is_empty() {
        let default = env_dir.join(".env");
        if default.is_file() {
            vec![default]
        } else {
            Vec::new()
        }
    } else {
        options
            .env_files
            .iter()
            .map(|p| clean(&working_dir.join(p)))
            .collect()
    };
    let mut env = Environment::new();
    for file in files {
        let lookup = |k: &str| options.environment.get(k).or_else(|| env.get(k)).cloned();
        if let Some(vars) = reader.read_env_file(&file, &lookup) {
            env.extend(vars);
        }
    }
    env.extend(
        options
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    env
}

/// The compose files of the nearest folder, from `dir` up to the root.
fn discover_upwards(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .map(discover::project_files)
        .find(|files| !files.is_empty())
        .unwrap_or_default()
}

/// `--profile`, or when none is given `COMPOSE_PROFILES` (comma-separated,
/// possibly from `.env`): the flag replaces the variable, as in compose.
fn active_profiles(options: &LoadOptions, env: &Environment) -> Vec<String> {
    let mut profiles = options.profiles.clone();
    if let Some(list) = env.get("COMPOSE_PROFILES").filter(|_| profiles.is_empty()) {
        profiles.extend(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    profiles.sort();
    profiles.dedup();
    profiles
}

/// The project name by Compose's precedence; the files' own `name:` is
/// interpolated on its own, before the rest, because the rest may use
/// `${COMPOSE_PROJECT_NAME}`.
fn choose_name(
    reader: &mut FileReader,
    options: &LoadOptions,
    env: &Environment,
    files: &[PathBuf],
    project_dir: &Path,
) -> Option<String> {
    let mut from_file: Option<String> = None;
    for file in files {
        let Some(name) = reader.peek(file).and_then(|doc| doc.get("name")).cloned() else {
            continue;
        };
        {
            let mut node = name;
            let lookup = |k: &str| env.get(k).cloned();
            let problems = crate::interpolate::interpolate_node(&mut node, &lookup);
            if problems.iter().any(Diagnostic::is_error) {
                reader.report(problems);
                return None;
            }
            if let Value::String(s) = node.value {
                from_file = Some(s);
            }
        }
    }
    let folder = project_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let from_env = options
        .environment
        .get("COMPOSE_PROJECT_NAME")
        .or_else(|| env.get("COMPOSE_PROJECT_NAME"));
    match project_name::choose(
        options.project_name.as_deref(),
        from_env.map(String::as_str),
        from_file.as_deref(),
        &folder,
    ) {
        Ok((name, _)) => Some(name),
        Err(mut e) => {
            // A bad COMPOSE_PROJECT_NAME written in a `.env` file: say where.
            if e.key == "COMPOSE_PROJECT_NAME"
                && !options.environment.contains_key("COMPOSE_PROJECT_NAME")
            {
                if let Some((file, line)) = find_in_env_files(reader, "COMPOSE_PROJECT_NAME") {
                    e = e.in_file(file).line_col(line, 1);
                }
            }
            reader.errors.push(e);
            None
        }
    }
}

/// The `.env`-format input (already read) that sets `key`, and the line.
fn find_in_env_files(reader: &FileReader, key: &str) -> Option<(PathBuf, u32)> {
    reader
        .inputs
        .iter()
        .filter(|p| !p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter_map(|p| Some((p, std::fs::read_to_string(p).ok()?)))
        .find_map(|(p, text)| {
            text.lines().enumerate().find_map(|(i, line)| {
                let line = line.trim_start();
                let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
                let rest = line.strip_prefix(key)?;
                rest.trim_start()
                    .starts_with('=')
                    .then(|| (p.clone(), u32::try_from(i + 1).unwrap_or(0)))
            })
        })
}

fn set_name(doc: &mut Node, name: &str) {
    let span = doc.span.clone();
    match doc.get_mut("name") {
        Some(node) => node.value = Value::String(name.to_string()),
        None => {
            if let Value::Map(entries) = &mut doc.value {
                entries.insert(
                    0,
                    crate::yaml::Entry {
                        key: "name".into(),
                        key_span: span.clone(),
                        value: Node::new(Value::String(name.to_string()), span),
                    },
                );
            }
        }
    }
}
