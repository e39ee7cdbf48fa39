//! `berth agent --git`: the real binary following a real git repository
//! (a bare repository in a temp folder, pushed to from a work clone),
//! reconciling for real on a temp `--root` with a busybox image, observed
//! through its API and `berth inspect`. Root only (containers, a private
//! network namespace); SKIPPED without the `git` binary. Every container
//! is removed by `Root`'s drop even when a test fails, after the agent's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;
mod git_support;
mod runtime_support;

use std::path::PathBuf;

use agent_support::berth_cmd;
use git_support::{
    Remote, applied, condition, detail, exists, git, have_git, metric_sum, refresh, running_id,
    source, start_agent, until,
};
use runtime_support::{need_root, root_with_busybox, text};
use serde_json::Value;

const SHOP: &str = r#"name: shop
services:
  web:
    image: busybox
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 2s
  db:
    image: busybox
    command: ["sleep", "3601"]
    init: true
    stop_grace_period: 2s
"#;

/// Writes into a relative bind mount: the folder lives in the checkout,
/// untracked, and must survive every checkout.
const BLOG: &str = r#"name: blog
services:
  app:
    image: busybox
    command: ["sh", "-c", "echo hello > /data/hello && exec sleep 3602"]
    init: true
    stop_grace_period: 2s
    volumes: ["./data:/data"]
"#;

/// A YAML error on line 4 (`mapping values are not allowed here`).
const BROKEN: &str = "name: blog\nservices:\n  app:\n    image: busybox: latest\n";

