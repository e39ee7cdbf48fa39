//! Dockerfile text -> untyped [`Node`]s, the way BuildKit's
//! `frontend/dockerfile/parser` does it: parser directives, comments, line
//! continuations, heredoc bodies, flags and per-instruction argument
//! splitting (see [`super::args`]). The result is an [`Ast`].
//!
//! Nothing here knows what an instruction means; unknown keywords become
//! nodes without arguments and are rejected by [`super::instruction`].

use std::path::{Path, PathBuf};

use super::args::{split_arguments, split_command};
use super::heredoc::{Heredoc, heredocs_from_line, keyword_allows_heredoc};
use crate::diag::{Diagnostic, Diagnostics};

/// One instruction as written, before typing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    /// The keyword as written (`run`, `RUN`, `Run`).
    pub keyword: String,
    /// `--name[=value]` options, quotes removed, in order; a lone `--` that
    /// ended them is not kept.
    pub flags: Vec<String>,
    /// The arguments, split the way this instruction splits them. ENV and
    /// LABEL give triples `key, value, separator`.
    pub args: Vec<String>,
    /// ONBUILD's trigger instruction.
    pub sub: Option<Box<Node>>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// The instruction line with continuations joined (no heredoc bodies).
    pub original: String,
    /// 1-based, inclusive; covers continuation lines and heredoc bodies.
    pub start_line: u32,
    pub end_line: u32,
    /// 1-based column of the keyword on `start_line`.
    pub column: u32,
    pub heredocs: Vec<Heredoc>,
    /// The comment lines right above the instruction, `#` removed.
    pub comments: Vec<String>,
}

impl Node {
    /// The keyword in upper case, for messages and dispatch.
    pub fn name(&self) -> String {
        self.keyword.to_ascii_uppercase()
    }
}

/// A parser directive from the top of the file (`# syntax=`, `# escape=`,
/// `# check=`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Directive {
    /// Lower-cased name.
    pub name: String,
    pub value: String,
    pub line: u32,
}

/// The untyped parse of one Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    pub file: PathBuf,
    pub nodes: Vec<Node>,
    /// `\` unless an `# escape=` directive chose the backtick.
    pub escape: char,
    pub directives: Vec<Directive>,
    /// Non-fatal findings, e.g. empty continuation lines.
    pub warnings: Vec<Diagnostic>,
    /// The physical lines, for pointing diagnostics at columns.
    pub lines: Vec<String>,
}

impl Ast {
    /// Where `needle` first appears within `node`'s lines, as (line, column);
    /// the keyword's position when it does not.
    pub fn locate(&self, node: &Node, needle: &str) -> (u32, u32) {
        if !needle.is_empty() {
            for line_no in node.start_line..=node.end_line {
                let idx = usize::try_from(line_no).unwrap_or(0).saturating_sub(1);
                if let Some(text) = self.lines.get(idx)
                    && let Some(byte) = text.find(needle)
                {
                    let col = text.get(..byte).map_or(0, |p| p.chars().count()) + 1;
                    return (line_no, u32::try_from(col).unwrap_or(u32::MAX));
                }
            }
        }
        (node.start_line, node.column)
    }

    /// An error diagnostic in this file.
    pub fn error_at(&self, line: u32, column: u32, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(message)
            .in_file(&self.file)
            .line_col(line, column)
    }
}

/// Nesting deeper than this (`ONBUILD ONBUILD ...`) is refused instead of
/// recursing on hostile input; BuildKit rejects any chaining later anyway.
pub(crate) const MAX_ONBUILD_DEPTH: usize = 4;

/// Parses Dockerfile text. Keeps going after a bad instruction so that all
/// problems are reported at once.
pub fn parse(text: &str, file: &Path) -> Result<Ast, Diagnostics> {
    Parser::new(text, file).run()
}

struct DirectiveState {
    done: bool,
    seen: Vec<String>,
}

