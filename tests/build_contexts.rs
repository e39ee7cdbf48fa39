//! End-to-end: named contexts (`--build-context`). A local folder read by
//! `COPY --from` and `RUN --mount=from` (an edit there reruns the step
//! that reads it, nothing else), `FROM` of an image name and of a stage
//! replaced by a `docker-image://` context, `FROM` a folder, a git
//! repository as a named context, and the refusals. Each test runs berth
//! in a network namespace of its own (RUN steps join berth's default
//! bridge, made there).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_support;
mod runtime_support;

use build_support::git_daemon::{GitDaemon, commit_and_push, have_git};
use build_support::{BUSYBOX_STAGE, build, build_ok, context, counts, executed_steps, sh};
use runtime_support::text;

#[test]
fn named_contexts_replace_folders_images_and_stages() {
    if !build_support::need_root_and_net("named_contexts_replace_folders_images_and_stages") {
        return;
    }
    let root = build_support::root("build-named");
    // An image to stand in for `alpine` and for the `base` stage.
    let marker = context(
        &root,
        "marker",
        &[(
            "Dockerfile",
            &format!("{BUSYBOX_STAGE}RUN echo from-marker > /marker\n"),
        )],
    );
    build_ok(&root, &marker, &["-t", "marker:1"]);

    let shared = root.dir.join("shared");
    std::fs::create_dir_all(shared.join("sub")).unwrap();
    std::fs::write(shared.join("sub/data.txt"), "shared v1\n").unwrap();
    // `base` is replaced by a context: its RUN never runs, so it needs no
    // entitlement (and could not run on scratch).
    let dockerfile = "FROM scratch AS base
RUN --security=insecure true
FROM base
COPY --from=src sub/data.txt /copied.txt
RUN --mount=from=src,target=/mnt cp /mnt/sub/data.txt /mounted.txt
RUN cat /marker > /seen-marker
";
    let ctx = context(&root, "ctx", &[("Dockerfile", dockerfile)]);
    let src_arg = format!("src={}", shared.display());
    let args = [
        "-t",
        "n:1",
        "--build-context",
        &src_arg,
        "--build-context",
        "base=docker-image://marker:1",
    ];
    let progress = build_ok(&root, &ctx, &args);
    assert_eq!(
        sh(&root, "n:1", "cat /copied.txt /mounted.txt /seen-marker"),
        "shared v1\nshared v1\nfrom-marker\n",
        "{progress}"
    );
    // Nothing changed: all cached. An edit in the named folder reruns
    // the steps that read it.
    assert_eq!(counts(&build_ok(&root, &ctx, &args)).0, 0);
    std::fs::write(shared.join("sub/data.txt"), "shared v2\n").unwrap();
    let edited = build_ok(&root, &ctx, &args);
    let ran = executed_steps(&edited);
    assert!(ran.iter().any(|s| s.contains("COPY --from=src")), "{ran:?}");
    assert!(
        ran.iter().any(|s| s.contains("--mount=from=src")),
        "{ran:?}"
    );
    assert_eq!(
        sh(&root, "n:1", "cat /copied.txt /mounted.txt"),
        "shared v2\nshared v2\n"
    );

    // FROM of an image name that is not in the store, given as a context.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM alpine:latest\nRUN cat /marker\n",
    )
    .unwrap();
    let out = build_ok(
        &root,
        &ctx,
        &[
            "-t",
            "n:2",
            "--build-context",
            "alpine=docker-image://marker:1",
        ],
    );
    assert!(out.contains("from-marker"), "{out}");
    let missing = text(&build(&root, &ctx, &[]).stderr);
    assert!(
        missing.contains("\"alpine:latest\" is not in the local store"),
        "{missing}"
    );

    // FROM a folder: its files are the base layer; cached by content.
    let rootfs = context(&root, "rootfs", &[("hello.txt", "from a folder\n")]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM tree\nRUN [\"/busybox\", \"cat\", \"/hello.txt\"]\n",
    )
    .unwrap();
    let tree_arg = format!("tree={}", rootfs.display());
    let out = build_ok(&root, &ctx, &["-t", "n:3", "--build-context", &tree_arg]);
    assert!(out.contains("from a folder"), "{out}");
    let again = build_ok(&root, &ctx, &["-t", "n:3", "--build-context", &tree_arg]);
    assert_eq!(counts(&again).0, 0, "{again}");

    // Refusals name the context.
    for (arg, says) in [
        (
            "x=oci-layout:///tmp/l",
            "OCI layout contexts are not supported",
        ),
        ("x=/does/not/exist", "build context x=/does/not/exist"),
        ("novalue", "expected NAME=PATH"),
    ] {
        let err = text(&build(&root, &ctx, &["--build-context", arg]).stderr);
        assert!(err.contains(says), "{arg}: {err}");
    }
}

#[test]
fn a_git_repository_as_a_named_context() {
    if !build_support::need_root_and_net("a_git_repository_as_a_named_context")
        || !have_git("a_git_repository_as_a_named_context")
    {
        return;
    }
    let root = build_support::root("build-named-git");
    let repos = root.dir.join("repos");
    commit_and_push(
        &repos,
        "lib.git",
        &root.dir.join("work"),
        &[("pkg/lib.txt", b"lib v1\n")],
    );
    let daemon = GitDaemon::start(&repos);
    let ctx = context(
        &root,
        "ctx",
        &[(
            "Dockerfile",
            &format!("{BUSYBOX_STAGE}COPY --from=lib lib.txt /lib.txt\n"),
        )],
    );
    let lib = format!("lib={}#main:pkg", daemon.url("lib.git"));
    build_ok(&root, &ctx, &["-t", "l:1", "--build-context", &lib]);
    assert_eq!(sh(&root, "l:1", "cat /lib.txt"), "lib v1\n");
}
