//! The typed Dockerfile: [`Dockerfile`] (global ARGs before the first FROM,
//! then [`Stage`]s of [`Command`]s), built from an [`Ast`], with the stage
//! helpers the builder needs: lookup by name or index, FROM expansion with
//! the global ARGs, and which stages a `--target` needs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::instruction::{Instruction, InstructionError, parse_from};
use super::parser::{Ast, Directive, Node, parse};
use super::shell::{EnvLookup, ExpandError, expand_word};
use crate::diag::{Diagnostic, Diagnostics};

/// Where an instruction is: 1-based lines (inclusive) and the keyword column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub start_line: u32,
    pub end_line: u32,
    pub column: u32,
}

impl Location {
    fn of(node: &Node) -> Self {
        Self {
            start_line: node.start_line,
            end_line: node.end_line,
            column: node.column,
        }
    }
}

/// One typed instruction and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Command {
    pub instruction: Instruction,
    pub location: Location,
    /// The instruction line as written, continuations joined.
    pub original: String,
}

/// A build stage: `FROM base [AS name]` and what follows until the next FROM.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stage {
    pub index: usize,
    /// Lower-cased `AS` name.
    pub name: Option<String>,
    /// The base as written (may hold `${ARG}` references to global ARGs).
    pub base: String,
    pub platform: Option<String>,
    pub location: Location,
    pub commands: Vec<Command>,
}

/// A parsed, typed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dockerfile {
    pub file: PathBuf,
    pub escape: char,
    pub directives: Vec<Directive>,
    /// ARG instructions before the first FROM.
    pub global_args: Vec<Command>,
    pub stages: Vec<Stage>,
    /// Non-fatal findings (empty continuation lines, MAINTAINER).
    pub warnings: Vec<Diagnostic>,
}

impl Dockerfile {
    /// Parses Dockerfile text; `file` is used in diagnostics only.
    pub fn parse(text: &str, file: &Path) -> Result<Self, Diagnostics> {
        Self::from_ast(&parse(text, file)?)
    }

    /// Reads and parses a Dockerfile (invalid UTF-8 is replaced, as
    /// BuildKit's byte-oriented parser would pass it through).
    pub fn parse_file(path: &Path) -> Result<Self, Diagnostics> {
        let bytes = std::fs::read(path).map_err(|e| {
            Diagnostic::error(format!("cannot read Dockerfile: {e}"))
                .in_file(path)
                .hint("check that the file exists and is readable")
        })?;
        Self::parse(&String::from_utf8_lossy(&bytes), path)
    }

