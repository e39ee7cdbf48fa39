//! Robustness: real-world Dockerfiles parse, and arbitrary input never
//! panics in the parser, the typed layer, expansion or .dockerignore
//! matching (a stand-in until the fuzz target exists).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use berth_spec::dockerfile::dump::dump;
use berth_spec::dockerfile::parser::parse;
use berth_spec::dockerfile::{Dockerfile, expand_word, expand_words};
use berth_spec::dockerignore::DockerIgnore;

fn find_dockerfiles(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            find_dockerfiles(&path, out);
        } else if path.file_name().is_some_and(|n| n == "Dockerfile") {
            out.push(path);
        }
    }
}

#[test]
fn real_world_dockerfiles_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/compose");
    assert!(
        root.is_dir(),
        "conformance fixtures missing: {}",
        root.display()
    );
    let mut files = Vec::new();
    find_dockerfiles(&root, &mut files);
    files.sort();
    assert!(
        files.len() >= 30,
        "expected the awesome-compose Dockerfiles, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        if let Err(e) = Dockerfile::parse_file(file) {
            failures.push(format!("{}: {e}", file.display()));
        }
    }
    println!(
        "real-world Dockerfiles: {}/{} parsed",
        files.len() - failures.len(),
        files.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A small deterministic generator (xorshift) over Dockerfile-ish pieces.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const PIECES: &[&str] = &[
    "FROM ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "SHELL ",
    "EXPOSE ",
    "VOLUME ",
    "USER ",
    "WORKDIR ",
    "MAINTAINER ",
    "STOPSIGNAL ",
    "ENTRYPOINT ",
    "--mount=",
    "--from=",
    "type=cache,target=/x",
    "--interval=",
    "1s",
    "NONE",
    "<<",
    "<<-",
    "EOF",
    "\"EOF\"",
    "'",
    "\"",
    "\\",
    "`",
    "$",
    "${",
    "}",
    ":-",
    ":+",
    ":?",
    "#",
    "##",
    "%",
    "%%",
    "/",
    "//",
    "*",
    "?",
    "[",
    "]",
    "{",
    "}",
    "=",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\n\n",
    "# escape=`\n",
    "# syntax=x\n",
    "é",
    "☥",
    "\u{0}",
    "\u{feff}",
    "AS ",
    "a",
    "b",
    "0",
    "9",
    "!",
    "**",
    ",",
    "\\\n",
    "[\"a\", \"b\"]",
    "[1]",
    "[[",
    "\"\\u0000\"",
];

#[test]
fn arbitrary_input_never_panics() {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let env = |k: &str| (k.len() % 2 == 0).then(|| format!("v{k} x"));
    for _ in 0..4000 {
        let len = (g.next() % 40) as usize;
        let text: String = (0..len).map(|_| g.pick(PIECES)).collect();
        if let Ok(ast) = parse(&text, Path::new("Dockerfile")) {
            let _ = dump(&ast);
        }
        if let Ok(df) = Dockerfile::parse(&text, Path::new("Dockerfile")) {
            let none = |_: &str| None;
            let _ = df.target_stages(None, &none);
            for stage in &df.stages {
                let _ = df.expanded_base(stage, &none);
                for c in &stage.commands {
                    let _ = c.instruction.expand(&env, df.escape);
                }
            }
        }
        let _ = expand_word(&text, &env, '\\');
        let _ = expand_words(&text, &env, '`');
        if let Ok(di) = DockerIgnore::parse(&text, Path::new(".dockerignore")) {
            for path in ["a", "a/b", "é/☥", "", "/", "../x", "**"] {
                let _ = di.is_excluded(path, false);
                let _ = di.should_descend(path);
            }
        }
    }
}
