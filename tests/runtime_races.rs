//! Regression tests for races between the CLI and the shim, found by
//! running many short containers at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use runtime_support::{Root, need_root, text};

/// `run --rm` of a container that exits at once: the shim may remove it
/// before the foreground CLI looks it up to forward signals; the CLI must
/// still report the exit code. Generated names that collide are drawn again.
#[test]
fn parallel_rm_runs_of_short_containers_all_report_their_exit_code() {
    if !need_root("parallel_rm_runs_of_short_containers_all_report_their_exit_code") {
        return;
    }
    let root = Root::new("race");
    let rootfs = runtime_support::rootfs().display().to_string();
    for round in 0..6 {
        std::thread::scope(|scope| {
            let runs: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        root.run(&["run", "--rm", "--rootfs", &rootfs, "sh", "-c", "exit 42"])
                    })
                })
                .collect();
            for run in runs {
                let out = run.join().unwrap();
                assert_eq!(
                    out.status.code(),
                    Some(42),
                    "round {round}: {}",
                    text(&out.stderr)
                );
            }
        });
    }
    assert!(root.ids().is_empty(), "--rm left {:?}", root.ids());
}
