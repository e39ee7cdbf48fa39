//! How each instruction's text is cut into keyword, flags and arguments —
//! BuildKit's `split_command.go` and `line_parsers.go`: [`split_command`],
//! [`split_arguments`] and the helpers they dispatch to (JSON exec form,
//! whitespace lists, `ENV`/`LABEL` name-value triples, `ARG` words,
//! `HEALTHCHECK` type + command).

use super::parser::LineError;

/// The arguments of one instruction and whether they came from JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SplitArgs {
    pub args: Vec<String>,
    pub json: bool,
}

/// BuildKit's instruction whitespace (`[\t\v\f\r ]+`).
fn is_token_space(c: char) -> bool {
    matches!(c, '\t' | '\x0B' | '\x0C' | '\r' | ' ')
}

/// Splits a joined instruction line into keyword, flags and the rest.
pub(crate) fn split_command(line: &str) -> (&str, Vec<String>, &str) {
    let line = line.trim();
    let Some(sep) = line.find(is_token_space) else {
        return (line, Vec::new(), "");
    };
    let (keyword, rest) = line.split_at(sep);
    let rest = rest.trim_start_matches(is_token_space);
    let (args, flags) = extract_builder_flags(rest);
    (keyword, flags, args.trim())
}

/// Takes leading `--flag[=value]` words off `line`. Quotes inside a flag are
/// removed, `\` escapes the next character, and `--` alone ends the flags.
pub(crate) fn extract_builder_flags(line: &str) -> (&str, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut iter = line.char_indices().peekable();
    while let Some((pos, ch)) = iter.next() {
        match phase {
            Phase::Spaces => {
                if ch.is_whitespace() {
                    continue;
                }
                let next_is_dash = iter.peek().is_some_and(|(_, c)| *c == '-');
                if ch != '-' || !next_is_dash {
                    return (line.get(pos..).unwrap_or_default(), words);
                }
                phase = Phase::Word;
                word.push(ch);
            }
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (line.get(pos..).unwrap_or_default(), words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                    continue;
                }
                if ch == '\\' {
                    match iter.next() {
                        Some((_, escaped)) => word.push(escaped),
                        None => break,
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                    continue;
                }
                if ch == '\\' {
                    match iter.next() {
                        Some((_, escaped)) => word.push(escaped),
                        None => {
                            phase = Phase::Word;
                            break;
                        }
                    }
                    continue;
                }
                word.push(ch);
            }
        }
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    ("", words)
}

/// Dispatches on the lower-case keyword, like BuildKit's table.
pub(crate) fn split_arguments(
    keyword: &str,
    rest: &str,
    escape: char,
) -> Result<SplitArgs, LineError> {
    match keyword {
        "add" | "copy" | "volume" => maybe_json_to_list(rest),
        "arg" => Ok(plain(parse_words(rest, escape))),
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(rest),
        "env" | "label" => name_values(rest, keyword, escape),
        "expose" | "from" => Ok(plain(whitespace_list(rest))),
        "healthcheck" => health_config(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok(plain(if rest.is_empty() {
            Vec::new()
        } else {
            vec![rest.to_string()]
        })),
        _ => Ok(SplitArgs::default()),
    }
}

fn plain(args: Vec<String>) -> SplitArgs {
    SplitArgs { args, json: false }
}

/// Splits on runs of instruction whitespace; quotes are ordinary characters.
fn whitespace_list(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_token_space)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

enum JsonOutcome {
    Strings(Vec<String>),
    NotJson,
    NotStrings,
}

/// A JSON array of strings; valid JSON holding anything else is an error,
/// invalid JSON means "not the exec form".
fn parse_json(rest: &str) -> JsonOutcome {
    let trimmed = rest.trim_start();
    if !trimmed.starts_with('[') {
        return JsonOutcome::NotJson;
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(trimmed) else {
        return JsonOutcome::NotJson;
    };
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match v {
            serde_json::Value::String(s) => out.push(s),
            _ => return JsonOutcome::NotStrings,
        }
    }
    JsonOutcome::Strings(out)
}

fn not_strings_error() -> LineError {
    LineError {
        message: "when using JSON array syntax, arrays must be comprised of strings only"
            .to_string(),
        hint: "write the exec form as a flat array of strings, e.g. [\"executable\", \"arg\"]"
            .to_string(),
    }
}

/// Exec form if JSON, else the whole rest as one shell-form string.
fn maybe_json(rest: &str) -> Result<SplitArgs, LineError> {
    if rest.is_empty() {
        return Ok(SplitArgs::default());
    }
    match parse_json(rest) {
        JsonOutcome::Strings(args) => Ok(SplitArgs { args, json: true }),
        JsonOutcome::NotStrings => Err(not_strings_error()),
        JsonOutcome::NotJson => Ok(plain(vec![rest.to_string()])),
    }
}

/// Exec form if JSON, else a whitespace-separated list.
fn maybe_json_to_list(rest: &str) -> Result<SplitArgs, LineError> {
    match parse_json(rest) {
        JsonOutcome::Strings(args) => Ok(SplitArgs { args, json: true }),
        JsonOutcome::NotStrings => Err(not_strings_error()),
        JsonOutcome::NotJson => Ok(plain(whitespace_list(rest))),
    }
}

/// `HEALTHCHECK TYPE rest`: the type word, then `rest` as exec/shell form.
fn health_config(rest: &str) -> Result<SplitArgs, LineError> {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok(SplitArgs::default());
    }
    let (typ, after) = rest.split_at(sep);
    let cmd = maybe_json(after.trim_start())?;
    let mut args = vec![typ.to_string()];
    args.extend(cmd.args);
    Ok(SplitArgs {
        args,
        json: cmd.json,
    })
}

/// ENV and LABEL: `key value...` (old form, separator `""`) or one or more
/// `key=value` words (separator `"="`), values kept exactly as written.
fn name_values(rest: &str, keyword: &str, escape: char) -> Result<SplitArgs, LineError> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(SplitArgs::default());
    };
    let upper = keyword.to_ascii_uppercase();
    if !first.contains('=') {
        let mut parts = rest.splitn(2, is_token_space);
        let key = parts.next().unwrap_or_default();
        let value = parts.next().map(|v| v.trim_start_matches(is_token_space));
        return match value {
            Some(value) => Ok(plain(vec![
                key.to_string(),
                value.to_string(),
                String::new(),
            ])),
            None => Err(LineError {
                message: format!("{upper} must have two arguments"),
                hint: format!("write `{upper} {key}=<value>` (or `{upper} {key} <value>`)"),
            }),
        };
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in &words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(LineError {
                message: format!(
                    "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
                ),
                hint: format!("every {upper} item is name=value; quote values that contain spaces"),
            });
        };
        args.extend([key.to_string(), value.to_string(), "=".to_string()]);
    }
    Ok(plain(args))
}