struct Parser<'a> {
    file: PathBuf,
    /// Physical lines, each with its line ending (BuildKit's scanner keeps it).
    raw_lines: Vec<&'a str>,
    escape: char,
    directive_state: DirectiveState,
    directives: Vec<Directive>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, file: &Path) -> Self {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        Self {
            file: file.to_path_buf(),
            raw_lines: text.split_inclusive('\n').collect(),
            escape: '\\',
            directive_state: DirectiveState {
                done: false,
                seen: Vec::new(),
            },
            directives: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn diag(&self, line: u32, column: u32, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(message)
            .in_file(&self.file)
            .line_col(line, column)
    }

    fn run(mut self) -> Result<Ast, Diagnostics> {
        let mut nodes = Vec::new();
        let mut comments: Vec<String> = Vec::new();
        let mut idx = 0usize;
        let mut current_line = 0u32;
        while let Some(raw) = self.raw_lines.get(idx).copied() {
            idx += 1;
            if is_comment(raw) {
                let text = raw.trim_start().trim_start_matches('#').trim();
                if text.is_empty() {
                    comments.clear();
                } else {
                    comments.push(text.to_string());
                }
            }
            let processed = self.process_line(raw, true, current_line + 1);
            if processed.directive {
                comments.pop();
            }
            current_line += 1;
            let start_line = current_line;
            let (first, mut is_end) = trim_continuation(&processed.text, self.escape);
            if is_end && first.is_empty() {
                continue;
            }
            let column = leading_columns(raw);
            let mut line = first.to_string();
            let mut empty_continuation = false;
            while !is_end {
                let Some(next_raw) = self.raw_lines.get(idx).copied() else {
                    break;
                };
                idx += 1;
                let processed = self.process_line(next_raw, false, current_line + 1);
                current_line += 1;
                if is_comment(next_raw) {
                    continue;
                }
                if processed.text.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (part, end) = trim_continuation(&processed.text, self.escape);
                line.push_str(part);
                is_end = end;
            }
            if empty_continuation {
                self.warnings.push(
                    Diagnostic::warning(format!("empty continuation line found in: {line}"))
                        .in_file(&self.file)
                        .line_col(start_line, column)
                        .hint("remove the empty line or comment out the continuation; empty continuation lines will become errors"),
                );
            }
            let node = new_node_from_line(&line, self.escape, 0);
            let keyword_lower = split_command(&line).0.to_ascii_lowercase();
            let heredoc_capable = match &node {
                Ok(n) => can_contain_heredoc(n),
                Err(_) => keyword_allows_heredoc(&keyword_lower),
            };
            let mut heredocs = Vec::new();
            if heredoc_capable && line.contains("<<") {
                for mut doc in heredocs_from_line(&line) {
                    let mut terminated = false;
                    while let Some(body_line) = self.raw_lines.get(idx).copied() {
                        idx += 1;
                        current_line += 1;
                        let mut candidate = body_line.trim_end_matches(['\r', '\n']);
                        if doc.chomp {
                            candidate = candidate.trim_start_matches('\t');
                        }
                        if candidate == doc.name {
                            terminated = true;
                            break;
                        }
                        doc.content.push_str(body_line);
                    }
                    if !terminated {
                        let d = self
                            .diag(
                                start_line,
                                column,
                                format!("unterminated heredoc {:?}", doc.name),
                            )
                            .key(keyword_lower.to_ascii_uppercase())
                            .hint(format!(
                                "end the heredoc with a line containing only {}",
                                doc.name
                            ));
                        self.errors.push(d);
                    }
                    heredocs.push(doc);
                }
            }
            match node {
                Ok(mut node) => {
                    node.start_line = start_line;
                    node.end_line = current_line;
                    node.column = column;
                    node.heredocs = heredocs;
                    node.comments = std::mem::take(&mut comments);
                    nodes.push(node);
                }
                Err(err) => {
                    let d = self
                        .diag(start_line, column, err.message)
                        .key(keyword_lower.to_ascii_uppercase())
                        .hint(err.hint);
                    self.errors.push(d);
                    comments.clear();
                }
            }
        }
        if nodes.is_empty() && self.errors.is_empty() {
            let d = self
                .diag(current_line.max(1), 0, "file with no instructions")
                .hint("a Dockerfile needs at least one instruction, starting with FROM");
            self.errors.push(d);
        }
        if !self.errors.is_empty() {
            return Err(Diagnostics(self.errors));
        }
        let lines = self
            .raw_lines
            .iter()
            .map(|l| l.trim_end_matches(['\r', '\n']).to_string())
            .collect();
        Ok(Ast {
            file: self.file,
            nodes,
            escape: self.escape,
            directives: self.directives,
            warnings: self.warnings,
            lines,
        })
    }

    /// BuildKit's `processLine`: drop the line ending, optionally the leading
    /// whitespace, look for a directive, and blank out comment lines.
    fn process_line(&mut self, raw: &str, strip_left: bool, line_no: u32) -> Processed {
        let mut token = raw.trim_end_matches(['\r', '\n']);
        if strip_left {
            token = token.trim_start();
        }
        let directive = self.possible_directive(token, line_no);
        let text = if is_comment(token) {
            String::new()
        } else {
            token.to_string()
        };
        Processed { text, directive }
    }

    /// Directives are `# name=value` lines before anything else; the first
    /// line that is not one ends the directive section.
    fn possible_directive(&mut self, line: &str, line_no: u32) -> bool {
        if self.directive_state.done {
            return false;
        }
        let Some((name, value)) = match_directive(line) else {
            self.directive_state.done = true;
            return false;
        };
        let name = name.to_ascii_lowercase();
        if !matches!(name.as_str(), "syntax" | "escape" | "check") {
            self.directive_state.done = true;
            return false;
        }
        if self.directive_state.seen.contains(&name) {
            let d = self
                .diag(
                    line_no,
                    1,
                    format!("only one {name} parser directive can be used"),
                )
                .hint("remove the repeated directive");
            self.errors.push(d);
            return false;
        }
        self.directive_state.seen.push(name.clone());
        if name == "escape" {
            match value {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                other => {
                    let d = self
                        .diag(
                            line_no,
                            1,
                            format!("invalid escape token '{other}' does not match ` or \\"),
                        )
                        .hint("use `# escape=\\` (the default) or `# escape=``");
                    self.errors.push(d);
                    return false;
                }
            }
        }
        self.directives.push(Directive {
            name,
            value: value.to_string(),
            line: line_no,
        });
        true
    }
}

struct Processed {
    text: String,
    directive: bool,
}

/// Matches `#\s*name\s*=\s*value\s*` (BuildKit's directive regexp), giving
/// the name and the value without surrounding whitespace.
fn match_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_end = rest
        .char_indices()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
        .map_or(rest.len(), |(i, _)| i);
    let (name, after) = rest.split_at_checked(name_end)?;
    if !name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = after.trim_start_matches(is_re_space).strip_prefix('=')?;
    let value = value.trim_matches(is_re_space);
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

/// Go regexp's `\s`.
fn is_re_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0C' | '\r')
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// 1-based column of the first non-whitespace character.
fn leading_columns(raw: &str) -> u32 {
    let n = raw.chars().take_while(|c| c.is_whitespace()).count() + 1;
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// BuildKit's line-continuation rule: the escape character as the last
/// non-blank (space/tab) character, not itself escaped. Returns the line
/// without it and whether the instruction ends here.
pub(crate) fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let Some(before) = trimmed.strip_suffix(escape) else {
        return (line, true);
    };
    if before.ends_with(escape) {
        return (line, true);
    }
    (before, false)
}

/// Why one instruction line could not be turned into a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineError {
    pub message: String,
    pub hint: String,
}

