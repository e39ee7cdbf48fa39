//! End-to-end: healthchecks and restart policies, run by each container's
//! shim, through the `berth` binary (root only). No timing thresholds:
//! only the order and count of what happened, with generous polling.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use std::time::{Duration, Instant, SystemTime};

use runtime_support::{Root, need_root, text, wait_long};
use serde_json::Value;

/// Polls `inspect` for up to a minute (the shared machine can be slow).
fn health(v: &Value) -> &Value {
    &v["State"]["Health"]
}

fn log_entries(v: &Value) -> Vec<Value> {
    health(v)["Log"].as_array().cloned().unwrap_or_default()
}

/// The STATUS column of `ps -a` for one container (columns are counted in
/// characters: a cut command ends in `…`).
fn ps_status(root: &Root, name: &str) -> String {
    let out = root.run(&["ps", "-a"]);
    let s = text(&out.stdout);
    let header = s.lines().next().unwrap();
    let column = |title: &str| header[..header.find(title).unwrap()].chars().count();
    let (from, to) = (column("STATUS"), column("NAMES"));
    s.lines()
        .find(|l| l.trim_end().ends_with(name))
        .map(|l| {
            l.chars()
                .skip(from)
                .take(to - from)
                .collect::<String>()
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

#[test]
fn a_passing_probe_runs_inside_the_container_and_makes_it_healthy() {
    if !need_root("a_passing_probe_runs_inside_the_container_and_makes_it_healthy") {
        return;
    }
    let root = Root::new("hc-pass");
    // The probe reports where it runs: its pid must be in the container's
    // /proc (its pid namespace), and its user, env, cwd and hostname are
    // the container's.
    let probe = "echo user=$(id -u) env=$PROBE_ENV cwd=$(pwd) host=$(hostname); test -d /proc/$$ && echo in-pidns";
    root.detach(
        &[
            "--name",
            "hc",
            "--hostname",
            "box",
            "--user",
            "nobody",
            "-w",
            "/tmp",
            "-e",
            "PROBE_ENV=seen",
            "--health-cmd",
            probe,
            "--health-interval",
            "200ms",
        ],
        &["sleep", "1000"],
    );
    let v = wait_long(&root, "hc", "healthy", |v| health(v)["Status"] == "healthy");
    assert_eq!(health(&v)["FailingStreak"], 0, "{v:#}");
    let last = log_entries(&v).last().cloned().unwrap();
    assert_eq!(last["ExitCode"], 0, "{v:#}");
    assert_eq!(
        last["Output"], "user=65534 env=seen cwd=/tmp host=box\nin-pidns\n",
        "{v:#}"
    );
    assert!(
        last["Start"].as_str().unwrap() <= last["End"].as_str().unwrap(),
        "{v:#}"
    );
    assert_eq!(
        v["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", probe])
    );
    assert_eq!(v["Config"]["Healthcheck"]["Interval"], 200_000_000);
    let status = ps_status(&root, "hc");
    assert!(
        status.starts_with("Up ") && status.ends_with(" (healthy)"),
        "{status:?}"
    );
}

#[test]
fn a_failing_probe_is_unhealthy_after_retries_and_the_log_keeps_five() {
    if !need_root("a_failing_probe_is_unhealthy_after_retries_and_the_log_keeps_five") {
        return;
    }
    let root = Root::new("hc-fail");
    root.detach(
        &[
            "--name",
            "sick",
            "--health-cmd",
            "echo failing; exit 3",
            "--health-interval",
            "100ms",
            "--health-retries",
            "3",
        ],
        &["sleep", "1000"],
    );
    // Until `retries` failures it is starting, never unhealthy earlier.
    let deadline = Instant::now() + Duration::from_secs(60);
    let v = loop {
        let v = root.inspect("sick");
        let h = health(&v);
        let streak = h["FailingStreak"].as_u64().unwrap_or(0);
        match h["Status"].as_str() {
            Some("starting") => assert!(streak < 3, "{v:#}"),
            Some("unhealthy") => {
                assert!(streak >= 3, "unhealthy before 3 failures: {v:#}");
                break v;
            }
            other => panic!("unexpected health {other:?}: {v:#}"),
        }
        assert!(Instant::now() < deadline, "never unhealthy: {v:#}");
        std::thread::sleep(Duration::from_millis(20));
    };
    for entry in log_entries(&v) {
        assert_eq!(entry["ExitCode"], 3, "{v:#}");
        assert_eq!(entry["Output"], "failing\n", "{v:#}");
    }
    let status = ps_status(&root, "sick");
    assert!(status.ends_with(" (unhealthy)"), "{status:?}");
    // Many more probes: the log keeps the last five.
    let v = wait_long(&root, "sick", "7 failures", |v| {
        health(v)["FailingStreak"].as_u64().unwrap_or(0) >= 7
    });
    assert_eq!(log_entries(&v).len(), 5, "{v:#}");
    assert_eq!(health(&v)["Status"], "unhealthy");
}

#[test]
fn a_probe_that_hangs_is_killed_at_its_timeout() {
    if !need_root("a_probe_that_hangs_is_killed_at_its_timeout") {
        return;
    }
    let root = Root::new("hc-hang");
    // --init reaps what the killed probe leaves, so only live processes
    // are in the container's /proc.
    root.detach(
        &[
            "--name",
            "hang",
            "--init",
            "--health-cmd",
            "sleep 97; true",
            "--health-timeout",
            "300ms",
            "--health-interval",
            "100ms",
            "--health-retries",
            "1",
        ],
        &["sleep", "1000"],
    );
    let v = wait_long(&root, "hang", "unhealthy", |v| {
        health(v)["Status"] == "unhealthy"
    });
    let first = log_entries(&v)[0].clone();
    assert_eq!(first["ExitCode"], -1, "{v:#}");
    assert_eq!(
        first["Output"], "Health check exceeded timeout (300ms)",
        "{v:#}"
    );
    // No `sleep 97` of an earlier, timed-out probe survives (the one
    // running now, if any, is younger than its timeout). Counted from
    // inside, through exec: cmdlines of live processes only.
    let count = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done | grep -c '^sleep 97 ' || true";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = root.run(&["exec", "hang", "sh", "-c", count]);
        let n: u32 = text(&out.stdout).trim().parse().unwrap_or(99);
        assert!(n <= 1, "timed-out probes left running: {n}");
        let v = root.inspect("hang");
        if log_entries(&v).len() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "probes stopped: {v:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn start_period_failures_do_not_count_and_a_success_turns_healthy() {
    if !need_root("start_period_failures_do_not_count_and_a_success_turns_healthy") {
        return;
    }
    let root = Root::new("hc-start");
    root.detach(
        &[
            "--name",
            "warm",
            "--health-cmd",
            "test -f /tmp/ready",
            "--health-retries",
            "1",
            "--health-start-period",
            "10m",
            "--health-start-interval",
            "100ms",
            "--health-interval",
            "1h",
        ],
        &["sleep", "1000"],
    );
    // Probes come every start interval (the interval is an hour), and
    // failures within the start period leave it starting.
    let v = wait_long(&root, "warm", "3 failed probes", |v| {
        log_entries(v).len() >= 3
    });
    assert_eq!(health(&v)["Status"], "starting", "{v:#}");
    assert_eq!(health(&v)["FailingStreak"], 0, "{v:#}");
    assert!(log_entries(&v).iter().all(|e| e["ExitCode"] == 1), "{v:#}");
    assert!(
        ps_status(&root, "warm").ends_with(" (health: starting)"),
        "{}",
        ps_status(&root, "warm")
    );
    let out = root.run(&["exec", "warm", "touch", "/tmp/ready"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = wait_long(&root, "warm", "healthy", |v| {
        health(v)["Status"] == "healthy"
    });
    assert_eq!(health(&v)["FailingStreak"], 0);
    assert_eq!(log_entries(&v).last().unwrap()["ExitCode"], 0);
}

#[test]
fn a_stopped_container_reads_unhealthy_and_a_restart_starts_over() {
    if !need_root("a_stopped_container_reads_unhealthy_and_a_restart_starts_over") {
        return;
    }
    let root = Root::new("hc-stop");
    root.detach(
        &[
            "--name",
            "s",
            "--health-cmd",
            "true",
            "--health-interval",
            "100ms",
        ],
        &["sleep", "1000"],
    );
    wait_long(&root, "s", "healthy", |v| health(v)["Status"] == "healthy");
    let out = root.run(&["stop", "-t", "1", "s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = root.inspect("s");
    assert_eq!(health(&v)["Status"], "unhealthy", "{v:#}");
    let kept = log_entries(&v).len();
    assert!(kept >= 1);
    let out = root.run(&["start", "s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = root.inspect("s");
    assert_eq!(v["State"]["Running"], true, "{v:#}");
    // Starting again, with the earlier probes still in the log.
    assert!(
        matches!(health(&v)["Status"].as_str(), Some("starting" | "healthy")),
        "{v:#}"
    );
    assert!(log_entries(&v).len() >= kept.min(5), "{v:#}");
}

/// The json log's timestamps of lines equal to `line`.
fn line_times(root: &Root, name: &str, line: &str) -> Vec<SystemTime> {
    let out = root.run(&["logs", "-t", name]);
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, rest)| *rest == line)
        .map(|(t, _)| humantime::parse_rfc3339(t).unwrap())
        .collect()
}

#[test]
fn on_failure_restarts_exactly_max_times_with_growing_gaps() {
    if !need_root("on_failure_restarts_exactly_max_times_with_growing_gaps") {
        return;
    }
    let root = Root::new("rs-onfail");
    root.detach(
        &["--name", "crash", "--restart", "on-failure:3"],
        &["sh", "-c", "echo run; exit 3"],
    );
    // The `run -d` that created it has exited: the shim restarts it.
    let v = wait_long(&root, "crash", "the shim to give up", |v| {
        v["State"]["Status"] == "exited" && v["State"]["ShimAlive"] == false
    });
    assert_eq!(v["RestartCount"], 3, "{v:#}");
    assert_eq!(v["State"]["ExitCode"], 3, "{v:#}");
    assert_eq!(v["State"]["Restarting"], false, "{v:#}");
    assert_eq!(
        v["HostConfig"]["RestartPolicy"],
        serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 3})
    );
    // One run, then exactly three restarts, each after a longer backoff
    // (100, 200, 400 ms at least: the lower bounds cannot flake).
    let starts = line_times(&root, "crash", "run");
    assert_eq!(starts.len(), 4, "{starts:?}");
    let gaps: Vec<Duration> = starts
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).unwrap())
        .collect();
    for (gap, backoff) in gaps.iter().zip([100, 200, 400]) {
        assert!(
            *gap >= Duration::from_millis(backoff),
            "gap {gap:?} shorter than the {backoff} ms backoff: {gaps:?}"
        );
    }
    assert!(gaps[2] > gaps[0], "the backoff grows: {gaps:?}");
    assert!(
        ps_status(&root, "crash").starts_with("Exited (3) "),
        "{}",
        ps_status(&root, "crash")
    );
}

/// A restart by the policy puts the new pid 1 in the container's cgroup
/// with its limits again (the shim joins and limits every run, not only
/// the first): each run's forks stop at the pids limit, and both runs
/// name the same cgroup.
#[test]
fn a_restarted_container_runs_in_its_cgroup_with_its_limits() {
    if !need_root("a_restarted_container_runs_in_its_cgroup_with_its_limits") {
        return;
    }
    let root = Root::new("rs-limits");
    // As in runtime_containers' pids test: the forks run in a subshell, the
    // outer shell reports with builtins only.
    let script = "for l in $(cat /proc/self/cgroup); do \
                  case $l in *:pids:*) echo cgroup=${l##*:};; esac; done; \
                  ( i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); echo $i > /tmp/n; done ); \
                  read n < /tmp/n; echo started=$n; exit 1";
    let id = root.detach(
        &[
            "--name",
            "lim",
            "--restart",
            "on-failure:1",
            "--pids-limit",
            "20",
        ],
        &["sh", "-c", script],
    );
    let v = wait_long(&root, "lim", "the shim to give up", |v| {
        v["State"]["Status"] == "exited" && v["State"]["ShimAlive"] == false
    });
    assert_eq!(v["RestartCount"], 1, "{v:#}");
    let logs = text(&root.run(&["logs", "lim"]).stdout);
    let started: Vec<u32> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("started="))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(started.len(), 2, "two runs: {logs}");
    for n in &started {
        assert!((5..20).contains(n), "forks stopped at the limit: {logs}");
    }
    let cgroups: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("cgroup="))
        .collect();
    assert_eq!(cgroups.len(), 2, "{logs}");
    assert_eq!(cgroups[0], cgroups[1], "{logs}");
    assert!(cgroups[0].contains(id.trim()), "{logs}");
}

