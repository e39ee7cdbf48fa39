//! End-to-end: containers from images (`berth run IMAGE`), as `docker run`
//! makes them, and images and containers aware of each other (`ps`,
//! `inspect`, `rmi`). Root only; each test has its own `--root`, whose
//! containers and folder are removed on drop even when the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_image::testing::{TestImage, busybox_rootfs_tar, docker_save};
use runtime_support::{Root, need_root, ok, text};
use serde_json::{Value, json};

/// The busybox rootfs as an uncompressed tar (one image layer).
fn busybox_layer() -> Vec<u8> {
    let mut tar = Vec::new();
    busybox_rootfs_tar(Path::new("/bin/busybox"), &mut tar).unwrap();
    tar
}

/// `berth image import` of the busybox rootfs as `busybox:latest`;
/// returns the image ID.
fn import_busybox(root: &Root) -> String {
    let tar = root.dir.join("busybox.tar");
    std::fs::write(&tar, busybox_layer()).unwrap();
    let id = ok(root.run(&["image", "import", tar.to_str().unwrap(), "busybox"]));
    id.trim().to_owned()
}

/// `berth load` of a `docker save` archive holding `images`.
fn load(root: &Root, images: &[TestImage]) {
    let archive = root.dir.join("images.tar");
    std::fs::write(&archive, docker_save(images)).unwrap();
    ok(root.run(&["load", "-i", archive.to_str().unwrap()]));
}

