//! BuildKit conformance: the parser test files, the line-number case and the
//! shell expansion tables from `shared/conformance/dockerfile/buildkit`,
//! read in place. Exceptions must be listed in CONFORMANCE_EXCEPTIONS.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use berth_spec::dockerfile::dump::dump;
use berth_spec::dockerfile::parser::parse;
use berth_spec::dockerfile::shell::{expand_word, expand_words};

fn buildkit_dir() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/dockerfile/buildkit");
    assert!(
        dir.is_dir(),
        "conformance fixtures missing: expected {} (the shared/conformance checkout next to the workspace)",
        dir.display()
    );
    dir
}

/// Case names listed as exceptions (lines `- <suite>/<case>: reason`).
fn exceptions() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/CONFORMANCE_EXCEPTIONS.md");
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| {
            l.split_once(':')
                .map(|(name, _)| name.trim().trim_matches('`').to_string())
        })
        .collect()
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read_text(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .into_owned()
}

fn report(suite: &str, passed: usize, total: usize, failures: &[String], skipped: &[String]) {
    println!("{suite}: {passed}/{total} passed");
    for f in failures {
        println!("  FAIL {f}");
    }
    for s in skipped {
        println!("  exception (listed in CONFORMANCE_EXCEPTIONS.md): {s}");
    }
}

#[test]
fn buildkit_parser_testfiles() {
    let exc = exceptions();
    let dirs = sorted_dirs(&buildkit_dir().join("parser/testfiles"));
    assert!(!dirs.is_empty(), "no parser testfiles found");
    let (mut passed, mut failures, mut skipped) = (0, Vec::new(), Vec::new());
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let text = read_text(&dir.join("Dockerfile"));
        let expected = read_text(&dir.join("result")).replace("\r\n", "\n");
        let got = match parse(&text, Path::new("Dockerfile")) {
            Ok(ast) => dump(&ast),
            Err(e) => format!("parse error: {e}"),
        };
        if got == expected {
            passed += 1;
        } else if exc.contains(&format!("testfiles/{name}")) {
            skipped.push(name);
        } else {
            failures.push(format!("{name}\n--- expected\n{expected}--- got\n{got}"));
        }
    }
    report(
        "buildkit parser testfiles",
        passed,
        dirs.len(),
        &failures,
        &skipped,
    );
    assert!(
        failures.is_empty(),
        "{} parser testfiles failed",
        failures.len()
    );
}

#[test]
fn buildkit_parser_negative_testfiles() {
    let dirs = sorted_dirs(&buildkit_dir().join("parser/testfiles-negative"));
    assert!(!dirs.is_empty(), "no negative testfiles found");
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let text = read_text(&dir.join("Dockerfile"));
        // The negative cases fail either in the tree parser or, like
        // `ENV PATH`, already there in BuildKit; both layers must refuse.
        let ast = parse(&text, Path::new("Dockerfile"));
        let typed = berth_spec::dockerfile::Dockerfile::parse(&text, Path::new("Dockerfile"));
        if ast.is_ok() || typed.is_ok() {
            failures.push(name);
        }
    }
    report(
        "buildkit parser negative testfiles",
        dirs.len() - failures.len(),
        dirs.len(),
        &failures,
        &[],
    );
    assert!(
        failures.is_empty(),
        "negative testfiles parsed: {failures:?}"
    );
}

#[test]
fn buildkit_testfile_line_spans() {
    let text = read_text(&buildkit_dir().join("parser/testfile-line/Dockerfile"));
    let ast = parse(&text, Path::new("Dockerfile")).expect("testfile-line parses");
    let spans: Vec<(u32, u32)> = ast
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    let file_span = (spans.first().map(|s| s.0), spans.last().map(|s| s.1));
    println!("buildkit testfile-line: file {file_span:?}, instructions {spans:?}");
    assert_eq!(file_span, (Some(5), Some(31)));
    assert_eq!(spans, vec![(5, 5), (11, 12), (17, 31)]);
}

fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn buildkit_shell_env_var_table() {
    let text = read_text(&buildkit_dir().join("shell/envVarTest"));
    let env = env_of(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]);
    let lookup = |k: &str| env.get(k).cloned();
    let (mut total, mut passed, mut windows_skipped, mut failures) = (0, 0, 0, Vec::new());
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 3, "line {}: {line:?}", i + 1);
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        if platform == "W" {
            windows_skipped += 1;
            continue;
        }
        assert!(
            platform == "A" || platform == "U",
            "line {}: platform {platform}",
            i + 1
        );
        total += 1;
        let got = expand_word(input, &lookup, '\\');
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(w), e) => w == e,
            _ => false,
        };
        if ok {
            passed += 1;
        } else {
            failures.push(format!(
                "line {}: {input:?} expected {expected:?}, got {got:?}",
                i + 1
            ));
        }
    }
    report("buildkit shell envVarTest", passed, total, &failures, &[]);
    println!("buildkit shell envVarTest: {windows_skipped} Windows-only (W) lines skipped");
    assert!(failures.is_empty());
}

#[test]
fn buildkit_shell_words_table() {
    let text = read_text(&buildkit_dir().join("shell/wordsTest"));
    let mut env: HashMap<String, String> = HashMap::new();
    let (mut total, mut passed, mut failures) = (0, 0, Vec::new());
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            let entry = rest.trim_start_matches(' ');
            let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
            env.insert(k.to_string(), v.to_string());
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 2, "line {}: {line:?}", i + 1);
        let input = fields[0].trim();
        let expected: Vec<&str> = fields[1].trim_start_matches(' ').split(',').collect();
        total += 1;
        let lookup = |k: &str| env.get(k).cloned();
        let got = expand_words(input, &lookup, '\\').unwrap_or_else(|_| vec!["error".to_string()]);
        if got == expected {
            passed += 1;
        } else {
            failures.push(format!(
                "line {}: {input:?} expected {expected:?}, got {got:?}",
                i + 1
            ));
        }
    }
    report("buildkit shell wordsTest", passed, total, &failures, &[]);
    assert!(failures.is_empty());
}
