//! Loading archives built in memory by [`crate::testing`].

use std::io::Write;

use serde_json::json;

use crate::testing::{TestImage, docker_save, oci_archive, tar_of};
use crate::{Digest, ErrorKind, Store};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn two_layer_image(tags: &[&str]) -> TestImage {
    TestImage::new(
        vec![
            tar_of(&[("bin/sh", b"sh"), ("etc/os-release", b"base")]),
            tar_of(&[("app/run", b"run")]),
        ],
        tags,
    )
}

fn blob_count(store: &Store) -> usize {
    std::fs::read_dir(store.content_dir().join("blobs/sha256"))
        .unwrap()
        .count()
}

#[test]
fn loads_a_docker_save_archive() {
    let (_dir, store) = store();
    let image = two_layer_image(&["busybox:latest", "localhost:5000/box:1"]);
    let archive = docker_save(std::slice::from_ref(&image));
    let loaded = store.load(&mut &archive[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    let got = &loaded[0];
    let names: Vec<String> = got.references.iter().map(|r| r.familiar()).collect();
    assert_eq!(names, ["busybox:latest", "localhost:5000/box:1"]);
    // The config is kept byte for byte: the ID is Docker's.
    assert_eq!(got.image.id, image.id());
    assert_eq!(got.image.config().cmd, Some(vec!["sh".to_owned()]));
    assert!(got.image.config().env_var("PATH").is_some());
    assert_eq!(got.image.layers().len(), 2);
    // config, 2 layers, our manifest; VERSION and json files are dropped.
    assert_eq!(blob_count(&store), 4);
    let by_name = store.image("localhost:5000/box:1").unwrap();
    assert_eq!(by_name.id, image.id());
    assert_eq!(by_name.references.len(), 2);
}

#[test]
fn loads_docker_save_with_shared_layer_links_and_no_tags() {
    // Docker writes a layer shared by two images once, and a symlink for
    // the second.
    let layer = tar_of(&[("x", b"1")]);
    let config = TestImage::new(vec![layer.clone()], &[]).config_bytes();
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let mut b = tar::Builder::new(Vec::new());
    crate::testing::append_file(&mut b, "aaa/layer.tar", 0o644, &layer).unwrap();
    crate::testing::append_symlink(&mut b, "bbb/layer.tar", "../aaa/layer.tar").unwrap();
    crate::testing::append_file(&mut b, &config_name, 0o644, &config).unwrap();
    let manifest = json!([{"Config": config_name, "RepoTags": null, "Layers": ["bbb/layer.tar"]}]);
    crate::testing::append_file(
        &mut b,
        "manifest.json",
        0o644,
        manifest.to_string().as_bytes(),
    )
    .unwrap();
    let archive = b.into_inner().unwrap();
    let (_dir, store) = store();
    let loaded = store.load(&mut &archive[..]).unwrap();
    assert!(loaded[0].references.is_empty());
    let rows = store.image_summaries().unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].reference.is_none());
}

#[test]
fn loads_oci_archives_plain_gzip_and_nested() {
    for (gzip, nested) in [(false, false), (true, false), (true, true)] {
        let (_dir, store) = store();
        let image = two_layer_image(&["app:v1"]);
        let archive = oci_archive(std::slice::from_ref(&image), gzip, nested);
        let loaded = store.load(&mut &archive[..]).unwrap();
        assert_eq!(loaded.len(), 1, "gzip={gzip} nested={nested}");
        assert_eq!(loaded[0].references[0].familiar(), "app:v1");
        let got = store.image("app:v1").unwrap();
        assert_eq!(got.id, image.id());
        assert_eq!(got.config().cmd, Some(vec!["sh".to_owned()]));
        // config + 2 layers + manifest: the nested index is collected.
        assert_eq!(blob_count(&store), 4, "gzip={gzip} nested={nested}");
    }
}

#[test]
fn loads_compressed_archives() {
    let (_dir, store) = store();
    let archive = docker_save(&[two_layer_image(&["zipped:1"])]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&archive).unwrap();
    let gz = gz.finish().unwrap();
    let loaded = store.load(&mut &gz[..]).unwrap();
    assert_eq!(loaded[0].references[0].familiar(), "zipped:1");
}

#[test]
fn an_oci_entry_with_only_a_tag_loads_untagged() {
    let (_dir, store) = store();
    let image = two_layer_image(&[]);
    let archive = oci_archive(std::slice::from_ref(&image), false, false);
    let loaded = store.load(&mut &archive[..]).unwrap();
    assert!(loaded[0].references.is_empty());
    assert_eq!(store.image(image.id().short()).unwrap().id, image.id());
}

