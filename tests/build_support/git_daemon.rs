//! A real git server for the build tests: `git daemon` serving bare
//! repositories under a folder on 127.0.0.1, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when `git` and its daemon are installed; otherwise prints
/// `SKIPPED: <test> needs git` (scripts/test.sh installs it).
pub fn have_git(test: &str) -> bool {
    let ok = Command::new("git")
        .args(["daemon", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success() || s.code() == Some(129));
    if !ok {
        println!("SKIPPED: {test} needs git with git-daemon (apt-get install git)");
    }
    ok
}

/// `git ARGS` in `dir`, asserting success; stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=berth",
            "-c",
            "user.email=berth@example.invalid",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct GitDaemon {
    child: Child,
    pub port: u16,
    pub base: PathBuf,
}

impl GitDaemon {
    /// Serves every repository under `base` at `git://127.0.0.1:PORT/NAME`.
    pub fn start(base: &Path) -> GitDaemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The daemon itself, not `git daemon`: git runs it as a child
        // that would outlive a kill of the `git` process.
        let exec_path = git(base, &["--exec-path"]);
        let child = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
            .arg("--export-all")
            .arg("--reuseaddr")
            .arg(format!("--base-path={}", base.display()))
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "git daemon did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        GitDaemon {
            child,
            port,
            base: base.to_owned(),
        }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A work tree at `work` with `files` committed, pushed to the bare
/// repository `<base>/<name>` (created on the first call); returns the
/// commit.
pub fn commit_and_push(base: &Path, name: &str, work: &Path, files: &[(&str, &[u8])]) -> String {
    let bare = base.join(name);
    if !bare.exists() {
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "-q", "--bare"]);
        std::fs::create_dir_all(work).unwrap();
        git(work, &["init", "-q"]);
        git(work, &["remote", "add", "origin", bare.to_str().unwrap()]);
    }
    for (path, content) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        if path.ends_with("busybox") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", "change"]);
    git(work, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    git(work, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// Git's smart HTTP on 127.0.0.1: a tiny server that runs `git
/// http-backend` (CGI) for each request, answering 401 to requests whose
/// `Authorization` is not `required_auth`.
pub struct GitHttp {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl GitHttp {
    pub fn start(base: &Path, required_auth: &str) -> GitHttp {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let base = base.to_owned();
        let required = required_auth.to_owned();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (base, required) = (base.clone(), required.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut first = String::new();
                    reader.read_line(&mut first).unwrap();
                    let mut parts = first.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_owned();
                    let target = parts.next().unwrap_or_default().to_owned();
                    let mut headers = std::collections::BTreeMap::new();
                    loop {
                        let mut line = String::new();
                        reader.read_line(&mut line).unwrap();
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                        }
                    }
                    let mut out = stream;
                    let auth = headers.get("authorization").cloned().unwrap_or_default();
                    if !auth.eq_ignore_ascii_case(&required) {
                        let _ = out.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        return;
                    }
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    reader.read_exact(&mut body).unwrap();
                    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                    let mut cgi = Command::new("git")
                        .arg("http-backend")
                        .env("GIT_PROJECT_ROOT", &base)
                        .env("GIT_HTTP_EXPORT_ALL", "1")
                        .env("REQUEST_METHOD", &method)
                        .env("PATH_INFO", path)
                        .env("QUERY_STRING", query)
                        .env(
                            "CONTENT_TYPE",
                            headers.get("content-type").cloned().unwrap_or_default(),
                        )
                        .env("CONTENT_LENGTH", length.to_string())
                        .env(
                            "HTTP_GIT_PROTOCOL",
                            headers.get("git-protocol").cloned().unwrap_or_default(),
                        )
                        .env(
                            "HTTP_CONTENT_ENCODING",
                            headers.get("content-encoding").cloned().unwrap_or_default(),
                        )
                        .env("REMOTE_ADDR", "127.0.0.1")
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap();
                    cgi.stdin.take().unwrap().write_all(&body).unwrap();
                    let response = cgi.wait_with_output().unwrap().stdout;
                    let split = response
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|i| (i, 4))
                        .or_else(|| {
                            response
                                .windows(2)
                                .position(|w| w == b"\n\n")
                                .map(|i| (i, 2))
                        })
                        .unwrap();
                    let head = String::from_utf8_lossy(&response[..split.0]).into_owned();
                    let payload = &response[split.0 + split.1..];
                    let mut status = "200 OK".to_owned();
                    let mut lines = String::new();
                    for h in head.lines() {
                        match h.strip_prefix("Status:") {
                            Some(s) => status = s.trim().to_owned(),
                            None => lines.push_str(&format!("{h}\r\n")),
                        }
                    }
                    let _ = write!(
                        out,
                        "HTTP/1.1 {status}\r\n{lines}Content-Length: {}\r\nConnection: close\r\n\r\n",
                        payload.len()
                    );
                    let _ = out.write_all(payload);
                });
            }
        });
        GitHttp { port, stop }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("http://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}
