//! End-to-end: `berth build` of Dockerfiles from scratch + the host's
//! static busybox, checked by running the images and inspecting them.
//! Root only (RUN steps are containers); each test has its own `--root`,
//! removed on drop even when the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_support;
mod runtime_support;

use build_support::{BUSYBOX_STAGE, build, build_ok, context, counts, executed_steps, inspect, sh};
use runtime_support::{Root, text};

#[test]
fn multi_stage_build_runs_copies_and_writes_the_config() {
    if !build_support::need_root_and_net("multi_stage_build_runs_copies_and_writes_the_config") {
        return;
    }
    let root = build_support::root("build-multi");
    let dockerfile = format!(
        "{BUSYBOX_STAGE}\
RUN echo made > /made.txt && echo 'app:x:1000:1000::/home/app:/bin/sh' > /etc/passwd && echo 'app:x:1000:' > /etc/group && echo 'staff:x:50:' >> /etc/group

FROM bb AS tool
RUN mkdir -p /out && echo built-in-tool > /out/tool.txt

FROM bb
ARG GREETING=hi
ENV G=$GREETING
WORKDIR /app
COPY --chown=app --chmod=0640 hello.txt .
COPY --chown=1000:staff dir/ /data/
COPY --from=tool /out/tool.txt /opt/
RUN rm /made.txt && echo \"greeting $G\"
USER app
EXPOSE 8080/tcp 53/udp
VOLUME /data
LABEL org.example.kind=test
STOPSIGNAL SIGINT
ENTRYPOINT [\"/bin/sh\", \"-c\"]
CMD [\"cat /app/hello.txt\"]
HEALTHCHECK --interval=5s --retries=2 CMD test -f /app/hello.txt
"
    );
    let ctx = context(
        &root,
        "ctx",
        &[
            ("Dockerfile", &dockerfile),
            ("hello.txt", "hello\n"),
            ("dir/a/b.txt", "b\n"),
        ],
    );
    let progress = build_ok(
        &root,
        &ctx,
        &["-t", "test/multi:1", "--build-arg", "GREETING=hey"],
    );
    // RUN output is streamed, prefixed by its step's vertex.
    assert!(
        progress
            .lines()
            .any(|l| l.starts_with('#') && l.ends_with(" greeting hey")),
        "{progress}"
    );
    // The default command is the image's ENTRYPOINT + CMD.
    let out = root.run(&["run", "--rm", "test/multi:1"]);
    assert_eq!(text(&out.stdout), "hello\n", "{}", text(&out.stderr));
    let facts = sh(
        &root,
        "test/multi:1",
        "id -u; stat -c '%u:%g %a' /app/hello.txt /data/a/b.txt; cat /opt/tool.txt; test -e /made.txt && echo present || echo gone; pwd",
    );
    assert_eq!(
        facts,
        "1000\n1000:1000 640\n1000:50 644\nbuilt-in-tool\ngone\n/app\n"
    );
    let img = inspect(&root, "test/multi:1");
    let c = &img["Config"];
    assert_eq!(c["User"], "app");
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["cat /app/hello.txt"]));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["Labels"]["org.example.kind"], "test");
    assert!(
        c["Env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("G=hey"))
    );
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "8080/tcp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "test -f /app/hello.txt"], "Interval": 5_000_000_000u64, "Retries": 2})
    );
    // ARGs are not in the image's environment.
    assert!(!c["Env"].to_string().contains("GREETING"));
    // The deletion is a whiteout in the RUN's layer, as OCI says.
    let layers = img["RootFS"]["Layers"].as_array().unwrap().len();
    let history = root.run(&["history", "--no-trunc", "test/multi:1"]);
    let history = text(&history.stdout);
    assert!(
        history.contains("RUN |1 GREETING=hey /bin/sh -c rm /made.txt"),
        "{history}"
    );
    let manifest_layers = whiteouts_in_layers(&root, "test/multi:1");
    assert_eq!(manifest_layers.len(), layers);
    assert!(
        manifest_layers
            .iter()
            .any(|names| names.iter().any(|n| n == ".wh.made.txt")),
        "{manifest_layers:?}"
    );
}

