//! Shell wildcard patterns for `${VAR#pat}`, `${VAR%pat}` and
//! `${VAR/pat/repl}`: `*` (any run), `?` (any one character) and `\` escapes.
//!
//! BuildKit turns these into Go regular expressions (`*` -> `.*` or `.*?`,
//! `?` -> `.`); [`Pattern`] reproduces the leftmost-first match that regexp
//! finds, with a dynamic program instead of backtracking so that hostile
//! patterns cannot blow up. Like Go's `.`, wildcards do not match a newline.

/// One element of a parsed pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
}

/// A pattern that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("invalid escape '\\{0}'")]
    InvalidEscape(char),
    #[error("trailing escape character")]
    TrailingEscape,
}

/// A parsed shell pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Parses `pattern`. `\}` and `\/` stand for `}` and `/` (they had to be
    /// escaped inside `${...}`); `\*`, `\?`, `\\` are literal; any other
    /// escape is an error, as in BuildKit.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '*' => tokens.push(Token::AnyRun),
                '?' => tokens.push(Token::AnyOne),
                '\\' => match chars.peek().copied() {
                    Some('}' | '/') => {}
                    Some(c @ ('*' | '?' | '\\')) => {
                        chars.next();
                        tokens.push(Token::Literal(c));
                    }
                    Some(c) => return Err(PatternError::InvalidEscape(c)),
                    None => return Err(PatternError::TrailingEscape),
                },
                c => tokens.push(Token::Literal(c)),
            }
        }
        Ok(Self { tokens })
    }

    /// Removes the shortest (or with `greedy` the longest) matching prefix.
    pub fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let text: Vec<char> = value.chars().collect();
        match match_ends(&self.tokens, &text, greedy)
            .first()
            .copied()
            .flatten()
        {
            Some(end) => text.get(end..).unwrap_or_default().iter().collect(),
            None => value.to_string(),
        }
    }

    /// Removes the shortest (or with `greedy` the longest) matching suffix,
    /// by matching the reversed pattern against the reversed value.
    pub fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let reversed_tokens: Vec<Token> = self.tokens.iter().rev().copied().collect();
        let text: Vec<char> = value.chars().rev().collect();
        match match_ends(&reversed_tokens, &text, greedy)
            .first()
            .copied()
            .flatten()
        {
            Some(end) => text.get(end..).unwrap_or_default().iter().rev().collect(),
            None => value.to_string(),
        }
    }

    /// Replaces the first (or every) leftmost match, with Go's
    /// `ReplaceAllString` rules for empty matches. The replacement is
    /// inserted literally.
    pub fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let text: Vec<char> = value.chars().collect();
        let ends = match_ends(&self.tokens, &text, true);
        let find_from = |from: usize| {
            (from..=text.len())
                .find_map(|start| ends.get(start).copied().flatten().map(|end| (start, end)))
        };
        let slice =
            |a: usize, b: usize| -> String { text.get(a..b).unwrap_or_default().iter().collect() };
        if !all {
            return match find_from(0) {
                Some((start, end)) => {
                    let mut out = slice(0, start);
                    out.push_str(replacement);
                    out.push_str(&slice(end, text.len()));
                    out
                }
                None => value.to_string(),
            };
        }
        let mut out = String::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= text.len() {
            let Some((start, end)) = find_from(search) else {
                break;
            };
            out.push_str(&slice(last_end, start));
            // No second replacement for an empty match right after a match.
            if end > last_end || start == 0 {
                out.push_str(replacement);
            }
            last_end = end;
            let width = usize::from(search < text.len());
            search = if search + width > end {
                search + width
            } else if search + 1 > end {
                search + 1
            } else {
                end
            };
        }
        out.push_str(&slice(last_end, text.len()));
        out
    }
}

/// For every start position `s` in `0..=text.len()`, where the match that
/// begins at `s` ends (leftmost-first preference: greedy runs try longest
/// first, lazy runs shortest first), or `None`.
///
/// Computed row by row from the last token backwards, so time is
/// O(tokens × text) and memory O(text).
fn match_ends(tokens: &[Token], text: &[char], greedy: bool) -> Vec<Option<usize>> {
    let n = text.len();
    let mut next: Vec<Option<usize>> = (0..=n).map(Some).collect();
    for token in tokens.iter().rev() {
        let mut cur = vec![None; n + 1];
        match *token {
            Token::Literal(c) => {
                for (i, slot) in cur.iter_mut().enumerate().take(n) {
                    if text.get(i) == Some(&c) {
                        *slot = next.get(i + 1).copied().flatten();
                    }
                }
            }
            Token::AnyOne => {
                for (i, slot) in cur.iter_mut().enumerate().take(n) {
                    if text.get(i).is_some_and(|c| *c != '\n') {
                        *slot = next.get(i + 1).copied().flatten();
                    }
                }
            }
            Token::AnyRun => {
                // A run starting at i can stop anywhere up to (and including)
                // the next newline position. Walking backwards, `best` is the
                // preferred stopping point seen so far within that segment.
                let mut best: Option<usize> = None;
                for i in (0..=n).rev() {
                    if text.get(i) == Some(&'\n') {
                        best = None;
                    }
                    if next.get(i).copied().flatten().is_some() && (best.is_none() || !greedy) {
                        best = Some(i);
                    }
                    if let Some(slot) = cur.get_mut(i) {
                        *slot = best.and_then(|k| next.get(k).copied().flatten());
                    }
                }
            }
        }
        next = cur;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn prefix_shortest_and_longest() {
        assert_eq!(p("*/").trim_prefix("a/b/c", false), "b/c");
        assert_eq!(p("*/").trim_prefix("a/b/c", true), "c");
        assert_eq!(p("x").trim_prefix("a/b/c", true), "a/b/c");
    }

    #[test]
    fn suffix_shortest_and_longest() {
        assert_eq!(p("/*").trim_suffix("a/b/c", false), "a/b");
        assert_eq!(p("/*").trim_suffix("a/b/c", true), "a");
        assert_eq!(p("\\*").trim_suffix("a*", false), "a");
    }

    #[test]
    fn replace_first_and_all() {
        assert_eq!(p("o").replace("foo", "0", false), "f0o");
        assert_eq!(p("o").replace("foo", "0", true), "f00");
        assert_eq!(p("").replace("ab", "-", true), "-a-b-");
        assert_eq!(p("*").replace("ab", "x", true), "x");
        assert_eq!(p("b*").replace("abcb", "X", false), "aX");
    }

    #[test]
    fn wildcards_stop_at_newline() {
        assert_eq!(p("a*").trim_prefix("ab\ncd", true), "\ncd");
    }

    #[test]
    fn bad_escapes_are_errors() {
        assert_eq!(Pattern::parse("\\x"), Err(PatternError::InvalidEscape('x')));
        assert_eq!(Pattern::parse("a\\"), Err(PatternError::TrailingEscape));
        assert_eq!(p("\\}").trim_prefix("}x", false), "x");
    }
}
