//! `.dockerignore`: reading the pattern file like Docker's
//! `patternmatcher/ignorefile` and matching paths like
//! `moby/patternmatcher` (`MatchesOrParentMatches`).
//!
//! Principal type: [`DockerIgnore`] with [`DockerIgnore::parse`],
//! [`DockerIgnore::is_excluded`] and [`DockerIgnore::may_contain_exceptions`]
//! (whether a walk must still enter an excluded directory because a `!`
//! exception could re-include something inside it). Patterns are
//! [`IgnorePattern`]s: `*` and `?` never cross `/`, `**` spans directories,
//! `[...]` classes, `\` escapes; a pattern matching a directory excludes
//! everything beneath it; the last matching pattern wins.

use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;

/// One pattern as Docker keeps it: cleaned, `!` removed into `exclusion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnorePattern {
    /// The cleaned pattern text without the leading `!`.
    pub text: String,
    /// A `!` exception: matching paths are included again.
    pub exclusion: bool,
    /// 1-based line in the file; 0 when built from a list.
    pub line: u32,
    matcher: Matcher,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    Exact,
    /// `prefix**`: any path starting with the prefix.
    Prefix(String),
    /// `**suffix`: any path ending with the suffix.
    Suffix(String),
    Tokens(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: one character other than `/`.
    OneNotSlash,
    /// `*`: any run without `/`.
    RunNotSlash,
    /// `**/` inside a pattern: nothing, or anything ending with `/`.
    Dirs,
    /// `**` at the end after other wildcards: anything.
    Rest,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DockerIgnore {
    pub file: PathBuf,
    pub patterns: Vec<IgnorePattern>,
}

impl DockerIgnore {
    /// Reads `.dockerignore` text: `#` lines are comments (only when `#` is
    /// the first character), blank lines are skipped, whitespace is trimmed,
    /// paths are cleaned and a leading `/` is dropped.
    pub fn parse(text: &str, file: &Path) -> Result<Self, Diagnostic> {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
            if raw.starts_with('#') {
                continue;
            }
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let (invert, body) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            let mut body = if body.is_empty() {
                String::new()
            } else {
                clean_path(body)
            };
            if body.len() > 1 && body.starts_with('/') {
                body.remove(0);
            }
            let entry = if invert { format!("!{body}") } else { body };
            let column = raw.chars().take_while(|c| c.is_whitespace()).count() + 1;
            let pattern = IgnorePattern::new(&entry, line).map_err(|message| {
                Diagnostic::error(message)
                    .in_file(file)
                    .line_col(line, u32::try_from(column).unwrap_or(1))
                    .hint("patterns use *, ?, ** and [a-z] classes; `!pattern` re-includes; escape special characters with \\")
            })?;
            patterns.extend(pattern);
        }
        Ok(Self {
            file: file.to_path_buf(),
            patterns,
        })
    }

    /// Builds a matcher from pattern strings, like `NewPatternMatcher`.
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let mut out = Vec::new();
        for p in patterns {
            out.extend(IgnorePattern::new(p.as_ref(), 0)?);
        }
        Ok(Self {
            file: PathBuf::new(),
            patterns: out,
        })
    }

    /// Whether any pattern is a `!` exception.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `rel_path` (slash-separated, relative to the context) is left
    /// out of the build context: the last pattern that matches the path or
    /// one of its parent directories decides. Docker's patterns do not
    /// distinguish files from directories (`foo/` is cleaned to `foo`), so
    /// `is_dir` does not change the answer; it is taken so callers state
    /// what they walk. The context root (`.`) is never excluded.
    pub fn is_excluded(&self, rel_path: &str, is_dir: bool) -> bool {
        let _ = is_dir;
        let cleaned = clean_path(rel_path);
        if cleaned == "." {
            return false;
        }
        // Context-relative: a leading `/` is dropped, except for `/` itself,
        // which patternmatcher matches as written.
        let path = match cleaned.strip_prefix('/') {
            Some(rest) if !rest.is_empty() => rest.to_string(),
            _ => cleaned,
        };
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => path.get(..i).unwrap_or_default().split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(&path);
            if !hit {
                hit = (1..=parents.len())
                    .any(|n| pattern.matches(&parents.get(..n).unwrap_or_default().join("/")));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether an excluded directory must still be walked because some `!`
    /// exception could match a path inside it. Conservative: it answers
    /// true whenever an exception's leading components could match `dir`.
    pub fn may_contain_exceptions(&self, dir: &str) -> bool {
        let dir = clean_path(dir.trim_start_matches('/'));
        let dir_parts: Vec<&str> = if dir == "." {
            Vec::new()
        } else {
            dir.split('/').collect()
        };
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            for (k, part) in p.text.split('/').enumerate() {
                if part.contains("**") {
                    return true;
                }
                let Some(dir_part) = dir_parts.get(k) else {
                    return true; // the exception goes deeper than `dir`
                };
                let component_matches = IgnorePattern::new(part, 0)
                    .ok()
                    .flatten()
                    .is_some_and(|cp| cp.matches(dir_part));
                if !component_matches {
                    return false;
                }
            }
            true
        })
    }

    /// For a directory walk: descend unless the directory is excluded and
    /// no exception could re-include anything below it.
    pub fn should_descend(&self, dir: &str) -> bool {
        !self.is_excluded(dir, true) || self.may_contain_exceptions(dir)
    }
}

