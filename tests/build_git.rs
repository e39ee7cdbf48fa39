//! End-to-end: git sources served by a real `git daemon` on 127.0.0.1:
//! `ADD <git url>#ref:subdir`, the `?branch=&subdir=` query form,
//! `--keep-git-dir`, `--exclude`, `--checksum=<commit>`, a git URL as the build
//! context; the step cached while the branch stays, run again when it
//! moves; a bad ref and an unreachable repository named in the error.
//! Each test runs berth and its servers in a network namespace of its own
//! (RUN steps join berth's default bridge, made there).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_support;
mod runtime_support;

use build_support::git_daemon::{GitDaemon, commit_and_push, have_git};
use build_support::{BUSYBOX_STAGE, build, build_ok, context, counts, executed_steps, sh};
use runtime_support::text;

#[test]
fn add_of_a_git_repository_follows_its_branch() {
    if !build_support::need_root_and_net("add_of_a_git_repository_follows_its_branch")
        || !have_git("add_of_a_git_repository_follows_its_branch")
    {
        return;
    }
    let root = build_support::root("build-git-add");
    let repos = root.dir.join("repos");
    let work = root.dir.join("work");
    let first = commit_and_push(
        &repos,
        "repo.git",
        &work,
        &[("README", b"readme v1\n"), ("app/main.txt", b"main v1\n")],
    );
    let daemon = GitDaemon::start(&repos);
    let url = daemon.url("repo.git");
    let dockerfile = format!(
        "{BUSYBOX_STAGE}\
ADD {url}#main:app /src/
ADD {url}?branch=main&subdir=app /query
ADD --keep-git-dir=true {url} /full
ADD --exclude=app {url}#main /excluded
RUN test -d /full/.git && test ! -e /src/.git && echo has-git-dir
"
    );
    let ctx = context(&root, "ctx", &[("Dockerfile", &dockerfile)]);
    let progress = build_ok(&root, &ctx, &["-t", "g:1"]);
    assert!(progress.contains("has-git-dir"), "{progress}");
    assert_eq!(
        sh(
            &root,
            "g:1",
            "cat /src/main.txt /query/main.txt /full/README; ls /src"
        ),
        "main v1\nmain v1\nreadme v1\nmain.txt\n"
    );
    assert_eq!(
        sh(
            &root,
            "g:1",
            "test ! -e /excluded/app && cat /excluded/README"
        ),
        "readme v1\n"
    );
    assert_eq!(
        sh(&root, "g:1", "cd /full && cat .git/HEAD"),
        format!("{first}\n"),
        "the kept .git is at the resolved commit"
    );

    // Unchanged branch: every step from the cache.
    let again = build_ok(&root, &ctx, &["-t", "g:1"]);
    assert_eq!(counts(&again).0, 0, "{again}");

    // The branch moves: the ADD steps (and what follows) run again.
    commit_and_push(&repos, "repo.git", &work, &[("app/main.txt", b"main v2\n")]);
    let moved = build_ok(&root, &ctx, &["-t", "g:1"]);
    let ran = executed_steps(&moved);
    assert!(
        ran.iter()
            .any(|s| s.contains("ADD") && s.contains("#main:app")),
        "{ran:?}\n{moved}"
    );
    assert_eq!(
        sh(&root, "g:1", "cat /src/main.txt /query/main.txt"),
        "main v2\nmain v2\n"
    );

    // --checksum: the commit the ref must resolve to.
    let head = build_support::git_daemon::git(&work, &["rev-parse", "HEAD"]);
    let head = head.trim();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("{BUSYBOX_STAGE}ADD --checksum={head} {url}#main /pinned\n"),
    )
    .unwrap();
    build_ok(&root, &ctx, &["-t", "g:2"]);
    assert_eq!(sh(&root, "g:2", "cat /pinned/app/main.txt"), "main v2\n");
    // A commit that is no branch tip any more, by its full hash.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("{BUSYBOX_STAGE}ADD {url}#{first} /old\n"),
    )
    .unwrap();
    build_ok(&root, &ctx, &["-t", "g:3"]);
    assert_eq!(sh(&root, "g:3", "cat /old/app/main.txt"), "main v1\n");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("{BUSYBOX_STAGE}ADD --checksum={first} {url}#main /pinned\n"),
    )
    .unwrap();
    let err = text(&build(&root, &ctx, &[]).stderr);
    assert!(
        err.contains("checksum") && err.contains(&first) && err.contains(head),
        "{err}"
    );

    // A ref the repository does not have, and a server that is not there.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("{BUSYBOX_STAGE}ADD {url}#nope /x\n"),
    )
    .unwrap();
    let err = text(&build(&root, &ctx, &[]).stderr);
    assert!(
        err.contains("ref \"nope\" not found") && err.contains(&url),
        "{err}"
    );
    let port = daemon.port;
    drop(daemon);
    let gone = format!("git://127.0.0.1:{port}/repo.git");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("{BUSYBOX_STAGE}ADD {gone}#main /x\n"),
    )
    .unwrap();
    let err = text(&build(&root, &ctx, &[]).stderr);
    assert!(
        err.contains(&format!("cannot reach git repository {gone}")),
        "{err}"
    );
}

