//! Helpers for the compose end-to-end tests: a state root with busybox
//! imported (cleaned up on drop, see `runtime_support::Root`), a project
//! folder holding `compose.yaml`, and `berth` run in that folder.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_image::testing::busybox_rootfs_tar;
use serde_json::Value;

pub use crate::runtime_support::ok;
use crate::runtime_support::{Root, text};

/// A service command (YAML flow list) that prints `NAME up`, runs until
/// SIGTERM, prints `NAME bye` and exits 0.
pub fn serve(name: &str) -> String {
    format!(
        r#"["sh", "-c", "echo {name} up; trap 'echo {name} bye; exit 0' TERM; while :; do sleep 0.1; done"]"#
    )
}

pub struct Project {
    pub root: Root,
    pub dir: PathBuf,
}

impl Project {
    /// A root with busybox imported and `compose` written to
    /// `<root>/project/compose.yaml`.
    pub fn new(label: &str, compose: &str) -> Self {
        // Its networks' bridges, veths and nftables rules are made in the
        // test thread's own network namespace, never on the host.
        crate::runtime_support::private_netns();
        let root = Root::new(label);
        let mut tar = Vec::new();
        busybox_rootfs_tar(Path::new("/bin/busybox"), &mut tar).unwrap();
        let path = root.dir.join("busybox.tar");
        std::fs::write(&path, tar).unwrap();
        let out = root.run(&["image", "import", path.to_str().unwrap(), "busybox"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        std::fs::remove_file(&path).unwrap();
        let dir = root.dir.join("project");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("compose.yaml"), compose).unwrap();
        Project { root, dir }
    }

    pub fn write(&self, compose: &str) {
        std::fs::write(self.dir.join("compose.yaml"), compose).unwrap();
    }

    /// `berth --root R ARGS...` in the project folder, not started.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.root.cmd(args);
        c.current_dir(&self.dir)
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("BERTH_TEST_CRASH_AFTER");
        c
    }

    /// Runs to completion (60 s at most) with stdin from `input`.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(input.as_bytes());
        }
        finish(child, args)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, "")
    }

    /// `compose ARGS...`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let mut full = vec!["compose"];
        full.extend(args);
        ok(self.run(&full))
    }

    /// `compose ps -a --format json`, one value per container.
    pub fn ps(&self) -> Vec<Value> {
        self.ok(&["ps", "-a", "--format", "json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Container name -> State (`running`, `exited`...).
    pub fn states(&self) -> Vec<(String, String)> {
        self.ps()
            .iter()
            .map(|c| {
                (
                    c["Name"].as_str().unwrap().to_owned(),
                    c["State"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Polls `compose ps` until `pred` holds (20 s at most).
    pub fn wait_until(&self, what: &str, pred: impl Fn(&[(String, String)]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let states = self.states();
            if pred(&states) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {states:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits for `child` (60 s at most) and collects its output.
pub fn finish(mut child: Child, what: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth {what:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Lines, with the trailing padding of Docker's tables removed.
pub fn lines(s: &str) -> Vec<String> {
    s.lines().map(|l| l.trim_end().to_owned()).collect()
}

/// Sends `signal` (`INT`, `TERM`...) to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// web depends on db (restarting with it); both run until SIGTERM.
pub fn web_db() -> String {
    format!(
        r#"
name: proj
services:
  db:
    image: busybox
    command: {db}
    volumes: [data:/data]
    stop_grace_period: 5s
  web:
    image: busybox
    command: {web}
    depends_on:
      db: {{condition: service_started, restart: true}}
    stop_grace_period: 5s
volumes:
  data: {{}}
"#,
        db = serve("db"),
        web = serve("web")
    )
}

pub fn stderr_lines(out: &std::process::Output) -> Vec<String> {
    text(&out.stderr).lines().map(str::to_owned).collect()
}
