//! Compose's configs and secrets as [`Mount::File`]: each one copied into
//! the container's folder at create time (`files/<n>`), owned and moded as
//! declared, and bound read-only at its target by the rootfs setup.
//!
//! Why a copy: the container must see the owner and mode the project
//! declares (a secret readable only by uid 1000, mode 0400) without berth
//! ever changing the source file on the host, and an inline `content:`
//! must reach the container without being written into `config.json`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use crate::config::Mount;
use crate::error::{Error, Result};
use crate::state::ContainerDir;

/// Where the copy for the mount at `index` of the config's mounts lives.
pub fn copy_path(dir: &ContainerDir, index: usize) -> PathBuf {
    dir.path().join("files").join(index.to_string())
}

/// Checks the file mounts before anything is created.
pub fn validate(mounts: &[Mount]) -> Result<()> {
    for m in mounts {
        if let Mount::File {
            source,
            content,
            target,
            mode,
            ..
        } = m
        {
            if source.is_none() && content.is_none() {
                return Err(Error::invalid(
                    "file mount",
                    format!("{target}: neither a source file nor content"),
                ));
            }
            if !target.starts_with('/') {
                return Err(Error::invalid(
                    "file mount",
                    format!("{target:?}: the target must be an absolute path"),
                ));
            }
            if *mode > 0o7777 {
                return Err(Error::invalid(
                    "file mount",
                    format!("{target}: mode {mode:o} is not a file mode"),
                ));
            }
        }
    }
    Ok(())
}

/// Writes every file mount's copy into `dir` (which `create` just made).
/// The folder is private to root; each copy gets its owner and mode
/// before anyone could see its content.
pub fn materialize(dir: &ContainerDir, mounts: &[Mount]) -> Result<()> {
    let mut made_dir = false;
    for (index, m) in mounts.iter().enumerate() {
        let Mount::File {
            source,
            content,
            uid,
            gid,
            mode,
            target,
        } = m
        else {
            continue;
        };
        if !made_dir {
            let files = dir.path().join("files");
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&files)
                .map_err(|e| Error::io("create", &files, e))?;
            made_dir = true;
        }
        let bytes = match (content, source) {
            (Some(c), _) => c.clone(),
            (None, Some(path)) => fs::read(path).map_err(|e| Error::io("read", path, e))?,
            (None, None) => {
                return Err(Error::invalid(
                    "file mount",
                    format!("{target}: neither a source file nor content"),
                ));
            }
        };
        let path = copy_path(dir, index);
        // Created 0600 (no one else can open it meanwhile), then given
        // its owner and mode through the same descriptor.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        f.write_all(&bytes)
            .map_err(|e| Error::io("write", &path, e))?;
        std::os::unix::fs::fchown(&f, Some(*uid), Some(*gid))
            .map_err(|e| Error::io("chown", &path, e))?;
        f.set_permissions(fs::Permissions::from_mode(*mode))
            .map_err(|e| Error::io("chmod", &path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn copies_get_owner_and_mode_and_the_source_is_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("secret.txt");
        fs::write(&src, "s3cret").unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o640)).unwrap();
        let dir = crate::state::StateRoot::new(tmp.path()).container("c1");
        fs::create_dir_all(dir.path()).unwrap();
        let root = nix::unistd::geteuid().is_root();
        let owner = if root {
            1000
        } else {
            nix::unistd::geteuid().as_raw()
        };
        let mounts = vec![
            Mount::Tmpfs {
                target: "/tmp".into(),
                size: None,
                mode: None,
                options: vec![],
            },
            Mount::File {
                source: Some(src.clone()),
                content: None,
                target: "/run/secrets/s".into(),
                uid: owner,
                gid: owner,
                mode: 0o400,
            },
            Mount::File {
                source: None,
                content: Some(b"inline".to_vec()),
                target: "/c".into(),
                uid: owner,
                gid: owner,
                mode: 0o444,
            },
        ];
        validate(&mounts).unwrap();
        materialize(&dir, &mounts).unwrap();
        let a = copy_path(&dir, 1);
        assert_eq!(fs::read_to_string(&a).unwrap(), "s3cret");
        let m = fs::metadata(&a).unwrap();
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o400, owner, owner));
        assert_eq!(fs::read_to_string(copy_path(&dir, 2)).unwrap(), "inline");
        assert_eq!(
            fs::metadata(copy_path(&dir, 2)).unwrap().mode() & 0o7777,
            0o444
        );
        assert_eq!(
            fs::metadata(&src).unwrap().mode() & 0o7777,
            0o640,
            "source untouched"
        );
        let files = fs::metadata(dir.path().join("files")).unwrap();
        assert_eq!(files.mode() & 0o777, 0o700);
    }

    #[test]
    fn invalid_file_mounts_are_refused() {
        let bad = |target: &str, mode: u32, content: Option<Vec<u8>>| {
            validate(&[Mount::File {
                source: None,
                content,
                target: target.into(),
                uid: 0,
                gid: 0,
                mode,
            }])
        };
        assert!(bad("/x", 0o444, None).is_err());
        assert!(bad("x", 0o444, Some(vec![])).is_err());
        assert!(bad("/x", 0o17777, Some(vec![])).is_err());
        assert!(bad("/x", 0o444, Some(vec![])).is_ok());
    }
}
