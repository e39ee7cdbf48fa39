//! `berth agent` reconciling for real: the binary on a temp folder of
//! projects and a temp `--root` with a busybox image, observed through its
//! API, `berth ps` and `berth inspect`. Root only; every container is
//! removed by `Root`'s drop even when a test fails.
//!
//! Waits poll with generous limits (the machine is shared); nothing here
//! asserts on how long anything took.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;
mod runtime_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agent_support::{Agent, TempDir};
use runtime_support::{Root, need_root, root_with_busybox, text};
use serde_json::Value;

/// How long any one convergence may take before a test fails.
const CONVERGE: Duration = Duration::from_secs(90);

const TOKEN: &str = "e2e-token-0123456789";

/// `berth agent` on `dir` with `root`, a resync every `resync`, a quick
/// deletion grace, and the API token in a file.
fn start_agent(dir: &Path, root: &Root, resync: &str) -> (Agent, TempDir) {
    let secrets = TempDir::new("token");
    let token_file = secrets.write("token", &format!("{TOKEN}\n"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let root_dir = root.dir.display().to_string();
    let token_file = token_file.display().to_string();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--root",
        &root_dir,
        "--resync-interval",
        resync,
        "--delete-grace",
        "1s",
        "--token-file",
        &token_file,
    ];
    (Agent::start_with(dir, &args), secrets)
}

/// Polls `probe` every 100 ms until it returns `Some`, for at most
/// [`CONVERGE`].
fn until<T>(agent: &Agent, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + CONVERGE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            let (_, detail) = agent.get("/api/v1/projects");
            panic!(
                "timed out after {CONVERGE:?} waiting for {what}\nprojects: {detail}\n{}",
                agent.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn detail(agent: &Agent, name: &str) -> Option<Value> {
    let (status, body) = agent.get(&format!("/api/v1/projects/{name}"));
    (status == 200).then(|| serde_json::from_str(&body).unwrap())
}

/// `name -> (id, running)` from `berth inspect`, `None` when absent.
fn container(root: &Root, name: &str) -> Option<(String, bool)> {
    let out = root.run(&["inspect", name]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v[0];
    Some((
        c["Id"].as_str().unwrap().to_owned(),
        c["State"]["Running"] == true,
    ))
}

fn running_id(root: &Root, name: &str) -> Option<String> {
    container(root, name).and_then(|(id, running)| running.then_some(id))
}

/// The container names under `root` (from their configs), sorted.
fn names(root: &Root) -> Vec<String> {
    let mut names: Vec<String> = root
        .ids()
        .iter()
        .filter_map(|id| {
            let config = root.dir.join("containers").join(id).join("config.json");
            let v: Value = serde_json::from_slice(&std::fs::read(config).ok()?).ok()?;
            Some(v["name"].as_str()?.to_owned())
        })
        .collect();
    names.sort();
    names
}

fn ps(root: &Root) -> String {
    let out = root.run(&["ps", "-a"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

fn volume_dir(root: &Root, name: &str) -> PathBuf {
    root.dir.join("volumes").join(name)
}

const SHOP: &str = r#"
name: shop
services:
  web:
    image: busybox
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 2s
  db:
    image: busybox
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 2s
    volumes: ["data:/data"]
volumes:
  data: {}
"#;

/// A whole life: a dropped file runs, an edit recreates only what it
/// touches, a broken edit leaves the app alone and says where, the fix
/// converges, and deleting the file takes the app down but keeps its data.
#[test]
fn a_project_runs_is_edited_survives_a_broken_edit_and_is_torn_down() {
    if !need_root("a_project_runs_is_edited_survives_a_broken_edit_and_is_torn_down") {
        return;
    }
    let root = root_with_busybox("agent-life");
    let dir = TempDir::new("agent-life");
    let (agent, _token) = start_agent(dir.path(), &root, "1s");
    let file = dir.write("shop/compose.yaml", SHOP);

    // Dropped in: both run, the API says Ready, `berth ps` shows them up.
    let first = until(&agent, "shop Ready with both running", || {
        let d = detail(&agent, "shop")?;
        (d["status"]["phase"] == "Ready").then_some(())?;
        Some((
            running_id(&root, "shop-web-1")?,
            running_id(&root, "shop-db-1")?,
        ))
    });
    let listing = ps(&root);
    for name in ["shop-web-1", "shop-db-1"] {
        assert!(
            listing
                .lines()
                .any(|l| l.contains(name) && l.contains(" Up ")),
            "{name} not up in\n{listing}"
        );
    }
    let d = detail(&agent, "shop").unwrap();
    let st = &d["status"];
    assert_eq!(st["sync"]["status"], "Synced");
    assert_eq!(st["health"]["status"], "Healthy");
    assert_eq!(st["conditions"][1]["type"], "Ready");
    assert_eq!(st["conditions"][1]["status"], "True");
    assert_eq!(st["services"][0]["name"], "web");
    assert_eq!(st["services"][0]["runningReplicas"], 1);
    assert_eq!(st["services"][0]["replicas"][0]["id"], first.0.as_str());
    assert_eq!(st["services"][0]["replicas"][0]["state"], "running");
    assert!(volume_dir(&root, "shop_data").join("_data").is_dir());

    // Edit one service: only it is recreated.
    std::fs::write(
        &file,
        SHOP.replacen(r#"["sleep", "3600"]"#, r#"["sleep", "3601"]"#, 1),
    )
    .unwrap();
    let web2 = until(&agent, "web recreated", || {
        running_id(&root, "shop-web-1").filter(|id| *id != first.0)
    });
    assert_eq!(
        running_id(&root, "shop-db-1").as_deref(),
        Some(first.1.as_str())
    );
    // The edit's operation, in the history (resyncs since then changed
    // nothing, so they did not push it out).
    let op = until(&agent, "the edit's operation", || {
        let d = detail(&agent, "shop")?;
        d["status"]["operations"]
            .as_array()?
            .iter()
            .find(|op| op["trigger"] == "fswatch" && op["phase"] == "Succeeded")
            .cloned()
    });
    assert_eq!(op["plan"][0]["action"], "Recreate", "{op:#}");
    assert_eq!(op["plan"][0]["target"], "shop-web-1");
    assert_eq!(op["plan"][0]["reasons"][0]["kind"], "ConfigChanged");
    assert_eq!(op["plan"][0]["reasons"][0]["message"], "command changed");
    assert_eq!(op["plan"].as_array().unwrap().len(), 1, "{op:#}");

    // Break it: nothing moves, the error names file and line.
    std::fs::write(&file, "services:\n  web:\n    image: busybox: 1\n").unwrap();
    let broken = until(&agent, "the error in the API", || {
        let d = detail(&agent, "shop")?;
        d["status"]["lastError"].is_string().then_some(d)
    });
    let error = &broken["status"]["errors"][0];
    assert_eq!(error["file"], file.display().to_string());
    assert_eq!(error["line"], 3, "{error}");
    assert!(
        broken["status"]["lastError"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}:3:", file.display())),
        "{broken:#}"
    );
    assert_eq!(broken["status"]["phase"], "Failed");
    assert_eq!(broken["status"]["conditions"][3]["type"], "Stalled");
    assert_eq!(broken["status"]["conditions"][3]["status"], "True");
    // A resync or two later, still untouched.
    let seen = broken["status"]["operation"]["startedAt"].clone();
    until(&agent, "a reconcile after the break", || {
        let d = detail(&agent, "shop")?;
        (d["status"]["operation"]["startedAt"] != seen
            && d["status"]["operation"]["phase"] == "Succeeded")
            .then_some(())
    });
    assert_eq!(
        running_id(&root, "shop-web-1").as_deref(),
        Some(web2.as_str())
    );
    assert_eq!(
        running_id(&root, "shop-db-1").as_deref(),
        Some(first.1.as_str())
    );

    // Fix it (with a change): converges on the fixed model.
    std::fs::write(
        &file,
        SHOP.replace(
            "    init: true\n    stop_grace_period: 2s\n  db:",
            "    init: true\n    stop_grace_period: 2s\n    environment: {FIXED: '1'}\n  db:",
        ),
    )
    .unwrap();
    until(&agent, "Ready after the fix, web recreated again", || {
        let d = detail(&agent, "shop")?;
        (d["status"]["phase"] == "Ready" && d["status"]["lastError"].is_null()).then_some(())?;
        running_id(&root, "shop-web-1").filter(|id| *id != web2)
    });
    assert_eq!(
        running_id(&root, "shop-db-1").as_deref(),
        Some(first.1.as_str())
    );

    // Delete the file: torn down, the named volume kept.
    std::fs::remove_file(&file).unwrap();
    until(&agent, "shop gone from the API", || {
        detail(&agent, "shop").is_none().then_some(())
    });
    until(&agent, "no containers left", || {
        root.ids().is_empty().then_some(())
    });
    assert!(volume_dir(&root, "shop_data").join("_data").is_dir());
    assert_eq!(
        // Dot files are the network crate's locks, not networks.
        std::fs::read_dir(root.dir.join("networks"))
            .unwrap()
            .filter(|e| !e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.'))
            .count(),
        0,
        "the project's network is removed"
    );
}

/// A container stopped by hand and one removed by hand come back (at
/// once, through container events; the resync would too), logged as drift
/// with the reason.
#[test]
fn containers_stopped_or_removed_by_hand_are_repaired() {
    if !need_root("containers_stopped_or_removed_by_hand_are_repaired") {
        return;
    }
    let root = root_with_busybox("agent-drift");
    let dir = TempDir::new("agent-drift");
    dir.write("shop/compose.yaml", SHOP);
    let (agent, _token) = start_agent(dir.path(), &root, "1s");
    let (web, db) = until(&agent, "both running", || {
        Some((
            running_id(&root, "shop-web-1")?,
            running_id(&root, "shop-db-1")?,
        ))
    });
    let out = root.run(&["stop", "-t", "1", "shop-web-1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = root.run(&["rm", "-f", "shop-db-1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Removed: a new one. Stopped through berth: the user's choice, kept
    // (as Docker keeps a stopped container down) until `start` or `up`.
    let new_db = until(&agent, "db recreated", || running_id(&root, "shop-db-1"));
    assert_ne!(new_db, db);
    let log = agent.log();
    assert!(
        log.lines().any(|l| l.contains("drift")
            && l.contains("shop-db-1")
            && l.contains("ContainerMissing")),
        "{log}"
    );
    // Several resyncs (1 s apart) later, web is still stopped.
    until(&agent, "three more resyncs", || {
        let (_, metrics) = agent.get("/metrics");
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("berth_reconcile_total{project=\"shop\"")
                    && l.contains("trigger=\"resync\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .any(|n| n >= 3.0)
            .then_some(())
    });
    assert_eq!(container(&root, "shop-web-1"), Some((web.clone(), false)));
    let d = detail(&agent, "shop").unwrap();
    let web_status = d["status"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "web")
        .unwrap()
        .clone();
    assert_eq!(web_status["phase"], "Stopped", "{web_status:#}");
    // `compose start` brings it back, and the agent keeps it.
    let out = root.run(&["compose", "-p", "shop", "start"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(running_id(&root, "shop-web-1"), Some(web));
    assert_eq!(names(&root), ["shop-db-1", "shop-web-1"]);
    let want = [
        "berth_drift_corrections_total{project=\"shop\",service=\"db\",reason=\"ContainerMissing\"} 1",
        "berth_reconcile_total{project=\"shop\",result=\"success\",trigger=\"event\"} ",
        "berth_reconcile_duration_seconds_count{project=\"shop\"} ",
        "berth_service_replicas{project=\"shop\",service=\"web\",state=\"running\"} 1",
        "berth_project_condition{project=\"shop\",type=\"Ready\",status=\"True\"} 1",
    ];
    // The start is an event the agent observes; its metrics follow.
    until(&agent, "metrics after the start", || {
        let (_, metrics) = agent.get("/metrics");
        want.iter()
            .all(|prefix| metrics.lines().any(|l| l.starts_with(prefix)))
            .then_some(())
    });
    let (_, metrics) = agent.get("/metrics");
    assert!(
        !metrics.contains("reason=\"Stopped\""),
        "a stop by the user is not drift:\n{metrics}"
    );
}

const ONE_SHOT_FIRST: &str = r#"
name: gated
services:
  init:
    image: busybox
    command: ["sleep", "4"]
  web:
    image: busybox
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 2s
    depends_on:
      init: {condition: service_completed_successfully}
"#;

/// `/health` answers 503 while `web` waits for its one-shot dependency,
/// then 200 once the one-shot completed with 0 and `web` runs.
#[test]
fn health_answers_503_until_every_service_is_fine_then_200() {
    if !need_root("health_answers_503_until_every_service_is_fine_then_200") {
        return;
    }
    let root = root_with_busybox("agent-health");
    let dir = TempDir::new("agent-health");
    dir.write("gated/compose.yaml", ONE_SHOT_FIRST);
    let (agent, _token) = start_agent(dir.path(), &root, "1s");
    let waiting = until(&agent, "a 503 while init runs", || {
        let (status, body) = agent.get("/api/v1/projects/gated/health");
        let body: Value = serde_json::from_str(&body).ok()?;
        (status == 503 && body["reasons"].to_string().contains("web: no container")).then_some(body)
    });
    assert_eq!(waiting["kind"], "ProjectHealth");
    assert_ne!(waiting["status"], "Healthy");
    let healthy = until(&agent, "a 200", || {
        let (status, body) = agent.get("/api/v1/projects/gated/health");
        (status == 200).then(|| serde_json::from_str::<Value>(&body).unwrap())
    });
    assert_eq!(healthy["status"], "Healthy");
    assert_eq!(healthy["reasons"], serde_json::json!([]));
    let init = container(&root, "gated-init-1").unwrap();
    assert!(!init.1, "init ran to completion");
    assert!(running_id(&root, "gated-web-1").is_some());
}

/// Mutating calls: 403 without a configured token, 401 with a wrong one;
/// with the right one a reconcile runs (and `?wait=true` returns its
/// operation), and a suspended project is left alone until resumed.
#[test]
fn mutating_calls_need_the_token_and_suspend_holds_the_project() {
    if !need_root("mutating_calls_need_the_token_and_suspend_holds_the_project") {
        return;
    }
    let root = root_with_busybox("agent-auth");
    let dir = TempDir::new("agent-auth");
    dir.write("shop/compose.yaml", SHOP);

    // No token configured: refused, saying how to configure one.
    {
        let root_dir = root.dir.display().to_string();
        let plain = Agent::start_with(
            dir.path(),
            &[
                "--listen",
                "127.0.0.1:0",
                "--root",
                &root_dir,
                "--resync-interval",
                "1h",
            ],
        );
        until(&plain, "shop known", || detail(&plain, "shop"));
        let (status, body) = plain.post("/api/v1/projects/shop/reconcile", Some(TOKEN));
        assert_eq!(status, 403, "{body}");
        assert!(
            body.contains("--token-file") && body.contains("BERTH_API_TOKEN"),
            "{body}"
        );
        plain.kill();
    }

    // A long resync: every reconcile below is one we asked for.
    let (agent, _token) = start_agent(dir.path(), &root, "1h");
    until(&agent, "both running", || {
        Some((
            running_id(&root, "shop-web-1")?,
            running_id(&root, "shop-db-1")?,
        ))
    });
    for token in [None, Some("wrong")] {
        let (status, body) = agent.post("/api/v1/projects/shop/reconcile", token);
        assert_eq!(status, 401, "{token:?}: {body}");
    }
    let (status, body) = agent.post("/api/v1/projects/shop/reconcile", Some(TOKEN));
    assert_eq!(status, 202, "{body}");

    // Remove a container, then a waited manual reconcile puts it back.
    let rm = root.run(&["rm", "-f", "shop-web-1"]);
    assert!(rm.status.success(), "{}", text(&rm.stderr));
    let (status, body) = agent.post(
        "/api/v1/projects/shop/reconcile?wait=true&timeout=60s",
        Some(TOKEN),
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["result"], "Succeeded", "{answer:#}");
    assert_eq!(answer["operation"]["trigger"], "manual");
    // The container-event trigger may have put it back first (then the
    // manual plan is empty); either way it runs once the call returns.
    let plan = answer["operation"]["plan"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        plan.is_empty() || plan[0]["target"] == "shop-web-1",
        "{answer:#}"
    );
    assert!(running_id(&root, "shop-web-1").is_some());
    let d = detail(&agent, "shop").unwrap();
    assert!(d["status"]["lastHandledReconcileAt"].is_string());

    // Suspended: a manual reconcile is refused, the worker skips, and a
    // container removed by hand stays removed.
    let (status, body) = agent.post("/api/v1/projects/shop/suspend", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let d: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["spec"]["suspend"], true);
    let rm = root.run(&["rm", "-f", "shop-web-1"]);
    assert!(rm.status.success(), "{}", text(&rm.stderr));
    until(&agent, "the suspension to be acted on", || {
        let d = detail(&agent, "shop")?;
        (d["status"]["phase"] == "Suspended"
            && d["status"]["skipped"].as_str()?.contains("suspended"))
        .then_some(())
    });
    let (status, body) = agent.post("/api/v1/projects/shop/reconcile", Some(TOKEN));
    assert_eq!(status, 409, "{body}");
    assert!(container(&root, "shop-web-1").is_none());
    // Remembered across a restart of the agent.
    agent.kill();
    let (agent, _token2) = agent_again(dir.path(), &root);
    until(&agent, "still suspended after a restart", || {
        let d = detail(&agent, "shop")?;
        (d["spec"]["suspend"] == true && d["status"]["skipped"].is_string()).then_some(())
    });
    assert!(container(&root, "shop-web-1").is_none());

    let (status, body) = agent.post("/api/v1/projects/shop/resume", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    until(&agent, "web back after resume", || {
        running_id(&root, "shop-web-1")
    });
}

fn agent_again(dir: &Path, root: &Root) -> (Agent, TempDir) {
    start_agent(dir, root, "1h")
}

const CRASHY: &str = r#"
name: crashy
services:
  init:
    image: busybox
    command: ["sleep", "3"]
  app1:
    image: busybox
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 2s
    depends_on:
      init: {condition: service_completed_successfully}
  app2:
    image: busybox
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 2s
    depends_on:
      init: {condition: service_completed_successfully}
  side:
    image: busybox
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 2s
"#;

/// SIGKILL the agent while a reconcile waits for a dependency (some
/// containers created, others not yet); a new agent converges with every
/// container exactly once and nothing left over.
#[test]
fn an_agent_killed_mid_reconcile_converges_after_restart_without_duplicates() {
    if !need_root("an_agent_killed_mid_reconcile_converges_after_restart_without_duplicates") {
        return;
    }
    let root = root_with_busybox("agent-kill");
    let dir = TempDir::new("agent-kill");
    dir.write("crashy/compose.yaml", CRASHY);
    let (agent, _token) = start_agent(dir.path(), &root, "1s");
    until(
        &agent,
        "the reconcile in progress with containers made",
        || {
            let d = detail(&agent, "crashy")?;
            (d["status"]["operation"]["phase"] == "Running" && !root.ids().is_empty()).then_some(())
        },
    );
    agent.kill();
    let before = names(&root);
    assert!(
        !before.iter().any(|n| n.starts_with("crashy-app")),
        "killed too late: {before:?}"
    );

    let (agent, _token) = start_agent(dir.path(), &root, "1s");
    until(&agent, "converged", || {
        let d = detail(&agent, "crashy")?;
        (d["status"]["phase"] == "Ready").then_some(())?;
        ["crashy-app1-1", "crashy-app2-1", "crashy-side-1"]
            .iter()
            .all(|n| running_id(&root, n).is_some())
            .then_some(())
    });
    assert_eq!(
        names(&root),
        [
            "crashy-app1-1",
            "crashy-app2-1",
            "crashy-init-1",
            "crashy-side-1"
        ],
        "one container per replica"
    );
    let init = container(&root, "crashy-init-1").unwrap();
    assert!(!init.1);
    let inspect: Value =
        serde_json::from_slice(&root.run(&["inspect", "crashy-init-1"]).stdout).unwrap();
    assert_eq!(inspect[0]["State"]["ExitCode"], 0);
    // Nothing leaked: every name claim and every container folder belongs
    // to one of the four, and only the project's network exists.
    let mut claims: Vec<String> = std::fs::read_dir(root.dir.join("names"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    claims.sort();
    assert_eq!(claims, names(&root));
    assert_eq!(root.ids().len(), 4);
    let networks: Vec<String> = std::fs::read_dir(root.dir.join("networks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(networks, ["crashy_default"]);
    // And it stays converged: the next resync has nothing to do.
    let seen = detail(&agent, "crashy").unwrap()["status"]["operation"]["startedAt"].clone();
    let quiet = until(&agent, "another reconcile", || {
        let d = detail(&agent, "crashy")?;
        let op = d["status"]["operation"].clone();
        (op["startedAt"] != seen && op["phase"] == "Succeeded").then_some(op)
    });
    assert_eq!(quiet["plan"], serde_json::json!([]), "{quiet:#}");
}

/// A project folder deleted while no agent ran: the next agent finds the
/// containers it labelled and tears them down (its sweep).
#[test]
fn a_folder_deleted_while_the_agent_was_down_is_torn_down_at_the_next_start() {
    if !need_root("a_folder_deleted_while_the_agent_was_down_is_torn_down_at_the_next_start") {
        return;
    }
    let root = root_with_busybox("agent-sweep");
    let dir = TempDir::new("agent-sweep");
    dir.write("shop/compose.yaml", SHOP);
    dir.write(
        "keep/compose.yaml",
        "services:\n  k:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    init: true\n",
    );
    let (agent, _token) = start_agent(dir.path(), &root, "1s");
    until(&agent, "all running", || {
        running_id(&root, "shop-web-1")?;
        running_id(&root, "shop-db-1")?;
        running_id(&root, "keep-k-1")
    });
    assert!(agent.terminate().success());
    std::fs::remove_dir_all(dir.path().join("shop")).unwrap();
    let (agent, _token) = agent_again(dir.path(), &root);
    until(&agent, "shop's containers swept", || {
        (names(&root) == ["keep-k-1"]).then_some(())
    });
    assert!(running_id(&root, "keep-k-1").is_some());
    assert!(volume_dir(&root, "shop_data").join("_data").is_dir());
    let log = agent.log();
    assert!(log.contains("sweep"), "{log}");
}

/// A container that exits on its own is seen at once (container events:
/// the resync here is an hour away) and restarted as `restart: always`
/// says, with backoff; the project beside it is not disturbed.
#[test]
fn a_crash_looping_service_is_restarted_with_backoff_beside_a_quiet_project() {
    if !need_root("a_crash_looping_service_is_restarted_with_backoff_beside_a_quiet_project") {
        return;
    }
    let root = root_with_busybox("agent-crash");
    let dir = TempDir::new("agent-crash");
    dir.write(
        "crash/compose.yaml",
        "services:\n  c:\n    image: busybox\n    command: [\"sh\", \"-c\", \"exit 3\"]\n    restart: always\n",
    );
    dir.write(
        "calm/compose.yaml",
        "services:\n  w:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    init: true\n",
    );
    let (agent, _token) = start_agent(dir.path(), &root, "1h");
    let calm = until(&agent, "calm running", || running_id(&root, "calm-w-1"));
    // The container's shim restarts it (the same container, with Docker's
    // backoff); the agent reports it and does not fight it.
    let crash = until(&agent, "three restarts", || {
        let d = detail(&agent, "crash")?;
        let c = d["status"]["services"][0].clone();
        (c["restartCount"].as_u64()? >= 3 && c["lastExit"]["code"] == 3).then_some(c)
    });
    let first_id = crash["replicas"][0]["id"].clone();
    assert!(first_id.is_string(), "{crash:#}");
    assert_eq!(crash["restartPolicy"], "always");
    let (status, body) = agent.get("/api/v1/projects/crash/health");
    assert_eq!(status, 503, "{body}");
    // Every restart was an event, none a resync; logged as drift.
    let (_, metrics) = agent.get("/metrics");
    assert!(
        !metrics.contains("trigger=\"resync\""),
        "no resync ran, yet:\n{metrics}"
    );
    let later = until(&agent, "more restarts", || {
        let d = detail(&agent, "crash")?;
        let c = d["status"]["services"][0].clone();
        (c["restartCount"].as_u64()? > crash["restartCount"].as_u64()?).then_some(c)
    });
    assert_eq!(
        later["replicas"][0]["id"], first_id,
        "restarted, not recreated"
    );
    // The calm project: same container, still Ready.
    assert_eq!(running_id(&root, "calm-w-1"), Some(calm));
    // Ready once its first revision has passed the health gate (running
    // for the agent's stable period).
    until(&agent, "calm Ready", || {
        (detail(&agent, "calm")?["status"]["phase"] == "Ready").then_some(())
    });
}
