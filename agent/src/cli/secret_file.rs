//! Secrets the agent's flags name: a token or webhook secret is the first
//! line of a file (so a trailing newline or a comment below it does not
//! count), or else an environment variable.

use std::path::Path;

use anyhow::Context;

/// The first line of `file` (given as `flag`), else of the environment
/// variable `env`; `None` when neither is given. An empty one fails,
/// naming the flag and file or the variable and saying it is `what`.
pub(super) fn read_secret(
    flag: &str,
    file: Option<&Path>,
    env: Option<&str>,
    what: &str,
) -> anyhow::Result<Option<String>> {
    let (text, source) = match (file, env) {
        (Some(path), _) => {
            let source = format!("{flag} {}", path.display());
            let text = std::fs::read_to_string(path).with_context(|| source.clone())?;
            (text, source)
        }
        (None, Some(var)) => match std::env::var(var) {
            Ok(text) => (text, var.to_owned()),
            Err(_) => return Ok(None),
        },
        (None, None) => return Ok(None),
    };
    let secret = text.lines().next().unwrap_or_default().trim().to_owned();
    anyhow::ensure!(!secret.is_empty(), "{source}: the {what} is empty");
    Ok(Some(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_counts_and_an_empty_one_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("secret");
        std::fs::write(&file, "  s3cret \nnot this\n").unwrap();
        assert_eq!(
            read_secret("--x-file", Some(&file), None, "secret").unwrap(),
            Some("s3cret".to_owned())
        );
        std::fs::write(&file, "\n").unwrap();
        let err = read_secret("--x-file", Some(&file), None, "token")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("--x-file {}: the token is empty", file.display())
        );
        let missing = tmp.path().join("missing");
        let err = read_secret("--x-file", Some(&missing), None, "token").unwrap_err();
        assert_eq!(err.to_string(), format!("--x-file {}", missing.display()));
        assert_eq!(read_secret("--x-file", None, None, "token").unwrap(), None);
    }
}