    /// Types every node; reports every bad instruction, not just the first.
    pub fn from_ast(ast: &Ast) -> Result<Self, Diagnostics> {
        let mut errors = Vec::new();
        let mut warnings = ast.warnings.clone();
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for node in &ast.nodes {
            let fail = |e: InstructionError| {
                let (line, column) = match &e.at {
                    Some(text) => ast.locate(node, text),
                    None => (node.start_line, node.column),
                };
                ast.error_at(line, column, e.message)
                    .key(node.name())
                    .hint(e.hint)
            };
            if node.name() == "FROM" {
                match parse_from(node) {
                    Ok(from) => {
                        if let Some(name) = &from.name
                            && let Some(prev) =
                                stages.iter().find(|s| s.name.as_ref() == Some(name))
                        {
                            let written = node.args.get(2).map_or(name.as_str(), String::as_str);
                            let (line, column) = ast.locate(node, written);
                            errors.push(
                                ast.error_at(line, column, format!("duplicate stage name {name:?}"))
                                    .key("FROM")
                                    .hint(format!(
                                        "stage names must be unique; {name:?} is already used on line {}",
                                        prev.location.start_line
                                    )),
                            );
                        }
                        stages.push(Stage {
                            index: stages.len(),
                            name: from.name,
                            base: from.base,
                            platform: from.platform,
                            location: Location::of(node),
                            commands: Vec::new(),
                        });
                    }
                    Err(e) => errors.push(fail(e)),
                }
                continue;
            }
            let instruction = match Instruction::from_node(node) {
                Ok(i) => i,
                Err(e) => {
                    errors.push(fail(e));
                    continue;
                }
            };
            if matches!(instruction, Instruction::Maintainer(_)) {
                warnings.push(
                    Diagnostic::warning("MAINTAINER is deprecated")
                        .in_file(&ast.file)
                        .line_col(node.start_line, node.column)
                        .key("MAINTAINER")
                        .hint(
                            "use LABEL org.opencontainers.image.authors=\"name <email>\" instead",
                        ),
                );
            }
            let command = Command {
                instruction,
                location: Location::of(node),
                original: node.original.clone(),
            };
            if !stages.is_empty()
                && let Some(e) = check_stage_refs(&command.instruction, &stages)
            {
                errors.push(fail(e));
            }
            match stages.last_mut() {
                Some(stage) => stage.commands.push(command),
                None if matches!(command.instruction, Instruction::Arg(_)) => {
                    global_args.push(command)
                }
                None => errors.push(
                    ast.error_at(
                        node.start_line,
                        node.column,
                        "no build stage in current context",
                    )
                    .key(node.name())
                    .hint(
                        "start the Dockerfile with FROM; only ARG may come before the first FROM",
                    ),
                ),
            }
        }
        if stages.is_empty() && errors.is_empty() {
            let line = ast.nodes.last().map_or(1, |n| n.end_line);
            errors.push(
                ast.error_at(line, 0, "no build stage in Dockerfile")
                    .hint("add a FROM instruction, e.g. FROM alpine"),
            );
        }
        if !errors.is_empty() {
            return Err(Diagnostics(errors));
        }
        Ok(Self {
            file: ast.file.clone(),
            escape: ast.escape,
            directives: ast.directives.clone(),
            global_args,
            stages,
            warnings,
        })
    }