/// BuildKit's `parseWords`: whitespace-separated words where quoted parts do
/// not split; quotes and escapes are kept in the words for later expansion.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut iter = rest.chars().peekable();
    while let Some(ch) = iter.next() {
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                continue;
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    let Some(next) = iter.next() else {
                        continue; // an escape at the very end is dropped
                    };
                    word.push(ch);
                    word.push(next);
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                }
                if ch == escape && quote != '\'' {
                    let Some(next) = iter.next() else {
                        phase = Phase::Word;
                        continue;
                    };
                    word.push(ch);
                    word.push(next);
                    continue;
                }
                word.push(ch);
            }
            Phase::Spaces => {}
        }
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_then_rest() {
        let (kw, flags, rest) = split_command("COPY --from=build --chown=\"a b\" src /dst");
        assert_eq!(kw, "COPY");
        assert_eq!(flags, vec!["--from=build", "--chown=a b"]);
        assert_eq!(rest, "src /dst");
        let (_, flags, rest) = split_command("COPY --x=1 -- --notflag /d");
        assert_eq!(flags, vec!["--x=1"]);
        assert_eq!(rest, "--notflag /d");
        let (kw, flags, rest) = split_command("  HEALTHCHECK  ");
        assert_eq!((kw, flags.len(), rest), ("HEALTHCHECK", 0, ""));
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        assert_eq!(
            parse_words("abc=\"123 456\" def", '\\'),
            vec!["abc=\"123 456\"", "def"]
        );
        assert_eq!(parse_words("a\\ b c", '\\'), vec!["a\\ b", "c"]);
        assert_eq!(parse_words("x='a\\'b'", '\\'), vec!["x='a\\'b'"]);
        assert_eq!(parse_words("x=\"\"", '\\'), vec!["x=\"\""]);
    }

    #[test]
    fn json_or_fallback() {
        let s = maybe_json("[\"a\", \"b\"]").unwrap();
        assert_eq!(
            (s.args, s.json),
            (vec!["a".to_string(), "b".to_string()], true)
        );
        let s = maybe_json("['a']").unwrap();
        assert_eq!((s.args, s.json), (vec!["['a']".to_string()], false));
        assert!(maybe_json("[\"a\", [\"b\"]]").is_err());
        let s = maybe_json_to_list("[\"a\" b").unwrap();
        assert_eq!(s.args, vec!["[\"a\"", "b"]);
    }

    #[test]
    fn env_forms() {
        let s = name_values("A  b c", "env", '\\').unwrap();
        assert_eq!(s.args, vec!["A", "b c", ""]);
        let s = name_values("a=1 b=\"x y\"", "env", '\\').unwrap();
        assert_eq!(s.args, vec!["a", "1", "=", "b", "\"x y\"", "="]);
        assert!(name_values("PATH", "env", '\\').is_err());
        assert!(name_values("a=1 b", "env", '\\').is_err());
    }
}
