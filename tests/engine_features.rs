//! End-to-end: the container options of a Compose service, through `berth
//! up -d` and the real runtime (issue #4): configs and secrets, ulimits,
//! capabilities and privileged, read-only root, tmpfs options, shm size,
//! sysctls, devices, groups, domain name, OOM settings, logging, lifecycle
//! hooks, the image's stop signal, anonymous volumes and copy-up.
//!
//! Root only; each test has its own `--root` and project folder, and the
//! `Root` guard removes every container (processes, cgroups, mounts) even
//! when an assertion fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use berth_image::testing::{TestImage, busybox_rootfs_tar, docker_save, tar_of};
use runtime_support::{Root, need_root, text};
use serde_json::json;

/// `featimg`: busybox plus a user `app` (1000) and groups `audio` (29)
/// and `app` (1000), a seeded `/var/lib/app` declared as a `VOLUME`, and
/// `StopSignal` SIGUSR1.
fn feature_image() -> TestImage {
    let mut base = Vec::new();
    busybox_rootfs_tar(Path::new("/bin/busybox"), &mut base).unwrap();
    let extra = tar_of(&[
        (
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        ),
        (
            "etc/group",
            b"root:x:0:\nnobody:x:65534:\naudio:x:29:\napp:x:1000:\n",
        ),
        ("var/lib/app/seed.txt", b"seeded by the image\n"),
    ]);
    let mut image = TestImage::new(vec![base, extra], &["featimg"]);
    image.config["config"]["Volumes"] = json!({"/var/lib/app": {}});
    image.config["config"]["StopSignal"] = json!("SIGUSR1");
    image
}

/// A state root with `featimg` loaded and a project folder.
struct Project {
    root: Root,
    dir: PathBuf,
}

impl Project {
    fn new(label: &str, compose: &str) -> Self {
        let root = Root::new(label);
        let archive = root.dir.join("images.tar");
        std::fs::write(&archive, docker_save(&[feature_image()])).unwrap();
        ok(root.run(&["load", "-i", archive.to_str().unwrap()]));
        let dir = root.dir.join("project");
        std::fs::create_dir_all(&dir).unwrap();
        let p = Project { root, dir };
        p.write(compose);
        p
    }

    fn write(&self, compose: &str) {
        std::fs::write(self.dir.join("compose.yaml"), compose).unwrap();
    }

    fn file(&self) -> String {
        self.dir.join("compose.yaml").display().to_string()
    }

    fn up(&self) -> Output {
        self.root.run(&["up", "-d", "-f", &self.file()])
    }

    fn down(&self, flags: &[&str]) -> Output {
        let file = self.file();
        let mut args = vec!["down", "-f", file.as_str()];
        args.extend(flags);
        self.root.run(&args)
    }

    /// `sh -c script` in the container; stdout, after checking it succeeded.
    fn sh(&self, container: &str, script: &str) -> String {
        ok(self.root.run(&["exec", container, "sh", "-c", script]))
    }

    /// The exit code and output of `sh -c script` in the container.
    fn try_sh(&self, container: &str, script: &str) -> (i32, String) {
        let out = self.root.run(&["exec", container, "sh", "-c", script]);
        (
            out.status.code().unwrap_or(-1),
            format!("{}{}", text(&out.stdout), text(&out.stderr)),
        )
    }

