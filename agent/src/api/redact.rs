//! What the status API hides from callers without the token: the values
//! of services' environment variables and build args, and the content of
//! secrets. The API listens on loopback, where every local user can reach
//! it; `docker compose config` prints these to the user who owns the
//! files, but a status endpoint must not hand a database password to any
//! process on the machine. Keys stay, so the shape of the model is intact.

use serde_json::Value;

/// Stands in for a hidden value.
pub const REDACTED: &str = "<redacted>";

/// `model` (a serialized Compose project) with those values replaced.
pub fn redact_project(mut model: Value) -> Value {
    if let Some(services) = model.get_mut("services").and_then(Value::as_object_mut) {
        for service in services.values_mut() {
            hide_values(service.get_mut("environment"));
            hide_values(service.get_mut("build").and_then(|b| b.get_mut("args")));
        }
    }
    if let Some(secrets) = model.get_mut("secrets").and_then(Value::as_object_mut) {
        for secret in secrets.values_mut() {
            if let Some(content) = secret.get_mut("content") {
                *content = Value::String(REDACTED.to_owned());
            }
        }
    }
    model
}

/// Every value of a map (`KEY: value`) or list (`KEY=value`) hidden;
/// `null` values (declared, not set) stay null.
fn hide_values(field: Option<&mut Value>) {
    match field {
        Some(Value::Object(map)) => {
            for v in map.values_mut() {
                if !v.is_null() {
                    *v = Value::String(REDACTED.to_owned());
                }
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                if let Some((key, _)) = item.as_str().and_then(|s| s.split_once('=')) {
                    *item = Value::String(format!("{key}={REDACTED}"));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn environment_build_args_and_secret_content_are_hidden_keys_kept() {
        let model = json!({
            "name": "shop",
            "services": {
                "db": {
                    "image": "postgres",
                    "environment": {"POSTGRES_PASSWORD": "hunter2", "UNSET": null},
                    "build": {"context": ".", "args": ["TOKEN=abc", "PLAIN"]},
                    "labels": {"team": "a"}
                },
                "web": {"image": "nginx"}
            },
            "secrets": {"key": {"content": "s3cret"}, "file": {"file": "/run/x"}},
            "configs": {"conf": {"content": "listen 80"}}
        });
        assert_eq!(
            redact_project(model),
            json!({
                "name": "shop",
                "services": {
                    "db": {
                        "image": "postgres",
                        "environment": {"POSTGRES_PASSWORD": REDACTED, "UNSET": null},
                        "build": {"context": ".", "args": [format!("TOKEN={REDACTED}"), "PLAIN"]},
                        "labels": {"team": "a"}
                    },
                    "web": {"image": "nginx"}
                },
                "secrets": {"key": {"content": REDACTED}, "file": {"file": "/run/x"}},
                "configs": {"conf": {"content": "listen 80"}}
            })
        );
    }
}
