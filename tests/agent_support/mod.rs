//! Helpers for the end-to-end tests that drive `berth` as a child process:
//! temp folders that clean up, an agent that is killed even when a test
//! fails, a tiny HTTP/1.1 client over std sockets, and bounded polling.

#![allow(dead_code)]
// each test file uses a different subset
// Test scaffolding: a failed step must fail the test loudly, with context.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest any single step may take before the test fails.
pub const STEP: Duration = Duration::from_secs(5);

/// How long a request may wait for its answer (`?wait=true` waits for a
/// whole reconcile).
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// The `berth` binary, or a failure that says how to build it.
pub fn berth() -> PathBuf {
    let bin = berth_e2e::berth_bin();
    assert!(
        bin.is_file(),
        "berth binary not found at {}: run `cargo build --workspace` before `cargo test --workspace` \
         (or set BERTH_BIN)",
        bin.display()
    );
    bin
}

/// A `berth` command with no `COMPOSE_*` variables leaking in from the
/// environment the tests run in.
pub fn berth_cmd() -> Command {
    let mut cmd = Command::new(berth());
    for var in [
        "COMPOSE_FILE",
        "COMPOSE_PROJECT_NAME",
        "COMPOSE_PROFILES",
        "COMPOSE_ENV_FILES",
        "COMPOSE_PATH_SEPARATOR",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A fresh folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "berth-e2e-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        // Canonical, so it matches the paths the agent reports.
        Self(path.canonicalize().unwrap())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `content` to `rel`, creating folders.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `berth agent`; killed and reaped on drop.
pub struct Agent {
    child: Child,
    /// `127.0.0.1:PORT` or `unix:/path`, as the agent printed it.
    pub addr: String,
    log: PathBuf,
    _logdir: TempDir,
    /// The state root made for it when the test gave none.
    _root: Option<TempDir>,
}

impl Agent {
    /// Starts `berth agent --dir DIR --listen 127.0.0.1:0` and waits for its
    /// `listening on ADDR` line.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &["--listen", "127.0.0.1:0"])
    }

    /// Starts `berth agent --dir DIR ARGS...`. Without `--root` in `args`
    /// the agent gets a state root of its own (a temp folder), so it never
    /// touches the machine's `/var/lib/berth`.
    pub fn start_with(dir: &Path, args: &[&str]) -> Self {
        Self::spawn(Some(dir), args, &[])
    }

    /// Starts `berth agent ARGS...` (no `--dir`: the args name the
    /// source, e.g. `--git URL`).
    pub fn start_args(args: &[&str]) -> Self {
        Self::spawn(None, args, &[])
    }

    /// [`Self::start_args`] with extra environment variables.
    pub fn start_args_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(None, args, env)
    }

    fn spawn(dir: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Self {
        // The log lives outside the watched folder: writing it must not
        // cause file events there.
        let logdir = TempDir::new("log");
        let log = logdir.path().join("agent.log");
        let root = (!args.contains(&"--root")).then(|| TempDir::new("root"));
        let mut cmd = berth_cmd();
        cmd.arg("agent");
        if let Some(dir) = dir {
            cmd.arg("--dir").arg(dir);
        }
        cmd.args(args).envs(env.iter().copied());
        if let Some(root) = &root {
            cmd.arg("--root").arg(root.path());
        }
        let mut child = cmd
            .env("RUST_LOG", "berth=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut agent = Self {
            child,
            addr: String::new(),
            log,
            _logdir: logdir,
            _root: root,
        };
        match rx.recv_timeout(STEP) {
            Ok(line) => match line.strip_prefix("listening on ") {
                Some(addr) => agent.addr = addr.to_owned(),
                None => panic!("unexpected first line {line:?}\n{}", agent.log()),
            },
            Err(_) => panic!("agent printed no address within {STEP:?}\n{}", agent.log()),
        }
        agent
    }

    /// The agent's stderr so far, for failure messages.
    pub fn log(&self) -> String {
        format!(
            "--- agent log ---\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// `GET path` → (status code, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, None)
    }

    /// `POST path`, with `Authorization: Bearer TOKEN` when given.
    pub fn post(&self, path: &str, token: Option<&str>) -> (u16, String) {
        self.request("POST", path, token)
    }

    fn request(&self, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nAccept: */*\r\n\
             Content-Length: 0\r\n{auth}\r\n"
        );
        let raw = match self.addr.strip_prefix("unix:") {
            Some(sock) => {
                let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
                s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
                s.write_all(request.as_bytes()).unwrap();
                let mut raw = Vec::new();
                s.read_to_end(&mut raw).unwrap();
                raw
            }
            None => {
                let mut s = TcpStream::connect(&self.addr).unwrap();
                s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
                s.write_all(request.as_bytes()).unwrap();
                let mut raw = Vec::new();
                s.read_to_end(&mut raw).unwrap();
                raw
            }
        };
        parse_response(&raw)
    }

    /// `GET path`, expecting 200 and JSON.
    pub fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}\n{}", self.log());
        serde_json::from_str(&body).unwrap()
    }

    /// The project list's items.
    pub fn items(&self) -> Vec<Value> {
        self.json("/api/v1/projects")["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The list item with `key`, if present.
    pub fn item(&self, key: &str) -> Option<Value> {
        self.items().into_iter().find(|i| i["key"] == key)
    }

    /// The value of an unlabelled metric line (`name value`).
    pub fn metric(&self, name: &str) -> f64 {
        let (status, text) = self.get("/metrics");
        assert_eq!(status, 200);
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Polls `probe` every 50 ms until it returns `Some`, for at most
    /// [`STEP`]; fails with `what` and the agent's log otherwise.
    pub fn wait_for<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(v) = probe() {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {STEP:?} waiting for {what}\nprojects: {}\n{}",
                    serde_json::to_string_pretty(&self.items()).unwrap_or_default(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash or the OOM killer would: no shutdown at all.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if !status.success() {
                    // Shown with the failing test's output.
                    eprintln!("agent exited with {status:?}\n{}", self.log());
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent ignored SIGTERM\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Splits a raw HTTP/1.1 response into status and body, undoing chunked
/// transfer encoding when used.
fn parse_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response: {text:?}"));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    if !chunked {
        return (status, body.to_owned());
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    (status, out)
}

/// `(number, state)` of each revision in a project's status, newest
/// first.
pub fn revisions(status: &Value) -> Vec<(u64, String)> {
    status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["number"].as_u64().unwrap(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