/// The whole life of a repository: the first commit comes up; an edit of
/// one service recreates only it; a broken file keeps its project running
/// and names file and line while the rest of the commit applies; the fix
/// converges; a project removed from the repository is torn down; an
/// unreachable remote keeps everything running, is retried and shows in
/// status, metrics and events, also across an agent restart; the refresh
/// hook needs the token.
#[test]
fn the_agent_follows_a_repository_commit_by_commit() {
    if !need_root("the_agent_follows_a_repository_commit_by_commit")
        || !have_git("the_agent_follows_a_repository_commit_by_commit")
    {
        return;
    }
    let root = root_with_busybox("git-life");
    let remote = Remote::new("git-life");
    remote.write("apps/shop/compose.yaml", SHOP);
    remote.write("apps/blog/compose.yaml", BLOG);
    remote.write("README.md", "not a project: outside --git-path\n");
    let c1 = remote.commit("shop and blog");

    // A long interval: every later commit is taken through the refresh
    // hook, so each step is deterministic.
    let (agent, token) = start_agent(&remote, &root, &["--git-interval", "1h"]);
    let ids = until(&agent, "shop and blog running", || {
        for name in ["shop", "blog"] {
            (detail(&agent, name)?["status"]["phase"] == "Ready").then_some(())?;
        }
        Some((
            running_id(&root, "shop-web-1")?,
            running_id(&root, "shop-db-1")?,
            running_id(&root, "blog-app-1")?,
        ))
    });
    let (web1, db1, blog1) = ids;
    let rev1 = format!("main@sha1:{c1}");
    let src = source(&agent);
    assert_eq!(src["type"], "git");
    assert_eq!(src["url"], remote.url());
    assert_eq!(src["ref"], "main");
    assert_eq!(src["path"], "apps");
    assert_eq!(src["revision"], rev1.as_str());
    assert_eq!(src["commit"], c1.as_str());
    assert_eq!(src["commitSubject"], "shop and blog");
    assert_eq!(src["lastError"], Value::Null);
    assert_eq!(
        condition(&src["conditions"], "SourceReady")["status"],
        "True"
    );
    let checkout = PathBuf::from(src["checkout"].as_str().unwrap());
    assert!(
        checkout.starts_with(root.dir.join("agent/git")),
        "{checkout:?}"
    );
    let keys: Vec<Value> = agent.items().iter().map(|i| i["key"].clone()).collect();
    assert_eq!(keys, vec![Value::from("blog"), Value::from("shop")]);

    let d = detail(&agent, "shop").unwrap();
    assert_eq!(d["spec"]["source"]["type"], "git");
    assert_eq!(d["spec"]["source"]["url"], remote.url());
    assert_eq!(d["spec"]["source"]["path"], "apps/shop");
    assert_eq!(
        d["spec"]["source"]["dir"],
        checkout.join("apps/shop").display().to_string()
    );
    assert_eq!(d["status"]["sync"]["revision"], rev1.as_str());
    assert_eq!(d["status"]["lastAppliedRevision"], rev1.as_str());
    assert_eq!(d["status"]["lastAttemptedRevision"], rev1.as_str());
    assert_eq!(d["status"]["sourceRevision"], rev1.as_str());
    assert_eq!(
        condition(&d["status"]["conditions"], "SourceReady")["status"],
        "True"
    );
    // The revision record names the commit.
    let record: Value = serde_json::from_slice(
        &std::fs::read(root.dir.join("agent/projects/shop/revisions/1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["source"]["commit"], c1.as_str());
    assert_eq!(record["source"]["revision"], rev1.as_str());
    let hello = checkout.join("apps/blog/data/hello");
    until(&agent, "blog's bind mount written", || {
        hello.is_file().then_some(())
    });

    // The refresh hook is a mutating call.
    let (status, _) = agent.post("/api/v1/source/refresh", None);
    assert_eq!(status, 401);
    let (status, _) = agent.post("/api/v1/source/refresh", Some("wrong"));
    assert_eq!(status, 401);

    // Commit 2 edits one service: only it is recreated.
    remote.write(
        "apps/shop/compose.yaml",
        &SHOP.replacen(r#"["sleep", "3600"]"#, r#"["sleep", "3700"]"#, 1),
    );
    let c2 = remote.commit("shop: web sleeps longer");
    let rev2 = format!("main@sha1:{c2}");
    let answer = refresh(&agent);
    assert_eq!(answer["result"], "Updated", "{answer}");
    assert_eq!(answer["revision"], rev2.as_str());
    assert_eq!(answer["previousRevision"], rev1.as_str());
    let web2 = until(&agent, "web recreated at commit 2", || {
        (applied(&agent, "shop")? == rev2).then_some(())?;
        running_id(&root, "shop-web-1").filter(|id| *id != web1)
    });
    assert_ne!(web2, web1);
    assert_eq!(
        running_id(&root, "shop-db-1").as_deref(),
        Some(db1.as_str())
    );
    assert_eq!(
        running_id(&root, "blog-app-1").as_deref(),
        Some(blog1.as_str())
    );
    // The change was applied under the `git` trigger (container events
    // may have run since: `operations` keeps those that did something).
    let d = detail(&agent, "shop").unwrap();
    let ops = d["status"]["operations"].as_array().unwrap();
    assert!(
        ops.iter()
            .any(|o| o["trigger"] == "git" && o["phase"] == "Succeeded"),
        "{ops:?}"
    );
    // Blog's files did not change: what runs is commit 2's too, with no
    // reconcile of its own.
    until(&agent, "blog at commit 2", || {
        (applied(&agent, "blog")? == rev2).then_some(())
    });
    let events = agent.json("/api/v1/events?watch=false")["items"].clone();
    let new_revision = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "NewRevision" && e["revision"] == rev2.as_str())
        .unwrap_or_else(|| panic!("no NewRevision event for {rev2} in {events}"));
    assert!(
        new_revision["message"]
            .as_str()
            .unwrap()
            .contains("shop: web sleeps longer"),
        "{new_revision}"
    );
    // An unchanged remote is no change.
    assert_eq!(refresh(&agent)["result"], "Unchanged");

    // Commit 3 breaks blog and edits shop's db: shop converges, blog keeps
    // running commit 2's model and says where its file is wrong.
    remote.write("apps/blog/compose.yaml", BROKEN);
    remote.write(
        "apps/shop/compose.yaml",
        &SHOP
            .replacen(r#"["sleep", "3600"]"#, r#"["sleep", "3700"]"#, 1)
            .replacen(r#"["sleep", "3601"]"#, r#"["sleep", "3701"]"#, 1),
    );
    let c3 = remote.commit("break blog, edit db");
    let rev3 = format!("main@sha1:{c3}");
    assert_eq!(refresh(&agent)["result"], "Updated");
    let db3 = until(&agent, "db recreated at commit 3", || {
        (applied(&agent, "shop")? == rev3).then_some(())?;
        running_id(&root, "shop-db-1").filter(|id| *id != db1)
    });
    assert_ne!(db3, db1);
    assert_eq!(
        running_id(&root, "shop-web-1").as_deref(),
        Some(web2.as_str())
    );
    let d = until(&agent, "blog's error", || {
        let d = detail(&agent, "blog")?;
        (d["status"]["sourceRevision"] == rev3.as_str()).then_some(())?;
        (!d["status"]["errors"].as_array()?.is_empty()).then_some(d)
    });
    let error = &d["status"]["errors"][0];
    assert_eq!(
        error["file"],
        checkout
            .join("apps/blog/compose.yaml")
            .display()
            .to_string()
    );
    assert_eq!(error["line"], 4, "{error}");
    assert_eq!(d["status"]["lastAppliedRevision"], rev2.as_str());
    assert_eq!(
        running_id(&root, "blog-app-1").as_deref(),
        Some(blog1.as_str())
    );

    // Commit 4 fixes blog (as it was): valid again, nothing recreated.
    remote.write("apps/blog/compose.yaml", BLOG);
    let c4 = remote.commit("fix blog");
    let rev4 = format!("main@sha1:{c4}");
    assert_eq!(refresh(&agent)["result"], "Updated");
    until(&agent, "blog valid at commit 4", || {
        let d = detail(&agent, "blog")?;
        (d["status"]["errors"].as_array()?.is_empty()
            && d["status"]["lastAppliedRevision"] == rev4.as_str())
        .then_some(())
    });
    assert_eq!(
        running_id(&root, "blog-app-1").as_deref(),
        Some(blog1.as_str())
    );

    // Edits by hand in the checkout are undone at the next sync.
    let blog_file = checkout.join("apps/blog/compose.yaml");
    std::fs::write(&blog_file, BROKEN).unwrap();
    assert_eq!(refresh(&agent)["result"], "Unchanged");
    assert_eq!(std::fs::read_to_string(&blog_file).unwrap(), BLOG);
    let events = agent.json("/api/v1/events?watch=false")["items"].clone();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "LocalChangesDiscarded" && e["revision"] == rev4.as_str()),
        "{events}"
    );

    // Commit 5 removes shop from the repository: torn down after the grace.
    git(&remote.work(), &["rm", "-q", "-r", "apps/shop"]);
    let c5 = remote.commit("retire shop");
    assert_eq!(refresh(&agent)["result"], "Updated");
    until(&agent, "shop torn down", || {
        (detail(&agent, "shop").is_none()
            && !exists(&root, "shop-web-1")
            && !exists(&root, "shop-db-1"))
        .then_some(())
    });
    assert_eq!(
        running_id(&root, "blog-app-1").as_deref(),
        Some(blog1.as_str())
    );
    assert!(hello.is_file(), "the bind mount's data went away");

    // The remote goes away: what runs stays, the error shows, retries
    // go on by themselves (2 s backoff, though the interval is 1 h).
    let moved = remote.tmp.path().join("moved.git");
    std::fs::rename(remote.bare(), &moved).unwrap();
    let answer = refresh(&agent);
    assert_eq!(answer["result"], "Failed", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("does not appear to be a git repository"),
        "{answer}"
    );
    let src = until(&agent, "a retry without a refresh", || {
        let s = source(&agent);
        (s["consecutiveFailures"].as_u64()? >= 2).then_some(s)
    });
    let ready = condition(&src["conditions"], "SourceReady");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "FetchFailed");
    let rev5 = format!("main@sha1:{c5}");
    assert!(
        ready["message"].as_str().unwrap().contains(&rev5),
        "{ready}"
    );
    assert!(src["lastError"].as_str().is_some());
    assert_eq!(src["revision"], rev5.as_str());
    assert!(metric_sum(&agent, "berth_source_fetches_total{result=\"failure\"}") >= 2.0);
    assert!(metric_sum(&agent, "berth_source_consecutive_failures ") >= 2.0);
    assert_eq!(metric_sum(&agent, "berth_source_ready "), 0.0);
    let events = agent.json("/api/v1/events?watch=false")["items"].clone();
    let failed = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "SourceFetchFailed")
        .unwrap_or_else(|| panic!("no SourceFetchFailed event in {events}"));
    assert_eq!(failed["type"], "Warning");
    assert_eq!(failed["involvedObject"]["kind"], "Source");
    // Deduplicated: one event counting the repeats.
    assert!(failed["count"].as_u64().unwrap() >= 2, "{failed}");
    let d = detail(&agent, "blog").unwrap();
    assert_eq!(
        condition(&d["status"]["conditions"], "SourceReady")["status"],
        "False"
    );
    assert_eq!(
        running_id(&root, "blog-app-1").as_deref(),
        Some(blog1.as_str())
    );

    // A restart while the remote is away serves the checkout it has.
    assert!(agent.terminate().success());
    drop(token);
    let (agent, _token) = start_agent(&remote, &root, &["--git-interval", "1h"]);
    until(&agent, "ready on the old checkout", || {
        (agent.get("/readyz").0 == 200).then_some(())
    });
    until(&agent, "blog back in the status", || {
        (detail(&agent, "blog")?["status"]["phase"] == "Ready").then_some(())
    });
    until(&agent, "the fetch error after the restart", || {
        source(&agent)["lastError"].as_str().map(drop)
    });
    assert_eq!(source(&agent)["revision"], rev5.as_str());
    assert_eq!(
        running_id(&root, "blog-app-1").as_deref(),
        Some(blog1.as_str())
    );

    // The remote is back: the next fetch recovers, and says so.
    std::fs::rename(&moved, remote.bare()).unwrap();
    assert_eq!(refresh(&agent)["result"], "Unchanged");
    let src = source(&agent);
    assert_eq!(
        condition(&src["conditions"], "SourceReady")["status"],
        "True"
    );
    assert_eq!(src["consecutiveFailures"], 0);
    let events = agent.json("/api/v1/events?watch=false")["items"].clone();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "SourceFetchSucceeded"),
        "{events}"
    );
}

