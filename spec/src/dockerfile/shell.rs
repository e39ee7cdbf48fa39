//! Dockerfile word expansion and splitting, following BuildKit's
//! `frontend/dockerfile/shell/lex.go`.
//!
//! Principal items: [`expand_word`] (one word, quotes removed, variables
//! substituted), [`expand_words`] (the same, then split on unquoted
//! whitespace), and [`Lexer`] with [`LexOptions`] for the raw modes the
//! heredoc detection needs. Errors are [`ExpandError`].
//!
//! Supported forms: `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`,
//! `${VAR+w}`, `${VAR:?msg}`, `${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`,
//! `${VAR%pat}`, `${VAR%%pat}`, `${VAR/pat/repl}`, `${VAR//pat/repl}`.
//! Single quotes keep everything literal; double quotes keep everything but
//! `$` and escapes of `"`, `$` and the escape character.

use super::pattern::{Pattern, PatternError};

/// Looks a variable up; `None` means unset (which differs from set-but-empty
/// for `${VAR-w}`, `${VAR+w}` and `${VAR?msg}`).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expansion failed: the word and why, e.g. an unmatched quote or `${}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {reason}")]
pub struct ExpandError {
    pub word: String,
    pub reason: String,
}

/// Knobs of the lexer. The defaults are what instructions use; the raw modes
/// exist for heredoc detection, which must see quotes and escapes as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LexOptions {
    /// The Dockerfile escape character: `\` or, with `# escape=`` ` ``, a backtick.
    pub escape: char,
    /// Keep the quote characters in the output (their contents stay literal).
    pub raw_quotes: bool,
    /// Keep escape characters in the output next to what they escape.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written instead of emptying them.
    pub skip_unset_env: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
}

impl LexOptions {
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
            skip_process_quotes: false,
        }
    }
}

/// Nested `${a:-${b:-...}}` deeper than this is refused rather than risking
/// the stack on hostile input.
const MAX_NESTING: usize = 64;

/// Expands one word: quotes removed, variables substituted, whitespace kept.
pub fn expand_word(word: &str, env: EnvLookup<'_>, escape: char) -> Result<String, ExpandError> {
    Lexer::new(LexOptions::new(escape))
        .process(word, env)
        .map(|(w, _)| w)
}

/// Expands and splits into words: unquoted whitespace (including whitespace
/// that came out of an unquoted expansion) separates words.
pub fn expand_words(
    word: &str,
    env: EnvLookup<'_>,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    Lexer::new(LexOptions::new(escape))
        .process(word, env)
        .map(|(_, w)| w)
}

/// A configured lexer; [`Lexer::process`] returns both the joined word and
/// the split words.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub options: LexOptions,
}

impl Lexer {
    pub fn new(options: LexOptions) -> Self {
        Self { options }
    }

    /// Processes `word`, returning `(single_word, split_words)`.
    pub fn process(
        &self,
        word: &str,
        env: EnvLookup<'_>,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let mut state = State {
            chars: word.chars().collect(),
            pos: 0,
            env,
            opts: self.options,
            raw_escapes: self.options.raw_escapes,
            depth: 0,
        };
        let raw = self.options.raw_escapes;
        state
            .process_stop_on(None, raw)
            .map_err(|reason| ExpandError {
                word: word.to_string(),
                reason,
            })
    }
}

/// Accumulates split words: unquoted whitespace ends a word, quoted text and
/// escaped characters never do.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

struct State<'a> {
    chars: Vec<char>,
    pos: usize,
    env: EnvLookup<'a>,
    opts: LexOptions,
    /// Current escape mode; `${VAR#pat}` and friends switch it on for their
    /// pattern so that `\*` reaches the pattern matcher intact.
    raw_escapes: bool,
    depth: usize,
}

type Step<T> = Result<T, String>;

