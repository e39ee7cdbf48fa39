//! Device nodes and the devices cgroup.
//!
//! A container gets Docker's device policy: on cgroup v1 the devices
//! controller denies everything but the standard nodes (`null`, `zero`,
//! `full`, `random`, `urandom`, `tty`, ptys, and `mknod` of anything), and
//! each `devices:` entry adds its node to the container's `/dev` (same
//! type, numbers, mode and owner as on the host) and allows it with the
//! entry's permissions. A privileged container gets a node for every host
//! device and may use them all. (cgroup v2 needs an eBPF program to filter
//! devices, which berth does not load: there the nodes are created and
//! nothing is filtered, as with the default rules on v1 before this.)

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{Mode, SFlag, major, makedev, minor, mknod};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

use crate::config::{ContainerConfig, Device};
use crate::error::{Error, Result};

/// One node to create in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Absolute, inside the container.
    pub path: String,
    pub block: bool,
    pub major: u64,
    pub minor: u64,
    /// Permission bits, from the host node.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// `rwm` subset for the cgroup rule.
    pub permissions: String,
}

/// Folders of the host's `/dev` that hold no devices of their own (runc's
/// list).
const SKIPPED_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

fn permissions(d: &Device) -> Result<String> {
    let p = if d.permissions.is_empty() {
        "rwm"
    } else {
        d.permissions.as_str()
    };
    let valid = p.len() <= 3
        && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && !p.chars().enumerate().any(|(i, c)| p[..i].contains(c));
    if !valid {
        return Err(Error::invalid(
            "device",
            format!(
                "invalid device mode {p:?} for {}: use r, w and m (rwm)",
                d.path_on_host.display()
            ),
        ));
    }
    Ok(p.to_owned())
}

fn node_of(meta: &fs::Metadata, target: String, perms: &str) -> Option<DeviceNode> {
    let ft = meta.file_type();
    if !(ft.is_char_device() || ft.is_block_device()) {
        return None;
    }
    let rdev = meta.rdev();
    Some(DeviceNode {
        path: target,
        block: ft.is_block_device(),
        major: major(rdev),
        minor: minor(rdev),
        mode: meta.permissions().mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        permissions: perms.to_owned(),
    })
}

/// The nodes for `devices:` entries; a folder stands for every device
/// under it (`/dev/snd`). Symlinks on the host (`/dev/disk/by-id/...`) are
/// followed. Errors name the entry, in Docker's words.
pub fn resolve(devices: &[Device]) -> Result<Vec<DeviceNode>> {
    let mut out = Vec::new();
    for d in devices {
        let perms = permissions(d)?;
        let target = if d.path_in_container.is_empty() {
            d.path_on_host.display().to_string()
        } else {
            d.path_in_container.clone()
        };
        if !target.starts_with('/') {
            return Err(Error::invalid(
                "device",
                format!("{target:?}: the path in the container must be absolute"),
            ));
        }
        let gather = |e: std::io::Error| {
            Error::invalid(
                "device",
                format!(
                    "error gathering device information while adding custom device {:?}: {e}",
                    d.path_on_host.display().to_string()
                ),
            )
        };
        let meta = fs::metadata(&d.path_on_host).map_err(gather)?;
        if meta.is_dir() {
            walk(&d.path_on_host, &target, &perms, &mut out, &[])?;
            continue;
        }
        match node_of(&meta, target, &perms) {
            Some(n) => out.push(n),
            None => {
                return Err(gather(std::io::Error::other(
                    "not a character or block device",
                )));
            }
        }
    }
    Ok(out)
}

/// Every device under `dir` (not following symlinks), mapped under
/// `target`; folders named in `skip` are left out.
fn walk(
    dir: &Path,
    target: &str,
    perms: &str,
    out: &mut Vec<DeviceNode>,
    skip: &[&str],
) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let child = format!("{}/{name}", target.trim_end_matches('/'));
        if meta.is_dir() {
            if !skip.contains(&name.as_str()) {
                walk(&path, &child, perms, out, skip)?;
            }
        } else if let Some(n) = node_of(&meta, child, perms) {
            out.push(n);
        }
    }
    Ok(())
}

/// Every device node of the host's `/dev` (for a privileged container),
/// except the console and the folders of other filesystems.
pub fn host_nodes() -> Result<Vec<DeviceNode>> {
    let mut out = Vec::new();
    walk(Path::new("/dev"), "/dev", "rwm", &mut out, SKIPPED_DIRS)?;
    out.retain(|n| n.path != "/dev/console");
    Ok(out)
}

/// Creates `node` under `root` (the container's root before pivot_root),
/// with the host node's mode and owner. With `replace`, whatever file is
/// at that path goes first; without, an existing entry is kept (the
/// standard nodes stay as the runtime made them).
pub fn create_node(root: &Path, node: &DeviceNode, replace: bool) -> Result<()> {
    let dst = crate::rootfs::secure_join(root, &node.path)?;
    if let Ok(existing) = fs::symlink_metadata(&dst) {
        if !replace {
            return Ok(());
        }
        if existing.is_dir() {
            return Err(Error::invalid(
                "device",
                format!("{} is a folder in the container", node.path),
            ));
        }
        fs::remove_file(&dst).map_err(|e| Error::io("replace", &dst, e))?;
    }
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
    }
    let kind = if node.block {
        SFlag::S_IFBLK
    } else {
        SFlag::S_IFCHR
    };
    tracing::debug!(path = %node.path, major = node.major, minor = node.minor, "mknod");
    mknod(
        &dst,
        kind,
        Mode::from_bits_truncate(node.mode),
        makedev(node.major, node.minor),
    )
    .map_err(|e| Error::io("mknod", &dst, std::io::Error::from_raw_os_error(e as i32)))?;
    // mknod honours the umask; the node must have the host's mode.
    fs::set_permissions(&dst, fs::Permissions::from_mode(node.mode))
        .map_err(|e| Error::io("chmod", &dst, e))?;
    nix::unistd::chown(
        &dst,
        Some(nix::unistd::Uid::from_raw(node.uid)),
        Some(nix::unistd::Gid::from_raw(node.gid)),
    )
    .map_err(|e| Error::io("chown", &dst, std::io::Error::from_raw_os_error(e as i32)))?;
    Ok(())
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    numbers: Numbers,
    access: &str,
) -> Result<LinuxDeviceCgroup> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access.to_owned());
    if let Some((maj, min)) = numbers {
        let num = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        b = b.major(num(maj));
        if let Some(min) = min {
            b = b.minor(num(min));
        }
    }
    b.build()
        .map_err(|e| Error::invalid("device rule", e.to_string()))
}

