//! Helpers for the runtime's end-to-end tests: a busybox rootfs built once
//! per test binary, a state root per test whose Drop removes every
//! container (processes, cgroups, state) even when the test fails, and a
//! root check that prints why a test is skipped.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// True when running as root; otherwise prints `skipped: <test> needs root`.
pub fn need_root(test: &str) -> bool {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|v| v.split_whitespace().next().unwrap_or("").to_owned())
        })
        .unwrap_or_default();
    if uid != "0" {
        println!("skipped: {test} needs root");
        return false;
    }
    if !Path::new("/bin/busybox").exists() {
        panic!(
            "{test}: /bin/busybox is missing (apt-get install busybox-static; scripts/test.sh does it)"
        );
    }
    true
}

/// Moves the calling test thread into a new network namespace with `lo`
/// up: every `berth` it spawns (and their shims) makes its bridges, veths
/// and nftables rules there, never on the host, and all of it goes when
/// the test's thread ends.
pub fn private_netns() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare a network namespace");
    let st = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("run ip");
    assert!(st.success(), "ip link set lo up failed");
}

/// A state root with busybox imported as the image `busybox`. Its
/// networks' bridges, veths and nftables rules are made in the test
/// thread's own network namespace, never on the host.
pub fn root_with_busybox(label: &str) -> Root {
    private_netns();
    let root = Root::new(label);
    let mut tar = Vec::new();
    berth_image::testing::busybox_rootfs_tar(Path::new("/bin/busybox"), &mut tar).unwrap();
    let path = root.dir.join("busybox.tar");
    std::fs::write(&path, tar).unwrap();
    let out = root.run(&["image", "import", path.to_str().unwrap(), "busybox"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    root
}

/// A busybox rootfs: `bin/busybox` plus its applet links, `etc/passwd`
/// (root, nobody), `etc/group`, and the empty mount points.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let tmp = std::env::temp_dir();
        // Rootfs dirs of earlier test runs whose process is gone.
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("berth-e2e-rootfs-")
                    && !Path::new(&format!("/proc/{pid}")).exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("berth-e2e-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let link = dir.join("bin").join(applet);
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", link).unwrap();
            }
        }
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        .unwrap();
        std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        dir
    })
}

/// A state root for one test; every container in it is force-removed on
/// drop, then the folder.
pub struct Root {
    pub dir: PathBuf,
}

impl Root {
    pub fn new(label: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "berth-e2e-rt-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Root { dir }
    }

    /// `berth --root DIR ARGS...`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(berth_e2e::berth_bin());
        c.arg("--root").arg(&self.dir).args(args);
        c.env_remove("RUST_LOG").env_remove("BERTH_ROOT");
        c
    }

    /// Runs to completion with a time limit.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("berth {args:?} did not finish within 60 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `run --rootfs R ARGS...` (options before `--rootfs` go first).
    pub fn run_container(&self, opts: &[&str], command: &[&str]) -> Output {
        let root = rootfs().display().to_string();
        let mut args: Vec<&str> = vec!["run"];
        args.extend(opts);
        args.extend(["--rootfs", &root]);
        args.extend(command);
        self.run(&args)
    }

    /// `run -d`, returning the id.
    pub fn detach(&self, opts: &[&str], command: &[&str]) -> String {
        let mut o = vec!["-d"];
        o.extend(opts);
        let out = self.run_container(&o, command);
        assert!(out.status.success(), "run -d failed: {}", text(&out.stderr));
        text(&out.stdout).trim().to_owned()
    }

    pub fn inspect(&self, name: &str) -> Value {
        let out = self.run(&["inspect", name]);
        assert!(
            out.status.success(),
            "inspect {name}: {}",
            text(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0].clone()
    }

    /// Polls `inspect` until `pred` holds.
    pub fn wait_for(&self, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.run(&["inspect", name]);
            let v: serde_json::Value = serde_json::from_slice::<Value>(&out.stdout)
                .map(|v| v[0].clone())
                .unwrap_or_default();
            if out.status.success() && pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: timed out waiting for {what}: {v:#}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn ids(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("containers"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = self
                .cmd(&["rm", "-f", &id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            // Whatever rm could not remove: kill by the recorded pids.
            let state = self.dir.join("containers").join(&id).join("state.json");
            if let Ok(v) = std::fs::read(&state)
                .map(|b| serde_json::from_slice::<Value>(&b).unwrap_or_default())
            {
                for key in ["pid", "shim_pid"] {
                    if let Some(pid) = v[key].as_i64().filter(|p| *p > 0) {
                        let _ = Command::new("kill")
                            .args(["-9", &pid.to_string()])
                            .stderr(Stdio::null())
                            .status();
                    }
                }
            }
            for ctl in cgroup_dirs(&id) {
                let _ = std::fs::remove_dir(ctl);
            }
        }
        // Networks' DNS servers (detached `berth dns`) a failed test left.
        if let Ok(rd) = std::fs::read_dir(self.dir.join("networks")) {
            for e in rd.flatten() {
                if let Ok(pid) = std::fs::read_to_string(e.path().join("dns.pid")) {
                    let _ = Command::new("kill")
                        .args(["-9", pid.trim()])
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Detaches every mount at or below `dir` (bound network namespaces,
/// overlays a failed test left), deepest first, so the folder can go.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount")
            .args(["-l", p])
            .stderr(Stdio::null())
            .status();
    }
}

/// Every cgroup dir a container could have (v1 hierarchies and v2).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            out.push(e.path().join("berth").join(id));
        }
    }
    out.push(PathBuf::from("/sys/fs/cgroup/berth").join(id));
    out.into_iter().filter(|p| p.exists()).collect()
}

/// The container's total CPU time in nanoseconds, from its cgroup.
pub fn cpu_usage_ns(id: &str) -> u64 {
    for p in [
        format!("/sys/fs/cgroup/cpuacct/berth/{id}/cpuacct.usage"),
        format!("/sys/fs/cgroup/cpu,cpuacct/berth/{id}/cpuacct.usage"),
    ] {
        if let Ok(t) = std::fs::read_to_string(&p) {
            return t.trim().parse().unwrap();
        }
    }
    let t = std::fs::read_to_string(format!("/sys/fs/cgroup/berth/{id}/cpu.stat")).unwrap();
    t.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .unwrap()
        .trim()
        .parse::<u64>()
        .unwrap()
        * 1000
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// True when a process with this pid exists.
pub fn alive(pid: i64) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// The command succeeded; its stdout (both streams in the message if not).
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "berth failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Polls `inspect NAME` (up to a minute) until `pred` holds; its object.
pub fn wait_long(root: &Root, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = root.run(&["inspect", name]);
        let v: Value = serde_json::from_slice::<Value>(&out.stdout)
            .map(|v| v[0].clone())
            .unwrap_or_default();
        if out.status.success() && pred(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: timed out waiting for {what}: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
