//! End-to-end: compose `build:` on berth's builder: `up` builds missing
//! images (steps shown as compose shows them), a second `up` builds and
//! recreates nothing, `up --build` after an edit reruns only the steps
//! after it and recreates only that service, `--no-build`,
//! `dockerfile_inline` with args and target, `compose build`, and a
//! failing build that leaves the running containers alone. Root only;
//! each test has its own `--root` (busybox imported as `busybox`),
//! cleaned up on drop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;
mod build_support;
mod compose_support;
mod runtime_support;

use build_support::executed_steps;
use compose_support::Project;
use runtime_support::{need_root, text};

const WEB_DOCKERFILE: &str = "FROM busybox
RUN echo base-step > /base
COPY msg /app/msg
RUN cp /app/msg /app/copy
CMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]
";

/// web: `build: ./web` (image `project-web`); api: inline Dockerfile with
/// an arg and a target, named by `image:`; db: a plain image.
const COMPOSE: &str = r#"
services:
  web:
    build: ./web
  api:
    image: shop/api:1
    build:
      context: ./api
      dockerfile_inline: |
        FROM busybox AS base
        ARG FLAVOR=plain
        RUN echo "$$FLAVOR" > /flavor
        FROM base AS dev
        RUN echo dev > /stage
        FROM base AS prod
        RUN echo prod > /stage
      args:
        FLAVOR: spicy
      target: dev
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
  db:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
"#;

fn project(label: &str) -> Project {
    let p = Project::new(label, COMPOSE);
    std::fs::create_dir_all(p.dir.join("web")).unwrap();
    std::fs::create_dir_all(p.dir.join("api")).unwrap();
    std::fs::write(p.dir.join("web/Dockerfile"), WEB_DOCKERFILE).unwrap();
    std::fs::write(p.dir.join("web/msg"), "hello\n").unwrap();
    p
}