/// The entries of each layer blob of `image`, lowest first.
fn whiteouts_in_layers(root: &Root, image: &str) -> Vec<Vec<String>> {
    let img = inspect(root, image);
    let manifest = img["Descriptor"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let blobs = root.dir.join("content/blobs/sha256");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blobs.join(&manifest)).unwrap()).unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
            let out = std::process::Command::new("tar")
                .arg("tzf")
                .arg(blobs.join(hex))
                .output()
                .unwrap();
            text(&out.stdout).lines().map(str::to_owned).collect()
        })
        .collect()
}

#[test]
fn rebuilds_use_the_cache_and_rerun_only_what_a_change_reaches() {
    if !build_support::need_root_and_net(
        "rebuilds_use_the_cache_and_rerun_only_what_a_change_reaches",
    ) {
        return;
    }
    let root = build_support::root("build-cache");
    let dockerfile = format!(
        "{BUSYBOX_STAGE}\
COPY first.txt /first.txt
RUN cat /first.txt > /combined
COPY second.txt /second.txt
RUN cat /second.txt >> /combined
"
    );
    let ctx = context(
        &root,
        "ctx",
        &[
            ("Dockerfile", &dockerfile),
            ("first.txt", "1\n"),
            ("second.txt", "2\n"),
        ],
    );
    let first = build_ok(&root, &ctx, &["-t", "cache:1", "-q"]);
    let _ = first;
    let id1 = text(&root.run(&["image", "inspect", "cache:1"]).stdout);
    // Nothing changed: no step runs, and the image is the same.
    let again = build_ok(&root, &ctx, &["-t", "cache:1"]);
    assert_eq!(counts(&again), (0, 6), "{again}");
    assert!(executed_steps(&again).is_empty(), "{again}");
    let id2 = text(&root.run(&["image", "inspect", "cache:1"]).stdout);
    assert_eq!(id1, id2, "a fully cached rebuild gives the same image");
    // A change to the second file reruns its COPY and the RUN after it.
    std::fs::write(ctx.join("second.txt"), "two\n").unwrap();
    let changed = build_ok(&root, &ctx, &["-t", "cache:1"]);
    let ran = executed_steps(&changed);
    assert_eq!(ran.len(), 2, "{changed}");
    assert!(ran[0].contains("COPY second.txt"), "{ran:?}");
    assert!(ran[1].contains("RUN cat /second.txt"), "{ran:?}");
    assert_eq!(sh(&root, "cache:1", "cat /combined"), "1\ntwo\n");
    // A file nothing copies does not matter.
    std::fs::write(ctx.join("unrelated.txt"), "x").unwrap();
    assert_eq!(counts(&build_ok(&root, &ctx, &["-t", "cache:1"])), (0, 6));
    // --no-cache runs everything again.
    let fresh = build_ok(&root, &ctx, &["-t", "cache:1", "--no-cache"]);
    assert_eq!(counts(&fresh), (6, 0), "{fresh}");
    // builder prune removes what no image uses (the two steps of the
    // first `second.txt`, once its untagged image is gone), keeps the
    // rest: the build stays fully cached.
    let first_id = serde_json::from_str::<serde_json::Value>(&id1).unwrap()[0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rmi = root.run(&["rmi", &first_id]);
    assert!(rmi.status.success(), "{}", text(&rmi.stderr));
    let pruned = text(&root.run(&["builder", "prune"]).stdout);
    assert!(
        pruned.contains("Deleted build cache objects: 2"),
        "{pruned}"
    );
    assert_eq!(counts(&build_ok(&root, &ctx, &["-t", "cache:1"])), (0, 6));
    // Everything left was used within the hour.
    let pruned = text(
        &root
            .run(&["builder", "prune", "--all", "--filter", "until=1h"])
            .stdout,
    );
    assert!(
        pruned.contains("Deleted build cache objects: 0"),
        "{pruned}"
    );
    // builder prune --all empties the cache: the next build runs again.
    let pruned = text(&root.run(&["builder", "prune", "--all"]).stdout);
    assert!(
        pruned.contains("Deleted build cache objects: 6"),
        "{pruned}"
    );
    let after = build_ok(&root, &ctx, &["-t", "cache:2"]);
    assert_eq!(counts(&after), (6, 0), "{after}");
}

#[test]
fn a_failing_run_names_its_line_and_exit_code() {
    if !build_support::need_root_and_net("a_failing_run_names_its_line_and_exit_code") {
        return;
    }
    let root = build_support::root("build-fail");
    let dockerfile = format!("{BUSYBOX_STAGE}RUN echo about to fail && exit 3\n");
    let ctx = context(&root, "ctx", &[("Dockerfile", &dockerfile)]);
    let out = build(&root, &ctx, &["-t", "fail:1"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("about to fail"), "{err}");
    assert!(err.contains("Dockerfile:4"), "{err}");
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(!text(&root.run(&["images"]).stdout).contains("fail"));
    // No build container is left behind.
    assert!(root.ids().is_empty(), "{:?}", root.ids());
}

#[test]
fn a_symlink_out_of_the_context_is_refused() {
    if !build_support::need_root_and_net("a_symlink_out_of_the_context_is_refused") {
        return;
    }
    let root = build_support::root("build-escape");
    let ctx = context(
        &root,
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY link/passwd /stolen\n")],
    );
    std::os::unix::fs::symlink("/etc", ctx.join("link")).unwrap();
    let out = build(&root, &ctx, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("leaves the build context"), "{err}");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY ../../etc/passwd /stolen\n",
    )
    .unwrap();
    let err = text(&build(&root, &ctx, &[]).stderr);
    assert!(err.contains("outside the build context"), "{err}");
}

#[test]
fn a_missing_base_image_is_named_with_the_way_to_get_it() {
    if !build_support::need_root_and_net("a_missing_base_image_is_named_with_the_way_to_get_it") {
        return;
    }
    let root = build_support::root("build-nobase");
    let ctx = context(
        &root,
        "ctx",
        &[("Dockerfile", "FROM example.org/nope:1\nRUN true\n")],
    );
    let err = text(&build(&root, &ctx, &[]).stderr);
    assert!(err.contains("example.org/nope:1"), "{err}");
    assert!(err.contains("berth pull"), "{err}");
}

#[test]
fn target_builds_only_the_stages_it_needs() {
    if !build_support::need_root_and_net("target_builds_only_the_stages_it_needs") {
        return;
    }
    let root = build_support::root("build-target");
    let dockerfile = format!(
        "{BUSYBOX_STAGE}
FROM bb AS broken
RUN exit 1

FROM bb AS wanted
RUN echo wanted > /w

FROM broken
"
    );
    let ctx = context(&root, "ctx", &[("Dockerfile", &dockerfile)]);
    let progress = build_ok(&root, &ctx, &["--target", "wanted", "-t", "t:1"]);
    assert!(!progress.contains("broken"), "{progress}");
    assert_eq!(sh(&root, "t:1", "cat /w"), "wanted\n");
    let err = text(&build(&root, &ctx, &["--target", "nope"]).stderr);
    assert!(err.contains("\"nope\" could not be found"), "{err}");
}

#[test]
fn onbuild_triggers_run_in_the_child_build() {
    if !build_support::need_root_and_net("onbuild_triggers_run_in_the_child_build") {
        return;
    }
    let root = build_support::root("build-onbuild");
    let parent = format!(
        "{BUSYBOX_STAGE}ONBUILD COPY note.txt /note.txt\nONBUILD RUN echo triggered >> /note.txt\n"
    );
    let ctx = context(&root, "parent", &[("Dockerfile", &parent)]);
    build_ok(&root, &ctx, &["-t", "parent:1"]);
    let img = inspect(&root, "parent:1");
    assert_eq!(
        img["Config"]["OnBuild"],
        serde_json::json!(["COPY note.txt /note.txt", "RUN echo triggered >> /note.txt"])
    );
    let child = context(
        &root,
        "child",
        &[
            ("Dockerfile", "FROM parent:1\nRUN cat /note.txt\n"),
            ("note.txt", "from child context\n"),
        ],
    );
    build_ok(&root, &child, &["-t", "child:1"]);
    assert_eq!(
        sh(&root, "child:1", "cat /note.txt"),
        "from child context\ntriggered\n"
    );
    // Triggers run once: the child does not carry them on.
    assert!(inspect(&root, "child:1")["Config"]["OnBuild"].is_null());
}

#[test]
fn dockerignore_keeps_files_out_of_copies_and_the_cache_key() {
    if !build_support::need_root_and_net("dockerignore_keeps_files_out_of_copies_and_the_cache_key")
    {
        return;
    }
    let root = build_support::root("build-ignore");
    let dockerfile = format!("{BUSYBOX_STAGE}COPY src /src/\n");
    let ctx = context(
        &root,
        "ctx",
        &[
            ("Dockerfile", &dockerfile),
            (
                ".dockerignore",
                "src/*.secret\nsrc/logs/\n!src/logs/keep.log\n",
            ),
            ("src/app.txt", "app"),
            ("src/key.secret", "k"),
            ("src/logs/a.log", "a"),
            ("src/logs/keep.log", "keep"),
        ],
    );
    build_ok(&root, &ctx, &["-t", "ign:1"]);
    assert_eq!(
        sh(&root, "ign:1", "cd /src && find . -type f | sort"),
        "./app.txt\n./logs/keep.log\n"
    );
    std::fs::write(ctx.join("src/key.secret"), "changed").unwrap();
    assert_eq!(counts(&build_ok(&root, &ctx, &["-t", "ign:1"])).0, 0);
}

#[test]
fn entrypoint_resets_an_inherited_cmd_and_history_shows_values() {
    if !build_support::need_root_and_net(
        "entrypoint_resets_an_inherited_cmd_and_history_shows_values",
    ) {
        return;
    }
    let root = build_support::root("build-cmd");
    let ctx = context(
        &root,
        "ctx",
        &[(
            "Dockerfile",
            "FROM scratch AS base\nCMD [\"base-cmd\"]\n\nFROM base AS reset\nENTRYPOINT [\"/ep\"]\n\nFROM base AS kept\nENTRYPOINT [\"/ep\"]\nCMD [\"own\"]\n\nFROM base AS shell\nARG V=val\nENV E=$V\nSHELL [\"/bin/ash\", \"-e\", \"-c\"]\nCMD run this\n",
        )],
    );
    build_ok(&root, &ctx, &["--target", "reset", "-t", "reset:1"]);
    assert!(inspect(&root, "reset:1")["Config"]["Cmd"].is_null());
    build_ok(&root, &ctx, &["--target", "kept", "-t", "kept:1"]);
    assert_eq!(
        inspect(&root, "kept:1")["Config"]["Cmd"],
        serde_json::json!(["own"])
    );
    build_ok(&root, &ctx, &["--target", "shell", "-t", "shell:1"]);
    let c = inspect(&root, "shell:1")["Config"].clone();
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["/bin/ash", "-e", "-c", "run this"])
    );
    assert_eq!(c["Shell"], serde_json::json!(["/bin/ash", "-e", "-c"]));
    let history = text(
        &root
            .run(&["history", "--no-trunc", "--format", "json", "shell:1"])
            .stdout,
    );
    assert!(history.contains("\"CreatedBy\":\"ENV E=val\""), "{history}");
}