#[test]
fn always_restarts_after_a_clean_exit_and_shows_restarting() {
    if !need_root("always_restarts_after_a_clean_exit_and_shows_restarting") {
        return;
    }
    let root = Root::new("rs-always");
    root.detach(
        &["--name", "loop", "--restart", "always"],
        &["sh", "-c", "echo run; exit 0"],
    );
    // The backoff doubles, so sooner or later `ps` catches it waiting.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s = ps_status(&root, "loop");
        if s.starts_with("Restarting (0) ") && s.ends_with(" ago") {
            break s;
        }
        assert!(Instant::now() < deadline, "never seen restarting: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Restarted after every clean exit: run N+1 follows restart N.
    let v = wait_long(&root, "loop", "two restarts", |v| {
        v["RestartCount"].as_u64().unwrap_or(0) >= 2
    });
    assert!(
        line_times(&root, "loop", "run").len() >= 2,
        "{status}: {v:#}"
    );
    // `ps` without -a lists a restarting container, as Docker does.
    let out = text(&root.run(&["ps"]).stdout);
    assert!(out.contains("loop"), "{out}");
}

#[test]
fn stop_and_kill_prevent_a_restart() {
    if !need_root("stop_and_kill_prevent_a_restart") {
        return;
    }
    let root = Root::new("rs-stop");
    root.detach(
        &["--name", "up", "--restart", "always", "--stop-timeout", "1"],
        &["sleep", "1000"],
    );
    let out = root.run(&["stop", "up"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The shim is gone: nothing is left that could restart it.
    let v = root.inspect("up");
    assert_eq!(
        (
            &v["State"]["Status"],
            &v["State"]["ShimAlive"],
            &v["RestartCount"]
        ),
        (&Value::from("exited"), &Value::from(false), &Value::from(0)),
        "{v:#}"
    );

    root.detach(
        &["--name", "killed", "--restart", "always"],
        &["sleep", "1000"],
    );
    let out = root.run(&["kill", "killed"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = wait_long(&root, "killed", "the shim to exit", |v| {
        v["State"]["ShimAlive"] == false
    });
    assert_eq!(v["State"]["Status"], "exited", "{v:#}");
    assert_eq!(v["State"]["ExitCode"], 137, "{v:#}");
    assert_eq!(v["RestartCount"], 0, "{v:#}");

    // Stopped while waiting out a backoff: it stays exited.
    root.detach(
        &["--name", "waiting", "--restart", "always"],
        &["sh", "-c", "echo run; exit 1"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = root.inspect("waiting");
        if v["State"]["Status"] == "restarting" {
            break;
        }
        assert!(Instant::now() < deadline, "never restarting: {v:#}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = root.run(&["stop", "waiting"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v = root.inspect("waiting");
    assert_eq!(v["State"]["Status"], "exited", "{v:#}");
    assert_eq!(v["State"]["ShimAlive"], false, "{v:#}");
    let before = line_times(&root, "waiting", "run").len();
    let settled = root.inspect("waiting");
    assert_eq!(settled["RestartCount"], v["RestartCount"], "{settled:#}");
    // `start` puts it back under its policy.
    let out = root.run(&["start", "waiting"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_long(&root, "waiting", "a restart after start", |v| {
        v["State"]["ShimAlive"] == true && v["RestartCount"].as_u64().unwrap_or(0) >= 1
    });
    assert!(line_times(&root, "waiting", "run").len() > before);
    root.run(&["rm", "-f", "waiting"]);
}

#[test]
fn the_shim_restarts_a_crashed_process_with_no_cli_around() {
    if !need_root("the_shim_restarts_a_crashed_process_with_no_cli_around") {
        return;
    }
    let root = Root::new("rs-crash");
    root.detach(
        &["--name", "svc", "--restart", "unless-stopped"],
        &["sh", "-c", "echo started; exec sleep 1000"],
    );
    let v = wait_long(&root, "svc", "running", |v| {
        v["State"]["Status"] == "running" && v["State"]["Pid"].as_i64().unwrap_or(0) > 0
    });
    let pid = v["State"]["Pid"].as_i64().unwrap();
    let shim = v["State"]["ShimPid"].clone();
    // A crash from outside berth (not a stop by the user): SIGKILL from
    // the host, while no berth CLI runs.
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let v = wait_long(&root, "svc", "a restart", |v| {
        v["RestartCount"] == 1 && v["State"]["Status"] == "running"
    });
    assert_ne!(v["State"]["Pid"].as_i64().unwrap(), pid);
    assert_eq!(v["State"]["ShimPid"], shim, "the same shim supervises");
    // Same container: same id, log appended.
    let starts = line_times(&root, "svc", "started");
    assert_eq!(starts.len(), 2, "{starts:?}");
}

#[test]
fn wait_returns_at_the_next_exit_of_a_container_that_restarts() {
    if !need_root("wait_returns_at_the_next_exit_of_a_container_that_restarts") {
        return;
    }
    let root = Root::new("rs-wait");
    root.detach(
        &["--name", "w", "--restart", "always"],
        &["sh", "-c", "sleep 0.2; exit 4"],
    );
    let out = root.run(&["wait", "w"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "4");
    // `always` never gives up: the shim is still there to restart it.
    let v = root.inspect("w");
    assert_eq!(v["State"]["ShimAlive"], true, "{v:#}");
    let out = root.run(&["stop", "w"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