impl IgnorePattern {
    /// Compiles one pattern string (`!` allowed); `None` for blank ones.
    pub fn new(pattern: &str, line: u32) -> Result<Option<Self>, String> {
        let p = pattern.trim();
        if p.is_empty() {
            return Ok(None);
        }
        let p = clean_path(p);
        let (exclusion, text) = match p.strip_prefix('!') {
            Some("") => return Err("illegal exclusion pattern: \"!\"".to_string()),
            Some(rest) => (true, rest.to_string()),
            None => (false, p),
        };
        validate_syntax(&text).map_err(|e| format!("syntax error in pattern {text:?}: {e}"))?;
        let matcher = compile(&text);
        Ok(Some(Self {
            text,
            exclusion,
            line,
            matcher,
        }))
    }

    /// Whether the pattern matches exactly this (cleaned, relative) path.
    pub fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Matcher::Tokens(tokens) => full_match(tokens, path),
        }
    }
}

/// patternmatcher's `compile`: decides exact/prefix/suffix/regexp matching
/// and builds the token list the regexp would have had.
fn compile(pattern: &str) -> Matcher {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    let mut kind = Kind::Exact;
    let mut tokens = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut pos = 0;
    let mut first = true;
    while let Some(&ch) = chars.get(pos) {
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos >= chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        tokens.push(Token::Rest);
                        kind = Kind::Regexp;
                    }
                } else {
                    tokens.push(Token::Dirs);
                    kind = Kind::Regexp;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::RunNotSlash);
                kind = Kind::Regexp;
            }
            '?' => {
                tokens.push(Token::OneNotSlash);
                kind = Kind::Regexp;
            }
            '\\' => match chars.get(pos) {
                Some(&next) => {
                    pos += 1;
                    tokens.push(Token::Literal(next));
                    kind = Kind::Regexp;
                }
                None => tokens.push(Token::Literal('\\')),
            },
            '[' => {
                let (class, used) = parse_class(chars.get(pos..).unwrap_or_default());
                pos += used;
                tokens.push(class);
                kind = Kind::Regexp;
            }
            c => tokens.push(Token::Literal(c)),
        }
        first = false;
    }
    match kind {
        Kind::Exact => Matcher::Exact,
        Kind::Prefix => Matcher::Prefix(pattern.strip_suffix("**").unwrap_or(pattern).to_string()),
        Kind::Suffix => Matcher::Suffix(pattern.get(2..).unwrap_or_default().to_string()),
        Kind::Regexp => Matcher::Tokens(tokens),
    }
}

/// Parses a class body after `[`; returns the token and characters used.
fn parse_class(chars: &[char]) -> (Token, usize) {
    let mut i = 0;
    let negated = chars.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let read_char = |i: &mut usize| -> Option<char> {
        let mut c = *chars.get(*i)?;
        if c == '\\' {
            *i += 1;
            c = *chars.get(*i)?;
        }
        *i += 1;
        Some(c)
    };
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            i += 1;
            break;
        }
        let Some(lo) = read_char(&mut i) else { break };
        let mut hi = lo;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
            i += 1;
            if let Some(h) = read_char(&mut i) {
                hi = h;
            }
        }
        ranges.push((lo, hi));
    }
    (Token::Class { negated, ranges }, i)
}