#[test]
fn copy_exclude_and_parents() {
    if !build_support::need_root_and_net("copy_exclude_and_parents") {
        return;
    }
    let root = build_support::root("build-excl");
    let dockerfile = format!(
        "{BUSYBOX_STAGE}COPY --exclude=**/*.log --exclude=tmp src/ /ex/\nCOPY --parents src/a/one.txt src/b /par/\n"
    );
    let ctx = context(
        &root,
        "ctx",
        &[
            ("Dockerfile", &dockerfile),
            ("src/a/one.txt", "1"),
            ("src/a/skip.log", "x"),
            ("src/tmp/t.txt", "x"),
            ("src/b/two.txt", "2"),
        ],
    );
    build_ok(&root, &ctx, &["-t", "ex:1"]);
    assert_eq!(
        sh(
            &root,
            "ex:1",
            "cd /ex && find . -type f | sort; cd /par && find . -type f | sort"
        ),
        "./a/one.txt\n./b/two.txt\n./src/a/one.txt\n./src/b/two.txt\n"
    );
    // An excluded file does not reach the cache key either.
    std::fs::write(ctx.join("src/a/skip.log"), "changed").unwrap();
    assert_eq!(counts(&build_ok(&root, &ctx, &["-t", "ex:1"])).0, 0);
}

