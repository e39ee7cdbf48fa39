//! End-to-end: `berth compose <verb>` (and the top-level compose usage)
//! on real containers, checked by their output lines and the states
//! `compose ps` reports. Root only; each test has its own `--root`,
//! cleaned up on drop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compose_support;
mod runtime_support;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use compose_support::{Project, finish, lines, ok, serve, signal};
use runtime_support::{need_root, text};

/// web depends on db (restarting with it); both run until SIGTERM.
fn web_db() -> String {
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

fn stderr_lines(out: &std::process::Output) -> Vec<String> {
    text(&out.stderr).lines().map(str::to_owned).collect()
}

#[test]
fn attached_up_streams_prefixed_logs_and_returns_when_all_exit() {
    if !need_root("attached_up_streams_prefixed_logs_and_returns_when_all_exit") {
        return;
    }
    let p = Project::new(
        "up-attached",
        r#"
name: proj
services:
  alpha:
    image: busybox
    command: ["sh", "-c", "echo a1; sleep 2; echo a2 >&2; echo a3"]
  b:
    image: busybox
    command: ["sh", "-c", "sleep 1; echo b1"]
"#,
    );
    let out = p.run(&["compose", "up"]);
    let stdout = ok(out.clone());
    let got = lines(&stdout);
    assert_eq!(got[0], "Attaching to alpha-1, b-1", "{stdout}");
    // Prefixes are padded to the longest name; stdout lines in order.
    let logs: Vec<&str> = got
        .iter()
        .map(String::as_str)
        .filter(|l| l.contains(" | "))
        .collect();
    assert_eq!(
        logs,
        ["alpha-1  | a1", "b-1      | b1", "alpha-1  | a3"],
        "{stdout}"
    );
    assert!(
        got.contains(&"alpha-1 exited with code 0".to_owned()),
        "{stdout}"
    );
    assert!(
        got.contains(&"b-1 exited with code 0".to_owned()),
        "{stdout}"
    );
    // The container's stderr goes to stderr, prefixed too.
    assert!(
        stderr_lines(&out).contains(&"alpha-1  | a2".to_owned()),
        "{}",
        text(&out.stderr)
    );
    assert!(stderr_lines(&out).contains(&" Container proj-b-1 Started".to_owned()));
    // No colours when stdout is not a terminal.
    assert!(!stdout.contains('\x1b'));
    // --no-log-prefix and --attach.
    let out = ok(p.run(&["compose", "up", "--no-log-prefix", "--attach", "b"]));
    assert_eq!(lines(&out)[..2], ["Attaching to b-1", "b1"], "{out}");
    assert!(!out.contains("a1"), "{out}");
}

#[test]
fn ctrl_c_stops_the_project_gracefully_and_it_stays_stopped() {
    if !need_root("ctrl_c_stops_the_project_gracefully_and_it_stays_stopped") {
        return;
    }
    let p = Project::new("up-ctrl-c", &web_db());
    let child = p
        .cmd(&["compose", "up"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.wait_until("both running", |s| {
        s.len() == 2 && s.iter().all(|(_, st)| st == "running")
    });
    // The first lines are out once both containers run; then Ctrl+C.
    std::thread::sleep(Duration::from_millis(300));
    signal(child.id(), "INT");
    let out = finish(child, &["compose", "up"]);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let got = lines(&stdout);
    for expected in [
        "Attaching to db-1, web-1",
        "db-1   | db up",
        "web-1  | web up",
        "Gracefully stopping... (press Ctrl+C again to force)",
        "web-1  | web bye",
        "web-1 exited with code 0",
        "db-1   | db bye",
        "db-1 exited with code 0",
    ] {
        assert!(
            got.contains(&expected.to_owned()),
            "{expected:?} in\n{stdout}"
        );
    }
    // Dependents stop first.
    let pos = |l: &str| got.iter().position(|g| g == l).unwrap();
    assert!(pos("web-1 exited with code 0") < pos("db-1 exited with code 0"));
    assert_eq!(
        p.states(),
        [
            ("proj-db-1".to_owned(), "exited".to_owned()),
            ("proj-web-1".to_owned(), "exited".to_owned())
        ]
    );
    // Stopped by the user: `up --dry-run` says why it would start them.
    let plan = p.ok(&["up", "--dry-run"]);
    assert_eq!(
        lines(&plan),
        [
            "0 StartContainer proj-db-1 [Stopped: was stopped; the project is up]",
            "1 StartContainer proj-web-1 [Stopped: was stopped; the project is up]",
        ]
    );
}

#[test]
fn a_second_ctrl_c_kills() {
    if !need_root("a_second_ctrl_c_kills") {
        return;
    }
    let p = Project::new(
        "up-kill",
        r#"
name: proj
services:
  stubborn:
    image: busybox
    command: ["sh", "-c", "trap 'echo ignoring TERM' TERM; echo up; while :; do sleep 0.1; done"]
    stop_grace_period: 50s
"#,
    );
    let mut child = p
        .cmd(&["compose", "up"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.wait_until("running", |s| s.iter().any(|(_, st)| st == "running"));
    let mut stdout = child.stdout.take().unwrap();
    signal(child.id(), "INT");
    // Wait for the graceful stop to begin (its TERM is ignored).
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 256];
    while !seen.contains("ignoring TERM") {
        assert!(Instant::now() < deadline, "no graceful stop: {seen}");
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "stdout closed early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    signal(child.id(), "INT");
    let start = Instant::now();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let out = finish(child, &["compose", "up"]);
    assert_eq!(out.status.code(), Some(130));
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "the second Ctrl+C did not kill"
    );
    assert!(
        rest.contains("stubborn-1 exited with code 137"),
        "{seen}{rest}"
    );
}

#[test]
fn exit_code_from_aborts_the_others() {
    if !need_root("exit_code_from_aborts_the_others") {
        return;
    }
    let p = Project::new(
        "up-exit-code",
        &format!(
            r#"
name: proj
services:
  job:
    image: busybox
    command: ["sh", "-c", "sleep 0.5; echo done; exit 3"]
  web:
    image: busybox
    command: {web}
"#,
            web = serve("web")
        ),
    );
    let out = p.run(&["compose", "up", "--exit-code-from", "job"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let got = lines(&text(&out.stdout));
    let pos = |l: &str| {
        got.iter()
            .position(|g| g == l)
            .unwrap_or_else(|| panic!("{l:?} in {got:#?}"))
    };
    assert!(pos("job-1 exited with code 3") < pos("Aborting on container exit..."));
    assert!(pos("Aborting on container exit...") < pos("web-1 exited with code 0"));
    assert_eq!(
        p.states(),
        [
            ("proj-job-1".to_owned(), "exited".to_owned()),
            ("proj-web-1".to_owned(), "exited".to_owned())
        ]
    );
}

#[test]
fn wait_counts_completed_one_shots_and_fails_on_a_crash() {
    if !need_root("wait_counts_completed_one_shots_and_fails_on_a_crash") {
        return;
    }
    let compose = |code: u8| {
        format!(
            r#"
name: proj
services:
  init:
    image: busybox
    command: ["sh", "-c", "echo init; exit {code}"]
  web:
    image: busybox
    command: {web}
    depends_on:
      init: {{condition: service_completed_successfully}}
"#,
            web = serve("web")
        )
    };
    let p = Project::new("up-wait", &compose(0));
    let out = p.run(&["compose", "up", "--wait"]);
    assert_eq!(ok(out.clone()), "");
    let err = stderr_lines(&out);
    assert!(
        err.contains(&" Container proj-init-1 Exited".to_owned()),
        "{err:#?}"
    );
    assert!(
        err.contains(&" Container proj-web-1 Running".to_owned()),
        "{err:#?}"
    );
    assert_eq!(
        p.states(),
        [
            ("proj-init-1".to_owned(), "exited".to_owned()),
            ("proj-web-1".to_owned(), "running".to_owned())
        ]
    );
    p.ok(&["down"]);
    // init fails: web never starts (its condition fails) and --wait
    // reports failure.
    p.write(&compose(4));
    let out = p.run(&["compose", "up", "--wait"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exited with code 4"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn ps_lists_like_compose() {
    if !need_root("ps_lists_like_compose") {
        return;
    }
    let p = Project::new(
        "ps",
        &format!(
            r#"
name: proj
services:
  web:
    image: busybox
    command: {web}
    deploy: {{replicas: 2}}
  once:
    image: busybox
    command: ["echo", "hi"]
"#,
            web = serve("web")
        ),
    );
    p.ok(&["up", "-d", "--wait"]);
    let table = lines(&p.ok(&["ps"]));
    assert_eq!(
        table[0].split_whitespace().collect::<Vec<_>>(),
        [
            "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"
        ]
    );
    // Running only by default; Docker's 20-wide columns.
    assert_eq!(table.len(), 3, "{table:#?}");
    assert!(
        table[1]
            .starts_with("proj-web-1          busybox             \"sh -c echo web up; …\"   web ")
    );
    assert!(table[1].contains("   Up "), "{}", table[1]);
    let all = lines(&p.ok(&["ps", "-a"]));
    assert_eq!(all.len(), 4);
    assert!(all[1].starts_with("proj-once-1 "));
    assert!(all[1].contains("Exited (0)"), "{}", all[1]);
    // -q: full ids, sorted by name like the table.
    let ids = lines(&p.ok(&["ps", "-q", "-a"]));
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter()
            .all(|i| i.len() == 64 && i.chars().all(|c| c.is_ascii_hexdigit()))
    );
    assert_eq!(lines(&p.ok(&["ps", "--services", "-a"])), ["once", "web"]);
    assert_eq!(
        lines(&p.ok(&["ps", "--status", "exited", "-q"])),
        [ids[0].clone()]
    );
    assert_eq!(lines(&p.ok(&["ps", "web", "--services"])), ["web"]);
    let json = p.ps();
    assert_eq!(json[2]["Name"], "proj-web-2");
    assert_eq!(json[2]["Service"], "web");
    assert_eq!(json[2]["Project"], "proj");
    assert_eq!(json[2]["State"], "running");
    assert_eq!(json[2]["Command"], "\"sh -c echo web up; …\"");
    assert_eq!(json[0]["ExitCode"], 0);
    assert_eq!(json[0]["ID"].as_str().unwrap().len(), 12);
    // Unknown services are an error, as in Compose.
    let out = p.run(&["compose", "ps", "nope"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no such service: nope"));
}

#[test]
fn logs_merge_in_time_order_with_tail_since_and_prefixes() {
    if !need_root("logs_merge_in_time_order_with_tail_since_and_prefixes") {
        return;
    }
    let p = Project::new(
        "logs",
        r#"
name: proj
services:
  a:
    image: busybox
    command: ["sh", "-c", "echo a1; sleep 0.8; echo a3"]
  bb:
    image: busybox
    command: ["sh", "-c", "sleep 0.2; echo b2"]
"#,
    );
    p.ok(&["up", "-d"]);
    p.wait_until("both exited", |s| {
        s.len() == 2 && s.iter().all(|(_, st)| st == "exited")
    });
    assert_eq!(
        lines(&p.ok(&["logs"])),
        ["a-1   | a1", "bb-1  | b2", "a-1   | a3"]
    );
    assert_eq!(
        lines(&p.ok(&["logs", "--tail", "1"])),
        ["bb-1  | b2", "a-1   | a3"]
    );
    assert_eq!(
        lines(&p.ok(&["logs", "--no-log-prefix", "a"])),
        ["a1", "a3"]
    );
    assert_eq!(
        lines(&p.ok(&["logs", "--since", "1h", "bb"])),
        ["bb-1  | b2"]
    );
    let none = Vec::<String>::new();
    assert_eq!(
        lines(&p.ok(&["logs", "--until", "2000-01-01T00:00:00Z"])),
        none
    );
    assert_eq!(
        lines(&p.ok(&["logs", "--since", "2100-01-01T00:00:00Z"])),
        none
    );
    let stamped = lines(&p.ok(&["logs", "-t", "bb"]));
    let (prefix, rest) = stamped[0].split_once(" | ").unwrap();
    assert_eq!(prefix.trim_end(), "bb-1");
    let (time, line) = rest.split_once(' ').unwrap();
    assert!(time.ends_with('Z') && time.len() == 30, "{time}");
    assert_eq!(line, "b2");
    // -f on stopped containers prints and returns.
    assert_eq!(lines(&p.ok(&["logs", "-f", "a"])).len(), 2);
}

#[test]
fn logs_follow_picks_up_a_new_replica() {
    if !need_root("logs_follow_picks_up_a_new_replica") {
        return;
    }
    let p = Project::new(
        "logs-follow",
        r#"
name: proj
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo hello from $$(hostname); trap 'exit 0' TERM; while :; do sleep 0.1; done"]
"#,
    );
    p.ok(&["up", "-d"]);
    let child = p
        .cmd(&["compose", "logs", "-f", "--no-color"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.ok(&["up", "-d", "--scale", "web=2"]);
    p.wait_until("two running", |s| {
        s.iter().filter(|(_, st)| st == "running").count() == 2
    });
    // Give the follower a few rounds to find and read the new one.
    std::thread::sleep(Duration::from_millis(1500));
    p.ok(&["stop"]);
    let out = finish(child, &["compose", "logs", "-f"]);
    let got = lines(&ok(out));
    assert!(
        got.iter().any(|l| l.starts_with("web-1  | hello from ")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|l| l.starts_with("web-2  | hello from ")),
        "{got:#?}"
    );
}

#[test]
fn stop_start_restart_kill_and_rm() {
    if !need_root("stop_start_restart_kill_and_rm") {
        return;
    }
    let p = Project::new("lifecycle", &web_db());
    p.ok(&["up", "-d"]);
    let out = p.run(&["compose", "stop"]);
    ok(out.clone());
    assert_eq!(
        stderr_lines(&out),
        [
            " Container proj-web-1 Stopping",
            " Container proj-web-1 Stopped",
            " Container proj-db-1 Stopping",
            " Container proj-db-1 Stopped",
        ]
    );
    assert!(p.states().iter().all(|(_, s)| s == "exited"));
    // start web starts db first.
    let out = p.run(&["compose", "start", "web"]);
    ok(out.clone());
    assert_eq!(
        stderr_lines(&out),
        [
            " Container proj-db-1 Starting",
            " Container proj-db-1 Started",
            " Container proj-web-1 Starting",
            " Container proj-web-1 Started",
        ]
    );
    // restart db takes web along (depends_on.db.restart: true).
    let started = |name: &str| p.root.inspect(name)["State"]["StartedAt"].clone();
    let before = (started("proj-db-1"), started("proj-web-1"));
    let out = p.run(&["compose", "restart", "db"]);
    ok(out.clone());
    let err = stderr_lines(&out);
    assert_eq!(
        err.iter()
            .filter(|l| l.ends_with("Started"))
            .collect::<Vec<_>>(),
        [
            " Container proj-db-1 Started",
            " Container proj-web-1 Started"
        ]
    );
    assert!(p.states().iter().all(|(_, s)| s == "running"));
    assert_ne!(before.0, started("proj-db-1"));
    assert_ne!(before.1, started("proj-web-1"));
    // --no-deps: db alone.
    let web = started("proj-web-1");
    ok(p.run(&["compose", "restart", "--no-deps", "db"]));
    assert_eq!(web, started("proj-web-1"));
    // kill -s TERM web: the trap runs, it exits 0.
    let out = p.run(&["compose", "kill", "-s", "TERM", "web"]);
    ok(out.clone());
    assert_eq!(
        stderr_lines(&out),
        [
            " Container proj-web-1 Killing",
            " Container proj-web-1 Killed"
        ]
    );
    p.wait_until("web exited", |s| s[1].1 == "exited");
    // rm asks; "n" keeps it; -f does not ask; running ones stay.
    let out = p.run_with_input(&["compose", "rm"], "n\n");
    assert_eq!(lines(&ok(out))[0], "Going to remove proj-web-1");
    assert_eq!(p.states().len(), 2);
    let out = p.run(&["compose", "rm", "-f"]);
    ok(out.clone());
    assert_eq!(
        stderr_lines(&out),
        [
            " Container proj-web-1 Removing",
            " Container proj-web-1 Removed"
        ]
    );
    assert_eq!(p.states(), [("proj-db-1".to_owned(), "running".to_owned())]);
    let out = p.run(&["compose", "rm", "-f", "-s"]);
    ok(out);
    assert!(p.states().is_empty());
}

#[test]
fn down_keeps_orphans_and_volumes_unless_asked() {
    if !need_root("down_keeps_orphans_and_volumes_unless_asked") {
        return;
    }
    let p = Project::new("down", &web_db());
    p.ok(&["up", "-d"]);
    let volume = p.root.dir.join("volumes/proj_data/_data");
    assert!(volume.is_dir());
    // db's service goes away from the file: its container is an orphan.
    p.write(&format!(
        r#"
name: proj
services:
  web:
    image: busybox
    command: {web}
volumes:
  data: {{}}
"#,
        web = serve("web")
    ));
    let out = p.run(&["compose", "down"]);
    ok(out.clone());
    assert!(
        text(&out.stderr).contains("Found orphan containers ([proj-db-1]) for this project"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(p.states(), [("proj-db-1".to_owned(), "running".to_owned())]);
    assert!(p.root.dir.join("networks/proj_default").is_dir());
    ok(p.run(&["compose", "down", "--remove-orphans", "-v"]));
    assert!(p.states().is_empty());
    assert!(!volume.exists());
    assert!(!p.root.dir.join("networks/proj_default").exists());
    assert!(p.root.ids().is_empty());
    // Nothing left: Compose's warning.
    let out = p.run(&["compose", "down"]);
    ok(out.clone());
    assert_eq!(
        stderr_lines(&out),
        ["Warning: No resource found to remove for project \"proj\"."]
    );
}

#[test]
fn down_by_name_anywhere_and_rmi_all() {
    if !need_root("down_by_name_anywhere_and_rmi_all") {
        return;
    }
    let p = Project::new("down-name", &web_db());
    p.ok(&["up", "-d"]);
    // From a folder with no compose file: the name is enough.
    let elsewhere = p.root.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = p
        .cmd(&["compose", "-p", "proj", "ps", "--services"])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    assert_eq!(lines(&ok(out)), ["db", "web"]);
    let out = p
        .cmd(&["compose", "-p", "proj", "down", "--rmi", "all"])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    let err = stderr_lines(&out);
    ok(out);
    assert!(
        err.contains(&" Image busybox Removed".to_owned()),
        "{err:#?}"
    );
    assert!(p.root.ids().is_empty());
    assert!(!p.root.dir.join("networks/proj_default").exists());
    // The named volume stays without -v.
    assert!(p.root.dir.join("volumes/proj_data").is_dir());
    assert_eq!(ok(p.root.run(&["images", "-q"])), "");
}

#[test]
fn top_images_pause_unpause() {
    if !need_root("top_images_pause_unpause") {
        return;
    }
    let p = Project::new("top", &web_db());
    p.ok(&["up", "-d"]);
    let top = lines(&p.ok(&["top", "web"]));
    assert_eq!(
        top[0].split_whitespace().collect::<Vec<_>>(),
        [
            "SERVICE", "#", "UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"
        ]
    );
    let row: Vec<&str> = top[1].split_whitespace().collect();
    assert_eq!(&row[..3], ["web", "1", "root"]);
    assert_eq!(row[7], "?");
    assert_eq!(
        row[9..].join(" "),
        "sh -c echo web up; trap 'echo web bye; exit 0' TERM; while :; do sleep 0.1; done"
    );
    let images = lines(&p.ok(&["images"]));
    assert_eq!(
        images[0].split_whitespace().collect::<Vec<_>>(),
        [
            "CONTAINER",
            "REPOSITORY",
            "TAG",
            "PLATFORM",
            "IMAGE",
            "ID",
            "SIZE",
            "CREATED"
        ]
    );
    let row: Vec<&str> = images[1].split_whitespace().collect();
    assert_eq!(&row[..3], ["proj-db-1", "busybox", "latest"]);
    assert_eq!(lines(&p.ok(&["images", "-q"])).len(), 1);

    let out = p.run(&["compose", "pause", "web"]);
    ok(out.clone());
    assert_eq!(
        stderr_lines(&out),
        [
            " Container proj-web-1 Pausing",
            " Container proj-web-1 Paused"
        ]
    );
    let json = p.ps();
    assert_eq!(json[1]["State"], "paused");
    assert!(json[1]["Status"].as_str().unwrap().ends_with("(Paused)"));
    p.ok(&["unpause"]);
    assert_eq!(p.ps()[1]["State"], "running");
    // A paused container still stops (its signal waits for the thaw).
    p.ok(&["pause"]);
    p.ok(&["stop"]);
    assert!(p.states().iter().all(|(_, s)| s == "exited"));
    let logs = p.ok(&["logs", "web"]);
    assert!(logs.contains("web-1  | web bye"), "{logs}");
}

#[test]
fn up_flags_and_errors() {
    if !need_root("up_flags_and_errors") {
        return;
    }
    let p = Project::new("up-flags", &web_db());
    // SERVICE...: only web and its dependency; --no-deps: web alone.
    p.ok(&["up", "-d", "--no-start"]);
    assert!(p.states().iter().all(|(_, s)| s == "created"));
    p.ok(&["up", "-d", "--no-deps", "web"]);
    assert_eq!(
        p.states(),
        [
            ("proj-db-1".to_owned(), "created".to_owned()),
            ("proj-web-1".to_owned(), "running".to_owned())
        ]
    );
    // --force-recreate recreates; --no-recreate keeps a changed one.
    let id = p.ps()[1]["ID"].clone();
    p.ok(&["up", "-d", "--force-recreate", "web"]);
    assert_ne!(p.ps()[1]["ID"], id);
    p.write(&web_db().replace(
        "stop_grace_period: 5s\nvolumes",
        "stop_grace_period: 6s\nvolumes",
    ));
    let id = p.ps()[1]["ID"].clone();
    p.ok(&["up", "-d", "--no-recreate"]);
    assert_eq!(p.ps()[1]["ID"], id);
    let plan = p.ok(&["up", "--dry-run"]);
    assert!(
        plan.contains("Recreate proj-web-1 [ConfigChanged: stop_grace_period changed]"),
        "{plan}"
    );
    // --scale.
    p.ok(&["up", "-d", "--scale", "web=2"]);
    assert_eq!(p.states().len(), 3);
    // Errors name what is wrong.
    let out = p.run(&["compose", "up", "-d", "--pull", "always"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains(" Image busybox Error"), "{err}");
    // No registry is reachable from the test's network namespace.
    assert!(
        err.contains("pull docker.io/library/busybox:latest") || err.contains("pull busybox"),
        "{err}"
    );
    let out = p.run(&["compose", "up", "-d", "nope"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no such service: nope"));
    let out = p.run(&["compose", "up", "-d", "--scale", "web=x"]);
    assert!(
        text(&out.stderr).contains("invalid --scale"),
        "{}",
        text(&out.stderr)
    );
    p.write(
        r#"
name: proj
services:
  app:
    build: .
"#,
    );
    let out = p.run(&["compose", "up", "-d", "--build", "--remove-orphans"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("for service app"), "{err}");
    assert!(err.contains(" Service app Error"), "{err}");
}

#[test]
fn top_level_verbs_take_services_and_keep_docker_meaning() {
    if !need_root("top_level_verbs_take_services_and_keep_docker_meaning") {
        return;
    }
    let p = Project::new("toplevel", &web_db());
    // `berth up` in the project folder; `berth ps -p` is compose ps.
    ok(p.run(&["up", "-d"]));
    let ps = lines(&ok(p.run(&["ps", "-p", "proj"])));
    assert!(ps[0].starts_with("NAME "), "{ps:#?}");
    assert_eq!(ps.len(), 3);
    // A service name in the project folder: compose stop, progress lines.
    let out = p.run(&["stop", "web"]);
    assert_eq!(ok(out.clone()), "");
    assert_eq!(
        stderr_lines(&out),
        [
            " Container proj-web-1 Stopping",
            " Container proj-web-1 Stopped"
        ]
    );
    // A container name: docker stop, which prints the name.
    assert_eq!(ok(p.run(&["stop", "proj-db-1"])), "proj-db-1\n");
    ok(p.run(&["start", "db", "web"]));
    assert!(p.states().iter().all(|(_, s)| s == "running"));
    let logs = ok(p.run(&["logs", "web"]));
    assert!(logs.lines().all(|l| l.starts_with("web-1  | ")), "{logs}");
    // docker logs of a container: no prefix.
    let logs = ok(p.run(&["logs", "proj-web-1"]));
    assert!(logs.starts_with("web up\n"), "{logs}");
    let top = ok(p.run(&["top", "proj-db-1"]));
    assert!(top.starts_with("UID "), "{top}");
    let top = ok(p.run(&["top", "db"]));
    assert!(top.starts_with("SERVICE "), "{top}");
    // Neither container nor service.
    let out = p.run(&["stop", "nope"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no such container: nope"));
    ok(p.run(&["down"]));
    assert!(p.root.ids().is_empty());
}

#[test]
fn services_left_out_by_profiles_are_not_orphans() {
    if !need_root("services_left_out_by_profiles_are_not_orphans") {
        return;
    }
    let p = Project::new(
        "profiles",
        &format!(
            r#"
name: proj
services:
  web:
    image: busybox
    command: {web}
  debug:
    image: busybox
    command: {debug}
    profiles: [tools]
"#,
            web = serve("web"),
            debug = serve("debug")
        ),
    );
    p.ok(&["--profile", "tools", "up", "-d"]);
    assert_eq!(p.states().len(), 2);
    // Without the profile, debug is not part of the project, but its
    // container is no orphan: no warning, and --remove-orphans keeps it.
    let out = p.run(&["compose", "up", "-d", "--remove-orphans"]);
    ok(out.clone());
    assert!(
        !text(&out.stderr).contains("orphan"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(p.states().len(), 2);
    // An undeclared service is an orphan.
    p.write(&format!(
        r#"
name: proj
services:
  debug:
    image: busybox
    command: {debug}
    profiles: [tools]
"#,
        debug = serve("debug")
    ));
    let out = p.run(&["compose", "up", "-d"]);
    ok(out.clone());
    assert!(
        text(&out.stderr).contains("Found orphan containers ([proj-web-1])"),
        "{}",
        text(&out.stderr)
    );
    // down takes the profile's containers along, orphans only when asked.
    ok(p.run(&["compose", "down"]));
    assert_eq!(
        p.states(),
        [("proj-web-1".to_owned(), "running".to_owned())]
    );
    ok(p.run(&["compose", "down", "--remove-orphans"]));
    assert!(p.root.ids().is_empty());
}
