//! Import, list, tag, remove and collect, against temp-dir stores.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::ErrorKind;
use crate::import::ImportOptions;
use crate::reference::Reference;
use crate::testing::tar_of;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn opts(reference: &str) -> ImportOptions {
    ImportOptions {
        reference: Some(Reference::parse(reference).unwrap()),
        created: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        ..ImportOptions::default()
    }
}

fn rootfs() -> Vec<u8> {
    tar_of(&[("etc/hostname", b"box\n"), ("bin/sh", b"#!fake\n")])
}

fn blob_count(store: &Store) -> usize {
    store.list_blobs().unwrap().len()
}

#[test]
fn import_makes_a_one_layer_image() {
    let (_dir, store) = store();
    let tar = rootfs();
    let image = store.import(&mut &tar[..], &opts("busybox")).unwrap();
    assert_eq!(image.layers().len(), 1);
    // Stored as given: the layer blob is the tar itself, so its digest is
    // the diff ID.
    assert_eq!(image.diff_ids(), &[Digest::of(&tar)]);
    assert_eq!(
        image.layers()[0].media_type(),
        &oci_spec::image::MediaType::ImageLayer
    );
    assert_eq!(image.config_file.os, "linux");
    assert_eq!(image.config_file.architecture, crate::platform::host_arch());
    assert_eq!(
        image.config_file.history[0].comment.as_deref(),
        Some("Imported from -")
    );
    assert_eq!(
        image.created(),
        Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    );
    assert_eq!(image.references[0].familiar(), "busybox:latest");
    // 3 blobs: layer, config, manifest.
    assert_eq!(blob_count(&store), 3);
    let found = store.image("busybox:latest").unwrap();
    assert_eq!(found.id, image.id);
    assert_eq!(store.image(image.id.short()).unwrap().id, image.id);
    assert_eq!(store.image(&image.id.to_string()).unwrap().id, image.id);
    assert_eq!(
        image.size,
        tar.len() as u64 + image.manifest.config().size()
    );
}

#[test]
fn import_keeps_compressed_input_compressed() {
    let (_dir, store) = store();
    let tar = rootfs();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let mut options = opts("app:gz");
    options.message = Some("hello".into());
    let image = store.import(&mut &gz[..], &options).unwrap();
    assert_eq!(image.diff_ids(), &[Digest::of(&tar)]);
    assert_eq!(
        Digest::from_oci(image.layers()[0].digest()).unwrap(),
        Digest::of(&gz)
    );
    assert_eq!(
        image.layers()[0].media_type(),
        &oci_spec::image::MediaType::ImageLayerGzip
    );
    assert_eq!(
        image.config_file.history[0].comment.as_deref(),
        Some("hello")
    );
}

#[test]
fn import_refuses_what_is_not_a_tar() {
    let (_dir, store) = store();
    for bad in [&b""[..], b"just some text that is not a tar archive at all"] {
        let err = store.import(&mut &bad[..], &opts("x")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    }
    assert!(store.references().unwrap().is_empty());
}

#[test]
fn tag_and_rmi_collect_garbage() {
    let (_dir, store) = store();
    let image = store.import(&mut &rootfs()[..], &opts("busybox")).unwrap();
    let tagged = store
        .tag(
            "busybox",
            &Reference::parse("localhost:5000/box:1").unwrap(),
        )
        .unwrap();
    assert_eq!(tagged.id, image.id);
    assert_eq!(tagged.references.len(), 2);
    assert_eq!(store.image_summaries().unwrap().len(), 2);
    // Fake a snapshot so GC has one to keep, then one to drop.
    let chain = crate::digest::chain_ids(image.diff_ids())[0].clone();
    fs::create_dir_all(store.snapshot_path(&chain)).unwrap();

    let never = |_: &Digest| false;
    let removed = store.remove("busybox", false, &never).unwrap();
    assert_eq!(removed.untagged.len(), 1);
    assert!(
        removed.deleted.is_empty(),
        "still tagged localhost:5000/box:1"
    );
    assert_eq!(blob_count(&store), 3);
    assert!(store.snapshot_path(&chain).is_dir());

    let removed = store.remove("localhost:5000/box:1", false, &never).unwrap();
    assert_eq!(removed.deleted, vec![image.id.clone()]);
    assert_eq!(removed.collected.blobs, 3);
    assert_eq!(removed.collected.snapshots, 1);
    assert_eq!(blob_count(&store), 0);
    assert!(!store.snapshot_path(&chain).exists());
    assert_eq!(
        store.image("busybox").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.remove("busybox", false, &never).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn rmi_by_id_needs_force_for_several_tags() {
    let (_dir, store) = store();
    let image = store.import(&mut &rootfs()[..], &opts("a")).unwrap();
    store.tag("a", &Reference::parse("b").unwrap()).unwrap();
    let never = |_: &Digest| false;
    let err = store.remove(image.id.short(), false, &never).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let removed = store.remove(image.id.short(), true, &never).unwrap();
    assert_eq!(removed.untagged.len(), 2);
    assert_eq!(removed.deleted, vec![image.id]);
    assert_eq!(blob_count(&store), 0);
}

#[test]
fn an_image_in_use_is_kept() {
    let (_dir, store) = store();
    let image = store.import(&mut &rootfs()[..], &opts("busybox")).unwrap();
    let id = image.id.clone();
    let in_use = move |d: &Digest| d == &id;
    let err = store.remove("busybox", false, &in_use).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse);
    assert_eq!(store.references().unwrap().len(), 1);
    // Forced: untagged, but the image and its blobs stay.
    let removed = store.remove("busybox", true, &in_use).unwrap();
    assert_eq!(removed.untagged.len(), 1);
    assert!(removed.deleted.is_empty());
    assert_eq!(blob_count(&store), 3);
    let rows = store.image_summaries().unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].reference.is_none());
    // Once unused, it can go by ID.
    let removed = store
        .remove(image.id.short(), false, &|_: &Digest| false)
        .unwrap();
    assert_eq!(removed.deleted, vec![image.id]);
    assert_eq!(blob_count(&store), 0);
}

