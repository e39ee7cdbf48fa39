//! Instruction flags (`--name[=value]`), checked like BuildKit's `BFlags`:
//! [`FlagSpec`] declares what an instruction accepts, [`parse_flags`] turns
//! the written flags into [`Flags`] or a [`FlagError`].

use std::collections::BTreeMap;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=x`; a value is required (it may be empty), once only.
    String,
    /// `--mount=...`, repeatable.
    Strings,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct FlagSpec {
    pub name: &'static str,
    pub kind: FlagKind,
}

pub(crate) const fn flag(name: &'static str, kind: FlagKind) -> FlagSpec {
    FlagSpec { name, kind }
}

/// The flags as given, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Flags {
    pub fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }

    pub fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    pub fn bool(&self, name: &str) -> bool {
        self.string(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

/// A flag problem: the message, the text to point at, and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlagError {
    pub message: String,
    /// The flag as written, to find its column.
    pub written: String,
    pub hint: String,
}

/// Checks `written` (e.g. `["--from=build", "--link"]`) against `specs`.
pub(crate) fn parse_flags(
    instruction: &str,
    written: &[String],
    specs: &[FlagSpec],
) -> Result<Flags, FlagError> {
    let mut flags = Flags::default();
    let allowed = allowed_list(instruction, specs);
    for arg in written {
        let err = |message: String, hint: &str| FlagError {
            message,
            written: arg.clone(),
            hint: hint.to_string(),
        };
        let Some(body) = arg.strip_prefix("--") else {
            return Err(err(format!("arg should start with -- : {arg}"), &allowed));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            return Err(err(format!("unknown flag: --{name}"), &allowed));
        };
        let entry = flags.values.entry(spec.name).or_default();
        if !entry.is_empty() && spec.kind != FlagKind::Strings {
            return Err(err(
                format!("duplicate flag specified: --{name}"),
                &format!("give --{name} only once"),
            ));
        }
        let value = match (spec.kind, value) {
            (FlagKind::Bool, None) => "true".to_string(),
            (FlagKind::Bool, Some(v))
                if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") =>
            {
                v.to_ascii_lowercase()
            }
            (FlagKind::Bool, Some(v)) => {
                return Err(err(
                    format!("expecting boolean value for flag --{name}, not: {v}"),
                    &format!("write --{name}, --{name}=true or --{name}=false"),
                ));
            }
            (_, Some(v)) => v.to_string(),
            (_, None) => {
                return Err(err(
                    format!("missing a value on flag: --{name}"),
                    &format!("write --{name}=<value>"),
                ));
            }
        };
        entry.push(value);
    }
    Ok(flags)
}

fn allowed_list(instruction: &str, specs: &[FlagSpec]) -> String {
    if specs.is_empty() {
        return format!("{instruction} takes no flags");
    }
    let names: Vec<String> = specs.iter().map(|s| format!("--{}", s.name)).collect();
    format!("{instruction} accepts {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[FlagSpec] = &[
        flag("from", FlagKind::String),
        flag("link", FlagKind::Bool),
        flag("exclude", FlagKind::Strings),
    ];

    fn w(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_bools_and_repeats() {
        let f = parse_flags(
            "COPY",
            &w(&["--from=a", "--link", "--exclude=x", "--exclude=y"]),
            SPECS,
        )
        .unwrap();
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert!(f.bool("link"));
        assert_eq!(f.strings("exclude"), vec!["x", "y"]);
        let f = parse_flags("COPY", &w(&["--link=FALSE", "--from="]), SPECS).unwrap();
        assert!(!f.bool("link"));
        assert_eq!(f.string("from").as_deref(), Some(""));
    }

    #[test]
    fn errors_name_the_flag() {
        let e = parse_flags("COPY", &w(&["--nope=1"]), SPECS).unwrap_err();
        assert_eq!(e.message, "unknown flag: --nope");
        assert_eq!(e.hint, "COPY accepts --from, --link, --exclude");
        let e = parse_flags("COPY", &w(&["--from"]), SPECS).unwrap_err();
        assert_eq!(e.message, "missing a value on flag: --from");
        let e = parse_flags("COPY", &w(&["--from=a", "--from=b"]), SPECS).unwrap_err();
        assert_eq!(e.message, "duplicate flag specified: --from");
        let e = parse_flags("COPY", &w(&["--link=maybe"]), SPECS).unwrap_err();
        assert!(e.message.starts_with("expecting boolean value"));
        let e = parse_flags("USER", &w(&["--x"]), &[]).unwrap_err();
        assert_eq!(e.hint, "USER takes no flags");
    }
}
