//! The image verbs end to end on the real binary, against a temp `--root`:
//! import a busybox rootfs, list, inspect, tag, remove; load `docker save`
//! and OCI archives built by the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;
mod image_support;

use agent_support::{TempDir, berth_cmd};
use berth_image::testing::{TestImage, docker_save, oci_archive, tar_of};
use image_support::{berth_at, berth_at_with_stdin, blob_count, busybox_tar, ok, stderr, stdout};
use serde_json::Value;

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn import_list_inspect_tag_and_remove_busybox() {
    let dir = TempDir::new("image-busybox");
    let Some(tar) = busybox_tar(dir.path()) else {
        return;
    };
    let root = dir.path().join("state");
    let id = ok(berth_at(
        &root,
        &["image", "import", tar.to_str().unwrap(), "busybox:latest"],
    ));
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id:?}");

    let table = ok(berth_at(&root, &["images"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("REPOSITORY"), "{table}");
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&cells[..3], ["busybox", "latest", &id[7..19]], "{table}");

    // SIZE: the layer (the tarball as given) plus the config blob.
    let rows = json_lines(&ok(berth_at(&root, &["images", "--format", "json"])));
    assert_eq!(rows.len(), 1);
    let tar_len = std::fs::metadata(&tar).unwrap().len();
    let inspect: Value =
        serde_json::from_str(&ok(berth_at(&root, &["image", "inspect", "busybox"]))).unwrap();
    let config_path = root.join("content/blobs/sha256").join(&id[7..]);
    let config_len = std::fs::metadata(config_path).unwrap().len();
    assert_eq!(rows[0]["SizeBytes"], tar_len + config_len);
    assert_eq!(inspect[0]["Size"], tar_len + config_len);
    assert!(
        rows[0]["Size"].as_str().unwrap().ends_with("MB"),
        "{}",
        rows[0]
    );
    assert_eq!(inspect[0]["Id"], id);
    assert_eq!(inspect[0]["RepoTags"][0], "busybox:latest");
    assert_eq!(inspect[0]["Os"], "linux");
    assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(), 1);

    // The store is an OCI layout naming the image by its full reference.
    let index: Value =
        serde_json::from_slice(&std::fs::read(root.join("content/index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "docker.io/library/busybox:latest"
    );
    assert_eq!(blob_count(&root), 3);

    ok(berth_at(&root, &["tag", "busybox", "localhost:5000/box:1"]));
    assert_eq!(ok(berth_at(&root, &["images", "-q"])).lines().count(), 2);
    let only = ok(berth_at(&root, &["images", "localhost:5000/box"]));
    assert_eq!(only.lines().count(), 2, "{only}");

    let out = ok(berth_at(&root, &["rmi", "busybox"]));
    assert_eq!(out, "Untagged: busybox:latest\n");
    assert_eq!(blob_count(&root), 3, "still tagged localhost:5000/box:1");
    let out = ok(berth_at(&root, &["image", "rm", "localhost:5000/box:1"]));
    assert_eq!(
        out,
        format!("Untagged: localhost:5000/box:1\nDeleted: {id}\n")
    );
    assert_eq!(blob_count(&root), 0, "rmi frees the blobs");
    assert_eq!(ok(berth_at(&root, &["images", "-q"])), "");
}

#[test]
fn import_reads_stdin_and_takes_a_message() {
    let dir = TempDir::new("image-stdin");
    let root = dir.path().join("state");
    let tar = tar_of(&[("etc/motd", b"hello\n")]);
    let out = berth_at_with_stdin(
        &root,
        &["image", "import", "-", "motd:1", "-m", "from a pipe"],
        &tar,
    );
    let id = ok(out);
    let inspect: Value =
        serde_json::from_str(&ok(berth_at(&root, &["image", "inspect", id.trim()]))).unwrap();
    assert_eq!(inspect[0]["RepoTags"][0], "motd:1");
    let config = std::fs::read(root.join("content/blobs/sha256").join(&id.trim()[7..])).unwrap();
    let config: Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["history"][0]["comment"], "from a pipe");
}

