//! [`Healthcheck`]: the container health probe. A string `test` is shell
//! form and becomes `["CMD-SHELL", test]`, like compose-go.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::Duration;
use super::de::{self, Hinted, is_false};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Healthcheck {
    #[serde(
        default,
        deserialize_with = "de_test",
        skip_serializing_if = "Option::is_none"
    )]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "de::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub retries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "de::bool_lenient",
        skip_serializing_if = "is_false"
    )]
    pub disable: bool,
    #[serde(flatten, with = "de::extensions")]
    pub extensions: IndexMap<String, Value>,
}

fn de_test<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    de::via_opt(d, |v| match v {
        Value::String(s) => Ok(vec!["CMD-SHELL".to_string(), s.clone()]),
        Value::Array(items) => items.iter().map(de::parse_string).collect(),
        other => Err(
            Hinted::new(format!("invalid healthcheck test {}", de::describe(other)))
                .hint("use a shell command string or a list starting with CMD, CMD-SHELL or NONE"),
        ),
    })
}
