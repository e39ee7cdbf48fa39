//! The image-management verbs around the registry ones, end to end:
//! `save` (read back by `berth load` and skopeo), `image prune` (dangling,
//! `-a` sparing images containers use), `tag`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod registry_support;
mod runtime_support;

use berth_image::testing::{TestImage, docker_save, tar_of};
use registry_support::{have, skopeo, text};
use runtime_support::{Root, need_root};
use serde_json::Value;

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "berth failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn load(root: &Root, images: &[TestImage]) {
    let archive = root.dir.join("in.tar");
    std::fs::write(&archive, docker_save(images)).unwrap();
    ok(root.run(&["load", "-i", archive.to_str().unwrap()]));
}

fn inspect(root: &Root, image: &str) -> Value {
    let v: Value = serde_json::from_str(&ok(root.run(&["image", "inspect", image]))).unwrap();
    v[0].clone()
}

#[test]
fn save_and_load_round_trip_keeps_ids_and_names() {
    let a = Root::new("save-a");
    let one = TestImage::new(vec![tar_of(&[("one.txt", b"1")])], &["app:1"]);
    let two = TestImage::new(
        vec![tar_of(&[("one.txt", b"1")]), tar_of(&[("two.txt", b"2")])],
        &["app:2", "other/app:latest"],
    );
    load(&a, &[one.clone(), two.clone()]);
    let archive = a.dir.join("saved.tar");
    ok(a.run(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "app:1",
        "app:2",
        "other/app",
    ]));
    let b = Root::new("save-b");
    let out = ok(b.run(&["load", "-i", archive.to_str().unwrap()]));
    for name in ["app:1", "app:2", "other/app:latest"] {
        assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
    }
    assert_eq!(inspect(&b, "app:1")["Id"], one.id().to_string());
    assert_eq!(inspect(&b, "app:2")["Id"], two.id().to_string());
    assert_eq!(inspect(&b, "other/app")["Id"], two.id().to_string());
    // To stdout, the same bytes.
    let out = a
        .cmd(&["save", "app:1", "app:2", "other/app"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(out.stdout, std::fs::read(&archive).unwrap(), "reproducible");
    // An unknown image fails and leaves no file.
    let bad = a.dir.join("bad.tar");
    let out = a.run(&["save", "-o", bad.to_str().unwrap(), "nope:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    assert!(!bad.exists());
    // skopeo reads the same archive as an OCI layout.
    if have("skopeo", "save read by skopeo") {
        let info = skopeo(&["inspect", &format!("oci-archive:{}:2", archive.display())]);
        let info: Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["Layers"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn image_prune_removes_dangling_and_with_all_spares_used_images() {
    if !need_root("image prune") {
        return;
    }
    let root = Root::new("prune");
    let mut busybox = Vec::new();
    berth_image::testing::busybox_rootfs_tar(std::path::Path::new("/bin/busybox"), &mut busybox)
        .unwrap();
    let used = TestImage::new(vec![busybox], &["used:1"]);
    let old = TestImage::new(vec![tar_of(&[("v.txt", b"old")])], &["app:1"]);
    let new = TestImage::new(vec![tar_of(&[("v.txt", b"new")])], &["app:1"]);
    let spare = TestImage::new(vec![tar_of(&[("s.txt", b"s")])], &["spare:1"]);
    load(&root, &[used.clone(), spare.clone()]);
    load(&root, std::slice::from_ref(&old));
    // The tag moves: the old image is dangling now.
    load(&root, std::slice::from_ref(&new));
    ok(root.run(&["create", "--name", "c1", "used:1", "true"]));
    let ids = ok(root.run(&["images", "-q", "--no-trunc"]));
    assert!(ids.contains(&old.id().to_string()), "{ids}");

    let out = ok(root.run(&["image", "prune", "-f"]));
    assert!(out.contains(&format!("deleted: {}", old.id())), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let ids = ok(root.run(&["images", "-q", "--no-trunc"]));
    assert!(!ids.contains(&old.id().to_string()), "{ids}");
    assert!(
        ids.contains(&new.id().to_string()),
        "tagged images stay: {ids}"
    );

    // Without -f and without a yes, nothing happens.
    let out = ok(root.run(&["image", "prune", "-a"]));
    assert!(out.contains("Are you sure"), "{out}");
    assert!(ok(root.run(&["images", "-q", "--no-trunc"])).contains(&spare.id().to_string()));

    let out = ok(root.run(&["image", "prune", "-a", "-f"]));
    assert!(out.contains("untagged: spare:1"), "{out}");
    assert!(out.contains("untagged: app:1"), "{out}");
    let ids = ok(root.run(&["images", "-q", "--no-trunc"]));
    assert_eq!(
        ids.trim(),
        used.id().to_string(),
        "only the image a container uses stays"
    );
}

#[test]
fn tag_names_an_image_by_name_or_id_and_says_what_is_missing() {
    let root = Root::new("tag");
    let img = TestImage::new(vec![tar_of(&[("a", b"a")])], &["app:1"]);
    load(&root, std::slice::from_ref(&img));
    ok(root.run(&["tag", "app:1", "localhost:5000/team/app:2"]));
    ok(root.run(&["tag", &img.id().hex()[..12], "app:latest"]));
    let tags = inspect(&root, "app")["RepoTags"].clone();
    assert_eq!(
        tags,
        serde_json::json!(["app:1", "localhost:5000/team/app:2", "app:latest"])
    );
    let out = root.run(&["tag", "missing:1", "x:1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing:1"),
        "{}",
        text(&out)
    );
    let out = root.run(&["tag", "app:1", "Bad Name"]);
    assert!(!out.status.success());
}
