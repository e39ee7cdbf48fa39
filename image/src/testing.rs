//! Test images without a registry (feature `test-support`): a busybox
//! rootfs from the host's `busybox-static`, tars from literal files, and
//! `docker save` and OCI-layout archives built in memory.
//!
//! Everything is deterministic (sorted entries, fixed mtime, uid/gid 0),
//! so two builds of one input have one digest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::digest::Digest;
use crate::platform;

/// The mtime of every generated entry (2023-11-14).
pub const MTIME: u64 = 1_700_000_000;

/// The host's static busybox, if installed (Debian `busybox-static`).
pub fn host_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// A busybox root filesystem as an uncompressed tar: `bin/busybox`, a
/// symlink in `bin/` per applet (`busybox --list`), `etc/passwd` and
/// `etc/group` with root and nobody, `tmp` (1777), `root`, `proc`, `sys`,
/// `dev`.
pub fn busybox_rootfs_tar(busybox: &Path, out: impl Write) -> io::Result<()> {
    let list = Command::new(busybox).arg("--list").output()?;
    if !list.status.success() {
        return Err(io::Error::other(format!(
            "{} --list failed",
            busybox.display()
        )));
    }
    let mut applets: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_owned)
        .collect();
    applets.sort();
    applets.dedup();
    let binary = std::fs::read(busybox)?;
    let mut b = tar::Builder::new(out);
    for (dir, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sys", 0o555),
        ("tmp", 0o1777),
    ] {
        append_dir(&mut b, dir, mode)?;
    }
    append_file(&mut b, "bin/busybox", 0o755, &binary)?;
    for applet in &applets {
        append_symlink(&mut b, &format!("bin/{applet}"), "busybox")?;
    }
    append_file(&mut b, "etc/group", 0o644, b"root:x:0:\nnobody:x:65534:\n")?;
    append_file(
        &mut b,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    b.into_inner()?.flush()
}

/// A tar of regular files (parents implied), in the order given.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        append_file(&mut b, path, 0o644, data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn append_dir<W: Write>(b: &mut tar::Builder<W>, path: &str, mode: u32) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, mode, 0);
    b.append_data(&mut h, format!("{path}/"), io::empty())
}

pub fn append_file<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    data: &[u8],
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
    b.append_data(&mut h, path, data)
}

pub fn append_symlink<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    target: &str,
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, path, target)
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// An image to put in a test archive.
#[derive(Debug, Clone)]
pub struct TestImage {
    /// The config; `rootfs` is filled in from the layers.
    pub config: Value,
    /// Uncompressed layer tars, lowest first.
    pub layers: Vec<Vec<u8>>,
    /// `RepoTags` / ref names, familiar or full.
    pub tags: Vec<String>,
}

impl TestImage {
    /// A host-platform image with `Env` PATH and `Cmd ["sh"]`, like the
    /// official busybox image.
    pub fn new(layers: Vec<Vec<u8>>, tags: &[&str]) -> Self {
        Self {
            config: json!({
                "architecture": platform::host_arch(),
                "os": "linux",
                "created": "2024-01-01T00:00:00Z",
                "config": {
                    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    "Cmd": ["sh"],
                },
            }),
            layers,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    /// The config blob bytes with `rootfs.diff_ids` set.
    pub fn config_bytes(&self) -> Vec<u8> {
        let mut config = self.config.clone();
        let diff_ids: Vec<String> = self
            .layers
            .iter()
            .map(|l| Digest::of(l).to_string())
            .collect();
        config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
        serde_json::to_vec(&config).unwrap()
    }

    /// The image ID the store will give it.
    pub fn id(&self) -> Digest {
        Digest::of(&self.config_bytes())
    }
}

/// A classic `docker save` archive: `<hex>.json` configs,
/// `<layer-id>/layer.tar`, `manifest.json`, `repositories`.
pub fn docker_save(images: &[TestImage]) -> Vec<u8> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut manifest = Vec::new();
    for image in images {
        let config = image.config_bytes();
        let config_name = format!("{}.json", Digest::of(&config).hex());
        let mut layer_paths = Vec::new();
        for layer in &image.layers {
            let dir = Digest::of(layer).hex().to_owned();
            files.insert(format!("{dir}/VERSION"), b"1.0".to_vec());
            files.insert(format!("{dir}/json"), b"{}".to_vec());
            files.insert(format!("{dir}/layer.tar"), layer.clone());
            layer_paths.push(format!("{dir}/layer.tar"));
        }
        files.insert(config_name.clone(), config);
        manifest
            .push(json!({"Config": config_name, "RepoTags": image.tags, "Layers": layer_paths}));
    }
    files.insert(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    );
    files.insert("repositories".into(), b"{}".to_vec());
    archive(files)
}

/// An OCI image-layout archive. With `gzip`, layers are stored gzipped;
/// with `nested`, each image sits in a nested index beside an entry for
/// another architecture, as multi-platform images do.
pub fn oci_archive(images: &[TestImage], gzip: bool, nested: bool) -> Vec<u8> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let blob = |files: &mut BTreeMap<String, Vec<u8>>, bytes: Vec<u8>| {
        let d = Digest::of(&bytes);
        let size = bytes.len();
        files.insert(format!("blobs/sha256/{}", d.hex()), bytes);
        (d.to_string(), size)
    };
    let mut entries = Vec::new();
    for image in images {
        let (config_digest, config_size) = blob(&mut files, image.config_bytes());
        let mut layers = Vec::new();
        for layer in &image.layers {
            let (bytes, media_type) = if gzip {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(layer).unwrap();
                (
                    gz.finish().unwrap(),
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                )
            } else {
                (layer.clone(), "application/vnd.oci.image.layer.v1.tar")
            };
            let (d, s) = blob(&mut files, bytes);
            layers.push(json!({"mediaType": media_type, "digest": d, "size": s}));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": layers,
        });
        let (md, ms) = blob(&mut files, serde_json::to_vec(&manifest).unwrap());
        let mut top = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms});
        if nested {
            let other = if platform::host_arch() == "arm64" {
                "amd64"
            } else {
                "arm64"
            };
            let index = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                     "platform": {"architecture": other, "os": "linux"}},
                    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                     "platform": {"architecture": platform::host_arch(), "os": "linux"}},
                ],
            });
            let (id, is) = blob(&mut files, serde_json::to_vec(&index).unwrap());
            top = json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": id, "size": is});
        }
        for tag in &image.tags {
            let mut entry = top.clone();
            let full = crate::Reference::parse(tag).unwrap().to_string();
            entry["annotations"] = json!({"org.opencontainers.image.ref.name": full});
            entries.push(entry);
        }
        if image.tags.is_empty() {
            entries.push(top);
        }
    }
    files.insert(
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": entries})).unwrap(),
    );
    files.insert(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    archive(files)
}

fn archive(files: BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        append_file(&mut b, &path, 0o644, &data).unwrap();
    }
    b.into_inner().unwrap()
}
