//! Scalar resolution the way compose-go sees it: gopkg.in/yaml.v3 decoding
//! into `interface{}` (YAML 1.2 core schema plus yaml.v3's own leniencies,
//! such as `0777` being octal and `_` separators in numbers).
//!
//! Only plain (unquoted) scalars are resolved; quoted and block scalars are
//! always strings. Timestamps stay strings, as yaml.v3 does for `interface{}`.

use super::Value;

/// What a plain scalar means with no tag.
pub(super) fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let Some(first) = text.bytes().next() else {
        return Value::Null;
    };
    match first {
        // yaml.v3 hands these straight to Go's ParseFloat.
        b'.' => match parse_go_float(text) {
            Some(f) => Value::Float(f),
            None => Value::String(text.to_owned()),
        },
        b'0'..=b'9' | b'+' | b'-' => resolve_number(text),
        _ => Value::String(text.to_owned()),
    }
}

/// Ints first (any Go base-0 literal, underscores ignored), then unsigned
/// values beyond i64 (kept as floats: the tree has no u64), then floats.
fn resolve_number(text: &str) -> Value {
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    if let Some(i) = parse_go_int(&plain) {
        return Value::Int(i);
    }
    if let Some(u) = parse_go_uint(&plain) {
        // Lossy, but it is what a JSON consumer of the value would see.
        #[allow(clippy::cast_precision_loss)]
        return Value::Float(u as f64);
    }
    if is_yaml_style_float(&plain)
        && let Some(f) = parse_go_float(&plain)
    {
        return Value::Float(f);
    }
    Value::String(text.to_owned())
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `ParseFloat` restricted to decimal syntax (the only syntax that can
/// reach it here). Rust's parser also takes `inf`/`nan` words, which Go's
/// would too, but those never start with a digit or a dot.
fn parse_go_float(s: &str) -> Option<f64> {
    let ok = s
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !ok {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Splits Go's base-0 prefix: `0x`, `0o`, `0b`, or a bare leading `0`
/// (octal). Returns the radix and the digits.
fn split_radix(s: &str) -> Option<(u32, &str)> {
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    if b[0] != b'0' {
        return Some((10, s));
    }
    if b.len() >= 3 {
        match b[1].to_ascii_lowercase() {
            b'x' => return Some((16, &s[2..])),
            b'o' => return Some((8, &s[2..])),
            b'b' => return Some((2, &s[2..])),
            _ => {}
        }
    }
    // "0" alone is zero; "017" is octal.
    Some((8, &s[1..]))
}

fn parse_magnitude(s: &str) -> Option<u64> {
    let (radix, digits) = split_radix(s)?;
    let mut value: u64 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(d))?;
    }
    Some(value)
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
pub(super) fn parse_go_int(s: &str) -> Option<i64> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_magnitude(rest)?;
    if negative {
        if magnitude == 1u64 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|m| -m)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`: no sign allowed.
fn parse_go_uint(s: &str) -> Option<u64> {
    if s.starts_with(['+', '-']) {
        return None;
    }
    parse_magnitude(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Value {
        resolve_plain(s)
    }

    #[test]
    fn core_schema_words() {
        assert_eq!(r(""), Value::Null);
        assert_eq!(r("~"), Value::Null);
        assert_eq!(r("NULL"), Value::Null);
        assert_eq!(r("True"), Value::Bool(true));
        assert_eq!(r("FALSE"), Value::Bool(false));
        for s in ["yes", "no", "on", "off", "y", "n", "tRUE"] {
            assert_eq!(r(s), Value::String(s.into()), "{s}");
        }
    }

    #[test]
    fn numbers_like_yaml_v3() {
        assert_eq!(r("42"), Value::Int(42));
        assert_eq!(r("-42"), Value::Int(-42));
        assert_eq!(r("+7"), Value::Int(7));
        assert_eq!(r("0x1F"), Value::Int(31));
        assert_eq!(r("0o17"), Value::Int(15));
        assert_eq!(r("017"), Value::Int(15));
        assert_eq!(r("0b101"), Value::Int(5));
        assert_eq!(r("1_000"), Value::Int(1000));
        assert_eq!(r("0"), Value::Int(0));
        assert_eq!(r("-9223372036854775808"), Value::Int(i64::MIN));
        assert_eq!(r("08"), Value::Float(8.0));
        assert_eq!(r("1.5"), Value::Float(1.5));
        assert_eq!(r(".5"), Value::Float(0.5));
        assert_eq!(r("1e3"), Value::Float(1000.0));
        assert_eq!(r("1."), Value::Float(1.0));
        assert_eq!(
            r("18446744073709551615"),
            Value::Float(18446744073709551615.0)
        );
        assert!(matches!(r(".nan"), Value::Float(f) if f.is_nan()));
        assert_eq!(r("-.inf"), Value::Float(f64::NEG_INFINITY));
        for s in [
            "80:80",
            "1.2.3",
            "0x",
            "-",
            "+",
            "2001-12-14",
            "1e",
            "3000-3005",
            ".",
        ] {
            assert_eq!(r(s), Value::String(s.into()), "{s}");
        }
    }
}
