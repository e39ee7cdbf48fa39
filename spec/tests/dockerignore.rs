//! `.dockerignore` behaviour, mirroring moby/patternmatcher's
//! `patternmatcher_test.go` (TestMatches, the multi-pattern cases, the
//! exclusion tests) and `ignorefile_test.go` (reading the file).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use berth_spec::dockerignore::DockerIgnore;

fn matcher(patterns: &[&str]) -> DockerIgnore {
    DockerIgnore::from_patterns(patterns).unwrap_or_else(|e| panic!("{patterns:?}: {e}"))
}

#[test]
fn single_pattern_table_from_patternmatcher() {
    let cases: &[(&str, &str, bool)] = &[
        ("**", "file", true),
        ("**", "file/", true),
        ("**/", "file", true),
        ("**/", "file/", true),
        ("**", "/", true),
        ("**/", "/", true),
        ("**", "dir/file", true),
        ("**/", "dir/file", true),
        ("**", "dir/file/", true),
        ("**/", "dir/file/", true),
        ("**/**", "dir/file", true),
        ("**/**", "dir/file/", true),
        ("dir/**", "dir/file", true),
        ("dir/**", "dir/file/", true),
        ("dir/**", "dir/dir2/file", true),
        ("dir/**", "dir/dir2/file/", true),
        ("**/dir", "dir", true),
        ("**/dir", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/*", "dir/dir2/file/", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**/dir2/**", "dir/dir2/dir3/file/", true),
        ("**file", "file", true),
        ("**file", "dir/file", true),
        ("**/file", "dir/file", true),
        ("**file", "dir/dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/file*.txt", "dir/dir/file.txt", true),
        ("**/file*.txt*", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[b-d]e", "aae", false),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc.def", "abcZdef", false),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        ("a\\\\", "a\\", true),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def", true),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        ("a\\*b", "a*b", true),
    ];
    let mut failures = Vec::new();
    for (pattern, path, want) in cases {
        let got = matcher(&[pattern]).is_excluded(path, false);
        if got != *want {
            failures.push(format!(
                "pattern {pattern:?} path {path:?}: want {want}, got {got}"
            ));
        }
    }
    println!(
        "patternmatcher TestMatches cases: {}/{} passed",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn multi_pattern_table_from_patternmatcher() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            true,
        ),
        (
            &[
                "**",
                "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            ],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
    ];
    for (patterns, path, want) in cases {
        assert_eq!(
            matcher(patterns).is_excluded(path, false),
            *want,
            "{patterns:?} {path:?}"
        );
    }
}

#[test]
fn exclusions_last_match_wins() {
    // TestWildcardMatches, TestPatternMatches
    assert!(matcher(&["*"]).is_excluded("fileutils.go", false));
    assert!(matcher(&["*.go"]).is_excluded("fileutils.go", false));
    // An exclusion followed by an inclusion: included pattern wins.
    assert!(matcher(&["!fileutils.go", "*.go"]).is_excluded("fileutils.go", false));
    // A pattern followed by an exclusion.
    assert!(!matcher(&["*.go", "!fileutils.go"]).is_excluded("fileutils.go", false));
    // Folder patterns followed by an exception.
    assert!(!matcher(&["docs", "!docs/README.md"]).is_excluded("docs/README.md", false));
    assert!(!matcher(&["docs/", "!docs/README.md"]).is_excluded("docs/README.md", false));
    assert!(!matcher(&["docs/*", "!docs/README.md"]).is_excluded("docs/README.md", false));
    assert!(matcher(&["docs", "!docs/README.md"]).is_excluded("docs/other.md", false));
    // The context root is never excluded.
    assert!(!matcher(&["*.go"]).is_excluded(".", true));
    assert!(!matcher(&["**"]).is_excluded("", true));
    // No patterns, nothing excluded.
    assert!(!matcher(&[]).is_excluded("/any/path/there", false));
}

#[test]
fn directory_patterns_exclude_everything_beneath() {
    let m = matcher(&["node_modules", "build/*", "*.log"]);
    assert!(m.is_excluded("node_modules", true));
    assert!(m.is_excluded("node_modules/a/b/c.js", false));
    assert!(m.is_excluded("build/out/bin", false));
    assert!(!m.is_excluded("build", true));
    assert!(m.is_excluded("x.log", false));
    assert!(!m.is_excluded("logs/x.log", false));
    assert!(!m.is_excluded("src/node_modules_readme", false));
}

#[test]
fn pattern_errors() {
    assert!(DockerIgnore::from_patterns(&["!"]).is_err());
    assert!(DockerIgnore::from_patterns(&["["]).is_err());
    let ok = DockerIgnore::from_patterns(&["docs", "config", ""]).unwrap();
    assert_eq!(ok.patterns.len(), 2);
    let ex = DockerIgnore::from_patterns(&["docs", "  !docs/README.md"]).unwrap();
    assert!(ex.has_exceptions());
    let ex = DockerIgnore::from_patterns(&["docs", "!docs/README.md  "]).unwrap();
    assert!(ex.has_exceptions());
    assert_eq!(ex.patterns[1].text, "docs/README.md");
}

#[test]
fn reading_the_file_like_ignorefile_read_all() {
    let text =
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n";
    let di = DockerIgnore::parse(text, Path::new(".dockerignore")).unwrap();
    let got: Vec<(String, bool, u32)> = di
        .patterns
        .iter()
        .map(|p| (p.text.clone(), p.exclusion, p.line))
        .collect();
    assert_eq!(
        got,
        vec![
            ("test1".to_string(), false, 1),
            ("test2".to_string(), false, 2),
            ("a/file/here".to_string(), false, 3),
            ("lastfile".to_string(), false, 5),
            ("inverted/abs/path".to_string(), true, 7),
        ]
    );
    // A `#` that is not the first character is part of a pattern.
    let di = DockerIgnore::parse("  #notacomment\n\u{FEFF}x", Path::new(".dockerignore")).unwrap();
    assert_eq!(di.patterns[0].text, "#notacomment");
    // BOM is only stripped at the very start.
    let di = DockerIgnore::parse("\u{FEFF}a/./b/../c\n", Path::new(".dockerignore")).unwrap();
    assert_eq!(di.patterns[0].text, "a/c");
}

#[test]
fn a_lone_exclamation_mark_is_an_error_with_its_line() {
    let err = DockerIgnore::parse("ok\n!\n! \n", Path::new(".dockerignore")).unwrap_err();
    assert_eq!(
        err.to_string(),
        ".dockerignore:2:1: illegal exclusion pattern: \"!\" (hint: patterns use *, ?, ** and [a-z] classes; `!pattern` re-includes; escape special characters with \\)"
    );
    let err = DockerIgnore::parse("a\n  [z-\n", Path::new(".dockerignore")).unwrap_err();
    assert_eq!((err.line, err.column), (2, 3));
}

#[test]
fn skipping_directories_during_a_walk() {
    let m = matcher(&[
        "docs",
        "!docs/README.md",
        "vendor",
        "tmp/**",
        "!tmp/keep/*.txt",
    ]);
    // docs is excluded but an exception lives inside: walk it.
    assert!(m.is_excluded("docs", true));
    assert!(m.may_contain_exceptions("docs"));
    assert!(m.should_descend("docs"));
    // vendor has no exception inside: skip it entirely.
    assert!(!m.may_contain_exceptions("vendor"));
    assert!(!m.should_descend("vendor"));
    // tmp/keep may hold re-included .txt files; tmp/other may not.
    assert!(m.should_descend("tmp/keep"));
    assert!(!m.should_descend("tmp/other"));
    // Not excluded at all: always descend.
    assert!(m.should_descend("src"));
    // Wildcard and ** exceptions are honoured conservatively.
    let m = matcher(&["*", "!**/important"]);
    assert!(m.may_contain_exceptions("anything/at/all"));
    let m = matcher(&["*", "!src*/main.go"]);
    assert!(m.may_contain_exceptions("src2"));
    assert!(!m.may_contain_exceptions("lib"));
    // Without any exception nothing needs walking.
    assert!(!matcher(&["a", "b"]).may_contain_exceptions("a"));
}