#[test]
fn a_blob_that_does_not_match_its_name_is_refused() {
    let (_dir, store) = store();
    let mut files = Vec::new();
    let mut b = tar::Builder::new(&mut files);
    let fake = Digest::of(b"claimed");
    crate::testing::append_file(
        &mut b,
        &format!("blobs/sha256/{}", fake.hex()),
        0o644,
        b"actual",
    )
    .unwrap();
    b.into_inner().unwrap();
    let err = store.load(&mut &files[..]).unwrap_err();
    assert!(matches!(err, crate::Error::DigestMismatch { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(store.references().unwrap().is_empty());
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_refused() {
    let (_dir, store) = store();
    let mut image = two_layer_image(&["bad:1"]);
    let config = image.config_bytes();
    // Swap the layers after the config named them (config_bytes() would
    // recompute diff_ids, so the archive is built by hand).
    image.layers.swap(0, 1);
    let mut b = tar::Builder::new(Vec::new());
    let name = format!("{}.json", Digest::of(&config).hex());
    crate::testing::append_file(&mut b, &name, 0o644, &config).unwrap();
    crate::testing::append_file(&mut b, "l0/layer.tar", 0o644, &image.layers[0]).unwrap();
    crate::testing::append_file(&mut b, "l1/layer.tar", 0o644, &image.layers[1]).unwrap();
    let manifest = json!([{"Config": name, "RepoTags": ["bad:1"], "Layers": ["l0/layer.tar", "l1/layer.tar"]}]);
    crate::testing::append_file(
        &mut b,
        "manifest.json",
        0o644,
        manifest.to_string().as_bytes(),
    )
    .unwrap();
    let archive = b.into_inner().unwrap();
    let err = store.load(&mut &archive[..]).unwrap_err();
    assert!(matches!(err, crate::Error::DigestMismatch { .. }), "{err}");
    assert!(store.references().unwrap().is_empty());
}

#[test]
fn refuses_what_is_not_an_image_archive() {
    let (_dir, store) = store();
    let archive = tar_of(&[("hello.txt", b"hi")]);
    let err = store.load(&mut &archive[..]).unwrap_err();
    assert!(matches!(err, crate::Error::InvalidArchive(_)), "{err}");
    let err = store.load(&mut &b"not a tar"[..]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
}

#[test]
fn an_index_without_the_host_platform_is_not_found() {
    let (_dir, store) = store();
    let plain = oci_archive(&[two_layer_image(&["other:1"])], false, false);
    // Re-wrap the one manifest in a nested index that offers only s390x.
    let mut out = tar::Builder::new(Vec::new());
    let mut manifest_desc = serde_json::Value::Null;
    for entry in tar::Archive::new(&plain[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if path == "index.json" {
            let index: serde_json::Value = serde_json::from_slice(&data).unwrap();
            manifest_desc = index["manifests"][0].clone();
            continue;
        }
        crate::testing::append_file(&mut out, &path, 0o644, &data).unwrap();
    }
    manifest_desc["platform"] = json!({"architecture": "s390x", "os": "linux"});
    manifest_desc.as_object_mut().unwrap().remove("annotations");
    let nested = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [manifest_desc]})
    .to_string();
    let nested_digest = Digest::of(nested.as_bytes());
    crate::testing::append_file(
        &mut out,
        &format!("blobs/sha256/{}", nested_digest.hex()),
        0o644,
        nested.as_bytes(),
    )
    .unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": nested_digest.to_string(), "size": nested.len(),
        "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/other:1"}}]});
    crate::testing::append_file(&mut out, "index.json", 0o644, index.to_string().as_bytes())
        .unwrap();
    let archive = out.into_inner().unwrap();
    let err = store.load(&mut &archive[..]).unwrap_err();
    assert!(matches!(err, crate::Error::NoMatchingPlatform(_)), "{err}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn loads_a_docker_25_archive_by_its_manifest_json() {
    // Docker 25+ writes an OCI layout *and* manifest.json; RepoTags come
    // from the latter.
    let image = two_layer_image(&["new:25"]);
    let config = image.config_bytes();
    let mut b = tar::Builder::new(Vec::new());
    let blob = |b: &mut tar::Builder<Vec<u8>>, bytes: &[u8]| {
        let path = format!("blobs/sha256/{}", Digest::of(bytes).hex());
        crate::testing::append_file(b, &path, 0o644, bytes).unwrap();
        path
    };
    let config_path = blob(&mut b, &config);
    let layers: Vec<String> = image.layers.iter().map(|l| blob(&mut b, l)).collect();
    let manifest = json!([{"Config": config_path, "RepoTags": ["new:25"], "Layers": layers}]);
    crate::testing::append_file(
        &mut b,
        "manifest.json",
        0o644,
        manifest.to_string().as_bytes(),
    )
    .unwrap();
    crate::testing::append_file(
        &mut b,
        "index.json",
        0o644,
        br#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    crate::testing::append_file(
        &mut b,
        "oci-layout",
        0o644,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = b.into_inner().unwrap();
    let (_dir, store) = store();
    let loaded = store.load(&mut &archive[..]).unwrap();
    assert_eq!(loaded[0].references[0].familiar(), "new:25");
    assert_eq!(loaded[0].image.id, image.id());
}
