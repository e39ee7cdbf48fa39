//! Project names, by Compose's precedence and rules.
//!
//! Precedence (Docker's docs, "Specify a project name"): `-p`, then
//! `COMPOSE_PROJECT_NAME`, then the top-level `name:` of the last file that
//! sets it, then the project folder's name. Names given explicitly (`-p`,
//! the variable) must already be valid; names derived from a file or a
//! folder are normalized (lower case, only `a-z0-9_-`, starting with a
//! letter or digit).

use crate::diag::Diagnostic;

/// Where a project name came from; explicit ones are validated, derived
/// ones normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    Flag,
    Environment,
    File,
    Folder,
}

/// True when `name` is a valid project name: `^[a-z0-9][a-z0-9_-]*$`.
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// compose-go's `NormalizeProjectName`: lower case, drop every character
/// outside `a-z0-9_-`, then drop leading `_` and `-`.
pub fn normalize(name: &str) -> String {
    let lowered: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lowered.trim_start_matches(['_', '-']).to_string()
}

/// Picks and checks the project name.
pub fn choose(
    flag: Option<&str>,
    environment: Option<&str>,
    file: Option<&str>,
    folder: &str,
) -> Result<(String, NameSource), Diagnostic> {
    let candidates = [
        (flag, NameSource::Flag),
        (environment, NameSource::Environment),
        (file, NameSource::File),
        (Some(folder), NameSource::Folder),
    ];
    for (value, source) in candidates {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        let name = match source {
            NameSource::Flag | NameSource::Environment => {
                if !is_valid(value) {
                    let from = if source == NameSource::Flag {
                        "--project-name"
                    } else {
                        "COMPOSE_PROJECT_NAME"
                    };
                    return Err(Diagnostic::error(format!("invalid project name {value:?}"))
                        .key(from)
                        .hint("a project name has only lower-case letters, digits, dashes and underscores, and starts with a letter or digit"));
                }
                value.to_string()
            }
            NameSource::File | NameSource::Folder => normalize(value),
        };
        if name.is_empty() {
            continue;
        }
        return Ok((name, source));
    }
    Err(Diagnostic::error("project name must not be empty")
        .hint("set `name:` in the compose file, or pass -p NAME"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_follows_compose() {
        assert!(is_valid("my_project"));
        assert!(is_valid("42my_project_num"));
        assert!(!is_valid("-my_project"));
        assert!(!is_valid("_my_project"));
        assert!(!is_valid("my.project"));
        assert!(!is_valid("MY_PROJECT"));
        assert!(!is_valid(""));
    }

    #[test]
    fn folder_names_are_normalized() {
        assert_eq!(normalize("UNNORMALIZED PATH"), "unnormalizedpath");
        assert_eq!(normalize("_My.App-1"), "myapp-1");
    }

    #[test]
    fn precedence_flag_env_file_folder() {
        let pick = |f, e, n| choose(f, e, n, "simple").unwrap().0;
        assert_eq!(pick(Some("a"), Some("b"), Some("c")), "a");
        assert_eq!(pick(None, Some("b"), Some("c")), "b");
        assert_eq!(pick(None, None, Some("c")), "c");
        assert_eq!(pick(None, None, None), "simple");
        assert_eq!(pick(Some(""), None, None), "simple");
    }

    #[test]
    fn explicit_bad_names_are_rejected() {
        let err = choose(Some("MY_PROJECT"), None, None, "x").unwrap_err();
        assert_eq!(err.message, "invalid project name \"MY_PROJECT\"");
        let err = choose(None, Some("_x"), None, "x").unwrap_err();
        assert_eq!(err.key, "COMPOSE_PROJECT_NAME");
        let err = choose(None, None, None, "...").unwrap_err();
        assert_eq!(err.message, "project name must not be empty");
    }
}