/// The snapshot dirs under the state root.
fn snapshots(root: &Root) -> Vec<PathBuf> {
    std::fs::read_dir(root.dir.join("snapshots"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn blob_count(root: &Root) -> usize {
    std::fs::read_dir(root.dir.join("content/blobs/sha256"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

/// The cells of `ps`'s row for container `name` (the columns are split on
/// runs of 3+ spaces, since CREATED and STATUS hold single spaces).
fn ps_row(root: &Root, name: &str) -> Vec<String> {
    let table = ok(root.run(&["ps", "-a"]));
    let line = table
        .lines()
        .find(|l| l.ends_with(&format!("   {name}")))
        .unwrap_or_else(|| panic!("no row for {name}:\n{table}"));
    line.split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn run_an_imported_image_like_docker_run() {
    if !need_root("run_an_imported_image_like_docker_run") {
        return;
    }
    let root = Root::new("img-run");
    let id = import_busybox(&root);

    let out = root.run(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello\n");
    assert!(root.ids().is_empty(), "--rm left {:?}", root.ids());

    // By full reference and by ID prefix too; options after the image are
    // the command's.
    let out = root.run(&[
        "run",
        "--rm",
        "docker.io/library/busybox:latest",
        "echo",
        "-n",
        "x",
    ]);
    assert_eq!(text(&out.stdout), "x");
    let out = root.run(&["run", "--rm", &id[7..19], "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));

    // The image's rootfs: busybox's passwd, not the host's.
    let out = root.run(&["run", "--rm", "busybox", "cat", "/etc/passwd"]);
    assert!(text(&out.stdout).starts_with("root:x:0:0:root:/root:/bin/sh\nnobody:"));

    // ps and inspect name the image.
    root.detach_image(&["--name", "bg"], &["busybox", "sleep", "60"]);
    let row = ps_row(&root, "bg");
    assert_eq!(row[1], "busybox", "{row:?}");
    assert_eq!(row[2], "\"sleep 60\"", "{row:?}");
    let v = root.inspect("bg");
    assert_eq!(v["Image"], id.as_str());
    assert_eq!(v["Config"]["Image"], "busybox");
    assert_eq!(v["GraphDriver"]["Name"], "overlay");
    assert_eq!(v["State"]["Running"], true);
    // A --rootfs container (the first argument is the command) shows its
    // directory instead, and has no image.
    let dir = runtime_support::rootfs().display().to_string();
    root.detach_image(&["--name", "dir", "--rootfs", &dir], &["sleep", "60"]);
    assert_eq!(ps_row(&root, "dir")[1], dir);
    assert_eq!(root.inspect("dir")["Image"], "");

    // A missing image: Docker's line, a hint, and Docker's 125.
    let out = root.run(&["run", "--rm", "nope"]);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("Unable to find image 'nope:latest' locally\n"),
        "{err}"
    );
    assert!(err.contains("berth load -i"), "{err}");
    assert!(err.contains("berth image import"), "{err}");
    let out = root.run(&["create", "--name", "never", "nope:2"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("'nope:2'"),
        "{}",
        text(&out.stderr)
    );

    // An imported image has no CMD: as with Docker, a command is needed.
    let out = root.run(&["run", "--rm", "busybox"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(text(&out.stderr), "berth: no command specified\n");
    // No image, no --rootfs.
    let out = root.run(&["run", "--rm"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("requires at least 1 argument"),
        "{}",
        text(&out.stderr)
    );
    // Only bg and dir are left: the failures created nothing.
    assert_eq!(root.ids().len(), 2, "{:?}", root.ids());
}

/// An image whose config sets what `docker run` takes defaults from.
fn greet_image(layer: Vec<u8>) -> TestImage {
    let mut image = TestImage::new(vec![layer], &["greet:1"]);
    image.config["config"] = json!({
        "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hi"],
        "WorkingDir": "/srv",
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo $GREETING from $(pwd)"],
        "Labels": {"from": "image", "keep": "image"},
        "StopSignal": "SIGQUIT",
    });
    image
}

#[test]
fn image_config_is_honoured_and_flags_override_it_like_docker() {
    if !need_root("image_config_is_honoured_and_flags_override_it_like_docker") {
        return;
    }
    let root = Root::new("img-config");
    let layer = busybox_layer();
    let mut nobody = TestImage::new(vec![layer.clone()], &["whoami:1"]);
    nobody.config["config"]["User"] = json!("nobody");
    nobody.config["config"]["Cmd"] = json!(["id", "-u"]);
    load(&root, &[greet_image(layer), nobody]);

    let run = |args: &[&str]| -> String {
        let mut all = vec!["run", "--rm"];
        all.extend(args);
        ok(root.run(&all))
    };
    // ENTRYPOINT + CMD, Env and WorkingDir from the image (the dir is
    // created, as Docker does).
    assert_eq!(run(&["greet:1"]), "hi from /srv\n");
    // -e replaces the image's value; --env-file too, and -e wins over it.
    assert_eq!(run(&["-e", "GREETING=yo", "greet:1"]), "yo from /srv\n");
    let env_file = root.dir.join("env");
    std::fs::write(&env_file, "# comment\nGREETING=file\n").unwrap();
    let f = env_file.to_str().unwrap();
    assert_eq!(run(&["--env-file", f, "greet:1"]), "file from /srv\n");
    assert_eq!(
        run(&["--env-file", f, "-e", "GREETING=flag", "greet:1"]),
        "flag from /srv\n"
    );
    assert_eq!(run(&["-w", "/tmp", "greet:1"]), "hi from /tmp\n");
    // A command replaces CMD and keeps the ENTRYPOINT.
    assert_eq!(
        run(&["greet:1", "echo positional $GREETING"]),
        "positional hi\n"
    );
    // --entrypoint replaces the ENTRYPOINT and drops the image's CMD.
    assert_eq!(run(&["--entrypoint", "echo", "greet:1"]), "\n");
    assert_eq!(run(&["--entrypoint", "echo", "greet:1", "a", "b"]), "a b\n");
    // --entrypoint "" clears it: the command runs alone.
    assert_eq!(
        run(&["--entrypoint", "", "greet:1", "echo", "cleared"]),
        "cleared\n"
    );
    let out = root.run(&["run", "--rm", "--entrypoint", "", "greet:1"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(text(&out.stderr), "berth: no command specified\n");

    // User from the image, -u over it.
    assert_eq!(run(&["whoami:1"]), "65534\n");
    assert_eq!(run(&["-u", "0", "whoami:1"]), "0\n");

    // What create recorded: labels merged under -l, the stop signal, each
    // env key once.
    let id = ok(root.run(&[
        "create",
        "--name",
        "c",
        "-l",
        "keep=flag",
        "-e",
        "GREETING=c",
        "greet:1",
    ]));
    let v = root.inspect("c");
    assert_eq!(v["Id"], id.trim());
    assert_eq!(
        v["Config"]["Labels"],
        json!({"from": "image", "keep": "flag"})
    );
    assert_eq!(v["Config"]["StopSignal"], "SIGQUIT");
    assert_eq!(v["Config"]["WorkingDir"], "/srv");
    assert_eq!(
        v["Config"]["Env"],
        json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=c"])
    );
    assert_eq!(
        v["Config"]["Cmd"],
        json!(["/bin/sh", "-c", "echo $GREETING from $(pwd)"])
    );
    assert_eq!(v["Config"]["Image"], "greet:1");
    assert_eq!(v["State"]["Status"], "created");
    let v = json!(ok(root.run(&["create", "--stop-signal", "SIGUSR1", "greet:1"])).trim());
    let v = root.inspect(v.as_str().unwrap());
    assert_eq!(v["Config"]["StopSignal"], "SIGUSR1");
    // Both images share the busybox layer: one snapshot.
    assert_eq!(snapshots(&root).len(), 1);
}

#[test]
fn containers_of_one_image_share_its_snapshots_but_not_their_writes() {
    if !need_root("containers_of_one_image_share_its_snapshots_but_not_their_writes") {
        return;
    }
    let root = Root::new("img-share");
    import_busybox(&root);
    root.detach_image(
        &["--name", "a"],
        &["busybox", "sh", "-c", "echo from-a > /written; sleep 60"],
    );
    root.detach_image(&["--name", "b"], &["busybox", "sleep", "60"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while text(&root.run(&["exec", "a", "cat", "/written"]).stdout) != "from-a\n" {
        assert!(Instant::now() < deadline, "a never wrote /written");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = root.run(&["exec", "b", "cat", "/written"]);
    assert!(!out.status.success(), "b sees a's write");

    let (a, b) = (root.inspect("a"), root.inspect("b"));
    let lower = &a["GraphDriver"]["Data"]["LowerDirs"];
    assert_eq!(lower, &b["GraphDriver"]["Data"]["LowerDirs"]);
    let lower: Vec<PathBuf> = lower
        .as_array()
        .unwrap()
        .iter()
        .map(|d| PathBuf::from(d.as_str().unwrap()))
        .collect();
    assert_eq!(lower.len(), 1);
    assert!(
        lower[0].starts_with(root.dir.join("snapshots")),
        "{lower:?}"
    );
    assert_eq!(snapshots(&root).len(), 1);
    let upper = |v: &Value| PathBuf::from(v["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap());
    assert_ne!(upper(&a), upper(&b));
    assert_eq!(
        std::fs::read_to_string(upper(&a).join("written")).unwrap(),
        "from-a\n"
    );
    assert!(!upper(&b).join("written").exists());
    assert!(
        !lower[0].join("written").exists(),
        "the snapshot stays clean"
    );
    // b wrote nothing, so its upper dir is empty: the runtime's mount
    // targets (/etc/hosts, hostname, resolv.conf, which this image lacks)
    // come from the shared init layer, not a copy-up per container.
    let in_b: Vec<_> = std::fs::read_dir(upper(&b))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(in_b.is_empty(), "b's upper dir: {in_b:?}");
    let out = root.run(&["exec", "b", "cat", "/etc/hostname"]);
    assert_eq!(text(&out.stdout).trim().len(), 12, "{}", text(&out.stdout));
    let out = root.run(&["exec", "b", "stat", "-c", "%a", "/etc"]);
    assert_eq!(text(&out.stdout).trim(), "755");
}

#[test]
fn rmi_refuses_an_image_a_container_uses_until_it_is_removed() {
    if !need_root("rmi_refuses_an_image_a_container_uses_until_it_is_removed") {
        return;
    }
    let root = Root::new("img-rmi");
    let id = import_busybox(&root);
    let short = &id[7..19];
    let c = ok(root.run(&["create", "--name", "c", "busybox", "true"]));
    let c = &c.trim()[..12];
    assert_eq!(snapshots(&root).len(), 1);

    let out = root.run(&["rmi", "busybox"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "berth: conflict: unable to remove repository reference \"busybox\" (must force) - container {c} is using its referenced image {short}\n"
        )
    );
    let out = root.run(&["rmi", short]);
    assert_eq!(
        text(&out.stderr),
        format!(
            "berth: conflict: unable to delete {short} (must be forced) - image is being used by stopped container {c}\n"
        )
    );
    assert_eq!((blob_count(&root), snapshots(&root).len()), (3, 1));

    // Gone once the container is.
    ok(root.run(&["rm", "c"]));
    assert_eq!(
        ok(root.run(&["rmi", "busybox"])),
        format!("Untagged: busybox:latest\nDeleted: {id}\n")
    );
    assert_eq!((blob_count(&root), snapshots(&root).len()), (0, 0));

    // -f untags, and keeps what the container needs: it still starts.
    let id = import_busybox(&root);
    let short = &id[7..19];
    ok(root.run(&["create", "--name", "d", "busybox", "sh", "-c", "exit 7"]));
    assert_eq!(
        ok(root.run(&["rmi", "-f", "busybox"])),
        "Untagged: busybox:latest\n"
    );
    assert_eq!((blob_count(&root), snapshots(&root).len()), (3, 1));
    // ps now shows the image ID, as Docker does for an untagged image.
    assert_eq!(ps_row(&root, "d")[1], short);
    let table = ok(root.run(&["ps", "-a", "--no-trunc"]));
    assert!(table.contains(&format!("   {id}   ")), "{table}");
    ok(root.run(&["start", "d"]));
    assert_eq!(ok(root.run(&["wait", "d"])), "7\n");
    let out = root.run(&["rmi", "-f", short]);
    assert!(
        text(&out.stderr).contains(&format!("unable to delete {short} (cannot be forced)")),
        "{}",
        text(&out.stderr)
    );
    ok(root.run(&["rm", "d"]));
    assert_eq!(ok(root.run(&["rmi", short])), format!("Deleted: {id}\n"));
    assert_eq!((blob_count(&root), snapshots(&root).len()), (0, 0));
}

trait ImageRoot {
    fn detach_image(&self, opts: &[&str], image_and_command: &[&str]) -> String;
}

impl ImageRoot for Root {
    /// `run -d OPTS IMAGE CMD...`, returning the id.
    fn detach_image(&self, opts: &[&str], image_and_command: &[&str]) -> String {
        let mut args = vec!["run", "-d"];
        args.extend(opts);
        args.extend(image_and_command);
        ok(self.run(&args)).trim().to_owned()
    }
}