impl State<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Step<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let out = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn process_stop_on_inner(&mut self, stop: Option<char>) -> Step<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        let quotes = !self.opts.skip_process_quotes;
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let tmp = self.process_dollar()?;
                    result.push_str(&tmp);
                    words.add_string(&tmp);
                }
                '\'' if quotes => {
                    let tmp = self.process_single_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                '"' if quotes => {
                    let tmp = self.process_double_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                _ => {
                    self.next();
                    if ch == self.opts.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Step<String> {
        let mut result = String::new();
        if let Some(q) = self.next()
            && self.opts.raw_quotes
        {
            result.push(q);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    );
                }
                Some('\'') => {
                    if self.opts.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    fn process_double_quote(&mut self) -> Step<String> {
        let mut result = String::new();
        if let Some(q) = self.next()
            && self.opts.raw_quotes
        {
            result.push(q);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    );
                }
                Some('"') => {
                    self.next();
                    if self.opts.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(_) => {
                    let Some(mut ch) = self.next() else { continue };
                    if ch == self.opts.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // A lone escape at the end: the loop then reports
                            // the missing closing quote.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.opts.escape => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    fn process_dollar(&mut self) -> Step<String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "variable substitutions nested deeper than {MAX_NESTING} levels"
            ));
        }
        self.depth += 1;
        let out = self.process_dollar_inner();
        self.depth -= 1;
        out
    }

    fn process_dollar_inner(&mut self) -> Step<String> {
        self.next(); // the '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.opts.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // the '{'
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.process_name();
        let first = self.next();
        // Go prints the EOF rune as U+FFFD in this message.
        let mut modifier_text = first.unwrap_or('\u{FFFD}').to_string();
        match first {
            Some('}') => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.opts.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let op = self.next();
                modifier_text.push(op.unwrap_or('\u{FFFD}'));
                self.process_modifier(&name, op, true, &modifier_text)
            }
            Some('+' | '-' | '?' | '#' | '%') => {
                self.process_modifier(&name, first, false, &modifier_text)
            }
            Some('/') => self.process_replace(&name),
            _ => Err(format!(
                "unsupported modifier ({modifier_text}) in substitution"
            )),
        }
    }

    /// `${name<op>word}` and `${name:<op>word}` (`null_is_unset`).
    fn process_modifier(
        &mut self,
        name: &str,
        op: Option<char>,
        null_is_unset: bool,
        modifier_text: &str,
    ) -> Step<String> {
        let pattern_op = matches!(op, Some('#' | '%'));
        if null_is_unset && pattern_op {
            return Err(format!(
                "unsupported modifier ({modifier_text}) in substitution"
            ));
        }
        let word = self.stop_on_brace('}', pattern_op, "syntax error: missing '}'")?;
        let value = self.lookup(name);
        if self.opts.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{modifier_text}{word}}}"));
        }
        let unset_or_null = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match op {
            Some('-') => Ok(if unset_or_null {
                word
            } else {
                value.unwrap_or_default()
            }),
            Some('+') => Ok(if unset_or_null { String::new() } else { word }),
            Some('?') => {
                let message = |default: &str| {
                    if word.is_empty() {
                        default.to_string()
                    } else {
                        word.clone()
                    }
                };
                match value {
                    None => Err(format!("{name}: {}", message("is not allowed to be unset"))),
                    Some(v) if null_is_unset && v.is_empty() => {
                        Err(format!("{name}: {}", message("is not allowed to be empty")))
                    }
                    Some(v) => Ok(v),
                }
            }
            Some(c @ ('#' | '%')) => {
                let (greedy, pattern) = match word.strip_prefix(c) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let value = value.unwrap_or_default();
                let compiled = Pattern::parse(pattern).map_err(|e| bad_pattern(pattern, &e))?;
                Ok(if c == '%' {
                    compiled.trim_suffix(&value, greedy)
                } else {
                    compiled.trim_prefix(&value, greedy)
                })
            }
            _ => Err(format!(
                "unsupported modifier ({modifier_text}) in substitution"
            )),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn process_replace(&mut self, name: &str) -> Step<String> {
        let replace_all = self.peek() == Some('/');
        if replace_all {
            self.next();
        }
        let pattern = self.stop_on_brace('/', true, "syntax error: missing '/' in ${}")?;
        let replacement = self.stop_on_brace('}', true, "syntax error: missing '}'")?;
        let value = self.lookup(name);
        if self.opts.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        let compiled = Pattern::parse(&pattern).map_err(|e| bad_pattern(&pattern, &e))?;
        Ok(compiled.replace(&value.unwrap_or_default(), &replacement, replace_all))
    }

    /// Processes up to `stop`; running out of input gives `missing`.
    fn stop_on_brace(&mut self, stop: char, raw: bool, missing: &str) -> Step<String> {
        match self.process_stop_on(Some(stop), raw) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => Err(missing.to_string()),
            Err(e) => Err(e),
        }
    }

    /// A variable name: letters, digits and `_`; or a run of digits
    /// (positional parameter); or one special parameter character.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.peek().filter(|c| is_digit(*c)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphabetic() || is_digit(ch) || ch == '_') {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }
}

fn bad_pattern(pattern: &str, err: &PatternError) -> String {
    format!("invalid pattern ({pattern}) in substitution: {err}")
}

fn is_digit(ch: char) -> bool {
    ch.is_ascii_digit() || (!ch.is_ascii() && ch.is_numeric())
}

