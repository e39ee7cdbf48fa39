//! Durations and byte sizes as Compose writes them.
//!
//! Durations follow Go's `time.ParseDuration` / `Duration.String()` (what
//! compose-go uses for `healthcheck.interval`, `stop_grace_period`, ...);
//! sizes follow docker/go-units `RAMInBytes` (`mem_limit`, `shm_size`, ...).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("invalid duration {0:?}")]
    InvalidDuration(String),
    #[error("missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit { unit: String, input: String },
    #[error("duration {0:?} is too large")]
    DurationOverflow(String),
    #[error("negative duration {0:?} is not allowed here")]
    NegativeDuration(String),
    #[error("invalid size: {0:?}")]
    InvalidSize(String),
    #[error("invalid suffix: {0:?}")]
    InvalidSuffix(String),
    #[error("size {0:?} is too large")]
    SizeOverflow(String),
}

impl UnitError {
    /// What would be valid, for a diagnostic's hint.
    pub fn hint(&self) -> &'static str {
        match self {
            UnitError::InvalidDuration(_)
            | UnitError::MissingUnit(_)
            | UnitError::UnknownUnit { .. }
            | UnitError::DurationOverflow(_)
            | UnitError::NegativeDuration(_) => {
                "a duration is a number with a unit (ns, us, ms, s, m, h), optionally combined, \
                 like 30s, 1m30s or 1.5h"
            }
            UnitError::InvalidSize(_)
            | UnitError::InvalidSuffix(_)
            | UnitError::SizeOverflow(_) => {
                "a size is a number of bytes, optionally with a unit b, k, m, g, t or p \
                 (binary multiples: 1k = 1024), like 512m or 1.5g"
            }
        }
    }
}

const NANOS_LIMIT: u64 = 1 << 63;

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        // U+00B5 micro sign and U+03BC Greek mu, as Go accepts both.
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Leading decimal digits as an integer; `None` on overflow past 2^63.
fn leading_int(s: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    let mut i = 0;
    while let Some(&c) = s.get(i).filter(|c| c.is_ascii_digit()) {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(c - b'0'))
            .filter(|v| *v <= NANOS_LIMIT)?;
        i += 1;
    }
    Some((value, i))
}

