//! Debian's `docker-registry` (distribution v2) for the registry tests:
//! one per test, on a free 127.0.0.1 port, with its storage in a temp dir,
//! killed and removed on drop. Optionally with htpasswd auth.
//! `scripts/test.sh` installs `docker-registry`, `skopeo`, `umoci` and
//! `apache2-utils` (htpasswd); a test whose tool is missing prints
//! SKIPPED and returns.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod token_server;

/// Whether `tool` is on PATH; prints SKIPPED naming the test when not.
pub fn have(tool: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        eprintln!(
            "SKIPPED: {test} needs `{tool}` (apt-get install docker-registry skopeo umoci apache2-utils; scripts/test.sh does)"
        );
    }
    found
}

pub struct TestRegistry {
    pub dir: PathBuf,
    pub port: u16,
    child: Child,
}

impl TestRegistry {
    /// Starts a registry; with `user` it requires that htpasswd user.
    /// `None` (after a SKIPPED line) when the tools are missing.
    pub fn start(test: &str, user: Option<(&str, &str)>) -> Option<Self> {
        Self::start_inner(test, user, None)
    }

    /// Starts a registry with this `auth:` section of its config (e.g.
    /// `token_server::TokenServer::registry_auth`).
    pub fn start_with_auth(test: &str, auth: &str) -> Option<Self> {
        Self::start_inner(test, None, Some(auth))
    }

    fn start_inner(test: &str, user: Option<(&str, &str)>, auth: Option<&str>) -> Option<Self> {
        if !have("docker-registry", test) || (user.is_some() && !have("htpasswd", test)) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-registry-")
            .tempdir()
            .unwrap()
            .keep();
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut auth = auth.unwrap_or_default().to_owned();
        if let Some((name, password)) = user {
            let out = Command::new("htpasswd")
                .args(["-Bbn", name, password])
                .output()
                .unwrap();
            assert!(out.status.success());
            std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                dir.join("htpasswd").display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.join("data").display()
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        let registry = TestRegistry { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {port}: {}",
                std::fs::read_to_string(registry.dir.join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(registry)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/name`.
    pub fn name(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }

    /// The file a blob is stored in (filesystem driver layout).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `skopeo` (no TLS towards the test registry), asserting success.
pub fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes an OCI image layout into `dir` from blobs and an index.
pub fn write_layout(dir: &Path, blobs: &[Vec<u8>], index: &serde_json::Value) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    for b in blobs {
        let d = berth_image::Digest::of(b);
        std::fs::write(dir.join("blobs/sha256").join(d.hex()), b).unwrap();
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(dir.join("index.json"), serde_json::to_vec(index).unwrap()).unwrap();
}
