//! Serde helpers shared by the model: lenient scalars (a `${VAR}` turns every
//! value into a string, so `"true"`, `"3"` and `3` must all be accepted where
//! the spec allows both), `list_or_dict` maps, sorted map output, and
//! [`Hinted`], the error that carries a hint through serde.
//!
//! Every helper deserializes a `serde_json::Value` first and converts it by
//! hand: the messages are ours, and serde_path_to_error still knows the path
//! of the field being decoded.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{Mapping, MappingWithEquals};

/// Separates the message from the hint inside a serde error string; decode
/// splits on it. A control character cannot appear in a sensible message.
pub(crate) const HINT_SEP: char = '\u{1f}';

/// An error message with an optional hint, convertible to a serde error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hinted {
    pub message: String,
    pub hint: Option<String>,
}

impl Hinted {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn into_de<E: serde::de::Error>(self) -> E {
        E::custom(self)
    }

    /// Splits a serde error string produced by [`Hinted::into_de`].
    pub(crate) fn split(s: &str) -> Self {
        match s.split_once(HINT_SEP) {
            Some((m, h)) => Hinted::new(m).hint(h),
            None => Hinted::new(s),
        }
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "{HINT_SEP}{h}")?;
        }
        Ok(())
    }
}

/// `"abc"`, `42`, `true`, `null`, `a list`, `a mapping`: how a value is named
/// in messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// A scalar as the string compose-go would store (numbers and booleans are
/// printed); `None` for lists and mappings.
pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn parse_bool(v: &Value) -> Result<bool, Hinted> {
    match v {
        Value::Bool(b) => Ok(*b),
        // YAML 1.1 booleans, as compose-go's interpolation casts accept them.
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Ok(true),
            "n" | "no" | "false" | "off" => Ok(false),
            _ => Err(bad_bool(v)),
        },
        _ => Err(bad_bool(v)),
    }
}

fn bad_bool(v: &Value) -> Hinted {
    Hinted::new(format!("invalid boolean {}", describe(v))).hint("use true or false")
}

pub(crate) fn parse_i64(v: &Value) -> Result<i64, Hinted> {
    let bad = || Hinted::new(format!("invalid integer {}", describe(v))).hint("use a whole number");
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9e18)
                    .map(|f| f as i64)
            })
            .ok_or_else(bad),
        Value::String(s) => s.trim().parse().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

pub(crate) fn parse_u64(v: &Value) -> Result<u64, Hinted> {
    let i = parse_i64(v)?;
    u64::try_from(i).map_err(|_| {
        Hinted::new(format!("invalid value {}", describe(v))).hint("the value cannot be negative")
    })
}

pub(crate) fn parse_f64(v: &Value) -> Result<f64, Hinted> {
    let bad = || {
        Hinted::new(format!("invalid number {}", describe(v))).hint("use a number like 1 or 0.5")
    };
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(bad),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

pub(crate) fn parse_string(v: &Value) -> Result<String, Hinted> {
    scalar_string(v).ok_or_else(|| Hinted::new(format!("expected a string, got {}", describe(v))))
}

/// A string or a list of strings, as a list.
pub(crate) fn parse_string_or_list(v: &Value) -> Result<Vec<String>, Hinted> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(parse_string).collect(),
        other => Ok(vec![parse_string(other)?]),
    }
}

/// `list_or_dict` for labels-like maps: `KEY=VALUE` list items or a mapping;
/// a missing value (`KEY` alone, `KEY:` with null) becomes `""`.
pub(crate) fn parse_mapping(v: &Value) -> Result<Mapping, Hinted> {
    let with_equals = parse_mapping_with_equals(v)?;
    Ok(with_equals
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// `list_or_dict` for environment-like maps: `KEY` alone or `KEY:` with a
/// null value stays `None`, so the loader can resolve it later.
pub(crate) fn parse_mapping_with_equals(v: &Value) -> Result<MappingWithEquals, Hinted> {
    let mut out = IndexMap::new();
    match v {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                let s = parse_string(item)?;
                match s.split_once('=') {
                    Some((k, val)) => out.insert(k.to_string(), Some(val.to_string())),
                    None => out.insert(s, None),
                };
            }
        }
        Value::Object(map) => {
            for (k, val) in map {
                let val = match val {
                    Value::Null => None,
                    other => Some(scalar_string(other).ok_or_else(|| {
                        Hinted::new(format!("invalid value for \"{k}\": expected a string, a number or a boolean, got {}", describe(other)))
                    })?),
                };
                out.insert(k.clone(), val);
            }
        }
        other => {
            return Err(Hinted::new(format!(
                "expected a mapping or a list of KEY=VALUE strings, got {}",
                describe(other)
            )));
        }
    }
    Ok(out)
}

