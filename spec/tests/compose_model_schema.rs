//! Schema validation messages: paths, wording and hints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_spec::compose::schema::{SchemaViolation, validate};
use berth_spec::yaml::display_path;
use serde_json::json;

fn one(v: serde_json::Value) -> SchemaViolation {
    let errs = validate(&v);
    assert_eq!(errs.len(), 1, "{v}: {errs:#?}");
    errs.into_iter().next().unwrap()
}

fn check(v: serde_json::Value, path: &str, message: &str, hint: Option<&str>) {
    let e = one(v);
    assert_eq!(display_path(&e.path), path);
    assert_eq!(e.message, message);
    assert_eq!(e.hint.as_deref(), hint);
}

#[test]
fn valid_document_has_no_violations() {
    let v = json!({"name": "p", "services": {"web": {"image": "nginx", "ports": ["80:80"], "x-a": 1}}, "x-top": {}});
    assert!(validate(&v).is_empty());
}

#[test]
fn unknown_key_suggests_the_closest_one() {
    check(
        json!({"services": {"web": {"imagee": "nginx"}}}),
        "services.web.imagee",
        "additional property \"imagee\" is not allowed",
        Some("did you mean \"image\"?"),
    );
    check(
        json!({"servics": {}}),
        "servics",
        "additional property \"servics\" is not allowed",
        Some("did you mean \"services\"?"),
    );
}

#[test]
fn unknown_key_inside_a_one_of_branch() {
    check(
        json!({"services": {"web": {"build": {"contxt": "."}}}}),
        "services.web.build.contxt",
        "additional property \"contxt\" is not allowed",
        Some("did you mean \"context\"?"),
    );
}

#[test]
fn extension_key_pattern_is_explained() {
    let e = one(json!({"services": {}, "y-foo": 1}));
    assert_eq!(display_path(&e.path), "y-foo");
    assert_eq!(e.message, "additional property \"y-foo\" is not allowed");
    assert!(
        e.hint
            .as_deref()
            .unwrap()
            .contains("extension keys must start with \"x-\""),
        "{e:?}"
    );
    let e = one(json!({"services": {"web": {"image": "a", "labelz_": 1}}}));
    assert!(e.hint.is_some());
}

#[test]
fn wrong_type_says_what_was_expected() {
    check(
        json!({"services": {"web": {"image": 3}}}),
        "services.web.image",
        "must be a string, got integer 3",
        None,
    );
    check(
        json!({"services": {"web": {"tty": []}}}),
        "services.web.tty",
        "must be a boolean or a string, got a list",
        None,
    );
}

#[test]
fn bad_port_types() {
    check(
        json!({"services": {"web": {"ports": [[80]]}}}),
        "services.web.ports[0]",
        "must be a number, a string or a mapping, got a list",
        None,
    );
    check(
        json!({"services": {"web": {"ports": [{"target": true}]}}}),
        "services.web.ports[0].target",
        "must be an integer or a string, got boolean true",
        None,
    );
    check(
        json!({"services": {"web": {"ports": [{"target": 80, "publised": "8080"}]}}}),
        "services.web.ports[0].publised",
        "additional property \"publised\" is not allowed",
        Some("did you mean \"published\"?"),
    );
}

#[test]
fn duplicate_items_point_at_the_duplicate() {
    check(
        json!({"services": {"web": {"ports": ["80:80", "81:81", "80:80"]}}}),
        "services.web.ports[2]",
        "duplicate item \"80:80\"",
        Some("items of this list must be unique"),
    );
}

#[test]
fn names_and_patterns() {
    check(
        json!({"services": {"my web": {"image": "x"}}}),
        "services.my web",
        "invalid service name \"my web\"",
        Some("names may contain only letters, digits, '.', '_' and '-'"),
    );
    let e = one(json!({"services": {"web": {"pull_policy": "sometimes"}}}));
    assert_eq!(display_path(&e.path), "services.web.pull_policy");
    assert_eq!(e.message, "invalid pull policy \"sometimes\"");
    assert!(e.hint.unwrap().contains("every_<duration>"));
}

#[test]
fn enums_suggest_the_closest_value() {
    check(
        json!({"services": {"web": {"depends_on": {"db": {"condition": "service_health"}}}}}),
        "services.web.depends_on.db.condition",
        "must be one of \"service_started\", \"service_healthy\", \"service_completed_successfully\", got \"service_health\"",
        Some("did you mean \"service_healthy\"?"),
    );
}

#[test]
fn ranges_and_required_keys() {
    check(
        json!({"services": {"web": {"cpu_percent": 150}}}),
        "services.web.cpu_percent",
        "must be at most 100, got 150",
        None,
    );
    check(
        json!({"services": {"web": {"depends_on": {"db": {"required": true}}}}}),
        "services.web.depends_on.db",
        "missing required key \"condition\"",
        None,
    );
}

#[test]
fn several_problems_are_all_reported() {
    let errs = validate(
        &json!({"services": {"a": {"imagee": "x"}, "b": {"image": 1}}, "volumes": {"v": {"drivr": "local"}}}),
    );
    let paths: Vec<String> = errs.iter().map(|e| display_path(&e.path)).collect();
    assert_eq!(paths.len(), 3, "{errs:#?}");
    for p in ["services.a.imagee", "services.b.image", "volumes.v.drivr"] {
        assert!(paths.contains(&p.to_string()), "{p} in {paths:?}");
    }
}
