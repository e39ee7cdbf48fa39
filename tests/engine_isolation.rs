//! End-to-end: the isolation options of a Compose service, through `berth
//! up -d` and the real runtime (issue #4): capabilities and privileged,
//! read-only root, tmpfs options, shm size, sysctls, devices, groups,
//! domain name, OOM settings.
//!
//! Root only; each test has its own `--root` and project folder, and the
//! `Root` guard removes every container (processes, cgroups, mounts) even
//! when an assertion fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod features_support;
mod runtime_support;

use std::path::Path;

use features_support::{Project, failed};
use runtime_support::{need_root, ok};
use serde_json::json;

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
