//! End-to-end: compose `build.additional_contexts` and a git
//! `build.context`. `app` builds `FROM` the image of service `base`
//! (`service:base`) and copies from a folder context; `up` and
//! `compose build` build `base` first; an edit in the folder context
//! makes `up` rebuild `app` alone, a change to `base`'s build rebuilds
//! both, in order. The git context is served by a
//! real `git daemon`. `build.ssh: [default]` forwards a real `ssh-agent`
//! from `SSH_AUTH_SOCK`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;
mod build_support;
mod compose_support;
mod runtime_support;

use build_support::git_daemon::{GitDaemon, commit_and_push, have_git};
use compose_support::Project;
use runtime_support::{need_root, text};

const COMPOSE: &str = r#"
services:
  app:
    image: ctx-app:1
    build:
      context: ./app
      dockerfile_inline: |
        FROM basectx
        COPY --from=assets a.txt /a.txt
        RUN cat /marker /a.txt > /both
      additional_contexts:
        basectx: service:base
        assets: ./assets
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
  base:
    image: ctx-base:1
    build:
      context: ./base
      dockerfile_inline: |
        FROM busybox
        RUN echo from-base > /marker
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
"#;

fn cat_both(p: &Project) -> String {
    let out = p.run(&["run", "--rm", "ctx-app:1", "cat", "/both"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn a_service_context_is_built_first() {
    if !need_root("a_service_context_is_built_first") {
        return;
    }
    let p = Project::new("compose-contexts", COMPOSE);
    for d in ["app", "base", "assets"] {
        std::fs::create_dir_all(p.dir.join(d)).unwrap();
    }
    std::fs::write(p.dir.join("assets/a.txt"), "asset\n").unwrap();
    // Neither image exists: `up` must build base before app.
    let out = p.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(cat_both(&p), "from-base\nasset\n");
    // An edit in the folder context makes app's image stale: `up`
    // rebuilds it (and only it).
    std::fs::write(p.dir.join("assets/a.txt"), "asset v2\n").unwrap();
    let out = p.run(&["up", "-d", "--dry-run"]);
    let plan = text(&out.stdout) + &text(&out.stderr);
    assert!(plan.contains("BuildImage ctx-app:1"), "{plan}");
    assert!(plan.contains("a named build context changed"), "{plan}");
    assert!(!plan.contains("BuildImage ctx-base:1"), "{plan}");
    let out = p.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(cat_both(&p), "from-base\nasset v2\n");
    // base's build changes: up rebuilds base, then app from it.
    p.write(&COMPOSE.replace("echo from-base", "echo from-base-v2"));
    let out = p.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(cat_both(&p), "from-base-v2\nasset v2\n");
    let again = p.run(&["up", "-d", "--dry-run"]);
    let plan = text(&again.stdout) + &text(&again.stderr);
    assert!(
        again.status.success() && !plan.contains("BuildImage"),
        "{plan}"
    );
    p.write(COMPOSE);
    p.ok(&["down"]);
    for image in ["ctx-app:1", "ctx-base:1"] {
        let out = p.run(&["rmi", image]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // `compose build` orders them too (app alone would find no base).
    let out = p.run(&["compose", "build"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(cat_both(&p), "from-base\nasset v2\n");
}

#[test]
fn a_git_build_context_in_compose() {
    if !need_root("a_git_build_context_in_compose") || !have_git("a_git_build_context_in_compose") {
        return;
    }
    let p = Project::new("compose-git", "services: {}\n");
    let repos = p.root.dir.join("repos");
    let work = p.root.dir.join("work");
    commit_and_push(
        &repos,
        "site.git",
        &work,
        &[
            ("web/Dockerfile", b"FROM busybox\nCOPY page.txt /page.txt\n"),
            ("web/page.txt", b"page v1\n"),
        ],
    );
    let daemon = GitDaemon::start(&repos);
    p.write(&format!(
        "services:\n  web:\n    image: git-web:1\n    build: {}#main:web\n",
        daemon.url("site.git")
    ));
    let out = p.run(&["compose", "build"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = |p: &Project| {
        let out = p.run(&["run", "--rm", "git-web:1", "cat", "/page.txt"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(page(&p), "page v1\n");
    commit_and_push(&repos, "site.git", &work, &[("web/page.txt", b"page v2\n")]);
    let out = p.run(&["compose", "build"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(page(&p), "page v2\n");
}

#[test]
fn build_ssh_forwards_the_agent_of_the_environment() {
    let test = "build_ssh_forwards_the_agent_of_the_environment";
    if !need_root(test) {
        return;
    }
    if std::process::Command::new("ssh-agent")
        .arg("-h")
        .output()
        .is_err()
    {
        println!("SKIPPED: {test} needs ssh-agent (apt-get install openssh-client)");
        return;
    }
    let p = Project::new(
        "compose-ssh",
        r#"
services:
  web:
    image: ssh-web:1
    build:
      context: ./web
      dockerfile_inline: |
        FROM busybox
        RUN --mount=type=ssh,required=true test -S "$$SSH_AUTH_SOCK" && echo "agent at $$SSH_AUTH_SOCK" > /agent
      ssh: [default]
"#,
    );
    std::fs::create_dir_all(p.dir.join("web")).unwrap();
    let socket = p.root.dir.join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = p
        .cmd(&["compose", "build"])
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = p.run(&["run", "--rm", "ssh-web:1", "cat", "/agent"]);
    assert_eq!(text(&run.stdout), "agent at /run/buildkit/ssh_agent.0\n");
    // Without an agent in the environment, build.ssh: [default] is refused.
    let out = p
        .cmd(&["compose", "build", "--no-cache"])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("build.ssh: default: SSH_AUTH_SOCK is not set"),
        "{}",
        text(&out.stderr)
    );
}
