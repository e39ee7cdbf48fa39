//! Go-compatible durations ([`Duration`]) and byte sizes ([`ByteSize`]).
//!
//! INTEGRATION NOTE: `parse_go_duration`, `format_go_duration` and
//! `parse_ram_in_bytes` are private stand-ins for `berth_spec::units`, which
//! is being written on another branch. When both land, switch the callers
//! here to `units` and delete the helpers; the newtypes stay.
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

// ---------------------------------------------------------------------------
// Private helpers (switch to `berth_spec::units` when it lands).
// ---------------------------------------------------------------------------

/// Go `time.ParseDuration` plus `d` and `w` units (go-str2duration).
pub(crate) fn parse_go_duration(input: &str) -> Result<std::time::Duration, Hinted> {
    let err = || {
        Hinted::new(format!("invalid duration \"{input}\"")).hint(
            "a duration is a number with a unit (ns, us, ms, s, m, h, d, w), like \"10s\" or \"1m30s\"",
        )
    };
    let mut s = input;
    if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    } else if s.starts_with('-') {
        if s == "-0" {
            return Ok(std::time::Duration::ZERO);
        }
        return Err(Hinted::new(format!("invalid duration \"{input}\""))
            .hint("durations cannot be negative"));
    }
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if s.is_empty() {
        return Err(err());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        let unit_len = s
            .bytes()
            .take_while(|b| !b.is_ascii_digit() && *b != b'.')
            .count();
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            "w" => 7 * 86_400 * 1_000_000_000,
            _ => return Err(err()),
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err())?
        };
        let mut value = whole.checked_mul(nanos_per).ok_or_else(err)?;
        if !frac_part.is_empty() {
            // Exact decimal scaling, truncating below a nanosecond like Go.
            let digits = frac_part.len().min(30);
            let frac: u128 = frac_part[..digits].parse().map_err(|_| err())?;
            let scale = 10u128.pow(digits as u32);
            value = value
                .checked_add(frac.checked_mul(nanos_per).ok_or_else(err)? / scale)
                .ok_or_else(err)?;
        }
        total = total.checked_add(value).ok_or_else(err)?;
    }
    if total > i64::MAX as u128 {
        return Err(
            Hinted::new(format!("invalid duration \"{input}\"")).hint("the duration is too long")
        );
    }
    let secs = (total / 1_000_000_000) as u64;
    let nanos = (total % 1_000_000_000) as u32;
    Ok(std::time::Duration::new(secs, nanos))
}

/// Go `time.Duration.String()`.
pub(crate) fn format_go_duration(d: std::time::Duration) -> String {
    let total = d.as_nanos();
    if total == 0 {
        return "0s".to_string();
    }
    if total < 1_000 {
        return format!("{total}ns");
    }
    if total < 1_000_000 {
        return format!("{}µs", trim_frac(total, 1_000));
    }
    if total < 1_000_000_000 {
        return format!("{}ms", trim_frac(total, 1_000_000));
    }
    let hours = total / 3_600_000_000_000;
    let rem = total % 3_600_000_000_000;
    let mins = rem / 60_000_000_000;
    let sec_nanos = rem % 60_000_000_000;
    let secs = trim_frac(sec_nanos, 1_000_000_000);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || mins > 0 {
        out.push_str(&format!("{mins}m"));
    }
    out.push_str(&format!("{secs}s"));
    out
}

/// `value / unit` as a decimal with trailing zeros removed.
fn trim_frac(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// docker/go-units `RAMInBytes`: `<number>[ ]<unit>` where the unit is one of
/// b, k, m, g, t, p (case-insensitive), optionally followed by `b` or `ib`;
/// all multiples are binary.
pub(crate) fn parse_ram_in_bytes(input: &str) -> Result<i64, Hinted> {
    let err = || Hinted::new(format!("invalid size \"{input}\"")).hint(SIZE_HINT);
    let s = input.trim();
    let num_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    if num_len == 0 {
        return Err(err());
    }
    let number: f64 = s[..num_len].parse().map_err(|_| err())?;
    let unit = s[num_len..].trim_start().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(err()),
    };
    let bytes = number * mult;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as i64)
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