/// Go's `filepath.Match` syntax check: escapes need a character, classes
/// must be closed, non-empty and have well-formed ranges.
fn validate_syntax(pattern: &str) -> Result<(), &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let get_esc = |i: &mut usize| -> Result<(), &'static str> {
        match chars.get(*i) {
            None | Some('-' | ']') => return Err("bad character range"),
            Some('\\') => {
                *i += 1;
                if chars.get(*i).is_none() {
                    return Err("trailing escape in class");
                }
            }
            Some(_) => {}
        }
        *i += 1;
        if *i >= chars.len() {
            return Err("unclosed character class");
        }
        Ok(())
    };
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '\\' => {
                if chars.get(i).is_none() {
                    return Err("trailing escape character");
                }
                i += 1;
            }
            '[' => {
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut nrange = 0;
                loop {
                    if chars.get(i) == Some(&']') && nrange > 0 {
                        i += 1;
                        break;
                    }
                    get_esc(&mut i)?;
                    if chars.get(i) == Some(&'-') {
                        i += 1;
                        get_esc(&mut i)?;
                    }
                    nrange += 1;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whole-path match of a token list, as the anchored regexp would. Bottom-up
/// over tokens, O(tokens × path) with one row of memory.
fn full_match(tokens: &[Token], path: &str) -> bool {
    let text: Vec<char> = path.chars().collect();
    let n = text.len();
    let mut next = vec![false; n + 1];
    if let Some(last) = next.last_mut() {
        *last = true;
    }
    let at = |row: &[bool], i: usize| row.get(i).copied().unwrap_or(false);
    for token in tokens.iter().rev() {
        let mut cur = vec![false; n + 1];
        match token {
            Token::Literal(c) => {
                for (i, slot) in cur.iter_mut().enumerate().take(n) {
                    *slot = text.get(i) == Some(c) && at(&next, i + 1);
                }
            }
            Token::OneNotSlash => {
                for (i, slot) in cur.iter_mut().enumerate().take(n) {
                    *slot = text.get(i).is_some_and(|c| *c != '/') && at(&next, i + 1);
                }
            }
            Token::Class { negated, ranges } => {
                for (i, slot) in cur.iter_mut().enumerate().take(n) {
                    let hit = text.get(i).is_some_and(|c| {
                        ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated
                    });
                    *slot = hit && at(&next, i + 1);
                }
            }
            // A run can stop at any later position it can reach without
            // crossing a blocking character.
            Token::RunNotSlash | Token::Rest => {
                let blocks = |c: char| {
                    if *token == Token::Rest {
                        c == '\n'
                    } else {
                        c == '/'
                    }
                };
                let mut reach = false;
                for (i, slot) in cur.iter_mut().enumerate().rev() {
                    let blocked = text.get(i).is_some_and(|c| blocks(*c));
                    reach = at(&next, i) || (!blocked && reach);
                    *slot = reach;
                }
            }
            Token::Dirs => {
                let mut slash_ahead = false;
                for (i, slot) in cur.iter_mut().enumerate().rev() {
                    match text.get(i) {
                        Some('\n') => slash_ahead = false,
                        Some('/') if at(&next, i + 1) => slash_ahead = true,
                        _ => {}
                    }
                    *slot = at(&next, i) || slash_ahead;
                }
            }
        }
        next = cur;
    }
    at(&next, 0)
}

/// Go's `path.Clean` for slash-separated paths.
pub fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        IgnorePattern::new(pattern, 0)
            .unwrap()
            .unwrap()
            .matches(path)
    }

    #[test]
    fn match_kinds() {
        assert!(m("abc.def", "abc.def"));
        assert!(!m("abc.def", "abcZdef"));
        assert!(m("dir/**", "dir/a/b"));
        assert!(m("**/foo", "a/b/foo"));
        assert!(m("**/foo", "foo"));
        assert!(m("a**/*.txt", "a/dir/file.txt"));
        assert!(m("a[b-d]e", "ace"));
        assert!(!m("a[^b-d]e", "ace"));
        assert!(m("*.go", "main.go"));
        assert!(!m("*.go", "cmd/main.go"));
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean_path("a//b/./c/.."), "a/b");
        assert_eq!(clean_path("/../x/"), "/x");
        assert_eq!(clean_path("../../a"), "../../a");
        assert_eq!(clean_path(""), ".");
    }

    #[test]
    fn syntax_errors() {
        assert!(IgnorePattern::new("[", 0).is_err());
        assert!(IgnorePattern::new("a[]", 0).is_err());
        assert!(IgnorePattern::new("a[z-", 0).is_err());
        assert!(IgnorePattern::new("a\\", 0).is_err());
        assert!(IgnorePattern::new("!", 0).is_err());
        assert!(IgnorePattern::new("   ", 0).unwrap().is_none());
    }

    #[test]
    fn long_hostile_patterns_stay_linear() {
        let pattern = "*a".repeat(200);
        let path = "a".repeat(5000);
        assert!(m(&pattern, &path));
        assert!(!m(&(pattern + "b"), &path));
    }
}
