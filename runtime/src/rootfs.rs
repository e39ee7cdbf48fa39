//! The container's filesystem, built inside its new mount namespace:
//! rootfs (overlayfs or a bound dir), `/proc`, read-only `/sys`, a minimal
//! `/dev` (plus the configured devices), the caller's mounts (volumes
//! copied up, config and secret copies), `/etc/{hostname,hosts,resolv.conf}`,
//! then `pivot_root`, sysctls, Docker's masked and read-only paths, and
//! last the read-only root when asked for.
//!
//! Runs in the container's pid 1 before exec, single-threaded. Mounts made
//! here live only in the container's mount namespace: when its last
//! process exits the kernel drops them, so nothing can leak on the host.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use nix::unistd::{chdir, pivot_root};

use crate::config::{ContainerConfig, Mount, Network, Rootfs};
use crate::error::{Error, Result};
use crate::state::ContainerDir;

/// Paths Docker hides: files get `/dev/null` bound over them, folders a
/// read-only empty tmpfs.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `lowerdir=..,upperdir=..,workdir=..` for `layers` given **lowest
/// first**; overlayfs wants the topmost lower dir first, so the order is
/// reversed here.
pub fn overlay_options(layers: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| escape_overlay_path(&p.display().to_string()))
        .collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        escape_overlay_path(&upper.display().to_string()),
        escape_overlay_path(&work.display().to_string())
    )
}

/// overlayfs splits lowerdir on `:` and the option string on `,`; both are
/// escaped with a backslash.
fn escape_overlay_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if matches!(c, ':' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `/etc/hosts` as Docker writes it for a container without networks.
pub fn hosts_file(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"
    )
}

/// Writes `hostname`, `hosts` and `resolv.conf` into the container dir;
/// they are bound over the container's `/etc` files. Called by the shim.
pub fn write_etc_files(cfg: &ContainerConfig, dir: &ContainerDir) -> Result<()> {
    let hostname = cfg.effective_hostname();
    let write = |name: &str, text: &str| {
        let p = dir.etc_file(name);
        fs::write(&p, text).map_err(|e| Error::io("write", &p, e))
    };
    write("hostname", &format!("{hostname}\n"))?;
    write("hosts", &hosts_file(&hostname))?;
    let resolv = match cfg.network {
        Network::Host => fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        // No network: nothing to reach. A minimal, valid file, so that
        // resolvers do not fall back to surprising defaults.
        Network::None | Network::Join(_) => String::from("nameserver 127.0.0.1\noptions ndots:0\n"),
    };
    write("resolv.conf", &resolv)
}

fn mnt(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    tracing::debug!(?source, target = %target.display(), ?fstype, ?flags, "mount");
    mount(source, target, fstype, flags, data)
        .map_err(|e| Error::Sys {
            action: "mount",
            source: e,
        })
        .map_err(|e| with_target(e, target))
}

fn with_target(e: Error, target: &Path) -> Error {
    match e {
        Error::Sys { source, .. } => Error::io(
            "mount on",
            target,
            std::io::Error::from_raw_os_error(source as i32),
        ),
        other => other,
    }
}

/// `rel` (absolute inside the container) under `root`; `..` never climbs
/// above `root`. (Symlinks inside the rootfs are not resolved here.)
pub fn in_root(root: &Path, rel: &str) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for part in Path::new(rel).components() {
        match part {
            std::path::Component::Normal(s) => parts.push(s),
            std::path::Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

/// `rel` under `root` with every symlink on the way resolved *inside*
/// `root` (an absolute link target starts again at `root`, `..` stops at
/// it), like Go's `securejoin`. Mount targets go through this before
/// pivot_root, so a rootfs cannot point a mount (or a created dir) at a
/// host path.
pub fn secure_join(root: &Path, rel: &str) -> Result<PathBuf> {
    let mut pending: Vec<std::ffi::OsString> = Path::new(rel)
        .components()
        .rev()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_owned()),
            std::path::Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            parts.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&parts);
        candidate.push(&part);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(Error::invalid("path", format!("{rel}: too many symlinks")));
                }
                let target =
                    fs::read_link(&candidate).map_err(|e| Error::io("read link", &candidate, e))?;
                if target.is_absolute() {
                    parts.clear();
                }
                for c in target.components().rev() {
                    match c {
                        std::path::Component::Normal(s) => pending.push(s.to_owned()),
                        std::path::Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(parts);
    Ok(out)
}

fn mkdir_p(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| Error::io("create", p, e))
}

