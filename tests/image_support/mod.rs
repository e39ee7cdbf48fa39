//! Helpers for the image end-to-end tests: a `berth` command bound to a
//! temp state root, and test images built without a registry (see
//! `berth_image::testing`).

#![allow(dead_code)]
// each test file uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use berth_image::testing;

use crate::agent_support::berth_cmd;

/// `berth --root <root> args...`, with `BERTH_ROOT` from the environment
/// kept out.
pub fn berth_at(root: &Path, args: &[&str]) -> Output {
    let mut cmd = berth_cmd();
    cmd.env_remove("BERTH_ROOT")
        .arg("--root")
        .arg(root)
        .args(args);
    cmd.output().unwrap()
}

/// Like [`berth_at`], with `stdin` piped in.
pub fn berth_at_with_stdin(root: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = berth_cmd()
        .env_remove("BERTH_ROOT")
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin).unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "berth failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Writes a busybox rootfs tarball (from the host's `busybox-static`) into
/// `dir`; `None`, with a printed reason, when busybox is not installed.
pub fn busybox_tar(dir: &Path) -> Option<PathBuf> {
    let Some(busybox) = testing::host_busybox() else {
        println!(
            "skipped: needs /bin/busybox (apt-get install busybox-static; scripts/test.sh does)"
        );
        return None;
    };
    let path = dir.join("busybox-rootfs.tar");
    let file = std::fs::File::create(&path).unwrap();
    testing::busybox_rootfs_tar(&busybox, file).unwrap();
    Some(path)
}

/// Every blob file in the store under `root`.
pub fn blob_count(root: &Path) -> usize {
    std::fs::read_dir(root.join("content/blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}