/// Container name -> ID.
fn ids(p: &Project) -> std::collections::BTreeMap<String, String> {
    p.ps()
        .iter()
        .map(|c| {
            (
                c["Name"].as_str().unwrap().to_owned(),
                c["ID"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn exec(p: &Project, container: &str, script: &str) -> String {
    let out = p.run(&["exec", container, "sh", "-c", script]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// `up -d` (plus `extra`), which must succeed; stderr.
fn up(p: &Project, extra: &[&str]) -> String {
    let mut args = vec!["up", "-d"];
    args.extend_from_slice(extra);
    let out = p.run(&args);
    let err = text(&out.stderr);
    assert!(out.status.success(), "up {extra:?} failed:\n{err}");
    err
}

#[test]
fn up_builds_missing_images_then_builds_and_recreates_nothing() {
    if !need_root("up_builds_missing_images_then_builds_and_recreates_nothing") {
        return;
    }
    let p = project("cbuild-up");
    let err = up(&p, &[]);
    assert!(err.contains("[+] Building"), "{err}");
    assert!(err.contains(" Service web Built"), "{err}");
    assert!(err.contains(" Service api Built"), "{err}");
    // Steps are named with their service, as compose shows them.
    assert!(
        err.lines()
            .any(|l| l.starts_with('#') && l.ends_with("[web 3/5] COPY msg /app/msg")),
        "{err}"
    );
    assert_eq!(
        exec(&p, "project-web-1", "cat /app/copy /base"),
        "hello\nbase-step\n"
    );
    // api: the arg reached the base stage, the target stopped at dev.
    assert_eq!(
        exec(&p, "project-api-1", "cat /flavor /stage"),
        "spicy\ndev\n"
    );
    let images: Vec<serde_json::Value> = text(&p.root.run(&["images", "--format", "json"]).stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tags: Vec<String> = images
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["Repository"].as_str().unwrap(),
                i["Tag"].as_str().unwrap()
            )
        })
        .collect();
    assert!(tags.contains(&"project-web:latest".to_owned()), "{tags:?}");
    assert!(tags.contains(&"shop/api:1".to_owned()), "{tags:?}");

    let before = ids(&p);
    let err = up(&p, &[]);
    assert!(!err.contains("Building"), "a second up built:\n{err}");
    assert!(!err.contains("Recreate"), "a second up recreated:\n{err}");
    assert_eq!(ids(&p), before);
}

#[test]
fn up_build_after_an_edit_reruns_later_steps_and_recreates_only_that_service() {
    if !need_root("up_build_after_an_edit_reruns_later_steps_and_recreates_only_that_service") {
        return;
    }
    let p = project("cbuild-edit");
    up(&p, &[]);
    let before = ids(&p);

    // Nothing changed: --build hits the cache fully, same image, nothing
    // recreated.
    let err = up(&p, &["--build"]);
    assert!(err.contains(" Service web Built"), "{err}");
    assert_eq!(executed_steps(&err), Vec::<String>::new(), "{err}");
    assert_eq!(ids(&p), before, "{err}");

    std::fs::write(p.dir.join("web/msg"), "changed\n").unwrap();
    let err = up(&p, &["--build"]);
    assert_eq!(
        executed_steps(&err),
        vec![
            "[web 3/5] COPY msg /app/msg".to_owned(),
            "[web 4/5] RUN cp /app/msg /app/copy".to_owned()
        ],
        "{err}"
    );
    let after = ids(&p);
    assert_ne!(after["project-web-1"], before["project-web-1"], "{err}");
    assert_eq!(after["project-api-1"], before["project-api-1"], "{err}");
    assert_eq!(after["project-db-1"], before["project-db-1"], "{err}");
    assert_eq!(exec(&p, "project-web-1", "cat /app/copy"), "changed\n");
}

#[test]
fn no_build_with_a_missing_image_fails_naming_the_service() {
    if !need_root("no_build_with_a_missing_image_fails_naming_the_service") {
        return;
    }
    let p = project("cbuild-nobuild");
    let out = p.run(&["up", "-d", "--no-build"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("service \"api\" has no image shop/api:1")
            || err.contains("service \"web\" has no image project-web"),
        "{err}"
    );
    assert!(err.contains("--no-build"), "{err}");
    assert!(p.ps().is_empty(), "nothing may be created: {err}");
}

#[test]
fn a_failing_build_leaves_running_containers_and_names_the_line() {
    if !need_root("a_failing_build_leaves_running_containers_and_names_the_line") {
        return;
    }
    let p = project("cbuild-fail");
    up(&p, &[]);
    let before = ids(&p);
    std::fs::write(p.dir.join("web/msg"), "broken\n").unwrap();
    std::fs::write(
        p.dir.join("web/Dockerfile"),
        WEB_DOCKERFILE.replace(
            "RUN cp /app/msg /app/copy",
            "RUN cp /app/msg /app/copy && exit 3",
        ),
    )
    .unwrap();
    let out = p.run(&["up", "-d", "--build"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("Dockerfile:4"), "{err}");
    assert!(err.contains("exit code: 3"), "{err}");
    assert_eq!(ids(&p), before, "{err}");
    let states = p.states();
    assert!(states.iter().all(|(_, s)| s == "running"), "{states:?}");
    assert_eq!(exec(&p, "project-web-1", "cat /app/copy"), "hello\n");
}

#[test]
fn compose_build_and_top_level_build_in_a_project_folder() {
    if !need_root("compose_build_and_top_level_build_in_a_project_folder") {
        return;
    }
    let p = project("cbuild-verb");
    // Only the named service; the arg from the command line wins over the
    // file's.
    let out = p.run(&["compose", "build", "api", "--build-arg", "FLAVOR=mild"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(" Service api Built"), "{err}");
    assert!(!err.contains("Service web"), "{err}");
    let flavor = text(
        &p.root
            .run(&["run", "--rm", "shop/api:1", "cat", "/flavor", "/stage"])
            .stdout,
    );
    assert_eq!(flavor, "mild\ndev\n");

    // `berth build` with no folder: compose's meaning, every service with
    // build: (db has none); -q prints nothing.
    let out = p.run(&["build", "-q"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    assert_eq!(text(&out.stdout), "");
    let out = p
        .root
        .run(&["run", "--rm", "project-web", "cat", "/app/copy"]);
    assert_eq!(text(&out.stdout), "hello\n", "{}", text(&out.stderr));

    // `berth build web --no-cache` runs every step again.
    let out = p.run(&["build", "web", "--no-cache"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(executed_steps(&err).len(), 3, "{err}");

    // A folder keeps docker's meaning.
    let out = p.run(&["build", "-q", "-t", "plain:1", "web"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("sha256:"),
        "{}",
        text(&out.stdout)
    );

    let out = p.run(&["compose", "build", "--pull"]);
    assert!(!out.status.success());
    // --pull pulls each base image first (the api's `busybox`, web's
    // `busybox`): without a registry client that fails naming the image.
    assert!(
        text(&out.stderr).contains("cannot pull the base image busybox"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn up_rebuilds_when_the_context_changed_and_says_why() {
    if !need_root("up_rebuilds_when_the_context_changed_and_says_why") {
        return;
    }
    let p = project("cbuild-ctx");
    up(&p, &[]);
    let before = ids(&p);
    // A file nothing reads changes nothing... once .dockerignore leaves it
    // out.
    std::fs::write(p.dir.join("web/.dockerignore"), "notes.txt\n").unwrap();
    let err = up(&p, &[]);
    // .dockerignore itself is in the context: a rebuild, every step cached,
    // the same image, nothing recreated.
    assert!(err.contains(" Service web Built"), "{err}");
    assert_eq!(executed_steps(&err), Vec::<String>::new(), "{err}");
    std::fs::write(p.dir.join("web/notes.txt"), "ignored\n").unwrap();
    let err = up(&p, &[]);
    assert!(!err.contains("Building"), "{err}");
    assert_eq!(ids(&p), before);

    // The dry run says why it would build.
    std::fs::write(p.dir.join("web/msg"), "edited\n").unwrap();
    let plan = p.run(&["up", "--dry-run"]);
    let plan = text(&plan.stdout);
    assert!(
        plan.contains("BuildImage project-web [BuildContextChanged: the build context changed since project-web was built]"),
        "{plan}"
    );
    // --no-build keeps the image as it is.
    let err = up(&p, &["--no-build"]);
    assert!(!err.contains("Building"), "{err}");
    assert_eq!(ids(&p), before);
    // up rebuilds: only the steps after the edit, only web recreated.
    let err = up(&p, &[]);
    assert_eq!(executed_steps(&err).len(), 2, "{err}");
    let after = ids(&p);
    assert_ne!(after["project-web-1"], before["project-web-1"]);
    assert_eq!(after["project-api-1"], before["project-api-1"]);
    assert_eq!(exec(&p, "project-web-1", "cat /app/copy"), "edited\n");
}

#[test]
fn the_agent_rebuilds_an_edited_context_and_recreates_the_service() {
    if !need_root("the_agent_rebuilds_an_edited_context_and_recreates_the_service") {
        return;
    }
    use std::time::{Duration, Instant};
    let p = Project::new("cbuild-agent", "services: {}\n");
    let projects = p.root.dir.join("projects");
    let shop = projects.join("shop");
    std::fs::create_dir_all(shop.join("web")).unwrap();
    std::fs::write(shop.join("web/Dockerfile"), WEB_DOCKERFILE).unwrap();
    std::fs::write(shop.join("web/msg"), "hello\n").unwrap();
    std::fs::write(
        shop.join("compose.yaml"),
        "services:\n  web:\n    build: ./web\n  db:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    init: true\n",
    )
    .unwrap();
    let root = p.root.dir.display().to_string();
    let agent = agent_support::Agent::start_with(
        &projects,
        &[
            "--listen",
            "127.0.0.1:0",
            "--root",
            &root,
            // No resync during the test: the rebuild comes from the
            // file event.
            "--resync-interval",
            "600s",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let running = |name: &str| -> Option<String> {
        let out = p.root.run(&["inspect", name]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v[0]["State"]["Running"] == true).then(|| v[0]["Id"].as_str().unwrap().to_owned())
    };
    let wait = |what: &str, probe: &dyn Fn() -> Option<String>| -> String {
        loop {
            if let Some(v) = probe() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let web = wait("web built and running", &|| running("shop-web-1"));
    let db = wait("db running", &|| running("shop-db-1"));
    assert_eq!(
        text(
            &p.root
                .run(&["exec", "shop-web-1", "cat", "/app/copy"])
                .stdout
        ),
        "hello\n"
    );

    std::fs::write(shop.join("web/msg"), "from the agent\n").unwrap();
    let web2 = wait("web rebuilt and recreated", &|| {
        running("shop-web-1").filter(|id| *id != web)
    });
    assert_eq!(running("shop-db-1").as_deref(), Some(db.as_str()));
    assert_eq!(
        text(
            &p.root
                .run(&["exec", "shop-web-1", "cat", "/app/copy"])
                .stdout
        ),
        "from the agent\n"
    );
    // The operation in the API: the build with its reason, then the
    // recreate because the image changed.
    let op = wait("the rebuild's operation", &|| {
        let (status, body) = agent.get("/api/v1/projects/shop");
        if status != 200 {
            return None;
        }
        let d: serde_json::Value = serde_json::from_str(&body).unwrap();
        d["status"]["operations"]
            .as_array()?
            .iter()
            .find(|op| {
                op["plan"].as_array().is_some_and(|plan| {
                    plan.iter()
                        .any(|s| s["reasons"][0]["kind"] == "BuildContextChanged")
                })
            })
            .map(|op| op.to_string())
    });
    let op: serde_json::Value = serde_json::from_str(&op).unwrap();
    let plan = op["plan"].as_array().unwrap();
    assert_eq!(plan[0]["action"], "BuildImage", "{op:#}");
    assert_eq!(
        plan[0]["reasons"][0]["message"],
        "the build context changed since shop-web was built"
    );
    assert!(
        plan.iter().any(|s| s["action"] == "Recreate"
            && s["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["kind"] == "ImageDigestChanged")),
        "{op:#}"
    );
    // A reconcile after it (a file event, nothing the build reads) builds
    // and recreates nothing more.
    let started = |agent: &agent_support::Agent| -> Option<(String, String)> {
        let (status, body) = agent.get("/api/v1/projects/shop");
        if status != 200 {
            return None;
        }
        let d: serde_json::Value = serde_json::from_str(&body).unwrap();
        let op = &d["status"]["operation"];
        Some((op["startedAt"].to_string(), op["phase"].to_string()))
    };
    let seen = started(&agent).unwrap().0;
    std::fs::write(shop.join("README"), "not in any context\n").unwrap();
    wait("a resync after the rebuild", &|| {
        started(&agent)
            .filter(|(at, phase)| *at != seen && phase == "\"Succeeded\"")
            .map(|_| String::new())
    });
    assert_eq!(running("shop-web-1").as_deref(), Some(web2.as_str()));
    agent.kill();
}

#[test]
fn args_without_a_value_come_from_dotenv_and_secrets_reach_run() {
    if !need_root("args_without_a_value_come_from_dotenv_and_secrets_reach_run") {
        return;
    }
    let p = Project::new(
        "cbuild-env",
        r#"
services:
  tool:
    build:
      context: .
      dockerfile_inline: |
        FROM busybox
        ARG GREETING
        RUN --mount=type=secret,id=token cat /run/secrets/token > /token && echo "$$GREETING" > /greeting
      args: [GREETING]
      secrets: [token]
    command: ["true"]
secrets:
  token:
    environment: TOKEN
"#,
    );
    std::fs::write(p.dir.join(".env"), "GREETING=from-dotenv\nTOKEN=s3cret\n").unwrap();
    let out = p.run(&["compose", "build"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = p
        .root
        .run(&["run", "--rm", "project-tool", "cat", "/greeting", "/token"]);
    assert_eq!(
        text(&out.stdout),
        "from-dotenv\ns3cret",
        "{}",
        text(&out.stderr)
    );
}
