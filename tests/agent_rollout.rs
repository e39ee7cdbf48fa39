//! Rollouts with the real agent: a revision whose healthcheck fails is
//! rolled back to the previous one and not retried at each resync, a fix
//! is applied, manual rollbacks go through the API (token required) and
//! the CLI, events stream over SSE, and a manifest that stays invalid
//! across many resyncs is one Warning event. Root only; every container
//! is removed by `Root`'s drop even when the test fails.
//!
//! Waits poll with generous limits (the machine is shared); nothing here
//! asserts on how long anything took.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;
mod runtime_support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use agent_support::{Agent, TempDir, berth_cmd, revisions};
use runtime_support::{need_root, root_with_busybox, text};
use serde_json::Value;

const CONVERGE: Duration = Duration::from_secs(120);
const TOKEN: &str = "rollout-token-0123456789";

fn until<T>(agent: &Agent, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + CONVERGE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            let (_, detail) = agent.get("/api/v1/projects/shop");
            panic!(
                "timed out after {CONVERGE:?} waiting for {what}\nshop: {detail}\n{}",
                agent.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status(agent: &Agent) -> Option<Value> {
    let (code, body) = agent.get("/api/v1/projects/shop");
    (code == 200).then(|| serde_json::from_str::<Value>(&body).unwrap()["status"].clone())
}

/// The running web replica: `(container id, config hash)`.
fn web(st: &Value) -> Option<(String, String)> {
    let r = &st["services"][0]["replicas"][0];
    (r["state"] == "running").then(|| {
        (
            r["id"].as_str().unwrap().to_owned(),
            r["configHash"].as_str().unwrap_or("").to_owned(),
        )
    })
}

fn events(agent: &Agent, query: &str) -> Vec<Value> {
    agent.json(&format!("/api/v1/events?watch=false{query}"))["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn resyncs(agent: &Agent) -> f64 {
    let (_, text) = agent.get("/metrics");
    text.lines()
        .filter(|l| l.starts_with("berth_reconcile_total{") && l.contains("trigger=\"resync\""))
        .filter(|l| l.contains("project=\"shop\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn shop(command: &str, probe: &str) -> String {
    format!(
        r#"
name: shop
services:
  web:
    image: busybox
    command: ["sleep", "{command}"]
    init: true
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "{probe}"]
      interval: 500ms
      retries: 1
"#
    )
}

/// Reads an SSE stream until `pred` holds for the text received.
fn read_sse_until(stream: &mut std::net::TcpStream, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + CONVERGE;
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                if pred(&seen) {
                    return seen;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("reading the event stream: {e}"),
        }
    }
    panic!("the event stream never matched; got:\n{seen}");
}

#[test]
fn a_failing_revision_is_rolled_back_not_retried_and_manual_rollbacks_work() {
    if !need_root("a_failing_revision_is_rolled_back_not_retried_and_manual_rollbacks_work") {
        return;
    }
    let root = root_with_busybox("agent-rollout");
    let dir = TempDir::new("agent-rollout");
    let secrets = TempDir::new("token");
    let token_file = secrets.write("token", &format!("{TOKEN}\n"));
    let root_dir = root.dir.display().to_string();
    let token_path = token_file.display().to_string();
    let file = dir.write("shop/compose.yaml", &shop("3600", "true"));
    // Never valid: its warning must come once, however many resyncs.
    dir.write(
        "broken/compose.yaml",
        "services:\n  web: [not, a, mapping\n",
    );
    let agent = Agent::start_with(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--root",
            &root_dir,
            "--resync-interval",
            "1s",
            "--token-file",
            &token_path,
            "--health-timeout",
            "60s",
            "--health-stable",
            "1s",
        ],
    );

    // v1: applied, healthy, revision 1 in place.
    let st = until(&agent, "rev 1 applied", || {
        let st = status(&agent)?;
        (st["rollout"]["appliedRevision"] == 1 && st["phase"] == "Ready").then_some(st)
    });
    assert_eq!(revisions(&st), [(1, "Applied".to_owned())]);
    let v1_hash = st["history"][0]["configHashes"]["web"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(web(&st).unwrap().1, v1_hash);
    let files = &st["history"][0];
    assert!(files["revision"].as_str().unwrap().starts_with("sha256:"));

    // v2: its healthcheck fails; the agent rolls back to v1.
    std::fs::write(&file, shop("3601", "false")).unwrap();
    let st = until(&agent, "rev 2 rolled back", || {
        let st = status(&agent)?;
        let h = revisions(&st);
        (h.first() == Some(&(2, "RolledBack".to_owned()))
            && st["rollout"]["appliedRevision"] == 1
            && web(&st).is_some_and(|w| w.1 == v1_hash))
        .then_some(st)
    });
    assert_eq!(st["history"][0]["rolledBackTo"], 1);
    assert!(
        st["history"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unhealthy"),
        "{}",
        st["history"][0]
    );
    assert_eq!(st["rollout"]["desiredRevision"], 2);
    assert_eq!(
        st["phase"], "Failed",
        "healthy, but not the files' revision"
    );
    assert_eq!(st["sync"]["status"], "OutOfSync");
    assert_eq!(st["rollout"]["blocked"]["revision"], 2);
    assert_eq!(st["lastAppliedRevision"], st["history"][1]["revision"]);
    let (kept_id, _) = web(&st).unwrap();
    let reasons: Vec<String> = events(&agent, "&project=shop")
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["type"].as_str().unwrap(),
                e["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        reasons.contains(&"Warning HealthGateFailed".to_owned()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"Normal RolledBack".to_owned()),
        "{reasons:?}"
    );

    // Resyncs come and go; revision 2 is not tried again.
    let before = resyncs(&agent);
    until(&agent, "three more resyncs", || {
        (resyncs(&agent) >= before + 3.0).then_some(())
    });
    let st = status(&agent).unwrap();
    assert_eq!(revisions(&st).len(), 2, "{}", st["history"]);
    assert_eq!(web(&st).unwrap().0, kept_id, "v1's container kept");
    let gate_failures = events(&agent, "&project=shop")
        .iter()
        .filter(|e| e["reason"] == "HealthGateFailed")
        .map(|e| e["count"].as_u64().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(gate_failures, [1]);

    // v3 fixes it: applied.
    std::fs::write(&file, shop("3602", "true")).unwrap();
    let st = until(&agent, "rev 3 applied", || {
        let st = status(&agent)?;
        (st["rollout"]["appliedRevision"] == 3 && st["phase"] == "Ready").then_some(st)
    });
    assert_eq!(revisions(&st)[0], (3, "Applied".to_owned()));
    assert!(st["rollout"]["blocked"].is_null());
    let v3_hash = st["history"][0]["configHashes"]["web"]
        .as_str()
        .unwrap()
        .to_owned();

    // Manual rollback through the API: the token is required.
    let (code, body) = agent.post("/api/v1/projects/shop/rollback?to=1", None);
    assert_eq!(code, 401, "{body}");
    let (code, body) = agent.post("/api/v1/projects/shop/rollback?to=1", Some(TOKEN));
    assert_eq!(code, 200, "{body}\n{}", agent.log());
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["result"], "Succeeded", "{answer}");
    assert_eq!(
        (answer["from"].clone(), answer["to"].clone()),
        (3.into(), 1.into())
    );
    let st = until(&agent, "rev 1 pinned and running", || {
        let st = status(&agent)?;
        (web(&st)?.1 == v1_hash && st["rollout"]["appliedRevision"] == 1).then_some(st)
    });
    assert_eq!(st["rollout"]["pinned"]["revision"], 1);
    let (code, _) = agent.post("/api/v1/projects/shop/rollback?to=99", Some(TOKEN));
    assert_eq!(code, 404);

    // `berth history` lists the revisions.
    let out = berth_cmd()
        .args(["revisions", "shop", "--agent", &agent.addr])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("1* ") && l.contains("Applied")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("2 ") && l.contains("RolledBack")),
        "{table}"
    );

    // The CLI without a token is refused; with it, rolls forward to rev 3
    // while an SSE subscriber sees the event.
    let out = berth_cmd()
        .args(["rollback", "shop", "--to", "3", "--agent", &agent.addr])
        .env_remove("BERTH_API_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));

    let last_id = events(&agent, "")
        .last()
        .map_or(0, |e| e["id"].as_u64().unwrap());
    let mut sse = std::net::TcpStream::connect(&agent.addr).unwrap();
    sse.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    write!(
        sse,
        "GET /api/v1/events?since={last_id} HTTP/1.1\r\nHost: berth\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    read_sse_until(&mut sse, |s| s.contains("text/event-stream"));

    let out = berth_cmd()
        .args([
            "rollback",
            "shop",
            "--to",
            "3",
            "--agent",
            &agent.addr,
            "--token-file",
            &token_path,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        agent.log()
    );
    assert!(
        text(&out.stdout).contains("rev-1 -> rev-3: Succeeded"),
        "{}",
        text(&out.stdout)
    );
    let streamed = read_sse_until(&mut sse, |s| s.contains("\"reason\":\"RolledBack\""));
    assert!(streamed.contains("event: Normal"), "{streamed}");
    let st = until(&agent, "rev 3 running again", || {
        let st = status(&agent)?;
        (web(&st)?.1 == v3_hash).then_some(st)
    });
    assert_eq!(st["rollout"]["pinned"]["revision"], 3);

    // The broken project: one ManifestInvalid warning, counted.
    let broken: Vec<Value> = events(&agent, "")
        .into_iter()
        .filter(|e| e["reason"] == "ManifestInvalid")
        .collect();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(broken[0]["involvedObject"]["project"], "broken");
    assert!(broken[0]["count"].as_u64().unwrap() >= 3, "{}", broken[0]);

    // Revisions are on disk, private.
    use std::os::unix::fs::PermissionsExt;
    let rev = root.dir.join("agent/projects/shop/revisions/1.json");
    let mode = std::fs::metadata(&rev).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        agent.metric("berth_rollbacks_total{project=\"shop\",kind=\"automatic\"}"),
        1.0
    );
}
