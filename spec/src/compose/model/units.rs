//! Go-compatible durations ([`Duration`]) and byte sizes ([`ByteSize`]).
//!
//! Parsing and printing are [`crate::units`]'; this module adds the
//! newtypes, their serde forms and the diagnostics' wording.
//!
//! Durations follow compose-go: the input accepts Go's `time.ParseDuration`
//! syntax plus `d` (days) and `w` (weeks) like `str2duration`; the output is
//! Go's `time.Duration.String()` (`1m30s`, `2m0s`, `500ms`). Sizes follow
//! docker/go-units `RAMInBytes` (binary multiples: `512m` = 512 MiB) and are
//! printed like compose-go's `UnitBytes`: a decimal string.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::de::{Hinted, describe};

/// A non-negative duration with nanosecond precision, printed in Go syntax.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// Parses Go duration syntax (`1h2m3.5s`, `300ms`, `2d`).
    pub fn parse(s: &str) -> Result<Self, Hinted> {
        parse_go_duration(s).map(Self)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_go_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Duration::from_json(&v).map_err(Hinted::into_de)
    }
}

impl Duration {
    pub(crate) fn from_json(v: &serde_json::Value) -> Result<Self, Hinted> {
        match v {
            serde_json::Value::String(s) => Duration::parse(s),
            // compose-go formats the number and parses it as a duration: only
            // zero survives, anything else lacks a unit.
            serde_json::Value::Number(n) if n.as_u64() == Some(0) => Ok(Duration::default()),
            other => Err(Hinted::new(format!("invalid duration {}", describe(other)))
                .hint("a duration is a number with a unit, like \"10s\", \"1m30s\" or \"500ms\"")),
        }
    }
}

/// A byte count, parsed with docker/go-units `RAMInBytes` rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub i64);

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // compose-go's UnitBytes marshals as a quoted decimal in YAML and JSON.
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        ByteSize::from_json(&v).map_err(Hinted::into_de)
    }
}

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, Hinted> {
        parse_ram_in_bytes(s).map(ByteSize)
    }

    pub(crate) fn from_json(v: &serde_json::Value) -> Result<Self, Hinted> {
        match v {
            serde_json::Value::String(s) => ByteSize::parse(s),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(ByteSize(i))
                } else if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e18) {
                    Ok(ByteSize(f as i64))
                } else {
                    Err(Hinted::new(format!("invalid size {n}")).hint(SIZE_HINT))
                }
            }
            other => Err(Hinted::new(format!("invalid size {}", describe(other))).hint(SIZE_HINT)),
        }
    }
}

const SIZE_HINT: &str =
    "a size is a number of bytes, optionally with a unit: b, k, m, g, t or p (\"512m\", \"1g\")";

/// [`crate::units::parse_compose_duration`], with this module's messages.
pub(crate) fn parse_go_duration(input: &str) -> Result<std::time::Duration, Hinted> {
    crate::units::parse_compose_duration(input).map_err(|e| {
        let hint = match e {
            crate::units::UnitError::NegativeDuration(_) => "durations cannot be negative",
            crate::units::UnitError::DurationOverflow(_) => "the duration is too long",
            _ => "a duration is a number with a unit (ns, us, ms, s, m, h, d, w), like \"10s\" or \"1m30s\"",
        };
        Hinted::new(format!("invalid duration \"{input}\"")).hint(hint)
    })
}

/// Go `time.Duration.String()`.
pub(crate) fn format_go_duration(d: std::time::Duration) -> String {
    crate::units::format_duration_go(d)
}

/// docker/go-units `RAMInBytes`, as a signed count like compose-go keeps it.
pub(crate) fn parse_ram_in_bytes(input: &str) -> Result<i64, Hinted> {
    let err = || Hinted::new(format!("invalid size \"{input}\"")).hint(SIZE_HINT);
    let bytes = crate::units::parse_bytes(input.trim()).map_err(|_| err())?;
    i64::try_from(bytes).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        format_go_duration(parse_go_duration(s).unwrap())
    }

    #[test]
    fn go_durations_round_trip_in_go_format() {
        assert_eq!(d("10s"), "10s");
        assert_eq!(d("60s"), "1m0s");
        assert_eq!(d("120s"), "2m0s");
        assert_eq!(d("1m30s"), "1m30s");
        assert_eq!(d("1h"), "1h0m0s");
        assert_eq!(d("1.5h"), "1h30m0s");
        assert_eq!(d("500ms"), "500ms");
        assert_eq!(d("1500ms"), "1.5s");
        assert_eq!(d("1us"), "1µs");
        assert_eq!(d("2d"), "48h0m0s");
        assert_eq!(d("0"), "0s");
        assert_eq!(d("1h2m3.004s"), "1h2m3.004s");
        assert_eq!(d("3ns"), "3ns");
    }

    #[test]
    fn bad_durations_are_rejected() {
        for bad in ["", "10", "1x", "s", "-1s", "1.s.", "abc"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ram_in_bytes_uses_binary_units() {
        assert_eq!(parse_ram_in_bytes("512m").unwrap(), 512 * 1024 * 1024);
        assert_eq!(parse_ram_in_bytes("50M").unwrap(), 52_428_800);
        assert_eq!(parse_ram_in_bytes("20M").unwrap(), 20_971_520);
        assert_eq!(parse_ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_ram_in_bytes("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_ram_in_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_ram_in_bytes("10000").unwrap(), 10_000);
        assert_eq!(parse_ram_in_bytes("64b").unwrap(), 64);
        assert_eq!(parse_ram_in_bytes("1.5k").unwrap(), 1536);
        assert_eq!(parse_ram_in_bytes("2 k").unwrap(), 2048);
        for bad in ["", "m", "12q", "-1", "1..2m"] {
            assert!(parse_ram_in_bytes(bad).is_err(), "{bad}");
        }
    }
}
