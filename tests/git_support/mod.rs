//! Helpers for the git sync tests: a bare repository with a work clone
//! that commits and pushes, an agent started on it with `--git`, and
//! bounded polling of its API.

#![allow(dead_code)]
// each test file uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::agent_support::{Agent, TempDir};
use crate::runtime_support::{Root, text};

/// How long any one convergence may take before a test fails.
pub const CONVERGE: Duration = Duration::from_secs(90);

pub const TOKEN: &str = "e2e-git-token-0123456789";

pub fn have_git(test: &str) -> bool {
    let ok = Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED {test}: the git binary is not installed (scripts/test.sh installs it)");
    }
    ok
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=e2e", "-c", "user.email=e2e@example.com"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

/// A bare repository and a work clone that pushes to it.
pub struct Remote {
    pub tmp: TempDir,
}

impl Remote {
    pub fn new(label: &str) -> Self {
        let tmp = TempDir::new(label);
        git(
            tmp.path(),
            &["init", "-q", "--bare", "-b", "main", "remote.git"],
        );
        git(tmp.path(), &["init", "-q", "-b", "main", "work"]);
        let bare = tmp.path().join("remote.git").display().to_string();
        git(
            &tmp.path().join("work"),
            &["remote", "add", "origin", &bare],
        );
        Self { tmp }
    }

    pub fn bare(&self) -> PathBuf {
        self.tmp.path().join("remote.git")
    }

    pub fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.bare().display())
    }

    pub fn write(&self, rel: &str, content: &str) {
        self.tmp.write(&format!("work/{rel}"), content);
    }

    /// Writes one file, commits and pushes; returns the commit.
    pub fn commit_file(&self, rel: &str, content: &str, message: &str) -> String {
        self.write(rel, content);
        self.commit(message)
    }

    /// Commits everything and pushes `main`; returns the commit.
    pub fn commit(&self, message: &str) -> String {
        git(&self.work(), &["add", "-A"]);
        git(
            &self.work(),
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        git(&self.work(), &["push", "-q", "origin", "HEAD:main"]);
        git(&self.work(), &["rev-parse", "HEAD"])
    }
}

/// `berth agent --git URL` with the API token in a file.
pub fn start_agent(remote: &Remote, root: &Root, extra: &[&str]) -> (Agent, TempDir) {
    let secrets = TempDir::new("git-token");
    let token_file = secrets.write("token", &format!("{TOKEN}\n"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (root_dir, token_file, url) = (
        root.dir.display().to_string(),
        token_file.display().to_string(),
        remote.url(),
    );
    let mut args = vec![
        "--git",
        &url,
        "--git-path",
        "apps",
        "--listen",
        "127.0.0.1:0",
        "--root",
        &root_dir,
        "--resync-interval",
        "1h",
        "--delete-grace",
        "1s",
        "--token-file",
        &token_file,
    ];
    args.extend(extra);
    (Agent::start_args(&args), secrets)
}

pub fn until<T>(agent: &Agent, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + CONVERGE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            let (_, projects) = agent.get("/api/v1/projects");
            let (_, source) = agent.get("/api/v1/source");
            panic!(
                "timed out after {CONVERGE:?} waiting for {what}\nsource: {source}\nprojects: {projects}\n{}",
                agent.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn detail(agent: &Agent, name: &str) -> Option<Value> {
    let (status, body) = agent.get(&format!("/api/v1/projects/{name}"));
    (status == 200).then(|| serde_json::from_str(&body).unwrap())
}

pub fn source(agent: &Agent) -> Value {
    agent.json("/api/v1/source")
}

pub fn running_id(root: &Root, name: &str) -> Option<String> {
    let out = root.run(&["inspect", name]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (v[0]["State"]["Running"] == true).then(|| v[0]["Id"].as_str().unwrap().to_owned())
}

pub fn exists(root: &Root, name: &str) -> bool {
    root.run(&["inspect", name]).status.success()
}

pub fn refresh(agent: &Agent) -> Value {
    let (status, body) = agent.post("/api/v1/source/refresh?wait=true", Some(TOKEN));
    assert_eq!(status, 200, "{body}\n{}", agent.log());
    serde_json::from_str(&body).unwrap()
}

pub fn condition<'a>(conditions: &'a Value, kind: &str) -> &'a Value {
    conditions
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} condition in {conditions}"))
}

pub fn applied(agent: &Agent, name: &str) -> Option<String> {
    detail(agent, name)?["status"]["lastAppliedRevision"]
        .as_str()
        .map(str::to_owned)
}

pub fn metric_sum(agent: &Agent, prefix: &str) -> f64 {
    let (_, text) = agent.get("/metrics");
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
