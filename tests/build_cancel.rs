//! End-to-end: Ctrl+C during a compose build (`compose build`, attached
//! `up`) cancels it: berth exits 130 promptly and leaves no RUN container,
//! shim, mount or cgroup behind; a second Ctrl+C exits at once; a builder
//! killed with SIGKILL has its RUN container killed and removed by the
//! container's shim; a RUN container whose shim died too is removed by
//! `builder prune`. Outside the build, attached `up` keeps its graceful
//! Ctrl+C. `berth agent` stopped during a build cancels it. RUN steps
//! join berth's default bridge: a cancelled step leaves no network
//! endpoint, the shim of one whose builder was killed releases it, and
//! one whose shim was killed too is released by `builder prune`. Root only; each test has its own
//! `--root`, cleaned up on drop, and runs berth in a network namespace of
//! its own (`Project::new`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;
mod build_support;
mod compose_support;
mod net_support;
mod runtime_support;

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStderr, Stdio};
use std::time::{Duration, Instant};

use build_support::need_root_and_net;
use compose_support::{Project, finish, signal};
use net_support::assert_no_endpoint_leftovers;
use runtime_support::{alive, cgroup_dirs, text};

const COMPOSE: &str = r#"
name: proj
services:
  app:
    build: ./app
    command: ["sh", "-c", "echo app up; trap 'exit 0' TERM; while :; do sleep 0.1; done"]
"#;

/// A RUN step that says `started` and then sleeps for ten minutes.
const SLOW_DOCKERFILE: &str = "FROM busybox\nRUN echo started && sleep 600\n";

fn project(label: &str, dockerfile: &str) -> Project {
    let p = Project::new(label, COMPOSE);
    std::fs::create_dir_all(p.dir.join("app")).unwrap();
    std::fs::write(p.dir.join("app/Dockerfile"), dockerfile).unwrap();
    p
}

/// What a RUN container is while it runs: its id and the pids of its
/// shim and its pid 1.
struct RunContainer {
    id: String,
    shim_pid: i64,
    pid: i64,
}

/// Starts `berth ARGS` and reads its stderr until the RUN step printed
/// `started`; returns the process, the rest of its stderr, and the RUN
/// container.
fn start_until_run(
    p: &Project,
    args: &[&str],
) -> (Child, Lines<BufReader<ChildStderr>>, RunContainer) {
    let mut child = p
        .cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.ends_with(" started") {
            break;
        }
    }
    assert!(
        seen.contains(" started"),
        "the RUN step never started:\n{seen}"
    );
    let ids = container_ids(&p.root.dir);
    assert_eq!(ids.len(), 1, "one RUN container: {ids:?}");
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            p.root
                .dir
                .join("containers")
                .join(&ids[0])
                .join("state.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let run = RunContainer {
        id: ids[0].clone(),
        shim_pid: state["shim_pid"].as_i64().unwrap(),
        pid: state["pid"].as_i64().unwrap(),
    };
    assert!(
        alive(run.shim_pid) && alive(run.pid),
        "the RUN container runs"
    );
    (child, lines, run)
}

