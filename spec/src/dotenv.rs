//! `.env` and `env_file` parsing, following compose-go's `dotenv` package
//! (`ParseWithLookup`, v2.13).
//!
//! One statement is `[export ]KEY=VALUE`, `KEY: VALUE`, or a bare `KEY` on
//! its own line (its value is looked up; absent when not found). Values:
//! - unquoted: up to the end of the line, cut at ` #` (an inline comment),
//!   trailing whitespace trimmed, variables expanded;
//! - single-quoted: literal (only `\'` loses its backslash), may span lines;
//! - double-quoted: may span lines; `\\`, `\"`, `\n`, `\t`, `\r`, `\a`, `\b`,
//!   `\f`, `\v`, `\0ddd` (octal) are escapes and `\$` is a literal `$`;
//!   then variables are expanded.
//!
//! Expansion uses the Compose interpolation rules; a name is looked up in
//! `lookup` first, then among the keys already read from this file.
//!
//! Deliberate differences from compose-go, each where compose-go's result
//! is surely unintended:
//! - a bare `KEY` on the last line without a newline is a bare key
//!   (compose-go reads it as the value of an empty key);
//! - `=value` (an empty key) is an error (compose-go stores key "").
//!
//! compose-go's `Read` helper also drops keys that start with a digit; its
//! `ParseWithLookup`, which the loader uses for `env_file` and `.env`, keeps
//! them, and so does this parser.

use std::path::Path;

use indexmap::IndexMap;

use crate::diag::Diagnostic;
use crate::interpolate::interpolate;

const UTF8_BOM: char = '\u{feff}';

/// Parses an env file. Keys map to `Some(value)`, or to `None` for a bare
/// `KEY` line whose lookup found nothing (compose-go leaves such keys out;
/// callers that want that behaviour skip the `None`s). A key given twice
/// keeps its first position and its last value.
pub fn parse(
    text: &str,
    file: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, Option<String>>, Diagnostic> {
    let src = text.strip_prefix(UTF8_BOM).unwrap_or(text);
    let mut parser = EnvParser {
        src,
        file,
        lookup,
        out: IndexMap::new(),
    };
    parser.run()?;
    Ok(parser.out)
}

/// compose-go's `isSpace`: white space that is not a line break.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

fn is_key_char(c: char) -> bool {
    matches!(c, '_' | '.' | '-' | '[' | ']') || c.is_alphabetic() || c.is_numeric()
}

struct EnvParser<'a> {
    src: &'a str,
    file: &'a Path,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    out: IndexMap<String, Option<String>>,
}

