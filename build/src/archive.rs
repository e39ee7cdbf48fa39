//! ADD of a local archive: tar, plain or gzip/zstd-compressed (detected
//! from the content, not the name, as Docker does), unpacked into the
//! destination directory with the archive's owners and modes. Entries that
//! would land outside the destination (`..`, through symlinks) are refused
//! by the tar crate's `unpack`, which checks each parent after creating it.
//! bzip2 is decoded as a stream, xz into a temp file first (lzma-rs has no
//! reader API), both in pure Rust.

use std::fs::File;
use std::io::Read;
use std::path::Path;

const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

fn head(path: &Path) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    buf.truncate(n);
    buf
}

/// Whether ADD unpacks this file: a tar (the `ustar` magic at 257), or a
/// compressed stream.
pub fn is_archive(path: &Path) -> bool {
    let h = head(path);
    if h.starts_with(&[0x1f, 0x8b])
        || h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || h.starts_with(BZIP2_MAGIC)
        || h.starts_with(XZ_MAGIC)
    {
        return true;
    }
    h.get(257..262) == Some(b"ustar")
}

pub fn extract(path: &Path, target: &Path) -> Result<(), String> {
    let h = head(path);
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let stream: Box<dyn Read> = if h.starts_with(BZIP2_MAGIC) {
        Box::new(bzip2_rs::DecoderReader::new(file))
    } else if h.starts_with(XZ_MAGIC) {
        let mut tmp = tempfile::tempfile().map_err(|e| bad(&e))?;
        lzma_rs::xz_decompress(&mut std::io::BufReader::new(file), &mut tmp)
            .map_err(|e| bad(&e))?;
        std::io::Seek::rewind(&mut tmp).map_err(|e| bad(&e))?;
        Box::new(tmp)
    } else {
        berth_image::compress::decompress(file)
            .map_err(|e| bad(&e))?
            .1
    };
    let mut archive = tar::Archive::new(stream);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive
        .unpack(target)
        .map_err(|e| format!("cannot unpack {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn detects_and_unpacks_gzip_tars() {
        let d = tempfile::tempdir().unwrap();
        let tar_bytes = berth_image::testing::tar_of(&[("dir/f.txt", b"hello")]);
        let mut gz = flate2_like_gzip(&tar_bytes);
        let p = d.path().join("a.tgz");
        std::fs::write(&p, &mut gz).unwrap();
        assert!(is_archive(&p));
        let txt = d.path().join("plain.txt");
        std::fs::write(&txt, "not an archive").unwrap();
        assert!(!is_archive(&txt));
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        extract(&p, &out).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("dir/f.txt")).unwrap(),
            "hello"
        );
    }

    /// A gzip stream without pulling flate2 into this crate's deps: the
    /// store's layer writer compresses with gzip.
    fn flate2_like_gzip(data: &[u8]) -> Vec<u8> {
        let d = tempfile::tempdir().unwrap();
        let store = berth_image::Store::open(d.path()).unwrap();
        let layer = store.write_layer(&mut |w| w.write_all(data)).unwrap();
        store.read_blob(&layer.blob).unwrap()
    }
}
