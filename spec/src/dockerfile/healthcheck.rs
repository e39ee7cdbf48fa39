//! HEALTHCHECK: `NONE`, or `CMD` with `--interval`, `--timeout`,
//! `--start-period`, `--start-interval` (Go durations, 0 or at least 1ms)
//! and `--retries`; parsed into [`Healthcheck`].

use std::time::Duration;

use super::flags::{FlagKind, FlagSpec, Flags, flag, parse_flags};
use super::instruction::{CommandLine, Healthcheck, InstructionError, at_least_one};
use super::parser::Node;

type Parsed<T> = Result<T, InstructionError>;

const HEALTHCHECK_FLAGS: &[FlagSpec] = &[
    flag("interval", FlagKind::String),
    flag("timeout", FlagKind::String),
    flag("start-period", FlagKind::String),
    flag("start-interval", FlagKind::String),
    flag("retries", FlagKind::String),
];

pub(crate) fn parse_healthcheck(node: &Node) -> Parsed<Healthcheck> {
    let Some((typ, rest)) = node.args.split_first() else {
        return Err(at_least_one("HEALTHCHECK"));
    };
    match typ.to_uppercase().as_str() {
        "NONE" => {
            if !rest.is_empty() {
                return Err(InstructionError::new(
                    "HEALTHCHECK NONE takes no arguments",
                    "write HEALTHCHECK NONE",
                ));
            }
            parse_flags("HEALTHCHECK NONE", &node.flags, &[])?;
            Ok(Healthcheck::None)
        }
        "CMD" => {
            let flags = parse_flags("HEALTHCHECK", &node.flags, HEALTHCHECK_FLAGS)?;
            if rest.is_empty() {
                return Err(InstructionError::new(
                    "Missing command after HEALTHCHECK CMD",
                    "write HEALTHCHECK CMD <command> or HEALTHCHECK CMD [\"exe\", \"arg\"]",
                ));
            }
            let test = if node.json {
                CommandLine::Exec(rest.to_vec())
            } else {
                CommandLine::Shell(rest.join(" "))
            };
            Ok(Healthcheck::Check {
                test,
                interval: duration_flag(&flags, "interval")?,
                timeout: duration_flag(&flags, "timeout")?,
                start_period: duration_flag(&flags, "start-period")?,
                start_interval: duration_flag(&flags, "start-interval")?,
                retries: retries_flag(&flags)?,
            })
        }
        other => Err(InstructionError::new(
            format!("Unknown type {other:?} in HEALTHCHECK (try CMD)"),
            "write HEALTHCHECK CMD <command> or HEALTHCHECK NONE",
        )
        .at(typ.clone())),
    }
}

fn retries_flag(flags: &Flags) -> Parsed<Option<u32>> {
    let Some(v) = flags.string("retries") else {
        return Ok(None);
    };
    let bad = || {
        InstructionError::new(
            format!("invalid --retries value {v:?}"),
            "--retries takes a whole number, 0 or more",
        )
        .at("--retries")
    };
    let n: i64 = v.parse().map_err(|_| bad())?;
    u32::try_from(n).map(Some).map_err(|_| bad())
}

/// Parses a duration flag; 0 is allowed, anything else must be at least 1ms.
fn duration_flag(flags: &Flags, name: &str) -> Parsed<Option<Duration>> {
    let Some(v) = flags.string(name) else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    let d = parse_go_duration(&v).map_err(|e| {
        InstructionError::new(
            format!("invalid --{name} value {v:?}: {e}"),
            "use a duration such as 30s, 1m30s or 500ms",
        )
        .at(format!("--{name}"))
    })?;
    if !d.is_zero() && d < Duration::from_millis(1) {
        return Err(InstructionError::new(
            format!("Interval \"{name}\" cannot be less than 1ms"),
            "use 0 or a duration of at least 1ms",
        )
        .at(format!("--{name}")));
    }
    Ok(Some(d))
}

/// Go's `time.ParseDuration` for non-negative values (`1h2m3.5s`, `300ms`,
/// `0`), as BuildKit reads HEALTHCHECK flags: [`crate::units::parse_duration`].
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    crate::units::parse_duration(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("1x").is_err());
    }
}
