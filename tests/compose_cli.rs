//! End-to-end: `berth compose up` (attached, `--wait`, `--exit-code-from`,
//! its flags and errors) on real containers, checked by their output
//! lines and the states `compose ps` reports. Root only; each test has its own `--root`,
//! cleaned up on drop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compose_support;
mod runtime_support;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use compose_support::{Project, finish, lines, ok, serve, signal, stderr_lines, web_db};
use runtime_support::{need_root, text};

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
    // The builder runs: a context without a Dockerfile fails naming the
    // service and the file.
    let out = p.run(&["compose", "up", "-d", "--build", "--remove-orphans"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("service \"app\": build failed"), "{err}");
    assert!(err.contains("Dockerfile"), "{err}");
    assert!(err.contains(" Service app Error"), "{err}");
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
