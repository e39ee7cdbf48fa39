//! Compose variable interpolation, matching compose-go's `template` package.
//!
//! compose-go finds `$`-expressions with a regular expression whose braced
//! form runs to the *last* `}` on the line, then cuts it back at the first
//! balanced `}` and re-reads the remainder. This module reproduces that
//! scanner by hand (no regex engine), including its quirks:
//! - `$$` is a literal `$`; `$` followed by anything but a name, `$` or `{`
//!   stays as written (`a $ b`, `$}`, a trailing `$`);
//! - `$NAME` stops at the first character outside `[A-Za-z0-9_]`;
//! - `${NAME}` and `${NAME<op>word}` with `<op>` one of `:-`, `-`, `:?`,
//!   `?`, `:+`, `+` (the first operator after the name wins, so
//!   `${X?a-b}` is "required, message a-b");
//! - `word` is itself interpolated, even when it ends up unused (so an
//!   error inside an unused default is still an error, as in compose-go);
//! - anything else after `${` (`${}`, `${ X}`, `${X }`, `${X!}`, an
//!   unclosed `${X`) is an invalid template.

use std::fmt;

use crate::diag::Diagnostic;
use crate::yaml::{Node, PathSeg, Value, display_path};

/// Nested defaults deeper than this are refused rather than recursed into.
const MAX_NESTING: usize = 64;

pub const SYNTAX_HINT: &str = "use $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, \
                               ${VAR?error}, ${VAR:+replacement} or ${VAR+replacement}; write $$ \
                               for a literal $";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateErrorKind {
    /// The text after `$` is not a valid expression.
    InvalidTemplate,
    /// `${VAR:?reason}` or `${VAR?reason}` with VAR missing (or empty for `:?`).
    MissingRequired { variable: String, reason: String },
    /// Defaults nested deeper than this crate accepts.
    TooDeep,
}

/// Why a string could not be interpolated, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InterpolateError {
    /// Byte offset of the `$` that starts the failing expression in the
    /// string given to [`interpolate`].
    pub offset: usize,
    /// The same place as a 1-based character count, for messages.
    pub column: usize,
    /// The whole string being interpolated.
    pub template: String,
    pub kind: InterpolateErrorKind,
}

impl InterpolateError {
    /// What would be valid, for a diagnostic's hint.
    pub fn hint(&self) -> String {
        match &self.kind {
            InterpolateErrorKind::InvalidTemplate => SYNTAX_HINT.to_owned(),
            InterpolateErrorKind::MissingRequired { variable, .. } => {
                format!("set {variable} in the environment or in the project's .env file")
            }
            InterpolateErrorKind::TooDeep => {
                format!("nest defaults at most {MAX_NESTING} levels deep")
            }
        }
    }
}

impl fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            InterpolateErrorKind::InvalidTemplate => write!(
                f,
                "invalid interpolation format at character {} of {:?}",
                self.column, self.template
            ),
            InterpolateErrorKind::MissingRequired { variable, reason } if reason.is_empty() => {
                write!(f, "required variable {variable} is missing a value")
            }
            InterpolateErrorKind::MissingRequired { variable, reason } => {
                write!(
                    f,
                    "required variable {variable} is missing a value: {reason}"
                )
            }
            InterpolateErrorKind::TooDeep => write!(
                f,
                "interpolation defaults nest more than {MAX_NESTING} levels at character {} of {:?}",
                self.column, self.template
            ),
        }
    }
}

/// Replaces every `$`-expression in `s`. `lookup` gives a variable's value,
/// or `None` when it is not set (which is different from set-but-empty for
/// the `-`, `?` and `+` operators). An unset variable without a default
/// becomes the empty string.
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    interpolate_reporting_unset(s, lookup, &mut |_| {})
}

/// Like [`interpolate`], and calls `on_unset` with the name of every
/// variable that was used without a default and is not set (compose warns
/// about those).
pub fn interpolate_reporting_unset(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    on_unset: &mut dyn FnMut(&str),
) -> Result<String, InterpolateError> {
    let mut scanner = Scanner { lookup, on_unset };
    scanner
        .substitute(s, 0, 0)
        .map_err(|(offset, kind)| InterpolateError {
            offset,
            column: s.get(..offset).map_or(offset, |p| p.chars().count()) + 1,
            template: s.to_owned(),
            kind,
        })
}

