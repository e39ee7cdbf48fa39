//! End-to-end: `COPY --link` layers that survive a change of base, and the
//! inline cache (`--cache-to type=inline`) imported by `--cache-from` from
//! Debian's docker-registry on 127.0.0.1 into a fresh state root, and
//! compose's `cache_from` / `cache_to` doing the same through a saved and
//! loaded image, and what the inline cache of a multi-stage build holds.
//! Root
//! only (RUN steps are containers); each test has its own roots and
//! registry, removed on drop, and runs berth in a network namespace of
//! its own (RUN steps join berth's default bridge, made there).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_support;
mod compose_support;
mod registry_support;
mod runtime_support;

use std::path::Path;

use berth_image::testing::{
    TestImage, append_dir, append_file, append_symlink, busybox_rootfs_tar, docker_save,
};
use build_support::{build_ok, context, counts, executed_steps, inspect, sh};
use registry_support::TestRegistry;
use runtime_support::{Root, private_netns, text};
use serde_json::Value;

/// busybox, then a layer with users, `/base.txt` = `version` and `/srv`
/// a symlink to `/var/lib/srv` (which `COPY --link` must not follow).
fn base_image(tag: &str, version: &str) -> TestImage {
    let mut busybox = Vec::new();
    busybox_rootfs_tar(Path::new("/bin/busybox"), &mut busybox).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    append_dir(&mut b, "etc", 0o755).unwrap();
    append_file(
        &mut b,
        "etc/passwd",
        0o644,
        b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    append_file(&mut b, "etc/group", 0o644, b"root:x:0:\nstaff:x:50:\n").unwrap();
    append_file(&mut b, "base.txt", 0o644, format!("{version}\n").as_bytes()).unwrap();
    append_dir(&mut b, "var", 0o755).unwrap();
    append_dir(&mut b, "var/lib", 0o755).unwrap();
    append_dir(&mut b, "var/lib/srv", 0o755).unwrap();
    append_symlink(&mut b, "srv", "/var/lib/srv").unwrap();
    TestImage::new(vec![busybox, b.into_inner().unwrap()], &[tag])
}

fn load(root: &Root, images: &[TestImage]) {
    let archive = root.dir.join("images.tar");
    std::fs::write(&archive, docker_save(images)).unwrap();
    let out = root.run(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn diff_ids(root: &Root, image: &str) -> Vec<String> {
    inspect(root, image)["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The layer blob digests of `tag`'s manifest, from the store's OCI
/// layout (`content/index.json`).
fn layer_blobs(root: &Root, tag: &str) -> Vec<String> {
    let content = root.dir.join("content");
    let index: Value =
        serde_json::from_slice(&std::fs::read(content.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .is_some_and(|r| r.ends_with(tag))
        })
        .unwrap_or_else(|| panic!("{tag} not in {index}"));
    let digest = manifest["digest"].as_str().unwrap();
    let blob = content
        .join("blobs/sha256")
        .join(&digest["sha256:".len()..]);
    let manifest: Value = serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

const LINK_DOCKERFILE: &str = "FROM base:1
WORKDIR /work
COPY --link --chown=app:staff --chmod=0640 a.txt /srv/a.txt
COPY --link app/ sub/
RUN cat /base.txt /srv/a.txt > /work/combined
";

#[test]
fn copy_link_layers_are_reused_byte_for_byte_on_a_new_base() {
    if !build_support::need_root_and_net("copy_link_layers_are_reused_byte_for_byte_on_a_new_base")
    {
        return;
    }
    let root = build_support::root("build-link");
    load(&root, &[base_image("base:1", "one")]);
    let ctx = context(
        &root,
        "ctx",
        &[
            ("Dockerfile", LINK_DOCKERFILE),
            ("a.txt", "a\n"),
            ("app/b.txt", "b\n"),
            ("app/deep/c.txt", "c\n"),
        ],
    );
    build_ok(&root, &ctx, &["-t", "app:1"]);
    // Onto an empty dir: /srv is a directory of the layer (the base's
    // symlink is not followed), its parents owned by --chown as BuildKit
    // does; the relative destination is under WORKDIR.
    let facts = "stat -c '%n %u:%g %a %F' /srv /srv/a.txt /work/sub/b.txt /work/sub/deep/c.txt; ls -A /var/lib/srv; cat /work/combined";
    assert_eq!(
        sh(&root, "app:1", facts),
        "/srv 1000:50 755 directory\n\
         /srv/a.txt 1000:50 640 regular file\n\
         /work/sub/b.txt 0:0 644 regular file\n\
         /work/sub/deep/c.txt 0:0 644 regular file\n\
         one\na\n"
    );
    let first = diff_ids(&root, "app:1");
    let first_blobs = layer_blobs(&root, "app:1");
    assert_eq!(first.len(), 6, "busybox, base, WORKDIR, 2 links, RUN");

    // The base moves on: the tag now names another image.
    load(&root, &[base_image("base:1", "two")]);
    let progress = build_ok(&root, &ctx, &["-t", "app:2"]);
    assert_eq!(
        executed_steps(&progress),
        vec![
            "[2/5] WORKDIR /work",
            "[5/5] RUN cat /base.txt /srv/a.txt > /work/combined"
        ],
        "the linked COPYs come from the cache, the steps on the base rerun:\n{progress}"
    );
    assert_eq!(counts(&progress), (2, 2), "{progress}");
    let second = diff_ids(&root, "app:2");
    let second_blobs = layer_blobs(&root, "app:2");
    assert_ne!(first[1], second[1], "the base layer changed");
    assert_eq!(first[3..5], second[3..5], "linked layers: same diff IDs");
    assert_eq!(
        first_blobs[3..5],
        second_blobs[3..5],
        "linked layers: the same blobs"
    );
    assert_ne!(first[5], second[5], "RUN reran on the new base");
    assert_eq!(
        sh(&root, "app:2", facts),
        "/srv 1000:50 755 directory\n\
         /srv/a.txt 1000:50 640 regular file\n\
         /work/sub/b.txt 0:0 644 regular file\n\
         /work/sub/deep/c.txt 0:0 644 regular file\n\
         two\na\n"
    );

    // An edit of what a linked COPY reads rebuilds that layer only (and
    // what follows it).
    std::fs::write(ctx.join("app/b.txt"), "b2\n").unwrap();
    let progress = build_ok(&root, &ctx, &["-t", "app:3"]);
    assert_eq!(
        executed_steps(&progress),
        vec![
            "[4/5] COPY --link app/ sub/",
            "[5/5] RUN cat /base.txt /srv/a.txt > /work/combined"
        ],
        "{progress}"
    );
    let third = diff_ids(&root, "app:3");
    assert_eq!(third[3], second[3]);
    assert_ne!(third[4], second[4]);

    // BuildKit's build arg asks for the inline cache too (and is not an
    // unused arg); without it there is none.
    assert!(!raw_config_has_cache(&root, "app:3"));
    let progress = build_ok(
        &root,
        &ctx,
        &["--build-arg", "BUILDKIT_INLINE_CACHE=1", "-t", "app:4"],
    );
    assert_eq!(counts(&progress), (0, 4), "{progress}");
    assert!(!progress.contains("were not consumed"), "{progress}");
    assert!(raw_config_has_cache(&root, "app:4"));
}

const CACHE_DOCKERFILE: &str = "FROM base:1
COPY --link a.txt /srv/a.txt
RUN --mount=type=cache,target=/runs,id=runs date >> /runs/ran && echo built > /built.txt
WORKDIR /app
COPY app/ ./
RUN --mount=type=cache,target=/runs,id=runs date >> /runs/ran && cat /built.txt /app/b.txt > /app/out.txt
ENV MODE=prod
";

/// How many RUN steps wrote to the `runs` cache mount under `root`: each
/// RUN appends a line, and cache mounts are kept in the state root, so an
/// imported step that did not run leaves no line.
fn runs(root: &Root) -> usize {
    let base = root.dir.join("build/cache-mounts");
    std::fs::read_dir(&base)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("ran")).ok())
        .map(|s| s.lines().count())
        .sum()
}

#[test]
fn inline_cache_pushed_to_a_registry_builds_nothing_in_a_fresh_root() {
    if !build_support::need_root_and_net(
        "inline_cache_pushed_to_a_registry_builds_nothing_in_a_fresh_root",
    ) {
        return;
    }
    // One network namespace for the registry and every root's berth (RUN
    // steps join berth's default bridge, made here, not on the host).
    private_netns();
    let Some(reg) = TestRegistry::start("inline cache", None) else {
        return;
    };
    let cache_ref = reg.name("app:cache");
    let files: &[(&str, &str)] = &[
        ("Dockerfile", CACHE_DOCKERFILE),
        ("a.txt", "a\n"),
        ("app/b.txt", "b\n"),
    ];

    // Host A: build with the inline cache, push.
    let a = Root::new("cache-a");
    load(&a, &[base_image("base:1", "one")]);
    let ctx_a = context(&a, "ctx", files);
    build_ok(&a, &ctx_a, &["--cache-to", "type=inline", "-t", &cache_ref]);
    assert_eq!(runs(&a), 2, "both RUNs ran on A");
    let id_a = inspect(&a, &cache_ref)["Id"].as_str().unwrap().to_owned();
    assert!(raw_config_has_cache(&a, &cache_ref));
    let pushed = a.run(&["push", &cache_ref]);
    assert!(pushed.status.success(), "{}", text(&pushed.stderr));

    // Host B: a fresh root with the same base and a copy of the context
    // (another path, other mtimes: neither is in a key).
    let b = Root::new("cache-b");
    load(&b, &[base_image("base:1", "one")]);
    let ctx_b = context(&b, "elsewhere/ctx", files);
    let progress = build_ok(
        &b,
        &ctx_b,
        &[
            "--cache-from",
            &format!("type=registry,ref={cache_ref}"),
            "--cache-to",
            "type=inline",
            "-t",
            "app:b",
        ],
    );
    assert_eq!(
        executed_steps(&progress),
        Vec::<String>::new(),
        "every step imported:\n{progress}"
    );
    assert_eq!(counts(&progress), (0, 5), "{progress}");
    assert_eq!(runs(&b), 0, "no RUN ran on B");
    let id_b = inspect(&b, "app:b")["Id"].as_str().unwrap().to_owned();
    assert_eq!(id_a, id_b, "the same image, reproduced from the cache");
    assert_eq!(
        sh(&b, "app:b", "cat /app/out.txt /srv/a.txt"),
        "built\nb\na\n"
    );
    assert!(!progress.contains("WARNING"), "{progress}");

    // A change on B reruns from the changed step on; the steps before it
    // still come from the imported cache.
    std::fs::write(ctx_b.join("app/b.txt"), "b2\n").unwrap();
    let progress = build_ok(
        &b,
        &ctx_b,
        &[
            "--cache-from",
            &format!("type=registry,ref={cache_ref}"),
            "-t",
            "app:b2",
        ],
    );
    assert_eq!(
        executed_steps(&progress),
        vec![
            "[5/7] COPY app/ ./",
            "[6/7] RUN --mount=type=cache,target=/runs,id=runs date >> /runs/ran && cat /built.txt /app/b.txt > /app/out.txt"
        ],
        "{progress}"
    );
    assert_eq!(runs(&b), 1);

    // A cache source that is not there: warned about, the build runs.
    let c = Root::new("cache-c");
    load(&c, &[base_image("base:1", "one")]);
    let ctx_c = context(&c, "ctx", files);
    let missing = reg.name("nothing:here");
    let progress = build_ok(
        &c,
        &ctx_c,
        &[
            "--cache-from",
            &format!("type=registry,ref={missing}"),
            "-t",
            "app:c",
        ],
    );
    assert!(
        progress.contains(&format!("WARNING: cache source {missing} not found")),
        "{progress}"
    );
    assert_eq!(counts(&progress), (5, 0), "{progress}");
    assert_eq!(runs(&c), 2);

    // Without --cache-to the config has no inline cache, and other
    // exporters are refused by name.
    assert!(!raw_config_has_cache(&c, "app:c"));
    let out = build_support::build(&c, &ctx_c, &["--cache-to", "type=registry,ref=x/y:z"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("type=registry is not supported"),
        "{}",
        text(&out.stderr)
    );
}

/// Whether `tag`'s config blob holds the inline cache.
fn raw_config_has_cache(root: &Root, tag: &str) -> bool {
    let id = inspect(root, tag)["Id"].as_str().unwrap().to_owned();
    let blob = root
        .dir
        .join("content/blobs/sha256")
        .join(&id["sha256:".len()..]);
    let config: Value = serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap();
    // berth_build::INLINE_CACHE_CONFIG_KEY, as docs/build.md names it.
    config.get("berth.build.cache.v0").is_some()
}

const COMPOSE_CACHE: &str = r#"
services:
  app:
    image: shop/app:1
    build:
      context: ./app
      cache_from: [shop/app:cache]
      cache_to: [type=inline, "type=gha,scope=ci"]
"#;

#[test]
fn compose_cache_to_inline_and_cache_from_a_loaded_image() {
    if !build_support::need_root_and_net("compose_cache_to_inline_and_cache_from_a_loaded_image") {
        return;
    }
    let setup = |label: &str| {
        let p = compose_support::Project::new(label, COMPOSE_CACHE);
        load(&p.root, &[base_image("base:1", "one")]);
        std::fs::create_dir_all(p.dir.join("app/app")).unwrap();
        std::fs::write(p.dir.join("app/Dockerfile"), CACHE_DOCKERFILE).unwrap();
        std::fs::write(p.dir.join("app/a.txt"), "a\n").unwrap();
        std::fs::write(p.dir.join("app/app/b.txt"), "b\n").unwrap();
        p
    };
    // A: the cache source does not exist yet (warned about), the inline
    // cache is written, type=gha is warned about.
    let a = setup("ccache-a");
    let out = a.run(&["compose", "build"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("cache source shop/app:cache not found"),
        "{err}"
    );
    assert!(err.contains("type=gha is not supported"), "{err}");
    assert_eq!(runs(&a.root), 2);
    assert!(raw_config_has_cache(&a.root, "shop/app:1"));
    let id_a = inspect(&a.root, "shop/app:1")["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tagged = a.root.run(&["tag", "shop/app:1", "shop/app:cache"]);
    assert!(tagged.status.success(), "{}", text(&tagged.stderr));
    let archive = a.root.dir.join("cache.tar");
    let saved = a
        .root
        .run(&["save", "-o", archive.to_str().unwrap(), "shop/app:cache"]);
    assert!(saved.status.success(), "{}", text(&saved.stderr));

    // B: the saved image loaded; compose build runs nothing.
    let b = setup("ccache-b");
    let loaded = b.root.run(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    let out = b.run(&["compose", "build"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(executed_steps(&err), Vec::<String>::new(), "{err}");
    assert_eq!(runs(&b.root), 0, "{err}");
    let id_b = inspect(&b.root, "shop/app:1")["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(id_a, id_b);
}

#[test]
fn inline_cache_of_a_multi_stage_build_holds_the_target_stages_chain() {
    if !build_support::need_root_and_net(
        "inline_cache_of_a_multi_stage_build_holds_the_target_stages_chain",
    ) {
        return;
    }
    // Both roots' berth in one network namespace of the test's own.
    private_netns();
    let dockerfile = format!(
        "{}FROM bb AS tool\nRUN echo tool > /tool.txt\nFROM bb\nCOPY --from=tool /tool.txt /opt/\nRUN cat /opt/tool.txt > /final\n",
        build_support::BUSYBOX_STAGE
    );
    let a = Root::new("cache-ms-a");
    let ctx = context(&a, "ctx", &[("Dockerfile", &dockerfile)]);
    build_ok(&a, &ctx, &["--cache-to", "type=inline", "-t", "ms:cache"]);
    let archive = a.dir.join("ms.tar");
    let saved = a.run(&["save", "-o", archive.to_str().unwrap(), "ms:cache"]);
    assert!(saved.status.success(), "{}", text(&saved.stderr));

    let b = Root::new("cache-ms-b");
    let loaded = b.run(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    let progress = build_ok(
        &b,
        &ctx,
        &[
            "--cache-from",
            "ms:cache",
            "--cache-to",
            "type=inline",
            "-t",
            "ms:b",
        ],
    );
    // The target's chain (bb's steps, inherited through FROM bb, and its
    // own) is imported; the tool stage, whose layers are not in the image,
    // runs (BuildKit's mode=min), and gives the same key to COPY --from.
    assert_eq!(
        executed_steps(&progress),
        vec!["[tool 2/2] RUN echo tool > /tool.txt"],
        "{progress}"
    );
    assert_eq!(
        inspect(&a, "ms:cache")["Id"],
        inspect(&b, "ms:b")["Id"],
        "{progress}"
    );
}
