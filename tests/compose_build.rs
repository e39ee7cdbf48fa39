//! End-to-end: compose `build:` on berth's builder: `up` builds missing
//! images (steps shown as compose shows them), a second `up` builds and
//! recreates nothing, `up --build` after an edit reruns only the steps
//! after it and recreates only that service, `--no-build`,
//! `dockerfile_inline` with args and target, `compose build`, and a
//! failing build that leaves the running containers alone. Root only;
//! each test has its own `--root` (busybox imported as `busybox`),
//! cleaned up on drop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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
    assert!(
        text(&out.stderr).contains("no registry client"),
        "{}",
        text(&out.stderr)
    );
}
