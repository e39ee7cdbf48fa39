//! End-to-end: `berth compose ps|logs|stop|start|restart|kill|rm|down|
//! top|images|pause` and the top-level verbs on real containers, checked
//! by their output lines and the states `compose ps` reports. Root only; each test has its own `--root`,
//! cleaned up on drop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compose_support;
mod runtime_support;

use std::process::Stdio;
use std::time::Duration;

use compose_support::{Project, finish, lines, ok, serve, stderr_lines, web_db};
use runtime_support::{need_root, text};

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