    /// A stage by `AS` name (case-insensitive) or by index.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let lower = name_or_index.to_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                name_or_index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.stages.get(i))
            })
    }

    /// The stage a `--from`/`FROM` reference names when it is one of the
    /// stages before `before`; otherwise it is an image reference.
    pub fn resolve_stage_ref(&self, reference: &str, before: usize) -> Option<usize> {
        let lower = reference.to_lowercase();
        let earlier = self.stages.get(..before).unwrap_or(&self.stages);
        if let Some(s) = earlier
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Some(s.index);
        }
        reference.parse::<usize>().ok().filter(|i| *i < before)
    }

    /// The global ARGs in order with their values: the build argument when
    /// given, else the default expanded with the ARGs before it.
    pub fn global_arg_values(
        &self,
        build_args: EnvLookup<'_>,
    ) -> Result<Vec<(String, Option<String>)>, ExpandError> {
        let mut values: Vec<(String, Option<String>)> = Vec::new();
        for command in &self.global_args {
            let Instruction::Arg(decls) = &command.instruction else {
                continue;
            };
            for decl in decls {
                let value = match build_args(&decl.name) {
                    Some(v) => Some(v),
                    None => match &decl.default {
                        Some(d) => Some(expand_word(d, &|k| lookup(&values, k), self.escape)?),
                        None => None,
                    },
                };
                values.retain(|(n, _)| n != &decl.name);
                values.push((decl.name.clone(), value));
            }
        }
        Ok(values)
    }

    /// The stage's base with global ARGs substituted (`FROM ${BASE}`).
    pub fn expanded_base(
        &self,
        stage: &Stage,
        build_args: EnvLookup<'_>,
    ) -> Result<String, ExpandError> {
        let values = self.global_arg_values(build_args)?;
        expand_word(&stage.base, &|k| lookup(&values, k), self.escape)
    }

    /// The stages `index` needs directly: its base when that is an earlier
    /// stage, and every `COPY --from` / `RUN --mount=from=` naming one.
    pub fn stage_dependencies(
        &self,
        index: usize,
        build_args: EnvLookup<'_>,
    ) -> Result<Vec<usize>, Diagnostic> {
        let Some(stage) = self.stages.get(index) else {
            return Ok(Vec::new());
        };
        let mut deps = BTreeSet::new();
        let base = self.expanded_base(stage, build_args).map_err(|e| {
            Diagnostic::error(e.to_string())
                .in_file(&self.file)
                .line_col(stage.location.start_line, stage.location.column)
                .key("FROM")
                .hint("define the ARG before the first FROM or pass it as a build argument")
        })?;
        deps.extend(self.resolve_stage_ref(&base, index));
        for command in &stage.commands {
            for reference in stage_refs(&command.instruction) {
                deps.extend(self.resolve_stage_ref(reference, index));
            }
        }
        Ok(deps.into_iter().collect())
    }

    /// Every stage needed to build `target` (default: the last stage),
    /// in file order, the target last.
    pub fn target_stages(
        &self,
        target: Option<&str>,
        build_args: EnvLookup<'_>,
    ) -> Result<Vec<usize>, Diagnostic> {
        let target_index = match target {
            None => self.stages.len().saturating_sub(1),
            Some(t) => match self
                .stages
                .iter()
                .find(|s| s.name.as_deref() == Some(t.to_lowercase().as_str()))
            {
                Some(s) => s.index,
                None => {
                    let names: Vec<&str> = self
                        .stages
                        .iter()
                        .filter_map(|s| s.name.as_deref())
                        .collect();
                    return Err(Diagnostic::error(format!(
                        "target stage {t:?} could not be found"
                    ))
                    .in_file(&self.file)
                    .hint(if names.is_empty() {
                        "this Dockerfile has no named stages (name one with FROM ... AS <name>)"
                            .to_string()
                    } else {
                        format!("stages are: {}", names.join(", "))
                    }));
                }
            },
        };
        // Dependencies always point at earlier stages, so a worklist
        // terminates without cycle checks.
        let mut needed = BTreeSet::new();
        let mut todo = vec![target_index];
        while let Some(i) = todo.pop() {
            if needed.insert(i) {
                todo.extend(self.stage_dependencies(i, build_args)?);
            }
        }
        Ok(needed.into_iter().collect())
    }
}

fn lookup(values: &[(String, Option<String>)], key: &str) -> Option<String> {
    values
        .iter()
        .rev()
        .find(|(n, _)| n == key)
        .and_then(|(_, v)| v.clone())
}

/// The stage references an instruction makes (`COPY --from`, mount `from`).
pub fn stage_refs(instruction: &Instruction) -> Vec<&str> {
    match instruction {
        Instruction::Copy(c) => c.from.as_deref().into_iter().collect(),
        Instruction::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
        _ => Vec::new(),
    }
}

/// A numeric `--from` must name a stage before the current one.
fn check_stage_refs(instruction: &Instruction, stages: &[Stage]) -> Option<InstructionError> {
    let current = stages.len().saturating_sub(1);
    for reference in stage_refs(instruction) {
        if let Ok(n) = reference.parse::<usize>()
            && n >= current
        {
            let earlier: Vec<String> = stages
                .iter()
                .take(current)
                .map(|s| match &s.name {
                    Some(name) => format!("{} ({name})", s.index),
                    None => s.index.to_string(),
                })
                .collect();
            let hint = if earlier.is_empty() {
                "the first stage cannot copy from another stage; name an image instead".to_string()
            } else {
                format!("stages defined before this one: {}", earlier.join(", "))
            };
            return Some(InstructionError {
                message: format!("--from={n} does not refer to a stage defined before this one"),
                hint,
                at: Some(format!("from={n}")),
            });
        }
    }
    None
}
