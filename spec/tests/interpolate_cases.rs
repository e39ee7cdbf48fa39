//! Cases ported from compose-go `template/template_test.go` and
//! `interpolation/interpolation_test.go` (see the conformance
//! EXPECTATIONS.md section 7), plus berth's own offset/tree checks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use berth_spec::interpolate::{InterpolateErrorKind, interpolate, interpolate_node};
use berth_spec::yaml;

/// FOO=first, BAR set but empty, JSON={"json":2}; everything else unset.
fn env(name: &str) -> Option<String> {
    match name {
        "FOO" => Some("first".into()),
        "BAR" => Some(String::new()),
        "JSON" => Some(r#"{"json":2}"#.into()),
        _ => None,
    }
}

fn ok(template: &str) -> String {
    interpolate(template, &env).unwrap_or_else(|e| panic!("{template:?}: {e}"))
}

fn err(template: &str) -> berth_spec::interpolate::InterpolateError {
    match interpolate(template, &env) {
        Ok(v) => panic!("{template:?} should fail, gave {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn successful_substitutions() {
    let cases = [
        ("$${foo}", "${foo}"),
        ("foo", "foo"),
        ("a $ string", "a $ string"),
        ("^REGEX$", "^REGEX$"),
        ("$}", "$}"),
        ("$", "$"),
        ("$FOO-bar", "first-bar"),
        ("This ${missing} var", "This  var"),
        ("This ${BAR} var", "This  var"),
        ("This $FOO var", "This first var"),
        ("This ${FOO} var", "This first var"),
        ("ok ${missing:-def}", "ok def"),
        ("ok ${missing-def}", "ok def"),
        ("ok ${BAR:-def}", "ok def"),
        ("ok ${FOO:-def}", "ok first"),
        ("ok ${BAR-def}", "ok "),
        ("ok ${BAR:-/non:-alphanumeric}", "ok /non:-alphanumeric"),
        ("ok ${UNSET_VAR-$FOO}", "ok first"),
        ("ok ${UNSET_VAR-${FOO}}", "ok first"),
        ("ok ${UNSET_VAR-${FOO} ${FOO}}", "ok first first"),
        ("ok ${BAR:-$FOO}", "ok first"),
        ("ok ${BAR:-${FOO}}", "ok first"),
        ("ok ${BAR:-${FOO} ${FOO}}", "ok first first"),
        ("${A:-${B:-x}}", "x"),
        ("ok ${FOO:?err}", "ok first"),
        ("ok ${FOO?err}", "ok first"),
        ("ok ${BAR?err}", "ok "),
        ("${UNSET_VAR-myerror?msg}", "myerror?msg"),
        ("${FOO?bar-baz}", "first"),
        (
            "${BAR:-default_value_for_empty_var}",
            "default_value_for_empty_var",
        ),
        (
            "${UNSET_VAR-default_value_for_unset_var}",
            "default_value_for_unset_var",
        ),
        ("${UNSET:+x}", ""),
        ("${UNSET+x}", ""),
        ("${FOO:+x}", "x"),
        ("${FOO+x}", "x"),
        ("${BAR+x}", "x"),
        ("${BAR:+x}", ""),
        ("${BAR+$FOO ${FOO:+second}}", "first second"),
        ("${SUBDOMAIN:-redis}.${FOO:?}", "redis.first"),
        ("${JSON}", r#"{"json":2}"#),
        ("${UNSET:-{}}", "{}"),
        ("${FOO}${FOO}$FOO", "firstfirstfirst"),
        ("${UNSET:-a}b}", "ab}"),
        ("x ${UNSET:-a} y ${FOO} z", "x a y first z"),
        ("line1 ${UNSET:-a}\nline2 ${FOO}", "line1 a\nline2 first"),
        ("$$FOO $$$FOO", "$FOO $first"),
        ("é${FOO}ü", "éfirstü"),
        ("${foo_bar9}", ""),
    ];
    for (template, expected) in cases {
        assert_eq!(ok(template), expected, "template {template:?}");
    }
}

#[test]
fn invalid_templates() {
    for template in [
        "${",
        "${}",
        "${ }",
        "${ foo}",
        "${foo }",
        "${foo!}",
        "${foo",
        "${foo:bar}",
        "${9}",
        "x ${foo:-bar",
        "${A:-x{\n}}",
    ] {
        let e = err(template);
        assert_eq!(
            e.kind,
            InterpolateErrorKind::InvalidTemplate,
            "{template:?}"
        );
        assert!(
            e.to_string().starts_with("invalid interpolation format"),
            "{e}"
        );
    }
}

#[test]
fn invalid_template_reports_the_column() {
    let e = err("abc ${ VAR}");
    assert_eq!(e.offset, 4);
    assert_eq!(e.column, 5);
    assert_eq!(
        e.to_string(),
        r#"invalid interpolation format at character 5 of "abc ${ VAR}""#
    );
    // Columns count characters, not bytes.
    assert_eq!(err("éé ${").column, 4);
    // An error inside a default points at the inner expression.
    let inner = err("${UNSET:-ok ${}");
    assert_eq!(inner.offset, 12);
}

#[test]
fn required_variables() {
    let cases = [
        (
            "not ok ${UNSET_VAR:?Mandatory Variable Unset}",
            "required variable UNSET_VAR is missing a value: Mandatory Variable Unset",
        ),
        (
            "not ok ${BAR:?Mandatory Variable Empty}",
            "required variable BAR is missing a value: Mandatory Variable Empty",
        ),
        (
            "not ok ${UNSET_VAR:?}",
            "required variable UNSET_VAR is missing a value",
        ),
        (
            "not ok ${UNSET_VAR?Mandatory Variable Unset}",
            "required variable UNSET_VAR is missing a value: Mandatory Variable Unset",
        ),
        (
            "not ok ${UNSET_VAR?}",
            "required variable UNSET_VAR is missing a value",
        ),
        (
            "not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}",
            "required variable UNSET_VAR is missing a value: Mandatory Variable first",
        ),
        (
            "not ok ${UNSET_VAR?Mandatory Variable ${FOO}}",
            "required variable UNSET_VAR is missing a value: Mandatory Variable first",
        ),
        (
            "${UNSET_VAR?bar-baz}",
            "required variable UNSET_VAR is missing a value: bar-baz",
        ),
        (
            "${UNSET:?msg}",
            "required variable UNSET is missing a value: msg",
        ),
        (
            "${UNSET?msg}",
            "required variable UNSET is missing a value: msg",
        ),
        (
            "${BAR:?msg}",
            "required variable BAR is missing a value: msg",
        ),
    ];
    for (template, message) in cases {
        let e = err(template);
        assert!(
            matches!(e.kind, InterpolateErrorKind::MissingRequired { .. }),
            "{template:?}"
        );
        assert_eq!(e.to_string(), message, "{template:?}");
    }
    assert_eq!(err("not ok ${UNSET_VAR:?}").offset, 7);
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = "${A:-".repeat(10_000) + &"}".repeat(10_000);
    let e = err(&deep);
    assert_eq!(e.kind, InterpolateErrorKind::TooDeep);
    // Many expressions side by side are fine (no recursion per expression).
    let wide = "${A:-x}".repeat(100_000);
    assert_eq!(ok(&wide).len(), 100_000);
}

#[test]
fn tree_interpolation_walks_values_not_keys() {
    let text = "services:\n  servicea:\n    image: example:${USER}\n    command: [\"$USER\", \"$$HOME\"]\n    labels:\n      ${USER}: x\n    replicas: \"$count\"\n    ports: [80]\n";
    let mut node = yaml::parse(text, Arc::from(Path::new("c.yaml"))).unwrap();
    let lookup = |k: &str| match k {
        "USER" => Some("jenny".to_string()),
        "count" => Some("5".to_string()),
        _ => None,
    };
    let diags = interpolate_node(&mut node, &lookup);
    assert!(diags.is_empty(), "{diags:?}");
    let svc = node.get("services").unwrap().get("servicea").unwrap();
    assert_eq!(svc.get("image").unwrap().as_str(), Some("example:jenny"));
    assert_eq!(
        svc.get("command").unwrap().to_json(),
        serde_json::json!(["jenny", "$HOME"])
    );
    assert!(svc.get("labels").unwrap().get("${USER}").is_some());
    assert_eq!(svc.get("replicas").unwrap().as_str(), Some("5"));
}

#[test]
fn tree_errors_name_the_key_path_and_position() {
    let text =
        "services:\n  servicea:\n    image: ${\n    environment:\n      - A=${REQ:?set it}\n";
    let mut node = yaml::parse(text, Arc::from(Path::new("c.yaml"))).unwrap();
    let diags = interpolate_node(&mut node, &|_| None);
    let rendered: Vec<String> = diags.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "c.yaml:3:12: services.servicea.image: invalid interpolation format at character 1 of \"${\" (hint: use $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+replacement} or ${VAR+replacement}; write $$ for a literal $)",
            "c.yaml:5:9: services.servicea.environment[0]: required variable REQ is missing a value: set it (hint: set REQ in the environment or in the project's .env file)",
        ]
    );
}

#[test]
fn unset_variables_warn_once() {
    let text = "a: $NOPE\nb: ${NOPE}\nc: ${NOPE:-x}\n";
    let mut node = yaml::parse(text, Arc::from(Path::new("c.yaml"))).unwrap();
    let diags = interpolate_node(&mut node, &|_| None);
    assert_eq!(diags.len(), 1);
    assert!(!diags[0].is_error());
    assert_eq!(diags[0].line, 1);
    assert_eq!(node.get("c").unwrap().as_str(), Some("x"));
}