/// Deserializes through `serde_json::Value` with a hand-written converter.
pub(crate) fn via<'de, D, T>(
    d: D,
    f: impl FnOnce(&Value) -> Result<T, Hinted>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let v = Value::deserialize(d)?;
    f(&v).map_err(Hinted::into_de)
}

/// Like [`via`] for optional fields: null means absent.
pub(crate) fn via_opt<'de, D, T>(
    d: D,
    f: impl FnOnce(&Value) -> Result<T, Hinted>,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
{
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    f(&v).map(Some).map_err(Hinted::into_de)
}

pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    via_opt(d, parse_bool)
}

pub(crate) fn bool_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    via(d, |v| {
        if v.is_null() {
            Ok(false)
        } else {
            parse_bool(v)
        }
    })
}

pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    via_opt(d, parse_i64)
}

pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    via_opt(d, parse_u64)
}

pub(crate) fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    via_opt(d, parse_f64)
}

pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    via_opt(d, parse_string)
}

pub(crate) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    via(d, parse_string_or_list)
}

pub(crate) fn mapping<'de, D: Deserializer<'de>>(d: D) -> Result<Mapping, D::Error> {
    via(d, parse_mapping)
}

pub(crate) fn mapping_with_equals<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<MappingWithEquals, D::Error> {
    via(d, parse_mapping_with_equals)
}

/// A map whose null values mean "all defaults" (`networks: {front: }`).
pub(crate) fn map_null_default<'de, D, T>(d: D) -> Result<IndexMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Default + DeserializeOwned,
{
    let m = Option::<IndexMap<String, Option<T>>>::deserialize(d)?;
    Ok(m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// Serializes a map with its keys sorted, the way Go marshals maps.
pub(crate) fn sorted<S, V>(m: &IndexMap<String, V>, s: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    V: Serialize,
{
    let mut entries: Vec<(&String, &V)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    s.collect_map(entries)
}

/// `x-*` extension keys, flattened into their owner. Output is sorted; input
/// keys that do not start with `x-` are unknown keys.
pub(crate) mod extensions {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        m: &IndexMap<String, Value>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        sorted(m, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<IndexMap<String, Value>, D::Error> {
        let m = IndexMap::<String, Value>::deserialize(d)?;
        if let Some(bad) = m.keys().find(|k| !k.starts_with("x-")) {
            return Err(D::Error::custom(
                Hinted::new(format!("additional property \"{bad}\" is not allowed"))
                    .hint("extension keys must start with \"x-\""),
            ));
        }
        Ok(m)
    }
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// A value with a short syntax (scalar or list) and a long syntax (mapping).
/// The mapping goes straight to `T`'s own `Deserialize` through the same
/// deserializer, so errors inside it keep their exact key path; scalars and
/// lists are handed to `short` as JSON values; null is `None`.
pub(crate) fn short_or_long<'de, D, T, F>(d: D, short: F) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
    F: FnOnce(Value) -> Result<T, Hinted>,
{
    d.deserialize_any(ShortOrLong {
        short,
        marker: std::marker::PhantomData,
    })
}

struct ShortOrLong<F, T> {
    short: F,
    marker: std::marker::PhantomData<T>,
}

impl<F, T> ShortOrLong<F, T>
where
    F: FnOnce(Value) -> Result<T, Hinted>,
{
    fn short<E: serde::de::Error>(self, v: Value) -> Result<Option<T>, E> {
        (self.short)(v).map(Some).map_err(Hinted::into_de)
    }
}

impl<'de, F, T> serde::de::Visitor<'de> for ShortOrLong<F, T>
where
    T: Deserialize<'de>,
    F: FnOnce(Value) -> Result<T, Hinted>,
{
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a short-syntax value or a mapping")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
        let v = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        self.short(v)
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Option<T>, E> {
        self.short(Value::String(s.to_string()))
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Option<T>, E> {
        self.short(Value::Bool(b))
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Option<T>, E> {
        self.short(Value::from(n))
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Option<T>, E> {
        self.short(Value::from(n))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Option<T>, E> {
        self.short(Value::from(n))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Option<T>, D2::Error> {
        d.deserialize_any(self)
    }
}

/// A list of `T`, or a single `T` given alone (`env_file: .env`). Items go
/// through the same deserializer, so their paths carry the index.
pub(crate) fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a value or a list")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<T>()? {
                out.push(item);
            }
            Ok(out)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(|t| vec![t])
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<T>, E> {
            T::deserialize(serde::de::value::StrDeserializer::<E>::new(s)).map(|t| vec![t])
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Vec<T>, D2::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

/// A `name -> definition` map where a null definition means defaults.
pub(crate) struct NullDefaultMap<T>(pub IndexMap<String, T>);

impl<'de, T: Default + Deserialize<'de>> Deserialize<'de> for NullDefaultMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = IndexMap::<String, Option<T>>::deserialize(d)?;
        Ok(NullDefaultMap(
            m.into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect(),
        ))
    }
}