#[test]
fn a_git_url_is_a_build_context() {
    if !build_support::need_root_and_net("a_git_url_is_a_build_context")
        || !have_git("a_git_url_is_a_build_context")
    {
        return;
    }
    let root = build_support::root("build-git-ctx");
    let repos = root.dir.join("repos");
    let work = root.dir.join("work");
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let dockerfile = format!("{BUSYBOX_STAGE}COPY hello.txt /hello.txt\n");
    commit_and_push(
        &repos,
        "ctx.git",
        &work,
        &[
            ("site/Dockerfile", dockerfile.as_bytes()),
            ("site/busybox", &busybox),
            ("site/hello.txt", b"hello v1\n"),
            (
                "site/alt/Dockerfile",
                format!("{BUSYBOX_STAGE}COPY hello.txt /alt.txt\n").as_bytes(),
            ),
            ("other.txt", b"not in the context\n"),
        ],
    );
    let daemon = GitDaemon::start(&repos);
    let url = format!("{}#main:site", daemon.url("ctx.git"));
    let out = root.run(&["build", "-t", "c:1", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(sh(&root, "c:1", "cat /hello.txt"), "hello v1\n");
    let again = root.run(&["build", "-t", "c:1", &url]);
    assert_eq!(counts(&text(&again.stderr)).0, 0, "{}", text(&again.stderr));
    commit_and_push(
        &repos,
        "ctx.git",
        &work,
        &[("site/hello.txt", b"hello v2\n")],
    );
    let moved = root.run(&["build", "-t", "c:1", &url]);
    assert!(moved.status.success(), "{}", text(&moved.stderr));
    assert_eq!(sh(&root, "c:1", "cat /hello.txt"), "hello v2\n");
    // `-f` of a git context is a path inside it.
    let alt = root.run(&["build", "-t", "c:2", "-f", "alt/Dockerfile", &url]);
    assert!(alt.status.success(), "{}", text(&alt.stderr));
    assert_eq!(sh(&root, "c:2", "cat /alt.txt"), "hello v2\n");
    let bad = root.run(&["build", &format!("{}#main:nothere", daemon.url("ctx.git"))]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("subdir \"nothere\""),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn a_git_auth_token_secret_reaches_an_http_remote() {
    if !build_support::need_root_and_net("a_git_auth_token_secret_reaches_an_http_remote")
        || !have_git("a_git_auth_token_secret_reaches_an_http_remote")
    {
        return;
    }
    let root = build_support::root("build-git-http");
    let repos = root.dir.join("repos");
    commit_and_push(
        &repos,
        "private.git",
        &root.dir.join("work"),
        &[("secret.txt", b"private v1\n")],
    );
    // base64("x-access-token:s3cret"): what BuildKit sends for the token.
    let server =
        build_support::git_daemon::GitHttp::start(&repos, "basic eC1hY2Nlc3MtdG9rZW46czNjcmV0");
    let url = server.url("private.git");
    let ctx = context(
        &root,
        "ctx",
        &[(
            "Dockerfile",
            &format!("{BUSYBOX_STAGE}ADD {url}#main /repo\n"),
        )],
    );
    let denied = text(&build(&root, &ctx, &[]).stderr);
    assert!(
        denied.contains(&format!("cannot reach git repository {url}"))
            && denied.contains("--secret id=GIT_AUTH_TOKEN"),
        "{denied}"
    );
    let out = root
        .cmd(&[
            "build",
            "-t",
            "p:1",
            "--secret",
            "id=GIT_AUTH_TOKEN,env=TOKEN",
        ])
        .arg(&ctx)
        .env("TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(sh(&root, "p:1", "cat /repo/secret.txt"), "private v1\n");
}