type Failure = (usize, InterpolateErrorKind);

struct Scanner<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    on_unset: &'a mut dyn FnMut(&str),
}

fn is_name_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_name_char(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

fn name_end(bytes: &[u8], start: usize) -> usize {
    let mut end = start;
    while bytes.get(end).copied().is_some_and(is_name_char) {
        end += 1;
    }
    end
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    DefaultIfEmptyOrUnset,
    DefaultIfUnset,
    RequiredNonEmpty,
    Required,
    AltIfNonEmpty,
    AltIfSet,
}

/// A braced expression `${name<op>word}` as compose-go's pattern matches it.
struct Braced {
    name_end: usize,
    op: Option<(Op, usize)>,
    /// One past the `}` that closes the expression after compose-go's
    /// "first balanced brace" cut.
    end: usize,
}

/// compose-go's `getFirstBraceClosingIndex`, byte for byte: `{` opens and
/// skips the byte after it, `}` closes. The search ends at the end of the
/// line, as compose-go's match never crosses one.
fn first_balanced_close(s: &[u8]) -> Option<usize> {
    let mut open: i64 = 0;
    let mut i = 0;
    while i < s.len() && s[i] != b'\n' {
        if s[i] == b'}' {
            open -= 1;
            if open == 0 {
                return Some(i);
            }
        }
        if s[i] == b'{' {
            if s.get(i + 1) == Some(&b'\n') {
                return None;
            }
            open += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

/// Matches `${...}` starting at `dollar` (where `bytes[dollar + 1] == '{'`).
fn match_braced(bytes: &[u8], dollar: usize) -> Option<Braced> {
    let name_start = dollar + 2;
    if !bytes.get(name_start).copied().is_some_and(is_name_start) {
        return None;
    }
    let name_end = name_end(bytes, name_start);
    let (op, word_start) = match (bytes.get(name_end), bytes.get(name_end + 1)) {
        (Some(b'}'), _) => {
            return Some(Braced {
                name_end,
                op: None,
                end: name_end + 1,
            });
        }
        (Some(b':'), Some(b'-')) => (Op::DefaultIfEmptyOrUnset, name_end + 2),
        (Some(b':'), Some(b'?')) => (Op::RequiredNonEmpty, name_end + 2),
        (Some(b':'), Some(b'+')) => (Op::AltIfNonEmpty, name_end + 2),
        (Some(b'-'), _) => (Op::DefaultIfUnset, name_end + 1),
        (Some(b'?'), _) => (Op::Required, name_end + 1),
        (Some(b'+'), _) => (Op::AltIfSet, name_end + 1),
        _ => return None,
    };
    // compose-go's pattern `(.*)}` runs to the last `}` before the end of
    // the line, then the match is cut back at the first balanced `}`. The
    // balanced `}` (when there is one) always lies before that last `}`, so
    // look for it first: that keeps the scan linear instead of re-reading
    // the rest of the line for every expression.
    let end = match first_balanced_close(&bytes[dollar..]) {
        Some(close) => dollar + close + 1,
        None => {
            let line_end = bytes[word_start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |p| word_start + p);
            let last_close = bytes[word_start..line_end]
                .iter()
                .rposition(|&b| b == b'}')?;
            word_start + last_close + 1
        }
    };
    Some(Braced {
        name_end,
        op: Some((op, word_start)),
        end,
    })
}

impl Scanner<'_> {
    /// Interpolates `s`, which starts at byte `base` of the whole string.
    fn substitute(&mut self, s: &str, base: usize, depth: usize) -> Result<String, Failure> {
        if depth > MAX_NESTING {
            return Err((base, InterpolateErrorKind::TooDeep));
        }
        let bytes = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut copied = 0;
        let mut i = 0;
        while let Some(found) = bytes[i..].iter().position(|&b| b == b'$') {
            let dollar = i + found;
            out.push_str(&s[copied..dollar]);
            let next = bytes.get(dollar + 1).copied();
            let resume = match next {
                Some(b'$') => {
                    out.push('$');
                    dollar + 2
                }
                Some(b) if is_name_start(b) => {
                    let end = name_end(bytes, dollar + 1);
                    let name = &s[dollar + 1..end];
                    out.push_str(&self.plain(name));
                    end
                }
                Some(b'{') => {
                    let Some(braced) = match_braced(bytes, dollar) else {
                        return Err((base + dollar, InterpolateErrorKind::InvalidTemplate));
                    };
                    let name = &s[dollar + 2..braced.name_end];
                    match braced.op {
                        None => out.push_str(&self.plain(name)),
                        Some((op, word_start)) => {
                            let word = &s[word_start..braced.end - 1];
                            let value = self.apply(
                                op,
                                name,
                                word,
                                base + dollar,
                                base + word_start,
                                depth,
                            )?;
                            out.push_str(&value);
                        }
                    }
                    braced.end
                }
                // Not an expression: the `$` stays as written.
                _ => {
                    out.push('$');
                    dollar + 1
                }
            };
            copied = resume;
            i = resume;
        }
        out.push_str(&s[copied..]);
        Ok(out)
    }

    fn plain(&mut self, name: &str) -> String {
        match (self.lookup)(name) {
            Some(v) => v,
            None => {
                (self.on_unset)(name);
                String::new()
            }
        }
    }

    fn apply(
        &mut self,
        op: Op,
        name: &str,
        word: &str,
        at: usize,
        word_at: usize,
        depth: usize,
    ) -> Result<String, Failure> {
        let word = self.substitute(word, word_at, depth + 1)?;
        let value = (self.lookup)(name);
        let set = value.is_some();
        let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
        let missing = |variable: &str| {
            Err((
                at,
                InterpolateErrorKind::MissingRequired {
                    variable: variable.to_owned(),
                    reason: word.clone(),
                },
            ))
        };
        Ok(match op {
            Op::DefaultIfEmptyOrUnset if !non_empty => word.clone(),
            Op::DefaultIfUnset if !set => word.clone(),
            Op::RequiredNonEmpty if !non_empty => return missing(name),
            Op::Required if !set => return missing(name),
            Op::AltIfNonEmpty if non_empty => word.clone(),
            Op::AltIfSet if set => word.clone(),
            _ => value.unwrap_or_default(),
        })
    }
}

/// Interpolates every string value in the tree (map keys are left alone,
/// as in compose-go). Returns one error diagnostic per string that failed,
/// at that node's position and key path, plus one warning per variable used
/// without a default while unset ("defaulting to a blank string").
pub fn interpolate_node(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<Diagnostic> {
    let mut walk = Walk {
        lookup,
        diagnostics: Vec::new(),
        warned: std::collections::HashSet::new(),
        path: Vec::new(),
    };
    walk.node(node);
    walk.diagnostics
}

struct Walk<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    diagnostics: Vec<Diagnostic>,
    warned: std::collections::HashSet<String>,
    path: Vec<PathSeg>,
}

impl Walk<'_> {
    fn node(&mut self, node: &mut Node) {
        match &mut node.value {
            // Most strings hold no `$`: nothing to do and nothing to copy.
            Value::String(s) if !s.contains('$') => {}
            Value::String(s) => {
                let mut unset = Vec::new();
                let result = interpolate_reporting_unset(s, self.lookup, &mut |name| {
                    unset.push(name.to_owned());
                });
                match result {
                    Ok(v) => *s = v,
                    Err(e) => self.diagnostics.push(
                        Diagnostic::error(e.to_string())
                            .at(&node.span)
                            .key(display_path(&self.path))
                            .hint(e.hint()),
                    ),
                }
                for name in unset {
                    if self.warned.insert(name.clone()) {
                        self.diagnostics.push(
                            Diagnostic::warning(format!(
                                "variable {name} is not set, defaulting to a blank string"
                            ))
                            .at(&node.span)
                            .key(display_path(&self.path))
                            .hint(format!(
                                "set {name} in the environment or the .env file, or give a default with ${{{name}:-default}}"
                            )),
                        );
                    }
                }
            }
            Value::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.path.push(PathSeg::Index(i));
                    self.node(item);
                    self.path.pop();
                }
            }
            Value::Map(entries) => {
                for entry in entries.iter_mut() {
                    self.path.push(PathSeg::Key(entry.key.clone()));
                    self.node(&mut entry.value);
                    self.path.pop();
                }
            }
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
        }
    }
}