fn container_ids(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("containers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Mount points under the test's root, in this (the host's) namespace.
fn mounts_under(root: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(root))
        .map(str::to_owned)
        .collect()
}

/// Nothing of `run` is left: no folder (nor one in the trash), no shim,
/// no process, no cgroup, no mount. Waits up to `within` for it, since
/// after a SIGKILL of the builder the shim removes the container on its own.
fn assert_gone(p: &Project, run: &RunContainer, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let folders = container_ids(&p.root.dir);
        let trash = container_ids(&p.root.dir.join("trash")); // same layout: one folder per id
        let cgroups: Vec<_> = cgroup_dirs(&run.id)
            .into_iter()
            .filter(|d| d.exists())
            .collect();
        let mounts = mounts_under(&p.root.dir);
        let left = !folders.is_empty()
            || trash.contains(&run.id)
            || alive(run.shim_pid)
            || alive(run.pid)
            || !cgroups.is_empty()
            || !mounts.is_empty();
        if !left {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: containers {folders:?}, trash {trash:?}, shim alive {}, pid 1 alive {}, cgroups {cgroups:?}, mounts {mounts:?}",
            alive(run.shim_pid),
            alive(run.pid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rest(lines: Lines<BufReader<ChildStderr>>) -> String {
    lines.map_while(Result::ok).collect::<Vec<_>>().join("\n")
}

#[test]
fn ctrl_c_cancels_compose_build_and_removes_the_run_container() {
    if !need_root_and_net("ctrl_c_cancels_compose_build_and_removes_the_run_container") {
        return;
    }
    let p = project("cancel-build", SLOW_DOCKERFILE);
    let (child, lines, run) = start_until_run(&p, &["compose", "build"]);
    let sent = Instant::now();
    signal(child.id(), "INT");
    let stderr = rest(lines);
    let out = finish(child, &["compose", "build"]);
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "took {:?}",
        sent.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Cancelling the build"), "{stderr}");
    assert!(
        stderr.contains("berth: interrupted: the build was cancelled"),
        "{stderr}"
    );
    assert_gone(&p, &run, Duration::from_secs(5));
    assert_no_endpoint_leftovers(&p.root);
    // The image was not made.
    let images = text(&p.run(&["images"]).stdout);
    assert!(!images.contains("proj-app"), "{images}");
}

#[test]
fn ctrl_c_cancels_the_build_of_attached_up_and_creates_nothing() {
    if !need_root_and_net("ctrl_c_cancels_the_build_of_attached_up_and_creates_nothing") {
        return;
    }
    let p = project("cancel-up", SLOW_DOCKERFILE);
    let (child, lines, run) = start_until_run(&p, &["compose", "up"]);
    let sent = Instant::now();
    signal(child.id(), "INT");
    let stderr = rest(lines);
    let out = finish(child, &["compose", "up"]);
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "took {:?}",
        sent.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_gone(&p, &run, Duration::from_secs(5));
    assert_no_endpoint_leftovers(&p.root);
    assert!(p.ps().is_empty(), "no service container: {:?}", p.ps());
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_the_shim_removes_the_container() {
    if !need_root_and_net("a_second_ctrl_c_exits_at_once_and_the_shim_removes_the_container") {
        return;
    }
    let p = project("cancel-twice", SLOW_DOCKERFILE);
    let (child, lines, run) = start_until_run(&p, &["up", "-d"]);
    signal(child.id(), "INT");
    signal(child.id(), "INT");
    let stderr = rest(lines);
    let out = finish(child, &["up", "-d"]);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    // The step ends either way: berth killed it on the first Ctrl+C, or
    // its shim did when berth was gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(run.shim_pid) || alive(run.pid) {
        assert!(Instant::now() < deadline, "the RUN step outlived berth");
        std::thread::sleep(Duration::from_millis(50));
    }
    if !container_ids(&p.root.dir).is_empty() {
        // berth exited between killing the step (its shim then ended as
        // for any exit, its owner still alive) and removing the container:
        // a leftover whose shim is gone, which the next build or `builder
        // prune` removes, its network endpoint with it.
        let out = p.run(&["builder", "prune", "-f"]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            stdout.contains("Deleted leftover build containers: 1")
                && stdout.contains("Released network endpoints of leftover build containers: 1"),
            "{stdout}"
        );
    }
    // Otherwise the shim removed the container and released its endpoint
    // (its exit hook).
    assert_gone(&p, &run, Duration::from_secs(5));
    assert_no_endpoint_leftovers(&p.root);
}

fn endpoint_records(p: &Project) -> usize {
    std::fs::read_dir(p.root.dir.join("endpoints")).map_or(0, |d| d.count())
}

/// The builder's records of its RUN steps' endpoints (`build/run-endpoints`).
fn builder_endpoint_records(p: &Project) -> Vec<String> {
    std::fs::read_dir(p.root.dir.join("build/run-endpoints"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_builder_killed_with_sigkill_leaves_no_run_container() {
    if !need_root_and_net("a_builder_killed_with_sigkill_leaves_no_run_container") {
        return;
    }
    let p = project("cancel-kill", SLOW_DOCKERFILE);
    let (child, _lines, run) = start_until_run(&p, &["compose", "build"]);
    signal(child.id(), "KILL");
    let out = finish(child, &["compose", "build"]);
    assert_eq!(out.status.code(), None, "killed by SIGKILL");
    // The shim saw its owner go: it killed pid 1 and removed the container.
    assert_gone(&p, &run, Duration::from_secs(10));
    // And released its network endpoint (namespace, veth, address).
    assert_no_endpoint_leftovers(&p.root);
    // The builder's record of it is left; the next build drops it.
    assert_eq!(builder_endpoint_records(&p), std::slice::from_ref(&run.id));
    std::fs::write(
        p.dir.join("app/Dockerfile"),
        "FROM busybox\nRUN echo quick\n",
    )
    .unwrap();
    let out = p.run(&["compose", "build"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_no_endpoint_leftovers(&p.root);
    assert!(
        builder_endpoint_records(&p).is_empty(),
        "{:?}",
        builder_endpoint_records(&p)
    );
}

#[test]
fn builder_prune_removes_a_run_container_whose_builder_and_shim_died() {
    if !need_root_and_net("builder_prune_removes_a_run_container_whose_builder_and_shim_died") {
        return;
    }
    let p = project("cancel-prune", SLOW_DOCKERFILE);
    let (child, _lines, run) = start_until_run(&p, &["compose", "build"]);
    // The shim first, so nothing is left to watch the builder.
    signal(run.shim_pid as u32, "KILL");
    signal(child.id(), "KILL");
    let _ = finish(child, &["compose", "build"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(run.pid), "pid 1 outlives its shim and builder");
    // With the shim gone, nothing released the step's network endpoint.
    assert_eq!(endpoint_records(&p), 1, "the step's endpoint");
    assert_eq!(container_ids(&p.root.dir), std::slice::from_ref(&run.id));
    let out = p.run(&["builder", "prune", "-f"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("Deleted leftover build containers: 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Released network endpoints of leftover build containers: 1"),
        "{stdout}"
    );
    assert_gone(&p, &run, Duration::from_secs(5));
    assert_no_endpoint_leftovers(&p.root);
    assert!(builder_endpoint_records(&p).is_empty());
}

#[test]
fn after_a_build_ctrl_c_stops_attached_up_gracefully() {
    if !need_root_and_net("after_a_build_ctrl_c_stops_attached_up_gracefully") {
        return;
    }
    let p = project("cancel-after", "FROM busybox\nRUN echo built > /built\n");
    let child = p
        .cmd(&["compose", "up"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.wait_until("app running", |s| {
        s.len() == 1 && s.iter().all(|(_, st)| st == "running")
    });
    std::thread::sleep(Duration::from_millis(300));
    signal(child.id(), "INT");
    let out = finish(child, &["compose", "up"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        stdout.contains("Gracefully stopping... (press Ctrl+C again to force)"),
        "{stdout}"
    );
    assert!(stdout.contains("app-1 exited with code 0"), "{stdout}");
    assert!(
        !text(&out.stderr).contains("build was cancelled"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(p.states(), [("proj-app-1".to_owned(), "exited".to_owned())]);
}

#[test]
fn the_agent_cancels_its_build_when_it_shuts_down() {
    if !need_root_and_net("the_agent_cancels_its_build_when_it_shuts_down") {
        return;
    }
    // The root (busybox imported) of a project; the agent watches a
    // folder of its own holding the same project.
    let p = project("cancel-agent", SLOW_DOCKERFILE);
    let projects = agent_support::TempDir::new("cancel-agent-projects");
    projects.write("proj/compose.yaml", COMPOSE);
    projects.write("proj/app/Dockerfile", SLOW_DOCKERFILE);
    let agent = agent_support::Agent::start_with(
        projects.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--root",
            p.root.dir.to_str().unwrap(),
        ],
    );
    // The RUN step runs once its container's log says so.
    let probe = || {
        let ids = container_ids(&p.root.dir);
        let id = ids.first()?;
        let dir = p.root.dir.join("containers").join(id);
        let log = std::fs::read_to_string(dir.join("container.log")).ok()?;
        if !log.contains("started") {
            return None;
        }
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("state.json")).ok()?).ok()?;
        Some(RunContainer {
            id: id.clone(),
            shim_pid: state["shim_pid"].as_i64()?,
            pid: state["pid"].as_i64()?,
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        if let Some(run) = probe() {
            break run;
        }
        assert!(
            Instant::now() < deadline,
            "the RUN step did not start\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stopping = Instant::now();
    let status = agent.terminate();
    assert!(status.success(), "{status:?}");
    // Not the 10 s grace the agent gives reconciles that cannot stop.
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "took {:?}",
        stopping.elapsed()
    );
    assert_gone(&p, &run, Duration::from_secs(5));
    assert_no_endpoint_leftovers(&p.root);
}