/// Digits after the point: the value of as many as fit, and their scale.
fn leading_fraction(s: &[u8]) -> (u64, f64, usize) {
    let (mut value, mut scale, mut overflow) = (0u64, 1f64, false);
    let mut i = 0;
    while let Some(&c) = s.get(i).filter(|c| c.is_ascii_digit()) {
        i += 1;
        if overflow {
            continue;
        }
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .filter(|v| *v <= NANOS_LIMIT)
        {
            Some(v) => {
                value = v;
                scale *= 10.0;
            }
            None => overflow = true,
        }
    }
    (value, scale, i)
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`.
/// Negative durations are refused: nothing in Compose takes one. This is
/// the grammar of Dockerfile `HEALTHCHECK` flags.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    parse_duration_with(input, unit_nanos)
}

/// The durations of Compose files: Go's grammar plus `d` (days) and `w`
/// (weeks), as compose-go's str2duration reads them.
pub fn parse_compose_duration(input: &str) -> Result<Duration, UnitError> {
    parse_duration_with(input, |unit| match unit {
        "d" => Some(86_400_000_000_000),
        "w" => Some(7 * 86_400_000_000_000),
        other => unit_nanos(other),
    })
}

fn parse_duration_with(
    input: &str,
    unit_nanos: impl Fn(&str) -> Option<u64>,
) -> Result<Duration, UnitError> {
    let invalid = || UnitError::InvalidDuration(input.to_owned());
    let mut s = input.as_bytes();
    let mut negative = false;
    if let Some(&sign @ (b'-' | b'+')) = s.first() {
        negative = sign == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let (mut value, int_len) =
            leading_int(s).ok_or_else(|| UnitError::DurationOverflow(input.to_owned()))?;
        s = &s[int_len..];
        let (mut fraction, mut scale, mut frac_len) = (0, 1.0, 0);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            (fraction, scale, frac_len) = leading_fraction(s);
            s = &s[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(UnitError::MissingUnit(input.to_owned()));
        }
        // The unit ends at an ASCII byte or at the end, so this is a char
        // boundary.
        let unit = std::str::from_utf8(&s[..unit_len]).map_err(|_| invalid())?;
        s = &s[unit_len..];
        let nanos = unit_nanos(unit).ok_or_else(|| UnitError::UnknownUnit {
            unit: unit.to_owned(),
            input: input.to_owned(),
        })?;
        let overflow = || UnitError::DurationOverflow(input.to_owned());
        value = value
            .checked_mul(nanos)
            .filter(|v| *v <= NANOS_LIMIT)
            .ok_or_else(overflow)?;
        if fraction > 0 {
            // Same float step as Go, so results match to the nanosecond.
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let extra = (fraction as f64 * (nanos as f64 / scale)) as u64;
            value = value
                .checked_add(extra)
                .filter(|v| *v <= NANOS_LIMIT)
                .ok_or_else(overflow)?;
        }
        total = total
            .checked_add(value)
            .filter(|v| *v <= NANOS_LIMIT)
            .ok_or_else(overflow)?;
    }
    if negative && total > 0 {
        return Err(UnitError::NegativeDuration(input.to_owned()));
    }
    if total > NANOS_LIMIT - 1 {
        return Err(UnitError::DurationOverflow(input.to_owned()));
    }
    Ok(Duration::from_nanos(total))
}

/// `v` as digits with `precision` decimal places, trailing zeros (and a
/// bare point) dropped: Go's `fmtFrac`. Returns the text and `v / 10^prec`.
fn frac(v: u128, precision: u32) -> (String, u128) {
    let divisor = 10u128.pow(precision);
    let fraction = v % divisor;
    if fraction == 0 {
        return (String::new(), v / divisor);
    }
    let digits = format!("{fraction:0width$}", width = precision as usize);
    (format!(".{}", digits.trim_end_matches('0')), v / divisor)
}

/// Prints a duration exactly like Go's `Duration.String()`: `1m30s`,
/// `1m0s`, `2h0m0s`, `1.5s`, `500ms`, `1.5µs`, `0s`.
pub fn format_duration_go(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        let (f, whole) = frac(nanos, 3);
        return format!("{whole}{f}\u{b5}s");
    }
    if nanos < 1_000_000_000 {
        let (f, whole) = frac(nanos, 6);
        return format!("{whole}{f}ms");
    }
    let (f, secs) = frac(nanos, 9);
    let (s, mins) = (secs % 60, secs / 60);
    if mins == 0 {
        return format!("{s}{f}s");
    }
    let (m, hours) = (mins % 60, mins / 60);
    if hours == 0 {
        return format!("{m}m{s}{f}s");
    }
    format!("{hours}h{m}m{s}{f}s")
}

fn size_multiplier(prefix: u8) -> Option<u64> {
    Some(match prefix {
        b'k' => 1 << 10,
        b'm' => 1 << 20,
        b'g' => 1 << 30,
        b't' => 1 << 40,
        b'p' => 1 << 50,
        _ => return None,
    })
}

/// docker/go-units `RAMInBytes`: a number (decimals allowed), an optional
/// space, and an optional case-insensitive suffix `b`, `k`, `kb`, `kib`,
/// `m`, ... `p`, `pb`, `pib`; multiples of 1024. `512m` is 536870912.
pub fn parse_bytes(input: &str) -> Result<u64, UnitError> {
    let invalid = || UnitError::InvalidSize(input.to_owned());
    let sep = input
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .ok_or_else(invalid)?;
    let (number, suffix) = if input.as_bytes()[sep] == b' ' {
        (&input[..sep], &input[sep + 1..])
    } else {
        (&input[..=sep], &input[sep + 1..])
    };
    // Go's ParseFloat on what go-units hands it; hex floats and `_` are
    // left out.
    if number.is_empty()
        || !number
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(invalid());
    }
    let mut size: f64 = number.parse().map_err(|_| invalid())?;
    if size < 0.0 || size.is_nan() {
        return Err(invalid());
    }
    let bad_suffix = || UnitError::InvalidSuffix(suffix.to_owned());
    if !suffix.is_empty() {
        let lower = suffix.to_ascii_lowercase();
        let b = lower.as_bytes();
        if b.len() > 3 {
            return Err(bad_suffix());
        }
        if b[0] == b'b' {
            if b.len() > 1 {
                return Err(bad_suffix());
            }
        } else {
            let multiplier = size_multiplier(b[0]).ok_or_else(bad_suffix)?;
            #[allow(clippy::cast_precision_loss)]
            {
                size *= multiplier as f64;
            }
            let ok = match b.len() {
                1 => true,
                2 => b[1] == b'b',
                _ => &b[1..] == b"ib",
            };
            if !ok {
                return Err(bad_suffix());
            }
        }
    }
    // go-units returns int64(size); larger values are an error here.
    #[allow(clippy::cast_precision_loss)]
    if size >= i64::MAX as f64 {
        return Err(UnitError::SizeOverflow(input.to_owned()));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(size as u64)
}

/// Prints a byte count with the largest binary unit that divides it
/// exactly (`536870912` → `512m`, `1536` → `1536b`), so that
/// `parse_bytes(&format_bytes(n)) == Ok(n)`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (1 << 50, "p"),
        (1 << 40, "t"),
        (1 << 30, "g"),
        (1 << 20, "m"),
        (1 << 10, "k"),
    ];
    for (size, unit) in UNITS {
        if n >= size && n % size == 0 {
            return format!("{}{unit}", n / size);
        }
    }
    format!("{n}b")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Duration {
        match parse_duration(s) {
            Ok(v) => v,
            Err(e) => unreachable!("{s}: {e}"),
        }
    }

    #[test]
    fn go_durations_parse() {
        let ms = Duration::from_millis;
        let cases = [
            ("0", Duration::ZERO),
            ("+0", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("5s", ms(5_000)),
            ("30s", ms(30_000)),
            ("1478s", ms(1_478_000)),
            ("1m30s", ms(90_000)),
            ("1.5h", ms(5_400_000)),
            ("2h45m", ms(9_900_000)),
            ("10.5s", ms(10_500)),
            (".5s", ms(500)),
            ("1.s", ms(1_000)),
            ("500ms", ms(500)),
            ("1h1m1s1ms", ms(3_661_001)),
            ("1.004s", ms(1_004)),
            ("100.00100s", ms(100_001)),
            ("39h9m14.425s", ms(140_954_425)),
            ("3us", Duration::from_micros(3)),
            ("3\u{b5}s", Duration::from_micros(3)),
            ("3\u{3bc}s", Duration::from_micros(3)),
            ("7ns", Duration::from_nanos(7)),
            ("1.0000000000000000000000001s", ms(1_000)),
            (
                "9223372036854775807ns",
                Duration::from_nanos(i64::MAX as u64),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(d(input), expected, "{input}");
        }
    }

    #[test]
    fn go_durations_reject() {
        for bad in [
            "",
            "3",
            "-",
            "s",
            ".",
            ".s",
            "+.s",
            "1d",
            "3000000h",
            "9223372036854775808ns",
            "1.5x",
            "\u{b5}",
            "-1s",
            "1s ",
            " 1s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(
            parse_duration("3").map_err(|e| e.to_string()),
            Err("missing unit in duration \"3\"".to_owned())
        );
        assert_eq!(
            parse_duration("1d").map_err(|e| e.to_string()),
            Err("unknown unit \"d\" in duration \"1d\"".to_owned())
        );
    }

    #[test]
    fn go_duration_strings() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(1_100), "1.1\u{b5}s"),
            (Duration::from_micros(1), "1\u{b5}s"),
            (Duration::from_nanos(2_200_000), "2.2ms"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_nanos(3_300_000_000), "3.3s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(120), "2m0s"),
            (
                Duration::from_nanos(4 * 60_000_000_000 + 5_001_000_000),
                "4m5.001s",
            ),
            (
                Duration::from_nanos(5 * 3_600_000_000_000 + 6 * 60_000_000_000 + 7_001_000_000),
                "5h6m7.001s",
            ),
            (Duration::from_secs(7_200), "2h0m0s"),
            (
                Duration::from_nanos(8 * 60_000_000_000 + 1),
                "8m0.000000001s",
            ),
            (
                Duration::from_nanos(i64::MAX as u64),
                "2562047h47m16.854775807s",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(format_duration_go(value), expected);
            assert_eq!(d(expected), value, "round trip of {expected}");
        }
    }

    #[test]
    fn ram_in_bytes() {
        let cases: [(&str, u64); 22] = [
            ("32", 32),
            ("32b", 32),
            ("32B", 32),
            ("32k", 32 * 1024),
            ("32K", 32 * 1024),
            ("32kb", 32 * 1024),
            ("32Kb", 32 * 1024),
            ("32Kib", 32 * 1024),
            ("32KIB", 32 * 1024),
            ("32Mb", 32 << 20),
            ("512m", 512 << 20),
            ("50M", 52_428_800),
            ("20M", 20_971_520),
            ("32Gb", 32 << 30),
            ("32Tb", 32 << 40),
            ("32Pb", 32 << 50),
            ("32PB", 32 << 50),
            ("32P", 32 << 50),
            ("32.3", 32),
            ("1.5g", 1_610_612_736),
            ("32.3 K", 33_075),
            ("0", 0),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_bytes(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn ram_in_bytes_rejects() {
        for bad in [
            "", "hello", "-32", " 32 ", "32m b", "32bm", "32mbb", "32kib ", "32kibb", "32x",
            "32.3Kbx", "8192p", ".", "m", "1e5z", "3\u{b5}",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(
            parse_bytes("1x").map_err(|e| e.to_string()),
            Err("invalid suffix: \"x\"".to_owned())
        );
    }

    #[test]
    fn bytes_format_round_trips() {
        for n in [
            0,
            1,
            1023,
            1024,
            1536,
            512 << 20,
            3 << 30,
            5 << 40,
            7 << 50,
            u64::from(u32::MAX),
        ] {
            assert_eq!(parse_bytes(&format_bytes(n)), Ok(n), "{n}");
        }
        assert_eq!(format_bytes(512 << 20), "512m");
        assert_eq!(format_bytes(1536), "1536b");
    }
}