#[test]
fn builds_on_an_image_in_the_store_and_copies_from_images() {
    if !build_support::need_root_and_net("builds_on_an_image_in_the_store_and_copies_from_images") {
        return;
    }
    let root = build_support::root("build-fromimg");
    let mut tar = Vec::new();
    berth_image::testing::busybox_rootfs_tar(std::path::Path::new("/bin/busybox"), &mut tar)
        .unwrap();
    let tar_path = root.dir.join("bb.tar");
    std::fs::write(&tar_path, tar).unwrap();
    let out = root.run(&[
        "image",
        "import",
        tar_path.to_str().unwrap(),
        "local/busybox:1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dockerfile = "ARG BASE=local/busybox:1\nFROM --platform=$BUILDPLATFORM ${BASE} AS b\nRUN echo from-image > /f\n\nFROM scratch\nCOPY --from=local/busybox:1 /bin/busybox /bin/busybox\nCOPY --from=b /f /f\nENTRYPOINT [\"/bin/busybox\", \"cat\", \"/f\"]\n";
    let ctx = context(&root, "ctx", &[("Dockerfile", dockerfile)]);
    build_ok(&root, &ctx, &["-t", "img:1"]);
    let run = root.run(&["run", "--rm", "img:1"]);
    assert_eq!(text(&run.stdout), "from-image\n", "{}", text(&run.stderr));
    // Another platform is refused by name.
    let err = text(&build(&root, &ctx, &["--platform", "linux/s390x"]).stderr);
    assert!(err.contains("linux/s390x"), "{err}");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM --platform=linux/riscv64 scratch\n",
    )
    .unwrap();
    let err = text(&build(&root, &ctx, &[]).stderr);
    assert!(err.contains("host platform"), "{err}");
}

#[test]
fn an_interrupted_build_leaves_no_container() {
    if !build_support::need_root_and_net("an_interrupted_build_leaves_no_container") {
        return;
    }
    let root = build_support::root("build-cancel");
    let dockerfile = format!("{BUSYBOX_STAGE}RUN echo started && sleep 600\n");
    let ctx = context(&root, "ctx", &[("Dockerfile", &dockerfile)]);
    let mut child = root
        .cmd(&["build", ctx.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.ends_with(" started") {
            break;
        }
    }
    assert!(seen.contains("started"), "{seen}");
    assert_eq!(root.ids().len(), 1, "the RUN container exists");
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(rest.join("\n").contains("build cancelled"), "{rest:?}");
    assert!(root.ids().is_empty(), "left: {:?}", root.ids());
}

#[test]
fn source_date_epoch_makes_builds_reproducible() {
    if !build_support::need_root_and_net("source_date_epoch_makes_builds_reproducible") {
        return;
    }
    let root = build_support::root("build-repro");
    let dockerfile = format!("{BUSYBOX_STAGE}COPY f /f\nRUN mkdir -p /x/y && echo made > /x/y/z\n");
    let ctx = context(
        &root,
        "ctx",
        &[("Dockerfile", &dockerfile), ("f", "same\n")],
    );
    let args = [
        "-q",
        "--no-cache",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1700000000",
    ];
    let first = root.run(&[&["build"][..], &args, &[ctx.to_str().unwrap()]].concat());
    assert!(first.status.success(), "{}", text(&first.stderr));
    // Newer file times (in the context and in the RUN) are clamped.
    let st = std::process::Command::new("touch")
        .args(["-d", "2030-01-01", ctx.join("f").to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let second = root.run(&[&["build"][..], &args, &[ctx.to_str().unwrap()]].concat());
    assert!(second.status.success(), "{}", text(&second.stderr));
    let id = text(&first.stdout);
    assert_eq!(id, text(&second.stdout), "same inputs, same image");
    let img = inspect(&root, id.trim());
    assert_eq!(img["Created"], "2023-11-14T22:13:20Z");
}
