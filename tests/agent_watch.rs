//! `berth agent` end to end: the real binary on a temp folder, driven by
//! file edits and observed through its HTTP API.

// Helpers outside #[test] fns: a failed step must fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;

use std::time::{Duration, SystemTime};

use agent_support::{Agent, TempDir, berth_cmd};
use serde_json::{Value, json};

const WEB_DB: &str = "services:\n  web:\n    image: nginx:1.27\n  db:\n    image: postgres:16\n";
const WEB_ONLY: &str = "services:\n  web:\n    image: nginx:1.28\n";
/// A YAML syntax error on line 3 (`mapping values are not allowed here`).
const BROKEN: &str = "services:\n  web:\n    image: nginx: 1.27\n";

/// Options that keep the periodic resync out of the way, so every change
/// seen here was seen by the watcher; a deleted folder is torn down (of
/// nothing: these images cannot be pulled) at once.
const WATCH_ONLY: [&str; 6] = [
    "--listen",
    "127.0.0.1:0",
    "--resync-interval",
    "1h",
    "--delete-grace",
    "0s",
];

/// The spec loaded without errors (whatever its reconcile did: the images
/// here are not in the agent's store and cannot be pulled).
fn spec_ok(item: &Value) -> bool {
    item["errors"] == json!([])
}

fn generation(item: &Value) -> u64 {
    item["generation"].as_u64().unwrap()
}

