//! tmpfs mounts: the mount(8)-style options of a `Mount::Tmpfs` turned
//! into mount flags and tmpfs data, checked by `create` and used by the
//! rootfs setup.

use nix::mount::MsFlags;

use crate::error::{Error, Result};

/// tmpfs mount data: `mode=1777[,size=N]`.
pub fn tmpfs_options(size: Option<u64>, mode: Option<u32>) -> String {
    let mut s = format!("mode={:o}", mode.unwrap_or(0o1777));
    if let Some(size) = size {
        s.push_str(&format!(",size={size}"));
    }
    s
}

/// The flags and data of a tmpfs mount: `nosuid,nodev`, then `options` in
/// order (a later `exec` undoes an earlier `noexec`, as in mount(8)),
/// with `size`/`mode` first in the data so an option can override them.
pub fn mount_args(
    size: Option<u64>,
    mode: Option<u32>,
    options: &[String],
) -> Result<(MsFlags, String)> {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let mut data = tmpfs_options(size, mode);
    for option in options.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        let (set, flag) = match option {
            "ro" => (true, MsFlags::MS_RDONLY),
            "rw" => (false, MsFlags::MS_RDONLY),
            "nosuid" => (true, MsFlags::MS_NOSUID),
            "suid" => (false, MsFlags::MS_NOSUID),
            "nodev" => (true, MsFlags::MS_NODEV),
            "dev" => (false, MsFlags::MS_NODEV),
            "noexec" => (true, MsFlags::MS_NOEXEC),
            "exec" => (false, MsFlags::MS_NOEXEC),
            "sync" => (true, MsFlags::MS_SYNCHRONOUS),
            "async" => (false, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (true, MsFlags::MS_DIRSYNC),
            "noatime" => (true, MsFlags::MS_NOATIME),
            "atime" => (false, MsFlags::MS_NOATIME),
            "nodiratime" => (true, MsFlags::MS_NODIRATIME),
            "diratime" => (false, MsFlags::MS_NODIRATIME),
            "relatime" => (true, MsFlags::MS_RELATIME),
            "norelatime" => (false, MsFlags::MS_RELATIME),
            "strictatime" => (true, MsFlags::MS_STRICTATIME),
            "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
            _ => {
                let key = option.split_once('=').map(|(k, _)| k);
                match key {
                    Some(
                        "size" | "mode" | "uid" | "gid" | "nr_inodes" | "nr_blocks" | "mpol"
                        | "huge",
                    ) => {
                        data.push(',');
                        data.push_str(option);
                        continue;
                    }
                    _ => {
                        return Err(Error::invalid(
                            "tmpfs option",
                            format!(
                                "{option:?}: use mount flags (ro, rw, noexec, exec, nosuid, nodev, noatime, ...) or size=, mode=, uid=, gid=, nr_inodes="
                            ),
                        ));
                    }
                }
            }
        };
        flags.set(flag, set);
    }
    Ok((flags, data))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tmpfs_mount_options_parse_in_order() {
        let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (flags, data) = mount_args(Some(1024), None, &[]).unwrap();
        assert_eq!(flags, MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
        assert_eq!(data, "mode=1777,size=1024");
        let (flags, data) = mount_args(
            None,
            Some(0o700),
            &o(&[
                "noexec", "nosuid", "nodev", "rw", "exec", "uid=1000", "size=64m", "noatime",
            ]),
        )
        .unwrap();
        assert_eq!(
            flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOATIME
        );
        assert_eq!(data, "mode=700,uid=1000,size=64m");
        let (flags, _) = mount_args(None, None, &o(&["ro", "suid"])).unwrap();
        assert_eq!(flags, MsFlags::MS_RDONLY | MsFlags::MS_NODEV);
        let err = mount_args(None, None, &o(&["bogus"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"bogus\""), "{err}");
        assert!(mount_args(None, None, &o(&["owner=1"])).is_err());
    }

    #[test]
    fn tmpfs_options_render() {
        assert_eq!(tmpfs_options(None, None), "mode=1777");
        assert_eq!(
            tmpfs_options(Some(1 << 20), Some(0o755)),
            "mode=755,size=1048576"
        );
    }
}
