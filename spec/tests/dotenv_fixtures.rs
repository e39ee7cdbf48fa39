//! compose-go's dotenv fixtures, read in place from the shared conformance
//! corpus, checked against EXPECTATIONS.md section 4; plus cases ported from
//! compose-go's `dotenv/godotenv_test.go` and `parser_test.go`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use berth_spec::dotenv;
use indexmap::IndexMap;

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/compose/compose-go/dotenv/fixtures");
    assert!(
        dir.is_dir(),
        "dotenv fixtures missing at {} (expected /work/shared/conformance/compose/compose-go/dotenv/fixtures)",
        dir.display()
    );
    dir
}

type Env = IndexMap<String, Option<String>>;

fn read(
    name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Env, berth_spec::diag::Diagnostic> {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    dotenv::parse(&text, &path, lookup)
}

fn none(_: &str) -> Option<String> {
    None
}

fn pairs(expected: &[(&str, &str)]) -> Env {
    expected
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect()
}

fn same(actual: &Env, expected: &Env) -> bool {
    actual.len() == expected.len() && expected.iter().all(|(k, v)| actual.get(k) == Some(v))
}

fn str_parse(text: &str) -> Env {
    dotenv::parse(text, Path::new(".env"), &none).unwrap_or_else(|d| panic!("{text:?}: {d}"))
}

#[test]
fn compose_go_fixtures() {
    let os_a = |k: &str| (k == "OPTION_A").then(|| "5".to_string());
    let os_var =
        |k: &str| (k == "VAR_TO_BE_LOADED_FROM_OS_ENV").then(|| "SOME_RANDOM_VALUE".to_string());
    let plain_keys = [
        ("OPTION_A", "1"),
        ("OPTION_B", "2"),
        ("OPTION_C", "3"),
        ("OPTION_D", "4"),
        ("OPTION_E", "5"),
        ("456", "ABC"),
        ("OPTION_F", ""),
        ("OPTION_G", ""),
        ("OPTION_H", "my string"),
    ];
    type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;
    let cases: Vec<(&str, Lookup, Env)> = vec![
        // compose-go's `Read` then drops "456" (keys starting with a digit);
        // ParseWithLookup, used for env_file, keeps it. See the test below.
        ("plain.env", &none, pairs(&plain_keys)),
        ("utf8-bom.env", &none, pairs(&plain_keys)),
        (
            "exported.env",
            &none,
            pairs(&[("OPTION_A", "2"), ("OPTION_B", "\\n")]),
        ),
        (
            "equals.env",
            &none,
            pairs(&[(
                "OPTION_A",
                "postgres://localhost:5432/database?sslmode=disable",
            )]),
        ),
        (
            "quoted.env",
            &none,
            pairs(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "2"),
                ("OPTION_C", ""),
                ("OPTION_D", "\\n"),
                ("OPTION_E", "1"),
                ("OPTION_F", "2"),
                ("OPTION_G", ""),
                ("OPTION_H", "\n"),
                ("OPTION_I", "echo 'asd'"),
                ("OPTION_J", "first line\nsecond line\nthird line\nand so on"),
                ("OPTION_K", "Let's go!"),
                ("OPTION_Z", "last value"),
            ]),
        ),
        (
            "unquoted.env",
            &none,
            pairs(&[
                ("OPTION_A", "some quoted phrase"),
                ("OPTION_B", "first one with an unquoted phrase"),
                ("OPTION_C", "then another one with an unquoted phrase"),
                (
                    "OPTION_D",
                    "then another one with an unquoted phrase special è char",
                ),
                ("OPTION_E", "then another one quoted phrase"),
            ]),
        ),
        (
            "substitutions.env",
            &none,
            pairs(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "1"),
                ("OPTION_C", "1"),
                ("OPTION_D", "1_1"),
                ("OPTION_E", ""),
            ]),
        ),
        (
            "substitutions.env",
            &os_a,
            pairs(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "5"),
                ("OPTION_C", "5"),
                ("OPTION_D", "5_5"),
                ("OPTION_E", ""),
            ]),
        ),
        (
            "substitutions-default.env",
            &os_a,
            pairs(&[
                ("OPTION_A", "5"),
                ("OPTION_B", "5"),
                ("OPTION_C", "5"),
                ("OPTION_D", "5_5"),
                ("OPTION_E", ""),
            ]),
        ),
        (
            "substitutions-default.env",
            &none,
            pairs(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "1"),
                ("OPTION_C", "1"),
                ("OPTION_D", "1_1"),
                ("OPTION_E", ""),
            ]),
        ),
        (
            "inherited-multi-var.env",
            &os_var,
            pairs(&[
                ("foo", "bar"),
                ("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE"),
                ("bar", "baz"),
            ]),
        ),
        (
            "inherited-single-var.env",
            &os_var,
            pairs(&[("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE")]),
        ),
        (
            "special.env",
            &none,
            pairs(&[
                ("VAR.WITH.DOTS", "dots"),
                ("VAR_WITH_UNDERSCORES", "underscores"),
                ("VAR-WITH-DASHES", "dashes"),
            ]),
        ),
        (
            "custom.format",
            &none,
            pairs(&[("FOO", "BAR"), ("ZOT", "QIX")]),
        ),
    ];
    let mut passed = 0;
    let mut failures = Vec::new();
    for (name, lookup, expected) in &cases {
        match read(name, *lookup) {
            Ok(actual) if same(&actual, expected) => passed += 1,
            Ok(actual) => failures.push(format!("{name}: got {actual:?}, want {expected:?}")),
            Err(d) => failures.push(format!("{name}: {d}")),
        }
    }

    // A bare key nobody defines is absent in compose-go (None here), and the
    // lookup is asked for it.
    let asked = RefCell::new(Vec::new());
    let spy = |k: &str| {
        asked.borrow_mut().push(k.to_string());
        None
    };
    match read("inherited-not-found.env", &spy) {
        Ok(env)
            if env.get("VARIABLE_NOT_FOUND") == Some(&None)
                && env.len() == 1
                && asked.borrow().contains(&"VARIABLE_NOT_FOUND".to_string()) =>
        {
            passed += 1
        }
        other => failures.push(format!("inherited-not-found.env: {other:?}")),
    }

    match read("invalid1.env", &none) {
        Err(d) if d.line == 7 && d.message == "key cannot contain a space" => passed += 1,
        other => failures.push(format!("invalid1.env: {other:?}")),
    }

    let total = cases.len() + 2;
    println!("dotenv fixtures: {passed}/{total} passed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn read_helper_drops_digit_keys_leaving_eight() {
    let env = read("plain.env", &none).unwrap();
    let kept = env
        .keys()
        .filter(|k| !k.starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(kept, 8);
}

#[test]
fn fixture_bom_is_present_in_the_corpus() {
    let bytes = std::fs::read(fixtures().join("utf8-bom.env")).unwrap();
    assert!(
        bytes.starts_with(&[0xEF, 0xBB, 0xBF]),
        "the fixture lost its BOM"
    );
}

#[test]
fn ported_line_cases() {
    let cases: &[(&str, &str, &str)] = &[
        ("FOO=bar", "FOO", "bar"),
        ("FOO =bar", "FOO", "bar"),
        ("FOO= bar", "FOO", "bar"),
        (r#"FOO="bar""#, "FOO", "bar"),
        ("FOO='bar'", "FOO", "bar"),
        (r#"FOO="escaped\"bar""#, "FOO", r#"escaped"bar"#),
        (r#"FOO="'d'""#, "FOO", "'d'"),
        ("OPTION_A: 1", "OPTION_A", "1"),
        ("OPTION_A: Foo=bar", "OPTION_A", "Foo=bar"),
        ("OPTION_A=1:B", "OPTION_A", "1:B"),
        ("export OPTION_A=2", "OPTION_A", "2"),
        (r"export OPTION_B='\n'", "OPTION_B", "\\n"),
        ("export exportFoo=2", "exportFoo", "2"),
        ("exportFOO=2", "exportFOO", "2"),
        ("export_FOO =2", "export_FOO", "2"),
        ("export.FOO= 2", "export.FOO", "2"),
        ("export\tOPTION_A=2", "OPTION_A", "2"),
        ("  export OPTION_A=2", "OPTION_A", "2"),
        ("\texport OPTION_A=2", "OPTION_A", "2"),
        (r#"FOO="bar\nbaz""#, "FOO", "bar\nbaz"),
        ("FOO.BAR=foobar", "FOO.BAR", "foobar"),
        ("FOO=foobar=", "FOO", "foobar="),
        ("FOO=bar ", "FOO", "bar"),
        ("FOO=bar # this is foo", "FOO", "bar"),
        ("FOO=bar#baz", "FOO", "bar#baz"),
        (r#"FOO="bar#baz" # comment"#, "FOO", "bar#baz"),
        ("FOO='bar#baz' # comment", "FOO", "bar#baz"),
        (r#"FOO="bar#baz#bang" # comment"#, "FOO", "bar#baz#bang"),
        (r#"FOO="ba#r""#, "FOO", "ba#r"),
        ("FOO='ba#r'", "FOO", "ba#r"),
        (r#"FOO="bar\\\n baz""#, "FOO", "bar\\\n baz"),
        (" KEY =value", "KEY", "value"),
        ("   KEY=value", "KEY", "value"),
        ("\tKEY=value", "KEY", "value"),
        ("KEY=\"\\$NOT\"", "KEY", "$NOT"),
        ("KEY=$$NOT", "KEY", "$NOT"),
        ("KEY='$NOT ${NOT} $$'", "KEY", "$NOT ${NOT} $$"),
        ("KEY='single\\'quote'", "KEY", "single'quote"),
        ("KEY=\"\\0123\"", "KEY", "S"),
        ("KEY=\"a\\tb\"", "KEY", "a\tb"),
        ("VAR[0]=x", "VAR[0]", "x"),
        ("KEY=ünïcode", "KEY", "ünïcode"),
    ];
    for (line, key, value) in cases {
        let env = str_parse(line);
        assert_eq!(
            env.get(*key),
            Some(&Some(value.to_string())),
            "line {line:?} gave {env:?}"
        );
    }
}

#[test]
fn ported_multi_line_cases() {
    let env = str_parse("ONE=1\nTWO='2'\nTHREE = \"3\"");
    assert_eq!(env, pairs(&[("ONE", "1"), ("TWO", "2"), ("THREE", "3")]));

    let env = str_parse(
        "TEST_URLS=\"stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443\"",
    );
    assert_eq!(
        env,
        pairs(&[(
            "TEST_URLS",
            "stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443"
        )])
    );

    // Expansion: earlier keys, double quotes yes, single quotes no, escapes.
    let expanding: &[(&str, &[(&str, &str)])] = &[
        ("FOO=test\nBAR=$FOO", &[("FOO", "test"), ("BAR", "test")]),
        (
            "FOO=test\nBAR=${FOO}bar",
            &[("FOO", "test"), ("BAR", "testbar")],
        ),
        ("BAR=$FOO", &[("BAR", "")]),
        (
            "FOO=test\nBAR=\"quote $FOO\"",
            &[("FOO", "test"), ("BAR", "quote test")],
        ),
        ("BAR='quote $FOO'", &[("BAR", "quote $FOO")]),
        (r#"FOO="foo\$BAR""#, &[("FOO", "foo$BAR")]),
        (r#"FOO="foo\${BAR}""#, &[("FOO", "foo${BAR}")]),
        (
            "FOO=test\nBAR=\"foo\\${FOO} ${FOO}\"",
            &[("FOO", "test"), ("BAR", "foo${FOO} test")],
        ),
        (
            "FOO=${UNSET:-def}\nBAR=${FOO:+alt}",
            &[("FOO", "def"), ("BAR", "alt")],
        ),
    ];
    for (text, expected) in expanding {
        assert_eq!(&str_parse(text), &pairs(expected), "{text:?}");
    }

    // Lines to ignore.
    for text in ["\n", "\r\n", "\t\t ", "# Comment", "\t # comment", ""] {
        assert!(str_parse(text).is_empty(), "{text:?}");
    }

    // Comments between statements, CRLF line ends, a later duplicate wins.
    let env = str_parse("# head\r\nA=1\r\n  # mid\r\nB = two words \r\nA=3\r\n");
    assert_eq!(env, pairs(&[("A", "3"), ("B", "two words")]));

    // A bare key on the last line, without a newline.
    let env = dotenv::parse("A=1\nHOME_DIR", Path::new(".env"), &|k: &str| {
        (k == "HOME_DIR").then(|| "/home/x".into())
    })
    .unwrap();
    assert_eq!(env.get("HOME_DIR"), Some(&Some("/home/x".to_string())));
}

#[test]
fn errors_name_the_line() {
    let cases: &[(&str, u32, &str)] = &[
        (
            "A=1\nlol$wut",
            2,
            "unexpected character '$' in variable name \"lol$wut\"",
        ),
        ("A=1\n\nKEY WITH SPACE=1", 3, "key cannot contain a space"),
        (
            "A=\"unterminated\nB=2",
            1,
            "unterminated quoted value \"unterminated",
        ),
        ("=value", 1, "missing variable name"),
        (
            "A=${",
            1,
            "invalid interpolation format at character 1 of \"${\"",
        ),
        (
            "A=${REQ:?needed}",
            1,
            "required variable REQ is missing a value: needed",
        ),
        ("export ", 1, "`export` without a variable"),
    ];
    for (text, line, message) in cases {
        match dotenv::parse(text, Path::new("x.env"), &none) {
            Ok(env) => panic!("{text:?} should fail, gave {env:?}"),
            Err(d) => {
                assert_eq!((d.line, d.message.as_str()), (*line, *message), "{text:?}");
                assert_eq!(d.file, Path::new("x.env"));
                assert!(d.hint.is_some());
            }
        }
    }
}
