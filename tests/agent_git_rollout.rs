//! Rollouts through git sync: a manual rollback pins the project across
//! commits that do not touch it and is lifted by one that does; a commit
//! whose healthcheck fails is rolled back automatically, stays blocked
//! across unrelated commits, and the next commit of the project applies.
//! Revision records and statuses name the commits. Root only; SKIPPED
//! without `git`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;
mod git_support;
mod runtime_support;

use agent_support::revisions;
use git_support::{Remote, TOKEN, detail, have_git, refresh, running_id, start_agent, until};
use runtime_support::{need_root, root_with_busybox};
use serde_json::Value;

fn shop(command: &str, probe: &str) -> String {
    format!(
        r#"name: shop
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

fn blog(seconds: &str) -> String {
    format!(
        "name: blog\nservices:\n  app:\n    image: busybox\n    command: [\"sleep\", \"{seconds}\"]\n    init: true\n    stop_grace_period: 1s\n"
    )
}

fn status(agent: &agent_support::Agent) -> Option<Value> {
    Some(detail(agent, "shop")?["status"].clone())
}

#[test]
fn rollbacks_hold_until_a_commit_changes_the_project() {
    if !need_root("rollbacks_hold_until_a_commit_changes_the_project")
        || !have_git("rollbacks_hold_until_a_commit_changes_the_project")
    {
        return;
    }
    let root = root_with_busybox("git-rollout");
    let remote = Remote::new("git-rollout");
    remote.write("apps/shop/compose.yaml", &shop("3600", "true"));
    remote.write("apps/blog/compose.yaml", &blog("3600"));
    let c1 = remote.commit("v1");
    let (agent, _token) = start_agent(
        &remote,
        &root,
        &[
            "--git-interval",
            "1h",
            "--health-stable",
            "1s",
            "--health-timeout",
            "60s",
        ],
    );
    let label = |c: &str| format!("main@sha1:{c}");
    let st = until(&agent, "rev 1 applied", || {
        let st = status(&agent)?;
        (st["rollout"]["appliedRevision"] == 1 && st["phase"] == "Ready").then_some(st)
    });
    assert_eq!(st["history"][0]["commit"], c1.as_str());
    assert_eq!(st["history"][0]["sourceRevision"], label(&c1));
    let web1 = running_id(&root, "shop-web-1").unwrap();

    let c2 = remote.commit_file("apps/shop/compose.yaml", &shop("3601", "true"), "v2");
    assert_eq!(refresh(&agent)["result"], "Updated");
    until(&agent, "rev 2 applied", || {
        let st = status(&agent)?;
        (st["rollout"]["appliedRevision"] == 2 && st["lastAppliedRevision"] == label(&c2))
            .then_some(())
    });

    // A manual rollback to revision 1 runs commit 1's shop again.
    let (code, body) = agent.post("/api/v1/projects/shop/rollback?to=1", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let st = until(&agent, "pinned to rev 1", || {
        let st = status(&agent)?;
        (st["rollout"]["appliedRevision"] == 1 && st["rollout"]["pinned"]["revision"] == 1)
            .then_some(st)
    });
    assert_eq!(st["lastAppliedRevision"], label(&c1));
    let pinned_web = until(&agent, "web back on v1", || {
        running_id(&root, "shop-web-1").filter(|id| *id != web1)
    });

    // A commit that changes only blog leaves the pin alone.
    let c3 = remote.commit_file("apps/blog/compose.yaml", &blog("3601"), "blog only");
    assert_eq!(refresh(&agent)["result"], "Updated");
    until(&agent, "blog at commit 3", || {
        (detail(&agent, "blog")?["status"]["lastAppliedRevision"] == label(&c3)).then_some(())
    });
    let st = status(&agent).unwrap();
    assert_eq!(st["sourceRevision"], label(&c3));
    assert_eq!(st["rollout"]["pinned"]["revision"], 1, "{}", st["rollout"]);
    assert_eq!(st["rollout"]["appliedRevision"], 1);
    assert_eq!(running_id(&root, "shop-web-1"), Some(pinned_web.clone()));

    // A commit that changes shop lifts it: a new revision is applied.
    let c4 = remote.commit_file("apps/shop/compose.yaml", &shop("3602", "true"), "v3");
    assert_eq!(refresh(&agent)["result"], "Updated");
    let st = until(&agent, "rev 3 applied, pin lifted", || {
        let st = status(&agent)?;
        (st["rollout"]["appliedRevision"] == 3 && st["phase"] == "Ready").then_some(st)
    });
    assert!(st["rollout"]["pinned"].is_null(), "{}", st["rollout"]);
    assert_eq!(st["lastAppliedRevision"], label(&c4));
    assert_eq!(st["history"][0]["commit"], c4.as_str());

    // A commit whose healthcheck fails is rolled back to commit 4's.
    let c5 = remote.commit_file("apps/shop/compose.yaml", &shop("3603", "false"), "bad");
    assert_eq!(refresh(&agent)["result"], "Updated");
    let st = until(&agent, "rev 4 rolled back", || {
        let st = status(&agent)?;
        (revisions(&st).first() == Some(&(4, "RolledBack".to_owned()))
            && st["rollout"]["appliedRevision"] == 3
            && st["phase"] != "Progressing")
            .then_some(st)
    });
    assert_eq!(st["rollout"]["blocked"]["revision"], 4);
    assert_eq!(st["history"][0]["commit"], c5.as_str());
    assert_eq!(st["sourceRevision"], label(&c5));
    until(&agent, "commit 4 applied again", || {
        (status(&agent)?["lastAppliedRevision"] == label(&c4)).then_some(())
    });

    // An unrelated commit does not retry it.
    let c6 = remote.commit_file("apps/blog/compose.yaml", &blog("3602"), "blog again");
    assert_eq!(refresh(&agent)["result"], "Updated");
    until(&agent, "blog at commit 6", || {
        (detail(&agent, "blog")?["status"]["lastAppliedRevision"] == label(&c6)).then_some(())
    });
    let st = status(&agent).unwrap();
    assert_eq!(revisions(&st).len(), 4, "{}", st["history"]);
    assert_eq!(st["rollout"]["blocked"]["revision"], 4);
    assert_eq!(st["rollout"]["appliedRevision"], 3);

    // The fix comes as a commit: applied.
    let c7 = remote.commit_file("apps/shop/compose.yaml", &shop("3604", "true"), "fix");
    assert_eq!(refresh(&agent)["result"], "Updated");
    let st = until(&agent, "rev 5 applied", || {
        let st = status(&agent)?;
        (st["rollout"]["appliedRevision"] == 5 && st["phase"] == "Ready").then_some(st)
    });
    assert!(st["rollout"]["blocked"].is_null());
    assert_eq!(st["lastAppliedRevision"], label(&c7));
}