/// Splits keyword and flags off, then splits the arguments by the rules of
/// the keyword. `depth` counts ONBUILD nesting.
pub(crate) fn new_node_from_line(
    line: &str,
    escape: char,
    depth: usize,
) -> Result<Node, LineError> {
    let (keyword, flags, rest) = split_command(line);
    let lower = keyword.to_ascii_lowercase();
    let mut node = Node {
        keyword: keyword.to_string(),
        flags,
        args: Vec::new(),
        sub: None,
        json: false,
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
        column: 0,
        heredocs: Vec::new(),
        comments: Vec::new(),
    };
    if lower == "onbuild" {
        if !rest.is_empty() {
            if depth >= MAX_ONBUILD_DEPTH {
                return Err(LineError {
                    message: "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string(),
                    hint: "give ONBUILD a single trigger instruction such as RUN or COPY"
                        .to_string(),
                });
            }
            node.sub = Some(Box::new(new_node_from_line(rest, escape, depth + 1)?));
        }
        return Ok(node);
    }
    let split = split_arguments(&lower, rest, escape)?;
    node.args = split.args;
    node.json = split.json;
    Ok(node)
}

/// RUN, COPY, ADD (or ONBUILD of one) in shell form may carry heredocs.
fn can_contain_heredoc(node: &Node) -> bool {
    let target = match &node.sub {
        Some(sub) if node.keyword.eq_ignore_ascii_case("onbuild") => sub,
        _ => node,
    };
    keyword_allows_heredoc(&target.keyword.to_ascii_lowercase()) && !target.json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ast(text: &str) -> Ast {
        parse(text, Path::new("Dockerfile")).unwrap()
    }

    #[test]
    fn continuation_rules() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ", false));
        assert_eq!(trim_continuation("a \\  \t", '\\'), ("a ", false));
        assert_eq!(trim_continuation("a \\\\", '\\'), ("a \\\\", true));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a `", '`'), ("a ", false));
        assert_eq!(trim_continuation("a \\", '`'), ("a \\", true));
    }

    #[test]
    fn directives_only_at_the_top() {
        let a = ast("# syntax=docker/dockerfile:1\n# ESCAPE = `\nFROM x\n");
        assert_eq!(a.escape, '`');
        assert_eq!(a.directives.len(), 2);
        assert_eq!(a.directives[1].name, "escape");
        let a = ast("# comment\n# escape=`\nFROM x\n");
        assert_eq!(a.escape, '\\');
        assert!(a.directives.is_empty());
    }

    #[test]
    fn bad_and_repeated_directives_are_errors() {
        let err = parse("# escape=x\nFROM a\n", Path::new("Dockerfile")).unwrap_err();
        assert_eq!(err.0[0].line, 1);
        assert!(err.0[0].message.contains("invalid escape token 'x'"));
        let err = parse("# escape=`\n# escape=`\nFROM a\n", Path::new("D")).unwrap_err();
        assert_eq!(
            err.0[0].message,
            "only one escape parser directive can be used"
        );
    }

    #[test]
    fn heredoc_bodies_are_attached_and_spanned() {
        let a = ast("FROM x\nRUN <<EOF\necho hi\nEOF\nCOPY <<-A <<B /dst/\n\tone\n\tA\ntwo\nB\n");
        let run = &a.nodes[1];
        assert_eq!((run.start_line, run.end_line), (2, 4));
        assert_eq!(run.heredocs[0].content, "echo hi\n");
        let copy = &a.nodes[2];
        assert_eq!(copy.heredocs.len(), 2);
        assert_eq!(copy.heredocs[0].content, "\tone\n");
        assert_eq!(copy.heredocs[1].content, "two\n");
        assert_eq!(copy.end_line, 9);
    }

    #[test]
    fn unterminated_heredoc_is_an_error() {
        let err = parse("FROM x\nRUN <<EOF\necho\n", Path::new("Dockerfile")).unwrap_err();
        assert_eq!((err.0[0].line, err.0[0].column), (2, 1));
        assert!(err.0[0].message.contains("unterminated heredoc"));
    }

    #[test]
    fn json_form_does_not_open_heredocs() {
        let a = ast("FROM x\nRUN [\"cat\", \"<<EOF\"]\nRUN echo\n");
        assert_eq!(a.nodes.len(), 3);
        assert!(a.nodes[1].heredocs.is_empty());
    }

    #[test]
    fn empty_continuation_warns() {
        let a = ast("FROM x\nRUN a \\\n\nb\n");
        assert_eq!(a.nodes[1].args, vec!["a b"]);
        assert_eq!(a.warnings.len(), 1);
        assert_eq!(a.warnings[0].line, 2);
    }

    #[test]
    fn errors_keep_going_and_report_each_line() {
        let err = parse("FROM x\nENV A\nCMD [1]\nENV B\n", Path::new("Dockerfile")).unwrap_err();
        let lines: Vec<u32> = err.0.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
    }

    #[test]
    fn deep_onbuild_chain_is_refused() {
        let text = format!("FROM x\n{}RUN y\n", "ONBUILD ".repeat(100_000));
        assert!(parse(&text, Path::new("Dockerfile")).is_err());
    }
}