fn touch(p: &Path) -> Result<()> {
    if p.exists() {
        return Ok(());
    }
    if let Some(parent) = p.parent() {
        mkdir_p(parent)?;
    }
    fs::File::create(p)
        .map(drop)
        .map_err(|e| Error::io("create", p, e))
}

/// Everything up to and including `pivot_root`; afterwards `/` is the
/// container's root and the masks are applied.
pub fn setup(cfg: &ContainerConfig, dir: &ContainerDir) -> Result<()> {
    let none: Option<&str> = None;
    // Nothing we mount may propagate back to the host.
    mnt(
        none,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    let root = dir.rootfs();
    mkdir_p(&root)?;
    match &cfg.rootfs {
        Rootfs::Dir(src) => {
            let src = src.display().to_string();
            mnt(
                Some(&src),
                &root,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
        }
        Rootfs::Layers(layers) => {
            if layers.is_empty() {
                return Err(Error::invalid("rootfs", "no layers"));
            }
            let (upper, work) = (dir.upper(), dir.work());
            mkdir_p(&upper)?;
            mkdir_p(&work)?;
            let opts = overlay_options(layers, &upper, &work);
            mnt(
                Some("overlay"),
                &root,
                Some("overlay"),
                MsFlags::empty(),
                Some(&opts),
            )?;
        }
    }
    let nosuid_noexec_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;

    let proc_dir = root.join("proc");
    mkdir_p(&proc_dir)?;
    mnt(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        nosuid_noexec_nodev,
        None,
    )?;

    let sys = root.join("sys");
    mkdir_p(&sys)?;
    // Privileged containers get a writable /sys, as with Docker.
    let sys_ro = if cfg.security.privileged {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    };
    mnt(
        Some("sysfs"),
        &sys,
        Some("sysfs"),
        nosuid_noexec_nodev | sys_ro,
        None,
    )?;

    setup_dev(&root, cfg.shm_size)?;
    // `devices:` entries replace whatever is at their path; the host's
    // nodes of a privileged container fill in around them.
    for node in crate::devices::resolve(&cfg.devices)? {
        crate::devices::create_node(&root, &node, true)?;
    }
    if cfg.security.privileged {
        for node in crate::devices::host_nodes()? {
            crate::devices::create_node(&root, &node, false)?;
        }
    }

    // Volumes are copied up the first time the container is set up only,
    // as Docker does it at create: emptying a volume later is the user's
    // choice, not something a restart undoes.
    let copy_up_marker = dir.path().join(".volumes-copied-up");
    let copy_up = !copy_up_marker.exists();
    for (index, m) in cfg.mounts.iter().enumerate() {
        user_mount(&root, dir, index, m, copy_up)?;
    }
    if copy_up {
        touch(&copy_up_marker)?;
    }

    for name in ["hostname", "hosts", "resolv.conf"] {
        let target = secure_join(&root, &format!("/etc/{name}"))?;
        touch(&target)?;
        let src = dir.etc_file(name).display().to_string();
        mnt(Some(&src), &target, None, MsFlags::MS_BIND, None)?;
    }

    // pivot_root(".", ".") stacks the old root on top of the new one;
    // unmounting "." then detaches the old root (runc's trick: no
    // temporary folder inside the rootfs).
    chdir(&root).map_err(|e| Error::sys("chdir to the rootfs", e))?;
    pivot_root(".", ".").map_err(|e| Error::sys("pivot_root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| Error::sys("detach the old root", e))?;
    chdir("/").map_err(|e| Error::sys("chdir /", e))?;

    // Before /proc/sys turns read-only.
    crate::sysctl::apply(&cfg.sysctls)?;
    if !(cfg.security.privileged || cfg.security.unmask_paths) {
        for p in MASKED_PATHS {
            mask(Path::new(p))?;
        }
        for p in READONLY_PATHS {
            readonly(Path::new(p))?;
        }
    }
    if cfg.security.readonly_rootfs {
        // The working dir is created now or never: the root is about to
        // become read-only.
        if let Some(cwd) = cfg.process.cwd.as_deref().filter(|c| !c.is_empty()) {
            mkdir_p(Path::new(cwd))?;
        }
        // Only the root's own mount: /dev, /proc, tmpfs mounts and volumes
        // are mounts of their own and stay writable.
        mnt(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

/// Docker's default `/dev/shm` size.
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

fn setup_dev(root: &Path, shm_size: Option<u64>) -> Result<()> {
    let dev = root.join("dev");
    mkdir_p(&dev)?;
    mnt(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let p = dev.join(name);
        mknod(
            &p,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .map_err(|e| Error::sys("mknod a device", e))?;
        // mknod honours the umask; the nodes must be 0666 whatever it is.
        fs::set_permissions(&p, fs::Permissions::from_mode(0o666))
            .map_err(|e| Error::io("chmod", &p, e))?;
    }
    let pts = dev.join("pts");
    mkdir_p(&pts)?;
    mnt(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm = dev.join("shm");
    mkdir_p(&shm)?;
    let shm_options = format!(
        "mode=1777,size={}",
        shm_size.filter(|s| *s > 0).unwrap_or(DEFAULT_SHM_SIZE)
    );
    mnt(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        Some(&shm_options),
    )?;
    let mq = dev.join("mqueue");
    mkdir_p(&mq)?;
    mnt(
        Some("mqueue"),
        &mq,
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        None,
    )?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let p = dev.join(link);
        symlink(target, &p).map_err(|e| Error::io("symlink", &p, e))?;
    }
    Ok(())
}

fn bind(source: &Path, dst: &Path, readonly: bool) -> Result<()> {
    let src = source.display().to_string();
    mnt(
        Some(&src),
        dst,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    if readonly {
        mnt(
            None,
            dst,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

fn user_mount(
    root: &Path,
    dir: &ContainerDir,
    index: usize,
    m: &Mount,
    copy_up: bool,
) -> Result<()> {
    match m {
        Mount::Bind {
            source,
            target,
            readonly,
            copy_up: wants_copy,
        } => {
            let dst = secure_join(root, target)?;
            let meta =
                fs::metadata(source).map_err(|e| Error::io("stat bind source", source, e))?;
            if meta.is_dir() {
                if *wants_copy && copy_up {
                    crate::copyup::copy_up(&dst, source)?;
                }
                mkdir_p(&dst)?;
            } else {
                touch(&dst)?;
            }
            bind(source, &dst, *readonly)?;
        }
        Mount::Tmpfs {
            target,
            size,
            mode,
            options,
        } => {
            let dst = secure_join(root, target)?;
            mkdir_p(&dst)?;
            let (flags, data) = crate::tmpfs::mount_args(*size, *mode, options)?;
            mnt(Some("tmpfs"), &dst, Some("tmpfs"), flags, Some(&data))?;
        }
        Mount::File { target, .. } => {
            let dst = secure_join(root, target)?;
            touch(&dst)?;
            bind(&crate::files::copy_path(dir, index), &dst, true)?;
        }
    }
    Ok(())
}

fn mask(p: &Path) -> Result<()> {
    let Ok(meta) = fs::metadata(p) else {
        return Ok(());
    };
    if meta.is_dir() {
        mnt(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, None)
    } else {
        mnt(Some("/dev/null"), p, None, MsFlags::MS_BIND, None)
    }
}

fn readonly(p: &Path) -> Result<()> {
    if !p.exists() {
        return Ok(());
    }
    mnt(
        Some(&p.display().to_string()),
        p,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    mnt(
        None,
        p,
        None,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_lower_dirs_are_reversed_and_escaped() {
        let layers = vec![
            PathBuf::from("/s/base"),
            PathBuf::from("/s/mid"),
            PathBuf::from("/s/top:1"),
        ];
        assert_eq!(
            overlay_options(&layers, Path::new("/c/upper"), Path::new("/c/work")),
            "lowerdir=/s/top\\:1:/s/mid:/s/base,upperdir=/c/upper,workdir=/c/work"
        );
    }

    #[test]
    fn in_root_drops_dot_dot() {
        assert_eq!(
            in_root(Path::new("/r"), "/a/../b/./c"),
            PathBuf::from("/r/b/c")
        );
        assert_eq!(
            in_root(Path::new("/r"), "/../../etc"),
            PathBuf::from("/r/etc")
        );
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn secure_join_keeps_symlinks_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("real/sub")).unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../..", r.join("real/up")).unwrap();
        symlink("real", r.join("rel")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        assert_eq!(
            secure_join(r, "/abs/hostname").unwrap(),
            r.join("etc/hostname")
        );
        assert_eq!(secure_join(r, "/real/up/x").unwrap(), r.join("x"));
        assert_eq!(secure_join(r, "/rel/sub").unwrap(), r.join("real/sub"));
        assert_eq!(secure_join(r, "/../../a").unwrap(), r.join("a"));
        assert_eq!(secure_join(r, "/new/dir").unwrap(), r.join("new/dir"));
        assert!(secure_join(r, "/loop/x").is_err());
    }

    #[test]
    fn hosts_has_localhost_and_hostname() {
        let h = hosts_file("web");
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("127.0.1.1\tweb\n"));
    }
}
