//! Snapshots: unpacking once, in order, verified; tar-slip refusals;
//! privileged cases (whiteouts, devices, ownership) when root.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tar::{EntryType, Header};

use super::unpack::{UnpackOptions, unpack};
use super::*;
use crate::testing::{TestImage, append_dir, append_file, append_symlink, oci_archive, tar_of};
use crate::{Error, ErrorKind, ImportOptions, Reference};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn unprivileged() -> UnpackOptions {
    UnpackOptions {
        preserve_ownership: false,
        privileged: false,
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A tar entry written with raw header bytes, so names the tar crate's
/// safe setters refuse (`../x`, `/abs`) can be built.
fn raw(b: &mut tar::Builder<Vec<u8>>, kind: EntryType, name: &str, link: &str, data: &[u8]) {
    let mut h = Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn unpack_tar(tar: &[u8], root: &Path, options: &UnpackOptions) -> crate::Result<()> {
    unpack(&mut &tar[..], root, options).map(drop)
}

#[test]
fn prepare_rootfs_unpacks_each_layer_once_lowest_first() {
    let (_dir, store) = store();
    let image = TestImage::new(
        vec![
            tar_of(&[("etc/os-release", b"base"), ("bin/sh", b"sh")]),
            tar_of(&[("etc/os-release", b"top")]),
        ],
        &["two:1"],
    );
    let archive = oci_archive(&[image], true, false);
    store.load(&mut &archive[..]).unwrap();
    let image = store.image("two:1").unwrap();
    let dirs = store.prepare_rootfs(&image).unwrap();
    assert_eq!(dirs.len(), 2);
    let chains = crate::digest::chain_ids(image.diff_ids());
    assert_eq!(dirs[0], store.snapshot_path(&chains[0]));
    assert_eq!(dirs[1], store.snapshot_path(&chains[1]));
    assert_eq!(fs::read(dirs[0].join("etc/os-release")).unwrap(), b"base");
    assert_eq!(fs::read(dirs[1].join("etc/os-release")).unwrap(), b"top");
    assert!(
        !dirs[1].join("bin").exists(),
        "a snapshot holds only its own layer"
    );
    let lower = overlay_lowerdir(&dirs);
    assert_eq!(
        lower.to_str().unwrap(),
        format!("{}:{}", dirs[1].display(), dirs[0].display())
    );
    // A second call unpacks nothing: a marker left in the snapshot stays.
    fs::write(dirs[0].join("marker"), b"").unwrap();
    assert_eq!(store.prepare_rootfs(&image).unwrap(), dirs);
    assert!(dirs[0].join("marker").exists());
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn concurrent_callers_unpack_once() {
    let (_dir, store) = store();
    let tar = tar_of(&[("a", b"1"), ("b/c", b"2")]);
    let options = ImportOptions {
        reference: Some(Reference::parse("c").unwrap()),
        ..ImportOptions::default()
    };
    let image = store.import(&mut &tar[..], &options).unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| store.prepare_rootfs_with(&image, &unprivileged()).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(fs::read(results[0][0].join("b/c")).unwrap(), b"2");
    assert_eq!(fs::read_dir(store.snapshots_dir()).unwrap().count(), 1);
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_leaves_no_snapshot() {
    let (_dir, store) = store();
    let tar = tar_of(&[("a", b"1")]);
    let image = store
        .import(&mut &tar[..], &ImportOptions::default())
        .unwrap();
    // Corrupt the blob on disk behind the store's back.
    let blob = crate::Digest::from_oci(image.layers()[0].digest()).unwrap();
    let path = store.blob_path(&blob);
    let mut perms = fs::metadata(&path).unwrap().permissions();
    perms.set_mode(0o644);
    fs::set_permissions(&path, perms).unwrap();
    fs::write(&path, tar_of(&[("a", b"2")])).unwrap();
    let err = store
        .prepare_rootfs_with(&image, &unprivileged())
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_eq!(fs::read_dir(store.snapshots_dir()).unwrap().count(), 0);
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn unpacks_links_modes_and_mtimes() {
    let mut b = tar::Builder::new(Vec::new());
    append_dir(&mut b, "usr", 0o755).unwrap();
    append_dir(&mut b, "usr/lib", 0o755).unwrap();
    append_symlink(&mut b, "lib", "usr/lib").unwrap();
    // Written through an in-layer relative symlink: lands in usr/lib.
    append_file(&mut b, "lib/libc.so", 0o755, b"elf").unwrap();
    raw(
        &mut b,
        EntryType::Link,
        "usr/lib/libc.so.6",
        "usr/lib/libc.so",
        b"",
    );
    append_dir(&mut b, "ro", 0o555).unwrap();
    append_file(&mut b, "ro/inside", 0o600, b"x").unwrap();
    append_symlink(&mut b, "passwd", "/etc/passwd").unwrap();
    // A file replacing a symlink replaces it, never writes through it.
    append_file(&mut b, "passwd", 0o644, b"mine").unwrap();
    let tar = b.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    unpack_tar(&tar, root, &unprivileged()).unwrap();
    assert_eq!(fs::read(root.join("usr/lib/libc.so")).unwrap(), b"elf");
    let a = fs::metadata(root.join("usr/lib/libc.so")).unwrap();
    let b = fs::metadata(root.join("usr/lib/libc.so.6")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard link shares the inode");
    assert_eq!(a.mode() & 0o7777, 0o755);
    assert_eq!(a.mtime(), crate::testing::MTIME as i64);
    assert_eq!(
        fs::read_link(root.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    let ro = fs::metadata(root.join("ro")).unwrap();
    assert_eq!(ro.mode() & 0o7777, 0o555);
    assert_eq!(
        ro.mtime(),
        crate::testing::MTIME as i64,
        "dir mtime set last"
    );
    assert!(
        !fs::symlink_metadata(root.join("passwd"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(root.join("passwd")).unwrap(), b"mine");
    fs::set_permissions(root.join("ro"), fs::Permissions::from_mode(0o755)).unwrap();
}

/// Each evil tar must be refused with an error naming the entry, and
/// write nothing outside the root.
#[test]
fn refuses_tar_slip() {
    type Build = fn(&mut tar::Builder<Vec<u8>>);
    let cases: &[(&str, &str, Build)] = &[
        ("dot-dot path", "../evil", |b| {
            raw(b, EntryType::Regular, "../evil", "", b"x")
        }),
        ("dot-dot inside", "a/../../evil", |b| {
            raw(b, EntryType::Regular, "a/../../evil", "", b"x")
        }),
        ("absolute dot-dot", "/../evil", |b| {
            raw(b, EntryType::Regular, "/../evil", "", b"x")
        }),
        ("write through absolute symlink", "evil/passwd", |b| {
            raw(b, EntryType::Symlink, "evil", "/etc", b"");
            raw(b, EntryType::Regular, "evil/passwd", "", b"owned");
        }),
        ("write through climbing symlink", "up/x", |b| {
            raw(b, EntryType::Symlink, "up", "../../../../..", b"");
            raw(b, EntryType::Regular, "up/x", "", b"owned");
        }),
        ("symlink chain out", "b/x", |b| {
            raw(b, EntryType::Symlink, "a", "/tmp", b"");
            raw(b, EntryType::Symlink, "b", "a", b"");
            raw(b, EntryType::Regular, "b/x", "", b"owned");
        }),
        ("directory through symlink", "evil/sub/", |b| {
            raw(b, EntryType::Symlink, "evil", "/", b"");
            raw(b, EntryType::Directory, "evil/sub/", "", b"");
        }),
        ("hard link out", "link", |b| {
            raw(b, EntryType::Link, "link", "../../../etc/passwd", b"")
        }),
        ("hard link through symlink", "link", |b| {
            raw(b, EntryType::Symlink, "etc", "/etc", b"");
            raw(b, EntryType::Link, "link", "etc/passwd", b"");
        }),
        ("whiteout through symlink", "evil/.wh.passwd", |b| {
            raw(b, EntryType::Symlink, "evil", "/etc", b"");
            raw(b, EntryType::Regular, "evil/.wh.passwd", "", b"");
        }),
    ];
    for (what, entry, build) in cases {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let tar = b.into_inner().unwrap();
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("a/b/c/root");
        fs::create_dir_all(&root).unwrap();
        let options = UnpackOptions::for_current_user();
        let err = unpack_tar(&tar, &root, &options).unwrap_err();
        match &err {
            Error::UnsafeEntry { entry: named, .. } => assert_eq!(named, entry, "{what}: {err}"),
            other => panic!("{what}: expected UnsafeEntry, got {other}"),
        }
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(err.to_string().contains(entry), "{what}: {err}");
        // Nothing escaped into the dirs above the root.
        for up in ["a/b/c/evil", "a/b/evil", "a/evil", "evil", "a/b/c/x", "x"] {
            assert!(!outer.path().join(up).exists(), "{what}: {up} was written");
        }
    }
}

#[test]
fn whiteouts_need_root() {
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, EntryType::Regular, "etc/.wh.motd", "", b"");
    let tar = b.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = unpack_tar(&tar, dir.path(), &unprivileged()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
}

#[test]
fn privileged_whiteouts_devices_and_ownership() {
    if !is_root() {
        println!("skipped: needs root (mknod, chown, trusted.* xattrs)");
        return;
    }
    let mut b = tar::Builder::new(Vec::new());
    append_dir(&mut b, "etc", 0o755).unwrap();
    raw(&mut b, EntryType::Regular, "etc/.wh.motd", "", b"");
    append_dir(&mut b, "var/cache", 0o755).unwrap();
    raw(
        &mut b,
        EntryType::Regular,
        "var/cache/.wh..wh..opq",
        "",
        b"",
    );
    raw(&mut b, EntryType::Regular, "var/.wh..wh.plnk", "", b"");
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Char);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_mode(0o666);
    h.set_size(0);
    b.append_data(&mut h, "dev/null", std::io::empty()).unwrap();
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o4755);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_size(2);
    b.append_data(&mut h, "bin/suid", &b"#!"[..]).unwrap();
    // A PAX xattr on a file.
    b.append_pax_extensions([("SCHILY.xattr.user.berth", &b"yes"[..])])
        .unwrap();
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(0);
    b.append_data(&mut h, "with-xattr", std::io::empty())
        .unwrap();
    let tar = b.into_inner().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let stats = unpack(&mut &tar[..], root, &UnpackOptions::for_current_user()).unwrap();
    assert_eq!(stats.whiteouts, 2);
    let wh = fs::symlink_metadata(root.join("etc/motd")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &wh.file_type()
    ));
    assert_eq!(wh.rdev(), 0, "overlay whiteout is 0/0");
    assert_eq!(
        xattr::get(root.join("var/cache"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    assert!(!root.join("var/.wh..wh.plnk").exists());
    let null = fs::symlink_metadata(root.join("dev/null")).unwrap();
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(null.mode() & 0o777, 0o666);
    let suid = fs::metadata(root.join("bin/suid")).unwrap();
    assert_eq!((suid.uid(), suid.gid()), (1000, 1001));
    assert_eq!(suid.mode() & 0o7777, 0o4755, "set-uid survives chown");
    // user.* xattrs need a filesystem that has them (tmpfs before 6.6 did not).
    match xattr::get(root.join("with-xattr"), "user.berth") {
        Ok(v) => assert_eq!(v, Some(b"yes".to_vec())),
        Err(e) => println!("note: user xattrs unsupported here: {e}"),
    }
}

#[test]
fn privileged_prepare_rootfs_of_busybox() {
    if !is_root() {
        println!("skipped: needs root (ownership of the busybox rootfs)");
        return;
    }
    let Some(busybox) = crate::testing::host_busybox() else {
        println!("skipped: needs /bin/busybox (apt-get install busybox-static)");
        return;
    };
    let (_dir, store) = store();
    let mut tar = Vec::new();
    crate::testing::busybox_rootfs_tar(&busybox, &mut tar).unwrap();
    let options = ImportOptions {
        reference: Some(Reference::parse("busybox").unwrap()),
        ..ImportOptions::default()
    };
    let image = store.import(&mut &tar[..], &options).unwrap();
    let dirs = store.prepare_rootfs(&image).unwrap();
    let fs_dir = &dirs[0];
    assert!(fs_dir.join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(fs_dir.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::metadata(fs_dir.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    assert!(
        fs::read_to_string(fs_dir.join("etc/passwd"))
            .unwrap()
            .contains("nobody")
    );
}

/// Unmounts on drop, so a failed assertion leaves no mount behind.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0).status();
    }
}

/// The kernel agrees with our whiteouts: the snapshots, mounted as
/// overlayfs lower dirs in the order `overlay_lowerdir` gives, hide what
/// the upper layer deleted.
#[test]
fn privileged_overlay_mount_honours_whiteouts() {
    if !is_root() {
        println!("skipped: needs root (mknod whiteouts, mount -t overlay)");
        return;
    }
    let base = tar_of(&[
        ("etc/motd", b"hi"),
        ("keep", b"k"),
        ("var/cache/a", b"1"),
        ("var/cache/b", b"2"),
    ]);
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, EntryType::Regular, "etc/.wh.motd", "", b"");
    raw(
        &mut b,
        EntryType::Regular,
        "var/cache/.wh..wh..opq",
        "",
        b"",
    );
    append_file(&mut b, "var/cache/c", 0o644, b"3").unwrap();
    let top = b.into_inner().unwrap();
    let (dir, store) = store();
    let archive = oci_archive(&[TestImage::new(vec![base, top], &["wh:1"])], false, false);
    store.load(&mut &archive[..]).unwrap();
    let image = store.image("wh:1").unwrap();
    let lower = overlay_lowerdir(&store.prepare_rootfs(&image).unwrap());
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mut opts = std::ffi::OsString::from("lowerdir=");
    opts.push(&lower);
    let status = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(&opts)
        .arg(&mnt)
        .status()
        .unwrap();
    if !status.success() {
        println!("skipped: mount -t overlay failed here ({status})");
        return;
    }
    let _mounted = Mounted(&mnt);
    assert!(!mnt.join("etc/motd").exists(), "whiteout hides the file");
    assert!(mnt.join("etc").is_dir());
    assert_eq!(fs::read(mnt.join("keep")).unwrap(), b"k");
    let mut cache: Vec<_> = fs::read_dir(mnt.join("var/cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    cache.sort();
    assert_eq!(cache, ["c"], "opaque dir hides the lower layer's entries");
}