#[test]
fn load_docker_save_and_oci_archives() {
    let dir = TempDir::new("image-load");
    let root = dir.path().join("state");
    let layers = vec![tar_of(&[("bin/sh", b"sh")]), tar_of(&[("app/run", b"run")])];
    let saved = TestImage::new(layers.clone(), &["app:1", "app:latest"]);
    let archive = dir.path().join("app.tar");
    std::fs::write(&archive, docker_save(std::slice::from_ref(&saved))).unwrap();
    let out = ok(berth_at(&root, &["load", "-i", archive.to_str().unwrap()]));
    assert_eq!(out, "Loaded image: app:1\nLoaded image: app:latest\n");

    let mut oci = TestImage::new(layers, &["localhost:5000/oci:2"]);
    oci.config["config"]["Env"] = serde_json::json!(["PATH=/bin", "MODE=oci"]);
    oci.config["config"]["Cmd"] = serde_json::json!(["run", "--fast"]);
    let out = berth_at_with_stdin(&root, &["load"], &oci_archive(&[oci.clone()], true, true));
    assert_eq!(ok(out), "Loaded image: localhost:5000/oci:2\n");

    let inspect: Value = serde_json::from_str(&ok(berth_at(
        &root,
        &["image", "inspect", "app:1", "localhost:5000/oci:2"],
    )))
    .unwrap();
    assert_eq!(inspect[0]["Id"], saved.id().to_string());
    assert_eq!(inspect[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert!(
        inspect[0]["Config"]["Env"][0]
            .as_str()
            .unwrap()
            .starts_with("PATH=")
    );
    assert_eq!(inspect[1]["Id"], oci.id().to_string());
    assert_eq!(inspect[1]["Config"]["Env"][1], "MODE=oci");
    assert_eq!(
        inspect[1]["Config"]["Cmd"],
        serde_json::json!(["run", "--fast"])
    );
    assert_eq!(inspect[1]["RootFS"]["Layers"].as_array().unwrap().len(), 2);

    let table = ok(berth_at(&root, &["images"]));
    assert_eq!(table.lines().count(), 4, "{table}");
    // Same layers, so removing one image keeps the shared layer blobs.
    ok(berth_at(
        &root,
        &["rmi", "-f", &saved.id().to_string()[7..19]],
    ));
    let left = ok(berth_at(&root, &["images", "--format", "json"]));
    assert_eq!(json_lines(&left).len(), 1);
    ok(berth_at(
        &root,
        &["image", "inspect", "localhost:5000/oci:2"],
    ));
}

#[test]
fn failures_name_the_problem_and_exit_non_zero() {
    let dir = TempDir::new("image-errors");
    let root = dir.path().join("state");
    let out = berth_at(&root, &["image", "inspect", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no such image: nope"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out).trim(), "[]");

    let junk = dir.write("junk.tar", "this is not a tarball, not even close to one");
    let out = berth_at(&root, &["image", "import", junk.to_str().unwrap(), "x"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a tar archive"),
        "{}",
        stderr(&out)
    );

    let out = berth_at(&root, &["rmi", "nope"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no such image"), "{}", stderr(&out));

    let out = berth_at(&root, &["tag", "nope", "Bad:Name"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid reference format"),
        "{}",
        stderr(&out)
    );

    let out = berth_at_with_stdin(&root, &["load"], b"garbage");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot load images"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_root_comes_from_berth_root_too() {
    let dir = TempDir::new("image-env-root");
    let root = dir.path().join("from-env");
    let tar = dir.path().join("t.tar");
    std::fs::write(&tar, tar_of(&[("a", b"1")])).unwrap();
    let out = berth_cmd()
        .env("BERTH_ROOT", &root)
        .args(["image", "import", tar.to_str().unwrap(), "env:1"])
        .output()
        .unwrap();
    ok(out);
    assert!(root.join("content/oci-layout").is_file());
    let out = berth_cmd()
        .env("BERTH_ROOT", &root)
        .args(["images", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(json_lines(&ok(out))[0]["Repository"], "env");
}

#[test]
fn help_lists_the_image_verbs() {
    let out = berth_cmd().arg("--help").output().unwrap();
    let help = stdout(&out);
    for cmd in ["image", "images", "rmi", "load", "tag"] {
        assert!(help.contains(&format!("  {cmd} ")), "{help}");
    }
    assert!(help.contains("--root"), "{help}");
    let out = berth_cmd().args(["image", "--help"]).output().unwrap();
    let help = stdout(&out);
    for cmd in ["import", "inspect", "ls", "rm", "load", "tag"] {
        assert!(help.contains(&format!("  {cmd} ")), "{help}");
    }
}
