//! berth's cgroup v2 limits against a real kernel. This machine binds every
//! controller to cgroup v1, so `tests/cgroup2-vm/run.sh` boots a Debian
//! kernel in qemu with `cgroup_no_v1=all` and the berth binary under test
//! as the workload, and reports one line per check (see
//! `tests/cgroup2-vm/init.sh`). qemu and the kernel come from
//! `tests/cgroup2-vm/fetch.sh`, which `scripts/test.sh` runs; without them
//! the test says SKIPPED.

use std::process::Command;

use berth_e2e::{berth_bin, workspace_root};

/// Every check the VM must report as passed.
const CHECKS: &[&str] = &[
    "run-rm",
    "run-limits",
    "enabled-cpu",
    "enabled-cpuset",
    "enabled-memory",
    "enabled-pids",
    "memory.max",
    "memory.low",
    "memory.swap.max",
    "cpu.max",
    "cpu.weight",
    "cpuset.cpus",
    "pids.max",
    "pid1-in-cgroup",
    "pid1-cgroup-file",
    "exec-joins",
    "exec-cpuset",
    "stats",
    "restart",
    "restart-memory.max",
    "restart-pid1-in-cgroup",
    "rm-removes-cgroup",
    "swap-none",
    "swap-unlimited",
    "default-memory.max",
    "default-pids.max",
    "default-cpu.max",
    "default-cpu.weight",
    "cpu-quota-throttles",
    "oom-exit-137",
    "oom-inspect",
    "forkbomb-capped",
    "forkbomb-rm",
    "forkbomb-cgroup-removed",
    "no-cgroups-left",
    "no-containers-left",
];

#[test]
fn cgroup_v2_limits_oom_pids_stats_and_removal_in_a_vm() {
    if std::env::var_os("BERTH_SKIP_VM").is_some() {
        eprintln!("SKIPPED: cgroup v2 VM test (BERTH_SKIP_VM is set)");
        return;
    }
    let script = workspace_root().join("tests/cgroup2-vm/run.sh");
    let out = Command::new(&script)
        .arg(berth_bin())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        eprintln!(
            "SKIPPED: cgroup v2 VM test: {} {}",
            stdout.trim(),
            stderr.trim()
        );
        return;
    }
    eprintln!("{stdout}");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.contains(" FAIL ")).collect();
    assert!(
        failed.is_empty(),
        "failed in the VM:\n{}",
        failed.join("\n")
    );
    for check in CHECKS {
        let line = format!("BERTH-VM {check} PASS");
        assert!(
            stdout.lines().any(|l| l.starts_with(&line)),
            "no `{line}` from the VM:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        out.status.success(),
        "run.sh exited with {}:\n{stdout}\n{stderr}",
        out.status
    );
}