/// POSIX special parameters; never set in a Dockerfile, so they expand empty.
fn is_special_param(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PWD" => Some("/home".into()),
            "EMPTY" => Some(String::new()),
            "FILE" => Some("archive.tar.gz".into()),
            "PATHV" => Some("/usr/local/bin:/usr/bin".into()),
            "SPACED" => Some("a  b".into()),
            _ => None,
        }
    }

    fn word(w: &str) -> Result<String, ExpandError> {
        expand_word(w, &env, '\\')
    }

    #[test]
    fn simple_and_braced_variables() {
        assert_eq!(word("he$PWD").unwrap(), "he/home");
        assert_eq!(word("${PWD}x").unwrap(), "/homex");
        assert_eq!(word("$NOPE.").unwrap(), ".");
        assert_eq!(word("$").unwrap(), "$");
        assert_eq!(word("a$.b").unwrap(), "a$.b");
    }

    #[test]
    fn defaults_alternatives_and_required() {
        assert_eq!(word("${NOPE:-d}").unwrap(), "d");
        assert_eq!(word("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(word("${EMPTY-d}").unwrap(), "");
        assert_eq!(word("${NOPE-d}").unwrap(), "d");
        assert_eq!(word("${PWD:+alt}").unwrap(), "alt");
        assert_eq!(word("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(word("${EMPTY:+alt}").unwrap(), "");
        let err = word("${NOPE:?must be set}").unwrap_err();
        assert_eq!(err.reason, "NOPE: must be set");
        let err = word("${EMPTY:?}").unwrap_err();
        assert_eq!(err.reason, "EMPTY: is not allowed to be empty");
        assert_eq!(word("${EMPTY?}").unwrap(), "");
    }

    #[test]
    fn prefix_and_suffix_removal() {
        assert_eq!(word("${FILE#*.}").unwrap(), "tar.gz");
        assert_eq!(word("${FILE##*.}").unwrap(), "gz");
        assert_eq!(word("${FILE%.*}").unwrap(), "archive.tar");
        assert_eq!(word("${FILE%%.*}").unwrap(), "archive");
        assert_eq!(word("${FILE#nomatch}").unwrap(), "archive.tar.gz");
        assert_eq!(word("${FILE%.tar.gz}").unwrap(), "archive");
        assert_eq!(word("${FILE#a?c}").unwrap(), "hive.tar.gz");
        assert_eq!(word("${FILE%\\*}").unwrap(), "archive.tar.gz");
        assert!(word("${FILE:#x}").is_err());
    }

    #[test]
    fn replacement() {
        assert_eq!(
            word("${PATHV/bin/sbin}").unwrap(),
            "/usr/local/sbin:/usr/bin"
        );
        assert_eq!(
            word("${PATHV//bin/sbin}").unwrap(),
            "/usr/local/sbin:/usr/sbin"
        );
        assert_eq!(word("${PATHV/:*/}").unwrap(), "/usr/local/bin");
        assert_eq!(word("${NOPE/a/b}").unwrap(), "");
        assert_eq!(word("${PWD/\\//_}").unwrap(), "_home");
        assert!(word("${PWD/a").is_err());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(word("'$PWD'").unwrap(), "$PWD");
        assert_eq!(word("\"$PWD\"").unwrap(), "/home");
        assert_eq!(word("\\$PWD").unwrap(), "$PWD");
        assert_eq!(word("\"a\\b\"").unwrap(), "a\\b");
        assert!(word("\"open").is_err());
        assert!(word("'open").is_err());
        assert_eq!(expand_word("`$PWD", &env, '`').unwrap(), "$PWD");
    }

    #[test]
    fn splitting_keeps_quoted_whitespace() {
        let w = expand_words("x $SPACED \"$SPACED\"", &env, '\\').unwrap();
        assert_eq!(w, vec!["x", "a", "b", "a  b"]);
        let w = expand_words("a\\ b c", &env, '\\').unwrap();
        assert_eq!(w, vec!["a b", "c"]);
    }

    #[test]
    fn raw_modes_keep_quotes_escapes_and_unset_refs() {
        let lexer = Lexer::new(LexOptions {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset_env: true,
            ..LexOptions::new('\\')
        });
        let none = |_: &str| None;
        let (w, words) = lexer.process("cat <<\"EOF\" \\$X ${Y:-z}", &none).unwrap();
        assert_eq!(w, "cat <<\"EOF\" \\$X ${Y:-z}");
        assert_eq!(words, vec!["cat", "<<\"EOF\"", "\\$X", "${Y:-z}"]);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "${a:-".repeat(10_000);
        assert!(word(&deep).is_err());
    }
}
