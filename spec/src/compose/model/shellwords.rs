//! Splits a command string into words the way compose-go does with
//! go-shellwords (no variable or backtick expansion): blanks separate words,
//! single quotes keep everything literally, double quotes keep blanks, a
//! backslash outside single quotes takes the next character literally.
//!
//! One deliberate difference: go-shellwords stops at an unquoted `;`, `&`,
//! `|`, `<` or `>` and silently drops the rest; here they are ordinary
//! characters, so nothing the user wrote disappears.

use super::de::Hinted;

pub fn split(input: &str) -> Result<Vec<String>, Hinted> {
    let mut words = Vec::new();
    let mut buf = String::new();
    // A word exists once anything (even an empty quoted string) was seen.
    let mut in_word = false;
    let mut single = false;
    let mut double = false;
    let mut escaped = false;
    for c in input.chars() {
        if escaped {
            buf.push(c);
            escaped = false;
            in_word = true;
            continue;
        }
        match c {
            '\\' if !single => {
                escaped = true;
                in_word = true;
            }
            '\'' if !double => {
                single = !single;
                in_word = true;
            }
            '"' if !single => {
                double = !double;
                in_word = true;
            }
            ' ' | '\t' | '\r' | '\n' if !single && !double => {
                if in_word {
                    words.push(std::mem::take(&mut buf));
                    in_word = false;
                }
            }
            _ => {
                buf.push(c);
                in_word = true;
            }
        }
    }
    if single || double || escaped {
        return Err(Hinted::new(format!("invalid command line string {input:?}"))
            .hint("a quote or a trailing backslash is not closed; use the list form to avoid shell quoting"));
    }
    if in_word {
        words.push(buf);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_like_go_shellwords() {
        let cases: &[(&str, &[&str])] = &[
            (
                "bundle exec thin -p 3000",
                &["bundle", "exec", "thin", "-p", "3000"],
            ),
            ("  a   b  ", &["a", "b"]),
            ("echo \"hello world\"", &["echo", "hello world"]),
            ("echo 'a \"b\" c'", &["echo", "a \"b\" c"]),
            (
                "sh -c 'echo $HOME && ls'",
                &["sh", "-c", "echo $HOME && ls"],
            ),
            ("a\\ b c", &["a b", "c"]),
            ("x \"\" y", &["x", "", "y"]),
            ("foo\"bar\"baz", &["foobarbaz"]),
            ("", &[]),
        ];
        for (input, want) in cases {
            assert_eq!(split(input).unwrap(), *want, "{input}");
        }
    }

    #[test]
    fn unclosed_quotes_are_errors() {
        assert!(split("echo 'oops").is_err());
        assert!(split("echo \"oops").is_err());
        assert!(split("echo oops\\").is_err());
    }
}