#[test]
fn reimporting_under_a_tag_leaves_the_old_image_untagged() {
    let (_dir, store) = store();
    let first = store.import(&mut &rootfs()[..], &opts("app")).unwrap();
    let other = tar_of(&[("x", b"2")]);
    let second = store.import(&mut &other[..], &opts("app")).unwrap();
    assert_ne!(first.id, second.id);
    let rows = store.image_summaries().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(store.image("app").unwrap().id, second.id);
    assert!(
        rows.iter()
            .any(|r| r.reference.is_none() && r.image.id == first.id)
    );
}

#[test]
fn gc_clears_leftovers() {
    let (_dir, store) = store();
    store.write_blob_bytes(b"orphan").unwrap();
    fs::write(store.tmp_dir().join(".blob-crashed"), b"half").unwrap();
    let collected = store.gc().unwrap();
    assert_eq!(collected.blobs, 1);
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn concurrent_imports_of_one_image_agree() {
    let (_dir, store) = store();
    let tar = rootfs();
    let ids: Vec<Digest> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                let tar = tar.clone();
                s.spawn(move || store.import(&mut &tar[..], &opts("busybox")).unwrap().id)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 1);
    assert_eq!(store.read_index().unwrap().len(), 1);
    assert_eq!(blob_count(&store), 3);
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn concurrent_imports_and_gc_never_lose_a_referenced_blob() {
    let (_dir, store) = store();
    std::thread::scope(|s| {
        for i in 0..4u8 {
            let store = store.clone();
            s.spawn(move || {
                for j in 0..5u8 {
                    let tar = tar_of(&[("f", &[i, j])]);
                    store
                        .import(&mut &tar[..], &opts(&format!("img{i}:{j}")))
                        .unwrap();
                }
            });
        }
        let store = store.clone();
        s.spawn(move || {
            for _ in 0..10 {
                store.gc().unwrap();
            }
        });
    });
    let images = store.images().unwrap();
    assert_eq!(images.len(), 20);
    for image in images {
        assert!(store.has_blob(&image.id));
        for layer in image.layers() {
            assert!(store.has_blob(&Digest::from_oci(layer.digest()).unwrap()));
        }
    }
}

#[cfg(feature = "zstd")]
#[test]
fn import_takes_zstd_tarballs() {
    let (_dir, store) = store();
    let tar = rootfs();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let image = store.import(&mut &zst[..], &opts("z:1")).unwrap();
    assert_eq!(
        image.layers()[0].media_type(),
        &oci_spec::image::MediaType::ImageLayerZstd
    );
    assert_eq!(image.diff_ids(), &[Digest::of(&tar)]);
    let dirs = store
        .prepare_rootfs_with(
            &image,
            &crate::UnpackOptions {
                preserve_ownership: false,
                privileged: false,
            },
        )
        .unwrap();
    assert_eq!(fs::read(dirs[0].join("etc/hostname")).unwrap(), b"box\n");
}