    fn id(&self, container: &str) -> String {
        self.root.inspect(container)["Id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn container_dir(&self, container: &str) -> PathBuf {
        self.root.dir.join("containers").join(self.id(container))
    }

    fn volumes(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.dir.join("volumes"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "berth failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The output of a command expected to fail.
fn failed(out: Output) -> String {
    assert!(
        !out.status.success(),
        "berth succeeded:\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

#[test]
fn secrets_and_configs_are_owned_copies_and_edits_recreate() {
    if !need_root("secrets_and_configs_are_owned_copies_and_edits_recreate") {
        return;
    }
    let p = Project::new("files", "");
    let token = p.dir.join("token.txt");
    std::fs::write(&token, "s3cret-1\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(p.dir.join(".env"), "SITE_NAME=from-dotenv\n").unwrap();
    p.write(
        r#"
name: files
services:
  app:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    secrets:
      - source: token
        uid: "1000"
        mode: 0400
    configs:
      - source: site
        target: /etc/site.conf
      - inline
configs:
  site:
    environment: SITE_NAME
  inline:
    content: |
      listen 8080
secrets:
  token:
    file: ./token.txt
"#,
    );
    ok(p.up());
    let c = "files-app-1";
    assert_eq!(
        p.sh(c, "stat -c '%a %u %g' /run/secrets/token"),
        "400 1000 0\n"
    );
    assert_eq!(p.sh(c, "cat /run/secrets/token"), "s3cret-1\n");
    assert_eq!(p.sh(c, "cat /etc/site.conf"), "from-dotenv");
    assert_eq!(p.sh(c, "stat -c '%a %u' /etc/site.conf"), "444 0\n");
    assert_eq!(p.sh(c, "cat /inline"), "listen 8080\n");
    // Read-only, whatever the mode says.
    let (code, out) = p.try_sh(c, "echo x > /etc/site.conf");
    assert_ne!(code, 0, "{out}");
    // The source was copied, never changed.
    let meta = std::fs::metadata(&token).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o640);
    assert_eq!(meta.uid(), 0);
    // The inline content is not written into config.json.
    let config = std::fs::read_to_string(p.container_dir(c).join("config.json")).unwrap();
    assert!(!config.contains("listen 8080") && !config.contains("from-dotenv"));

    // Editing the secret's file recreates the container with the new value.
    assert_eq!(
        ok(p.root.run(&["up", "--dry-run", "-f", &p.file()])),
        "nothing to do\n"
    );
    std::fs::write(&token, "s3cret-2\n").unwrap();
    let plan = ok(p.root.run(&["up", "--dry-run", "-f", &p.file()]));
    assert!(
        plan.contains("Recreate files-app-1") && plan.contains("secrets"),
        "{plan}"
    );
    ok(p.up());
    assert_eq!(p.sh(c, "cat /run/secrets/token"), "s3cret-2\n");
    // And so does a new value of the variable.
    std::fs::write(p.dir.join(".env"), "SITE_NAME=changed\n").unwrap();
    ok(p.up());
    assert_eq!(p.sh(c, "cat /etc/site.conf"), "changed");

    // An unset variable fails the create, naming it.
    std::fs::write(p.dir.join(".env"), "").unwrap();
    let out = failed(p.up());
    assert!(
        out.contains("\"SITE_NAME\" required by config files_site is not set"),
        "{out}"
    );
    ok(p.down(&[]));
    assert!(p.root.ids().is_empty());

    // A source that cannot be read fails the create, naming it, and
    // leaves no container folder (with half-made copies) behind.
    std::fs::create_dir_all(p.dir.join("a-folder")).unwrap();
    p.write(
        r#"
name: files
services:
  app:
    image: featimg
    command: ["true"]
    secrets: [bad]
secrets:
  bad:
    file: ./a-folder
"#,
    );
    let out = failed(p.up());
    assert!(out.contains("a-folder"), "{out}");
    assert!(p.root.ids().is_empty(), "{:?}", p.root.ids());
}

#[test]
fn ulimits_are_set_and_clamped_to_the_host_with_a_warning() {
    if !need_root("ulimits_are_set_and_clamped_to_the_host_with_a_warning") {
        return;
    }
    let p = Project::new(
        "ulimits",
        r#"
name: lim
services:
  set:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      core: 0
      nproc: 512
  clamped:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    ulimits:
      nofile: 4000000000
"#,
    );
    let out = p.up();
    let stderr = text(&out.stderr);
    ok(out);
    assert!(
        stderr.contains("service clamped: ulimit nofile above the host's maximum"),
        "{stderr}"
    );
    assert!(!stderr.contains("service set:"), "{stderr}");
    // pid 1's own limits, and an exec'd process's.
    let limits = p.sh("lim-set-1", "cat /proc/1/limits");
    let row = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {limits}"))
            .split_whitespace()
            .rev()
            .skip(1)
            .take(2)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("Max open files"), ["2048", "1024"]);
    assert_eq!(row("Max core file size"), ["0", "0"]);
    assert_eq!(row("Max processes"), ["512", "512"]);
    assert_eq!(p.sh("lim-set-1", "ulimit -n; ulimit -Hn"), "1024\n2048\n");
    // The host's maximum: fs.nr_open for a root that holds
    // CAP_SYS_RESOURCE, else berth's own hard limit.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    let max = if effective & (1 << 24) != 0 {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .unwrap()
            .trim()
            .to_owned()
    } else {
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let row = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap()
            .to_owned();
        row.split_whitespace().nth(4).unwrap().to_owned()
    };
    assert_eq!(
        p.sh("lim-clamped-1", "ulimit -n; ulimit -Hn"),
        format!("{max}\n{max}\n")
    );
    ok(p.down(&[]));
}

/// `CapEff` of pid 1, as hex.
fn cap_eff(p: &Project, container: &str) -> u64 {
    let s = p.sh(container, "grep CapEff /proc/1/status");
    u64::from_str_radix(s.trim().trim_start_matches("CapEff:").trim(), 16).unwrap()
}

#[test]
fn capabilities_follow_cap_add_cap_drop_and_privileged() {
    if !need_root("capabilities_follow_cap_add_cap_drop_and_privileged") {
        return;
    }
    let p = Project::new(
        "caps",
        r#"
name: caps
x-sleep: &sleep
  image: featimg
  command: ["sleep", "3600"]
  stop_grace_period: 1s
services:
  plain: *sleep
  minimal:
    <<: *sleep
    cap_drop: [ALL]
    cap_add: [net_bind_service]
  more:
    <<: *sleep
    cap_add: [CAP_SYS_TIME, Net_Admin]
    cap_drop: [chown]
  everything:
    <<: *sleep
    privileged: true
"#,
    );
    ok(p.up());
    const DOCKER_DEFAULT: u64 = 0xa80425fb;
    const CHOWN: u64 = 1 << 0;
    const NET_BIND_SERVICE: u64 = 1 << 10;
    const NET_ADMIN: u64 = 1 << 12;
    const SYS_TIME: u64 = 1 << 25;
    assert_eq!(cap_eff(&p, "caps-plain-1"), DOCKER_DEFAULT);
    assert_eq!(cap_eff(&p, "caps-minimal-1"), NET_BIND_SERVICE);
    assert_eq!(
        cap_eff(&p, "caps-more-1"),
        (DOCKER_DEFAULT | SYS_TIME | NET_ADMIN) & !CHOWN
    );
    // Every capability berth itself may pass on (a sandbox may withhold
    // some from the whole host, as Docker's "all" would not have them
    // either).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(cap_eff(&p, "caps-everything-1"), bounding);
    let host_config = &p.root.inspect("caps-more-1")["HostConfig"];
    assert_eq!(host_config["CapAdd"], json!(["CAP_SYS_TIME", "Net_Admin"]));
    assert_eq!(host_config["CapDrop"], json!(["chown"]));
    assert_eq!(
        p.root.inspect("caps-everything-1")["HostConfig"]["Privileged"],
        true
    );
    // Privileged: /sys writable, nothing masked, the host's devices there.
    let sys = p.sh("caps-everything-1", "grep ' /sys ' /proc/mounts");
    assert!(sys.contains(" rw,"), "{sys}");
    let plain_sys = p.sh("caps-plain-1", "grep ' /sys ' /proc/mounts");
    assert!(plain_sys.contains(" ro,"), "{plain_sys}");
    let keys = p.sh(
        "caps-everything-1",
        "grep -c ' /proc/keys ' /proc/mounts || true",
    );
    assert_eq!(keys.trim(), "0", "/proc/keys is not masked");
    let host_dev = ["kmsg", "mem", "loop0", "tty0"]
        .into_iter()
        .find(|d| Path::new("/dev").join(d).exists())
        .expect("a host device to look for");
    p.sh("caps-everything-1", &format!("test -e /dev/{host_dev}"));
    let (code, _) = p.try_sh("caps-plain-1", &format!("test -e /dev/{host_dev}"));
    assert_ne!(code, 0, "/dev/{host_dev} only in the privileged container");
    ok(p.down(&[]));

    // A name that is no capability is refused, by name.
    p.write(
        r#"
name: caps
services:
  bad:
    image: featimg
    command: ["true"]
    cap_add: [NOT_A_CAP]
"#,
    );
    let out = failed(p.up());
    assert!(
        out.contains("cap_add") && out.contains("\"NOT_A_CAP\""),
        "{out}"
    );
}

#[test]
fn read_only_root_with_writable_tmpfs_volumes_and_shm() {
    if !need_root("read_only_root_with_writable_tmpfs_volumes_and_shm") {
        return;
    }
    let p = Project::new(
        "ro",
        r#"
name: ro
services:
  app:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    read_only: true
    working_dir: /srv/work
    shm_size: 32m
    tmpfs:
      - /tmp
      - /run:exec,size=4m,uid=1000
    volumes:
      - data:/data
volumes:
  data: {}
"#,
    );
    ok(p.up());
    let c = "ro-app-1";
    let (code, out) = p.try_sh(c, "touch /root-file");
    assert_ne!(code, 0);
    assert!(out.contains("Read-only file system"), "{out}");
    // The working dir was made before the root turned read-only.
    assert_eq!(p.sh(c, "pwd"), "/srv/work\n");
    p.sh(c, "touch /tmp/x /data/x /dev/shm/x");
    // /dev/shm has the size asked for.
    let shm = p.sh(c, "df -k /dev/shm | tail -1");
    assert_eq!(shm.split_whitespace().nth(1), Some("32768"), "{shm}");
    // tmpfs gets Docker's noexec unless `exec` is given.
    let (code, out) = p.try_sh(c, "cp /bin/busybox /tmp/busybox && /tmp/busybox true");
    assert_ne!(code, 0, "/tmp is noexec");
    assert!(out.contains("Permission denied"), "{out}");
    p.sh(c, "cp /bin/busybox /run/busybox && /run/busybox true");
    assert_eq!(p.sh(c, "stat -c %u /run"), "1000\n");
    let run = p.sh(c, "df -k /run | tail -1");
    assert_eq!(run.split_whitespace().nth(1), Some("4096"), "{run}");
    ok(p.down(&[]));
}

#[test]
fn sysctls_apply_in_the_containers_namespaces_and_others_are_refused() {
    if !need_root("sysctls_apply_in_the_containers_namespaces_and_others_are_refused") {
        return;
    }
    let host_shmmax = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let p = Project::new(
        "sysctl",
        r#"
name: sc
services:
  app:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    sysctls:
      net.ipv4.ip_forward: "1"
      net.core.somaxconn: "1234"
      kernel.shmmax: "123456789"
"#,
    );
    ok(p.up());
    assert_eq!(
        p.sh(
            "sc-app-1",
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/core/somaxconn /proc/sys/kernel/shmmax"
        ),
        "1\n1234\n123456789\n"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax,
        "the host's value is untouched"
    );
    ok(p.down(&[]));

    p.write(
        r#"
name: sc
services:
  app:
    image: featimg
    command: ["true"]
    sysctls:
      vm.swappiness: "10"
"#,
    );
    let out = failed(p.up());
    assert!(
        out.contains("\"vm.swappiness\"") && out.contains("not in a separate kernel namespace"),
        "{out}"
    );
    p.write(
        r#"
name: sc
services:
  app:
    image: featimg
    command: ["true"]
    network_mode: host
    sysctls:
      net.ipv4.ip_forward: "1"
"#,
    );
    let out = failed(p.up());
    assert!(
        out.contains("\"net.ipv4.ip_forward\"") && out.contains("host's network namespace"),
        "{out}"
    );
}

/// A cgroup v1 file of the container, if that controller is mounted.
fn cgroup_v1_file(controller: &str, id: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/berth/{id}/{file}")).ok()
}

#[test]
fn devices_groups_domainname_and_oom_settings() {
    if !need_root("devices_groups_domainname_and_oom_settings") {
        return;
    }
    if !Path::new("/dev/fuse").exists() {
        eprintln!(
            "SKIPPED: devices_groups_domainname_and_oom_settings maps /dev/fuse, which this host lacks"
        );
        return;
    }
    let p = Project::new(
        "dev",
        r#"
name: dev
services:
  app:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    devices:
      - /dev/fuse:/dev/myfuse:r
      - /dev/null
    group_add: [audio, "4242"]
    domainname: example.org
    oom_score_adj: 500
    mem_limit: 64m
    oom_kill_disable: true
    mem_swappiness: 10
"#,
    );
    ok(p.up());
    let c = "dev-app-1";
    // The host node's numbers and mode.
    assert_eq!(p.sh(c, "stat -c '%t,%T %a' /dev/myfuse"), "a,e5 600\n");
    assert_eq!(p.sh(c, "exec 3< /dev/myfuse && echo opened"), "opened\n");
    // Supplementary groups: the added ones, for pid 1 and exec'd
    // processes alike.
    assert_eq!(p.sh(c, "id -G"), "0 29 4242\n");
    let status = p.sh(c, "grep Groups /proc/1/status");
    assert_eq!(
        status.split_whitespace().collect::<Vec<_>>(),
        ["Groups:", "29", "4242"]
    );
    assert_eq!(p.sh(c, "cat /proc/sys/kernel/domainname"), "example.org\n");
    assert_eq!(p.sh(c, "cat /proc/1/oom_score_adj"), "500\n");
    let id = p.id(c);
    if let Some(list) = cgroup_v1_file("devices", &id, "devices.list") {
        // Docker's policy: deny by default, the standard nodes and ours.
        assert!(!list.contains("a *:* rwm"), "{list}");
        assert!(list.contains("c 10:229 r\n"), "{list}");
        // Read-only in the cgroup: opening for writing is refused by the
        // kernel, even to root, whom the file mode would let write.
        let (code, out) = p.try_sh(c, "exec 3> /dev/myfuse");
        assert_ne!(code, 0, "{out}");
        assert!(out.contains("Operation not permitted"), "{out}");
        // A node made in the container for an unlisted device cannot be
        // opened, even by root (mknod itself is allowed, as in Docker).
        let (code, out) = p.try_sh(c, "mknod /tmp/loop b 7 0 && head -c 1 /tmp/loop");
        assert_ne!(code, 0, "{out}");
        assert!(out.contains("Operation not permitted"), "{out}");
    } else {
        eprintln!("SKIPPED (part): no v1 devices controller to check device rules on");
    }
    match (
        cgroup_v1_file("memory", &id, "memory.oom_control"),
        cgroup_v1_file("memory", &id, "memory.swappiness"),
    ) {
        (Some(oom), Some(swappiness)) => {
            assert!(oom.contains("oom_kill_disable 1"), "{oom}");
            assert_eq!(swappiness.trim(), "10");
        }
        _ => eprintln!("SKIPPED (part): no v1 memory controller to check OOM settings on"),
    }
    ok(p.down(&[]));

    // A device that is not there is named.
    p.write(
        r#"
name: dev
services:
  app:
    image: featimg
    command: ["true"]
    devices: ["/dev/berth-no-such-device"]
"#,
    );
    let out = failed(p.up());
    assert!(out.contains("\"/dev/berth-no-such-device\""), "{out}");
}

#[test]
fn logging_drivers_rotate_or_keep_nothing() {
    if !need_root("logging_drivers_rotate_or_keep_nothing") {
        return;
    }
    let p = Project::new(
        "logs",
        r#"
name: lg
services:
  rotated:
    image: featimg
    command: ["sh", "-c", "i=0; while [ $$i -lt 200 ]; do echo line $$i; i=$$((i+1)); done; sleep 3600"]
    stop_grace_period: 1s
    logging:
      driver: json-file
      options:
        max-size: 1k
        max-file: "2"
  silent:
    image: featimg
    command: ["sh", "-c", "echo nobody reads this; sleep 3600"]
    stop_grace_period: 1s
    logging:
      driver: none
"#,
    );
    ok(p.up());
    let rotated = p.container_dir("lg-rotated-1");
    p.root.wait_for("lg-rotated-1", "the log to rotate", |_| {
        rotated.join("container.log.1").exists()
    });
    assert!(!rotated.join("container.log.2").exists(), "max-file 2");
    for f in ["container.log", "container.log.1"] {
        let size = std::fs::metadata(rotated.join(f)).unwrap().len();
        assert!(size <= 1024, "{f}: {size} bytes");
    }
    let silent = p.container_dir("lg-silent-1");
    assert!(!silent.join("container.log").exists());
    let out = failed(p.root.run(&["logs", "lg-silent-1"]));
    assert!(
        out.contains("configured logging driver does not support reading"),
        "{out}"
    );
    ok(p.down(&[]));

    p.write(
        r#"
name: lg
services:
  app:
    image: featimg
    command: ["true"]
    logging:
      driver: syslog
"#,
    );
    let out = failed(p.up());
    assert!(
        out.contains("logging driver \"syslog\" is not supported"),
        "{out}"
    );
}

#[test]
fn hooks_run_in_the_container_and_pre_stop_comes_before_the_image_stop_signal() {
    if !need_root("hooks_run_in_the_container_and_pre_stop_comes_before_the_image_stop_signal") {
        return;
    }
    let p = Project::new("hooks", "");
    let shared = p.root.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let shared_s = shared.display().to_string();
    p.write(&format!(
        r#"
name: hk
services:
  app:
    image: featimg
    # The image's StopSignal is SIGUSR1: the trap records which came.
    command: ["sh", "-c", "trap 'echo got-usr1 >> /shared/order; exit 0' USR1; trap 'echo got-term >> /shared/order; exit 0' TERM; while :; do sleep 0.1; done"]
    stop_grace_period: 5s
    volumes:
      - {shared_s}:/shared
    post_start:
      - command: ["sh", "-c", "echo post-start-ran; echo started > /tmp/marker"]
      - command: ["sh", "-c", "echo \"hook $$(id -u) $$HOOK_VAR $$(pwd)\""]
        user: nobody
        working_dir: /var
        environment:
          HOOK_VAR: from-hook
    pre_stop:
      - command: ["sh", "-c", "echo pre-stop >> /shared/order"]
"#
    ));
    ok(p.up());
    let c = "hk-app-1";
    assert_eq!(p.sh(c, "cat /tmp/marker"), "started\n");
    let logs = ok(p.root.run(&["logs", c]));
    assert!(logs.contains("post-start-ran\n"), "{logs}");
    assert!(logs.contains("hook 65534 from-hook /var\n"), "{logs}");
    ok(p.down(&[]));
    assert_eq!(
        std::fs::read_to_string(shared.join("order")).unwrap(),
        "pre-stop\ngot-usr1\n"
    );

    // A failing post_start fails the start, with its status.
    p.write(
        r#"
name: hk
services:
  app:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    post_start:
      - command: ["sh", "-c", "echo about to fail; exit 3"]
"#,
    );
    let out = failed(p.up());
    assert!(
        out.contains("post_start hook 1") && out.contains("exited with status 3"),
        "{out}"
    );
    let logs = ok(p.root.run(&["logs", "hk-app-1"]));
    assert!(logs.contains("about to fail"), "{logs}");
    ok(p.down(&[]));

    // A pre_stop that overruns the grace period is killed and the stop
    // goes on.
    p.write(
        r#"
name: hk
services:
  app:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    stop_signal: SIGKILL
    pre_stop:
      - command: ["sleep", "600"]
"#,
    );
    ok(p.up());
    let out = p.down(&[]);
    let stderr = text(&out.stderr);
    ok(out);
    assert!(
        stderr.contains("pre_stop hook 1") && stderr.contains("timed out"),
        "{stderr}"
    );
    assert!(p.root.ids().is_empty());
}

#[test]
fn anonymous_volumes_survive_recreate_and_new_volumes_get_the_images_files() {
    if !need_root("anonymous_volumes_survive_recreate_and_new_volumes_get_the_images_files") {
        return;
    }
    let compose = |value: &str| {
        format!(
            r#"
name: av
services:
  app:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    environment:
      VERSION: "{value}"
    volumes:
      - /data
      - etc:/etc
      - type: volume
        source: bare
        target: /opt/etc
        volume:
          nocopy: true
volumes:
  etc: {{}}
  bare: {{}}
"#
        )
    };
    let p = Project::new("anon", &compose("1"));
    ok(p.up());
    let c = "av-app-1";
    // The image's VOLUME got an anonymous volume, seeded from the image.
    assert_eq!(
        p.sh(c, "cat /var/lib/app/seed.txt"),
        "seeded by the image\n"
    );
    // A new named volume over /etc starts with the image's /etc.
    assert!(p.sh(c, "cat /etc/passwd").contains("app:x:1000"));
    let etc_data = p.root.dir.join("volumes/av_etc/_data");
    assert!(etc_data.join("group").exists());
    // nocopy: nothing copied.
    assert_eq!(p.sh(c, "ls -A /opt/etc | wc -l"), "0\n");
    p.sh(
        c,
        "echo kept > /data/file; echo mine > /var/lib/app/seed.txt",
    );
    // Two anonymous volumes (/data, /var/lib/app) and the two named ones.
    let before = p.volumes();
    assert_eq!(before.len(), 4, "{before:?}");

    // A config change recreates the container; its anonymous volumes go
    // to the new one.
    let old_id = p.id(c);
    p.write(&compose("2"));
    ok(p.up());
    assert_ne!(p.id(c), old_id, "the config change did not recreate {c}");
    assert_eq!(p.sh(c, "echo $VERSION"), "2\n");
    assert_eq!(p.sh(c, "cat /data/file"), "kept\n");
    assert_eq!(p.sh(c, "cat /var/lib/app/seed.txt"), "mine\n");
    assert_eq!(p.volumes(), before);

    // `down` keeps every volume, `down -v` removes them all.
    ok(p.down(&[]));
    assert_eq!(p.volumes(), before);
    ok(p.up());
    assert_eq!(p.sh(c, "cat /data/file"), "kept\n");
    ok(p.down(&["-v"]));
    assert!(p.volumes().is_empty(), "{:?}", p.volumes());
}