/// Polling alone picks up a moved tag (annotated: followed to its
/// commit), and a project it adds comes up.
#[test]
fn polling_follows_a_moved_tag() {
    if !need_root("polling_follows_a_moved_tag") || !have_git("polling_follows_a_moved_tag") {
        return;
    }
    let root = root_with_busybox("git-tag");
    let remote = Remote::new("git-tag");
    remote.write("apps/blog/compose.yaml", BLOG);
    let c1 = remote.commit("blog");
    git(&remote.work(), &["tag", "-a", "live", "-m", "live 1"]);
    git(&remote.work(), &["push", "-q", "origin", "refs/tags/live"]);
    // Another commit on main that the tag does not name.
    remote.write("apps/shop/compose.yaml", SHOP);
    let c2 = remote.commit("shop, not live yet");

    let (agent, _token) = start_agent(
        &remote,
        &root,
        &["--git-ref", "live", "--git-interval", "1s"],
    );
    until(&agent, "blog running", || running_id(&root, "blog-app-1"));
    assert_eq!(source(&agent)["revision"], format!("live@sha1:{c1}"));
    assert!(detail(&agent, "shop").is_none());

    git(&remote.work(), &["tag", "-f", "-a", "live", "-m", "live 2"]);
    git(
        &remote.work(),
        &["push", "-q", "-f", "origin", "refs/tags/live"],
    );
    until(&agent, "shop running from the moved tag", || {
        running_id(&root, "shop-web-1")
    });
    let src = source(&agent);
    assert_eq!(src["revision"], format!("live@sha1:{c2}"));
    assert_eq!(src["ref"], "live");
    assert!(metric_sum(&agent, "berth_source_fetches_total{result=\"success\"}") >= 2.0);
    assert!(metric_sum(&agent, "berth_source_commit_timestamp_seconds ") > 1.0e9);
}

