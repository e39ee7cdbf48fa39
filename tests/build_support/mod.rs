//! Helpers for the build tests: a context folder with the host's static
//! busybox in it, and `berth build` runs whose output is kept.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod git_daemon;

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::runtime_support::{Root, need_root, private_netns, text};

/// [`need_root`], and `ip` and `nft`: the test's private network
/// namespace needs the first, RUN steps on berth's default bridge the
/// second. Prints SKIPPED naming the missing tool.
pub fn need_root_and_net(test: &str) -> bool {
    if !need_root(test) {
        return false;
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
        if !found {
            println!(
                "SKIPPED: {test} needs `{tool}` (apt-get install {package}; scripts/test.sh does)"
            );
            return false;
        }
    }
    true
}

/// A state root for a build test, whose berth runs in a network namespace
/// of the calling test thread's own: RUN steps join berth's default
/// bridge, which is made there, not on the host, and goes with the
/// namespace.
pub fn root(label: &str) -> Root {
    private_netns();
    Root::new(label)
}

/// The lines that make a busybox userland from scratch.
pub const BUSYBOX_STAGE: &str = "FROM scratch AS bb\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";

/// A context folder under the test's root with `busybox` and `files`.
pub fn context(root: &Root, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = root.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy("/bin/busybox", dir.join("busybox")).unwrap();
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// `berth build` with `args` then the context; output kept.
pub fn build(root: &Root, ctx: &Path, args: &[&str]) -> Output {
    let mut all: Vec<&str> = vec!["build"];
    all.extend_from_slice(args);
    let ctx = ctx.to_str().unwrap().to_owned();
    all.push(&ctx);
    root.run(&all)
}

/// Builds and asserts success; returns stderr (the progress).
pub fn build_ok(root: &Root, ctx: &Path, args: &[&str]) -> String {
    let out = build(root, ctx, args);
    let err = text(&out.stderr);
    assert!(out.status.success(), "berth build failed:\n{err}");
    err
}

/// `(steps run, steps cached)` from the final progress line.
pub fn counts(progress: &str) -> (usize, usize) {
    let line = progress
        .lines()
        .find(|l| l.contains("steps run,"))
        .unwrap_or_else(|| panic!("no summary line in:\n{progress}"));
    let inner = line.split('(').nth(1).unwrap();
    let nums: Vec<usize> = inner
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1])
}

/// The names of the steps the progress says ran (not cached): the
/// `#N [..] INSTR` lines whose vertex has no `#N CACHED`, among layer
/// steps (COPY, ADD, RUN, WORKDIR).
pub fn executed_steps(progress: &str) -> Vec<String> {
    let mut names = std::collections::BTreeMap::new();
    let mut cached = std::collections::BTreeSet::new();
    for l in progress.lines() {
        let Some(rest) = l.strip_prefix('#') else {
            continue;
        };
        let (n, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        let Ok(n) = n.parse::<u32>() else { continue };
        if tail == "CACHED" {
            cached.insert(n);
        } else if tail.starts_with('[') {
            names.insert(n, tail.to_owned());
        }
    }
    names
        .into_iter()
        .filter(|(n, name)| {
            !cached.contains(n)
                && ["COPY", "ADD", "RUN", "WORKDIR"]
                    .iter()
                    .any(|k| name.split("] ").nth(1).is_some_and(|i| i.starts_with(k)))
        })
        .map(|(_, name)| name)
        .collect()
}

/// `berth run --rm IMAGE sh -c SCRIPT`, stdout.
pub fn sh(root: &Root, image: &str, script: &str) -> String {
    let out = root.run(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        image,
        "-c",
        script,
    ]);
    assert!(
        out.status.success(),
        "run {image} {script:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `berth image inspect IMAGE` → `[0]`.
pub fn inspect(root: &Root, image: &str) -> serde_json::Value {
    let out = root.run(&["image", "inspect", image]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].clone()
}