/// A rule's major and minor; `None` is `*` (every major, or every minor
/// of one major).
type Numbers = Option<(u64, Option<u64>)>;

/// The standard rules every unprivileged container gets (runc's and
/// Docker's list): `mknod` of any node, then `null`, `zero`, `full`,
/// `tty`, `urandom`, `random`, `console`, `ptmx`, the ptys and `tun`.
const STANDARD_RULES: &[(LinuxDeviceType, Numbers, &str)] = &[
    (LinuxDeviceType::C, None, "m"),
    (LinuxDeviceType::B, None, "m"),
    (LinuxDeviceType::C, Some((1, Some(3))), "rwm"),
    (LinuxDeviceType::C, Some((1, Some(5))), "rwm"),
    (LinuxDeviceType::C, Some((1, Some(7))), "rwm"),
    (LinuxDeviceType::C, Some((5, Some(0))), "rwm"),
    (LinuxDeviceType::C, Some((1, Some(9))), "rwm"),
    (LinuxDeviceType::C, Some((1, Some(8))), "rwm"),
    (LinuxDeviceType::C, Some((5, Some(1))), "rwm"),
    (LinuxDeviceType::C, Some((5, Some(2))), "rwm"),
    (LinuxDeviceType::C, Some((136, None)), "rwm"),
    (LinuxDeviceType::C, Some((10, Some(200))), "rwm"),
];

/// The devices cgroup rules in the order they are written: deny
/// everything, allow the standard nodes, then each device entry
/// (privileged: allow everything).
pub fn cgroup_rules(cfg: &ContainerConfig) -> Result<Vec<LinuxDeviceCgroup>> {
    if cfg.security.privileged {
        return Ok(vec![rule(true, LinuxDeviceType::A, None, "rwm")?]);
    }
    let mut rules = vec![rule(false, LinuxDeviceType::A, None, "rwm")?];
    for (typ, numbers, access) in STANDARD_RULES {
        rules.push(rule(true, *typ, *numbers, access)?);
    }
    for n in resolve(&cfg.devices)? {
        let typ = if n.block {
            LinuxDeviceType::B
        } else {
            LinuxDeviceType::C
        };
        rules.push(rule(
            true,
            typ,
            Some((n.major, Some(n.minor))),
            &n.permissions,
        )?);
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dev(host: &str, container: &str, perms: &str) -> Device {
        Device {
            path_on_host: host.into(),
            path_in_container: container.into(),
            permissions: perms.into(),
        }
    }

    #[test]
    fn host_devices_resolve_with_their_numbers() {
        let nodes = resolve(&[dev("/dev/null", "/dev/mynull", "rw")]).unwrap();
        assert_eq!(nodes.len(), 1);
        let n = &nodes[0];
        assert_eq!(
            (n.path.as_str(), n.block, n.major, n.minor),
            ("/dev/mynull", false, 1, 3)
        );
        assert_eq!(n.permissions, "rw");
        let nodes = resolve(&[dev("/dev/zero", "", "")]).unwrap();
        assert_eq!(
            (nodes[0].path.as_str(), nodes[0].permissions.as_str()),
            ("/dev/zero", "rwm")
        );
    }

    #[test]
    fn bad_entries_are_named() {
        let err = resolve(&[dev("/dev/nope-nope", "", "")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("adding custom device \"/dev/nope-nope\""),
            "{err}"
        );
        let err = resolve(&[dev("/etc/hostname", "", "")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a character or block device"), "{err}");
        for bad in ["rwx", "rr", "rwmr", "x"] {
            assert!(resolve(&[dev("/dev/null", "", bad)]).is_err(), "{bad}");
        }
        assert!(resolve(&[dev("/dev/null", "relative", "")]).is_err());
    }

    #[test]
    fn rules_deny_all_then_allow_each_device() {
        let mut cfg: ContainerConfig = serde_json::from_value(serde_json::json!({
            "id": "0123456789ab", "name": "x",
            "rootfs": {"dir": "/"}, "process": {"args": ["true"]}
        }))
        .unwrap();
        cfg.devices = vec![dev("/dev/null", "/dev/x", "r")];
        let rules: Vec<String> = cgroup_rules(&cfg)
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            rules,
            [
                "a *:* rwm",
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:9 rwm",
                "c 1:8 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm",
                "c 136:* rwm",
                "c 10:200 rwm",
                "c 1:3 r",
            ]
        );
        assert!(!rules.is_empty() && !cgroup_rules(&cfg).unwrap()[0].allow());
        cfg.security.privileged = true;
        let rules = cgroup_rules(&cfg).unwrap();
        assert_eq!(rules.len(), 1);
        assert!(rules[0].allow());
        assert_eq!(rules[0].to_string(), "a *:* rwm");
    }
}