impl EnvParser<'_> {
    fn error(&self, at: usize, message: impl Into<String>, hint: &str) -> Diagnostic {
        let before = self.src.get(..at).unwrap_or(self.src);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |p| p + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Diagnostic::error(message)
            .in_file(self.file.to_path_buf())
            .line_col(
                u32::try_from(line).unwrap_or(u32::MAX),
                u32::try_from(column).unwrap_or(u32::MAX),
            )
            .hint(hint)
    }

    /// The byte offset of the next statement, skipping blank space and
    /// `#` comment lines; `None` at the end of the text.
    fn statement_start(&self, mut pos: usize) -> Option<usize> {
        loop {
            let rest = self.src.get(pos..)?;
            let skip = rest.find(|c: char| !c.is_whitespace())?;
            pos += skip;
            if !self.src[pos..].starts_with('#') {
                return Some(pos);
            }
            pos += self.src[pos..].find('\n')?;
        }
    }

    fn run(&mut self) -> Result<(), Diagnostic> {
        let mut pos = 0;
        while let Some(start) = self.statement_start(pos) {
            pos = self.statement(start)?;
        }
        Ok(())
    }

    /// Reads one statement at `start`; returns where the next one may begin.
    fn statement(&mut self, start: usize) -> Result<usize, Diagnostic> {
        let mut key_start = start;
        let stmt = &self.src[start..];
        // `export` followed by white space (`\s`: tab, LF, FF, CR, space).
        if let Some(after) = stmt.strip_prefix("export")
            && after.starts_with(['\t', '\n', '\u{c}', '\r', ' '])
        {
            let trimmed = after.trim_start_matches(is_space);
            key_start = self.src.len() - trimmed.len();
        }
        let rest = &self.src[key_start..];
        if rest.is_empty() {
            return Err(self.error(
                start,
                "`export` without a variable",
                "write export KEY=VALUE",
            ));
        }

        // Find the end of the key: `=`, `:` or a line break (bare key).
        let mut terminator = None;
        for (i, c) in rest.char_indices() {
            if is_space(c) {
                continue;
            }
            match c {
                '=' | ':' | '\n' => {
                    terminator = Some((i, c));
                    break;
                }
                c if is_key_char(c) => {}
                c => {
                    let first_line = rest.lines().next().unwrap_or(rest);
                    return Err(self.error(
                        key_start + i,
                        format!("unexpected character {c:?} in variable name {first_line:?}"),
                        "a variable name holds letters, digits, `_`, `.`, `-`, `[` and `]`, \
                         followed by `=` and the value",
                    ));
                }
            }
        }
        let (key_end, value_start, bare) = match terminator {
            Some((i, c)) => (i, i + c.len_utf8(), c == '\n'),
            None => (rest.len(), rest.len(), true),
        };
        let key = rest[..key_end].trim_end();
        if key.contains(' ') {
            return Err(self.error(
                key_start,
                "key cannot contain a space",
                "a variable name holds no spaces; write KEY=VALUE, quoting a value that has spaces",
            ));
        }
        if key.is_empty() {
            return Err(self.error(key_start, "missing variable name", "write KEY=VALUE"));
        }
        let key = key.to_owned();
        let after_key = key_start + value_start;
        if bare {
            let value = (self.lookup)(&key);
            self.out.insert(key, value);
            return Ok(after_key);
        }
        let value_at = after_key + self.src[after_key..].len()
            - self.src[after_key..].trim_start_matches(is_space).len();
        let (value, next) = self.value(value_at, &key)?;
        self.out.insert(key, Some(value));
        Ok(next)
    }

    /// Reads the value at `at`; returns it and where parsing continues.
    fn value(&self, at: usize, key: &str) -> Result<(String, usize), Diagnostic> {
        let rest = &self.src[at..];
        let quote = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => {
                let (line, next) = match rest.find('\n') {
                    Some(nl) => (&rest[..nl], at + nl + 1),
                    None => (rest, self.src.len()),
                };
                let line = line.split(" #").next().unwrap_or(line).trim_end();
                return Ok((self.expand(line, at, key)?, next));
            }
        };
        // The closing quote: compose-go drops the backslash before an
        // escaped quote and keeps it before anything else.
        let mut raw = String::new();
        let mut escaped = false;
        for (i, c) in rest.char_indices().skip(1) {
            if escaped {
                escaped = false;
                if c != quote {
                    raw.push('\\');
                }
                raw.push(c);
                continue;
            }
            match c {
                '\\' => escaped = true,
                c if c == quote => {
                    let value = if quote == '"' {
                        self.expand(&unescape_double_quoted(&raw), at, key)?
                    } else {
                        raw
                    };
                    return Ok((value, at + i + c.len_utf8()));
                }
                c => raw.push(c),
            }
        }
        let first_line = rest.lines().next().unwrap_or(rest);
        Err(self.error(
            at,
            format!("unterminated quoted value {first_line}"),
            "close the quote; a quoted value may span lines but must end with the same quote",
        ))
    }

    fn expand(&self, value: &str, at: usize, key: &str) -> Result<String, Diagnostic> {
        let lookup =
            |name: &str| (self.lookup)(name).or_else(|| self.out.get(name).cloned().flatten());
        interpolate(value, &lookup)
            .map_err(|e| self.error(at, e.to_string(), &e.hint()).key(key.to_owned()))
    }
}

/// compose-go's `expandEscapes` for double-quoted values: the escapes of a
/// Go string literal it supports (`\a \b \f \n \r \t \v \\ \"` and `\0ddd`
/// octal), with `\$` turned into `$$` so expansion leaves a literal `$`.
/// Anything else keeps its backslash.
fn unescape_double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&(_, next)) = chars.peek() else {
            out.push('\\');
            continue;
        };
        let simple = match next {
            'a' => Some("\u{7}"),
            'b' => Some("\u{8}"),
            'f' => Some("\u{c}"),
            'n' => Some("\n"),
            'r' => Some("\r"),
            't' => Some("\t"),
            'v' => Some("\u{b}"),
            '"' => Some("\""),
            '\\' => Some("\\"),
            '$' => Some("$$"),
            _ => None,
        };
        if let Some(text) = simple {
            out.push_str(text);
            chars.next();
            continue;
        }
        if next == '0' {
            // `\0` and up to three digits. Only three octal digits worth at
            // most 255 make an escape (Go's `\ooo`); otherwise it stays.
            let tail: String = s[i + 2..]
                .chars()
                .take_while(char::is_ascii_digit)
                .take(3)
                .collect();
            let value = Some(&tail)
                .filter(|t| t.len() == 3)
                .and_then(|t| u32::from_str_radix(t, 8).ok())
                .filter(|v| *v <= 255)
                .and_then(char::from_u32);
            match value {
                Some(ch) => out.push(ch),
                None => {
                    out.push_str("\\0");
                    out.push_str(&tail);
                }
            }
            for _ in 0..=tail.len() {
                chars.next();
            }
            continue;
        }
        out.push('\\');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unescape_double_quoted as u;

    #[test]
    fn escapes() {
        assert_eq!(u(r"a\nb"), "a\nb");
        assert_eq!(u(r"a\\nb"), "a\\nb");
        assert_eq!(u(r"\$x"), "$$x");
        assert_eq!(u(r"\0123"), "S");
        assert_eq!(u(r"\0"), "\\0");
        assert_eq!(u(r"\012"), "\\012");
        assert_eq!(u(r"\0777"), "\\0777");
        assert_eq!(u(r"\q"), "\\q");
        assert_eq!(u("\\"), "\\");
        assert_eq!(u(r"\ b\az"), "\\ b\u{7}z");
    }
}