/// Total `berth_project_load_total` over every label set.
fn loads(agent: &Agent) -> f64 {
    let (_, text) = agent.get("/metrics");
    text.lines()
        .filter(|l| l.starts_with("berth_project_load_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Moves the test thread into a network namespace of its own (with `lo`
/// up): the agent it starts reconciles the projects it is shown, and their
/// networks' bridges must not land on the host.
fn private_netns() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare a network namespace");
    let st = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("run ip");
    assert!(st.success(), "ip link set lo up failed");
}

#[test]
fn health_and_readiness() {
    private_netns();
    let dir = TempDir::new("health");
    let agent = Agent::start(dir.path());
    assert_eq!(agent.json("/healthz"), json!({"status": "ok"}));
    agent.wait_for("readyz 200", || {
        let (status, body) = agent.get("/readyz");
        (status == 200).then_some(body)
    });
    assert_eq!(agent.json("/readyz"), json!({"status": "ok"}));
    let list = agent.json("/api/v1/projects");
    assert_eq!(list["apiVersion"], "berth/v1");
    assert_eq!(list["kind"], "ProjectList");
    assert_eq!(list["items"], json!([]));
    let (status, body) = agent.get("/api/v1/projects/nope");
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reason"], "NotFound");
    let (status, _) = agent.get("/metrics");
    assert_eq!(status, 200);
}

#[test]
fn new_folder_appears_and_deleting_it_removes_it() {
    private_netns();
    let dir = TempDir::new("appear");
    let agent = Agent::start_with(dir.path(), &WATCH_ONLY);
    agent.wait_for("ready", || (agent.get("/readyz").0 == 200).then_some(()));

    dir.write("apps/shop/compose.yaml", WEB_DB);
    let item = agent.wait_for("apps/shop to appear", || agent.item("apps/shop"));
    assert_eq!(
        item["dir"],
        dir.path().join("apps/shop").display().to_string()
    );
    assert_eq!(item["files"], json!(["compose.yaml"]));
    assert_eq!(generation(&item), 1);
    let revision = item["revision"].as_str().unwrap();
    assert!(
        revision.starts_with("sha256:") && revision.len() == 71,
        "{revision}"
    );

    // A folder moved in whole (as a git checkout or `mv` would) also counts.
    let outside = TempDir::new("outside");
    outside.write("blog/compose.yml", WEB_ONLY);
    std::fs::rename(outside.path().join("blog"), dir.path().join("blog")).unwrap();
    let blog = agent.wait_for("blog to appear", || agent.item("blog"));
    assert_eq!(blog["files"], json!(["compose.yml"]));

    std::fs::remove_dir_all(dir.path().join("apps")).unwrap();
    agent.wait_for("apps/shop to go", || {
        agent.item("apps/shop").is_none().then_some(())
    });
    let keys: Vec<Value> = agent.items().iter().map(|i| i["key"].clone()).collect();
    assert_eq!(keys, vec![json!("blog")]);
}

#[test]
fn root_folder_itself_is_a_project_with_key_dot() {
    private_netns();
    let dir = TempDir::new("root");
    dir.write("compose.yaml", WEB_DB);
    let agent = Agent::start(dir.path());
    let item = agent.wait_for("root project", || agent.item("."));
    assert_eq!(item["dir"], dir.path().display().to_string());
}

#[test]
fn edits_change_revision_and_generation_and_touching_does_not() {
    private_netns();
    let dir = TempDir::new("edit");
    let file = dir.write("shop/compose.yaml", WEB_DB);
    let agent = Agent::start_with(dir.path(), &WATCH_ONLY);
    let first = agent.wait_for("shop", || agent.item("shop"));
    assert_eq!(generation(&first), 1);
    let loads_before = loads(&agent);

    // Touch: same bytes rewritten, mtime moved. Seen, but not a change.
    let events = agent.metric("berth_watch_events_total");
    std::fs::write(&file, WEB_DB).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    agent.wait_for("the touch to be seen", || {
        (agent.metric("berth_watch_events_total") > events).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let touched = agent.item("shop").unwrap();
    assert_eq!(touched["generation"], first["generation"]);
    assert_eq!(touched["revision"], first["revision"]);
    assert_eq!(
        touched["lastLoadedAt"], first["lastLoadedAt"],
        "touch reloaded the project"
    );
    assert_eq!(loads(&agent), loads_before, "touch reloaded the project");

    // Editor noise alone is not even an event.
    let events = agent.metric("berth_watch_events_total");
    dir.write("shop/.compose.yaml.swp", "swap");
    dir.write("shop/4913", "");
    dir.write(".git/objects/ab/cdef", "blob");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(agent.metric("berth_watch_events_total"), events);

    // A real edit: new revision, next generation, visible within a second.
    let saved_at = std::time::Instant::now();
    std::fs::write(&file, WEB_ONLY).unwrap();
    let edited = agent.wait_for("generation 2", || {
        agent.item("shop").filter(|i| generation(i) == 2)
    });
    let latency = saved_at.elapsed();
    assert!(
        latency < Duration::from_secs(1),
        "edit took {latency:?} to show"
    );
    assert_ne!(edited["revision"], first["revision"]);
    assert_eq!(loads(&agent), loads_before + 1.0);

    // An atomic-rename save (write a temp file, rename it over).
    dir.write("shop/compose.yaml.tmp", WEB_DB);
    std::fs::rename(dir.path().join("shop/compose.yaml.tmp"), &file).unwrap();
    let renamed = agent.wait_for("generation 3", || {
        agent.item("shop").filter(|i| generation(i) == 3)
    });
    // Same content as the first version: same revision as then.
    assert_eq!(renamed["revision"], first["revision"]);

    // A vim-style save: original moved to a backup, new file written,
    // backup removed.
    std::fs::rename(&file, dir.path().join("shop/compose.yaml~")).unwrap();
    std::fs::write(&file, WEB_ONLY).unwrap();
    std::fs::remove_file(dir.path().join("shop/compose.yaml~")).unwrap();
    let saved = agent.wait_for("a new revision after the vim-style save", || {
        agent
            .item("shop")
            .filter(|i| i["revision"] == edited["revision"])
    });
    assert!(generation(&saved) >= 4, "{saved}");
}

#[test]
fn dotenv_and_override_files_are_inputs() {
    private_netns();
    let dir = TempDir::new("inputs");
    dir.write("shop/compose.yaml", WEB_DB);
    let agent = Agent::start_with(dir.path(), &WATCH_ONLY);
    let first = agent.wait_for("shop", || agent.item("shop"));

    dir.write("shop/.env", "TAG=1.27\n");
    let with_env = agent.wait_for("generation 2 after .env", || {
        agent.item("shop").filter(|i| generation(i) == 2)
    });
    assert_ne!(with_env["revision"], first["revision"]);

    dir.write("shop/compose.override.yaml", "services: {}\n");
    let with_override = agent.wait_for("the override file", || {
        agent
            .item("shop")
            .filter(|i| i["files"] == json!(["compose.yaml", "compose.override.yaml"]))
    });
    assert_eq!(generation(&with_override), 3);
}

#[test]
fn an_invalid_file_is_reported_in_the_api() {
    private_netns();
    let dir = TempDir::new("invalid");
    dir.write("shop/compose.yaml", BROKEN);
    let agent = Agent::start(dir.path());
    let item = agent.wait_for("shop", || agent.item("shop"));
    assert_eq!(item["phase"], "Failed");
    let errors = item["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    assert_eq!(errors[0]["severity"], "error");
    assert!(!errors[0]["text"].as_str().unwrap().is_empty());

    let detail = agent.json(&format!(
        "/api/v1/projects/{}",
        item["name"].as_str().unwrap()
    ));
    assert_eq!(detail["kind"], "Project");
    assert_eq!(detail["metadata"]["key"], "shop");
    let cond = &detail["status"]["conditions"][0];
    assert_eq!(cond["type"], "SpecValid");
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "ValidationFailed");
    assert_eq!(cond["message"], errors[0]["text"]);
    assert_eq!(detail["status"]["lastError"], errors[0]["text"]);
    assert_eq!(detail["project"], Value::Null);
}

#[test]
fn listens_on_a_unix_socket_and_stops_on_sigterm() {
    private_netns();
    let dir = TempDir::new("unix");
    let sockdir = TempDir::new("sock");
    let sock = sockdir.path().join("api.sock");
    let listen = format!("unix:{}", sock.display());
    let agent = Agent::start_with(dir.path(), &["--listen", &listen]);
    assert_eq!(agent.addr, listen);
    assert_eq!(agent.json("/healthz"), json!({"status": "ok"}));
    let status = agent.terminate();
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists(), "socket file left behind");
}

#[test]
fn refuses_a_non_loopback_address_without_allow_remote() {
    private_netns();
    let dir = TempDir::new("remote");
    let out = berth_cmd()
        .args(["agent", "--listen", "0.0.0.0:0", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-remote"), "{stderr}");
}

#[test]
fn a_missing_dir_is_an_error() {
    private_netns();
    let dir = TempDir::new("missing");
    let out = berth_cmd()
        .args(["agent", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dir"));
}

// ---- needs the compose loader -------------------------------------------

#[test]
fn a_valid_project_shows_its_services() {
    private_netns();
    let dir = TempDir::new("valid");
    dir.write("shop/compose.yaml", WEB_DB);
    let agent = Agent::start(dir.path());
    // Loaded, and the first reconcile tried (and failed: no registry).
    let item = agent.wait_for("shop reconciled", || {
        agent.item("shop").filter(|i| i["lastError"].is_string())
    });
    assert_eq!(item["name"], "shop");
    assert_eq!(item["services"], json!(["web", "db"]));
    assert_eq!(item["serviceCount"], 2);
    assert_eq!(item["errors"], json!([]));
    assert_eq!(item["phase"], "Failed", "{item}");
    // The registry cannot be reached from the test's network namespace.
    assert!(
        item["lastError"]
            .as_str()
            .unwrap()
            .contains("PullImage nginx:1.27: pull nginx:1.27"),
        "{item}"
    );

    let detail = agent.json("/api/v1/projects/shop");
    assert_eq!(detail["metadata"]["name"], "shop");
    assert_eq!(detail["metadata"]["generation"], 1);
    assert_eq!(detail["status"]["observedGeneration"], 1);
    assert_eq!(detail["status"]["errors"], json!([]));
    assert_eq!(detail["status"]["lastValidRevision"], item["revision"]);
    let cond = &detail["status"]["conditions"][0];
    assert_eq!(cond["type"], "SpecValid");
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "Loaded");
    let services = detail["status"]["services"].as_array().unwrap();
    let declared: Vec<(&Value, &Value, &Value)> = services
        .iter()
        .map(|s| (&s["name"], &s["image"], &s["desiredReplicas"]))
        .collect();
    assert_eq!(
        declared,
        [
            (&json!("web"), &json!("nginx:1.27"), &json!(1)),
            (&json!("db"), &json!("postgres:16"), &json!(1))
        ]
    );
    assert_eq!(detail["project"]["name"], "shop");
    assert_eq!(detail["project"]["services"]["web"]["image"], "nginx:1.27");
    assert_eq!(detail["project"]["services"]["db"]["image"], "postgres:16");
}

#[test]
fn editing_a_file_changes_services_and_revision() {
    private_netns();
    let dir = TempDir::new("edit-valid");
    let file = dir.write("shop/compose.yaml", WEB_DB);
    let agent = Agent::start_with(dir.path(), &WATCH_ONLY);
    let first = agent.wait_for("shop loaded", || agent.item("shop").filter(spec_ok));
    assert_eq!(first["services"], json!(["web", "db"]));
    std::fs::write(&file, WEB_ONLY).unwrap();
    let edited = agent.wait_for("services to become [web]", || {
        agent
            .item("shop")
            .filter(|i| i["services"] == json!(["web"]))
    });
    assert_eq!(generation(&edited), 2);
    assert_ne!(edited["revision"], first["revision"]);
    let detail = agent.json("/api/v1/projects/shop");
    assert_eq!(detail["project"]["services"]["web"]["image"], "nginx:1.28");
    assert_eq!(detail["status"]["lastValidGeneration"], 2);
}

#[test]
fn an_invalid_edit_names_file_line_column_and_keeps_the_last_good_services() {
    private_netns();
    let dir = TempDir::new("invalid-edit");
    let file = dir.write("shop/compose.yaml", WEB_DB);
    let agent = Agent::start_with(dir.path(), &WATCH_ONLY);
    let good = agent.wait_for("shop loaded", || agent.item("shop").filter(spec_ok));

    std::fs::write(&file, BROKEN).unwrap();
    let broken = agent.wait_for("shop's spec errors", || {
        agent.item("shop").filter(|i| !spec_ok(i))
    });
    assert_eq!(broken["phase"], "Failed");
    assert_eq!(generation(&broken), 2);
    assert_eq!(
        broken["services"],
        json!(["web", "db"]),
        "last good services kept"
    );
    let error = &broken["errors"][0];
    assert_eq!(error["file"], file.display().to_string());
    let line = error["line"].as_u64().unwrap();
    let column = error["column"].as_u64().unwrap();
    assert_eq!(line, 3, "{error}");
    assert!(column > 0, "{error}");
    let prefix = format!("{}:{line}:{column}: ", file.display());
    assert!(
        error["text"].as_str().unwrap().starts_with(&prefix),
        "{error}"
    );

    let detail = agent.json("/api/v1/projects/shop");
    let st = &detail["status"];
    assert_eq!(st["conditions"][0]["status"], "False");
    assert_eq!(st["conditions"][0]["reason"], "ValidationFailed");
    assert_eq!(st["conditions"][0]["message"], error["text"]);
    assert_eq!(st["lastError"], error["text"]);
    assert_eq!(st["lastValidRevision"], good["revision"]);
    assert_eq!(st["lastValidGeneration"], 1);
    assert_eq!(detail["project"]["services"]["db"]["image"], "postgres:16");

    // Fixing it flips the condition back.
    std::fs::write(&file, WEB_ONLY).unwrap();
    let fixed = agent.wait_for("shop valid again", || {
        agent
            .item("shop")
            .filter(|i| spec_ok(i) && i["services"] == json!(["web"]))
    });
    assert_eq!(fixed["services"], json!(["web"]));
    assert_eq!(fixed["errors"], json!([]));
}

#[test]
fn two_folders_with_one_name_conflict_without_crashing() {
    private_netns();
    let dir = TempDir::new("conflict");
    dir.write("a/compose.yaml", &format!("name: same\n{WEB_ONLY}"));
    dir.write("b/compose.yaml", &format!("name: same\n{WEB_ONLY}"));
    let agent = Agent::start(dir.path());
    let items = agent.wait_for("both projects", || {
        let items = agent.items();
        (items.len() == 2).then_some(items)
    });
    for item in &items {
        assert_eq!(item["name"], "same");
        assert_eq!(item["phase"], "Failed");
        let message = item["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.starts_with("project name \"same\" is also used by"),
            "{message}"
        );
        assert_eq!(item["services"], json!(["web"]));
    }
    let (status, _) = agent.get("/api/v1/projects/same");
    assert_eq!(status, 409);
    assert_eq!(agent.json("/healthz"), json!({"status": "ok"}));
}

#[test]
fn json_logs_are_one_object_per_line_with_fields() {
    private_netns();
    let dir = TempDir::new("jsonlog");
    dir.write("shop/compose.yaml", WEB_DB);
    let agent = Agent::start_with(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--log-format", "json"],
    );
    agent.wait_for("shop", || agent.item("shop"));
    let log = agent.log();
    let lines: Vec<Value> = log
        .lines()
        .skip(1) // the "--- agent log ---" header
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let started = lines
        .iter()
        .find(|l| l["message"] == "agent started")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["listen"], agent.addr);
    let load = lines
        .iter()
        .find(|l| l["project"] == "shop")
        .unwrap_or_else(|| panic!("no event with a project field\n{log}"));
    assert_eq!(load["generation"], 1);
}

/// Regression: SIGTERM right after "listening on" used to kill the agent
/// with the default action, because the handler was installed only when
/// the server first polled its shutdown future.
#[test]
fn sigterm_right_after_listening_is_a_clean_shutdown() {
    private_netns();
    let dir = TempDir::new("early-term");
    for attempt in 0..10 {
        let agent = Agent::start_with(dir.path(), &[]);
        let status = agent.terminate();
        assert!(status.success(), "attempt {attempt}: {status:?}");
    }
}