/// Bad flags fail at start, naming the flag (no root needed).
#[test]
fn bad_git_flags_are_refused_at_start() {
    let run = |args: &[&str]| {
        let out = berth_cmd()
            .arg("agent")
            .args(args)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--root",
                "/nonexistent-berth-root",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        text(&out.stderr)
    };
    let err = run(&["--git", "file:///r", "--git-ref", "a..b"]);
    assert!(err.contains("--git-ref"), "{err}");
    let err = run(&["--git", "file:///r", "--git-path", "../up"]);
    assert!(err.contains("--git-path"), "{err}");
    let err = run(&["--git", "file:///r", "--dir", "/tmp"]);
    assert!(err.contains("--dir") && err.contains("--git"), "{err}");
    let err = run(&[]);
    assert!(err.contains("--dir") || err.contains("--git"), "{err}");
    // A token in the URL never shows, not even in an error.
    let err = run(&[
        "--git",
        "https://bot:sup3rs3cret@host/r.git",
        "--git-ref=-x",
    ]);
    assert!(!err.contains("sup3rs3cret"), "{err}");
}

/// A full commit id pins the agent to that commit (fetched by id); a ref
/// or a `--git-path` the remote does not have is an error with its own
/// reason, and nothing is scanned.
#[test]
fn a_commit_id_pins_and_a_missing_ref_or_path_is_named() {
    if !need_root("a_commit_id_pins_and_a_missing_ref_or_path_is_named")
        || !have_git("a_commit_id_pins_and_a_missing_ref_or_path_is_named")
    {
        return;
    }
    runtime_support::private_netns();
    let remote = Remote::new("git-pin");
    remote.write("apps/one/compose.yaml", "name: one\nservices: {}\n");
    let c1 = remote.commit("one");
    remote.write("apps/two/compose.yaml", "name: two\nservices: {}\n");
    remote.commit("two");

    let start = |root: &runtime_support::Root, extra: &[&str]| {
        let root_dir = root.dir.display().to_string();
        let url = remote.url();
        let mut args = vec![
            "--git",
            url.as_str(),
            "--git-interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--root",
            root_dir.as_str(),
        ];
        args.extend(extra);
        agent_support::Agent::start_args(&args)
    };
    let root = runtime_support::Root::new("git-pin");
    let pinned = start(&root, &["--git-path", "apps", "--git-ref", &c1]);
    until(&pinned, "commit 1's project", || {
        detail(&pinned, "one").map(drop)
    });
    let src = source(&pinned);
    assert_eq!(src["revision"], format!("sha1:{c1}"));
    assert_eq!(src["ref"], c1.as_str());
    assert!(detail(&pinned, "two").is_none(), "commit 2 is not served");

    let missing: [(&[&str], &str); 2] = [
        (
            &["--git-path", "apps", "--git-ref", "no-such-branch"],
            "RefNotFound",
        ),
        (&["--git-path", "nope"], "PathNotFound"),
    ];
    for (extra, reason) in missing {
        let root = runtime_support::Root::new("git-missing");
        let agent = start(&root, extra);
        let src = until(&agent, reason, || {
            let s = source(&agent);
            s["lastError"].as_str().map(drop).map(|()| s)
        });
        let ready = condition(&src["conditions"], "SourceReady");
        assert_eq!(ready["reason"], reason, "{src}");
        assert_eq!(agent.get("/readyz").0, 503);
        assert!(agent.items().is_empty());
    }
}
