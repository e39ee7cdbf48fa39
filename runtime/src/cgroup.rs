//! cgroups: `berth/<id>` on every v1 hierarchy, or under the v2 root.
//!
//! [`Cgroup`] creates, limits, joins and removes a container's cgroup
//! through the file system directly ([`crate::cgroupfs`]: v1, hybrid and
//! v2). The limits go from [`Resources`] to the OCI form
//! ([`to_linux_resources`], where Docker's rules for memory and swap
//! live) and from there to file writes. Reading usage and the OOM-kill
//! counter is a handful of files ([`CgroupPaths`]), so the math is tested
//! on a temp dir.

use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

use crate::cgroupfs::{Layout, v1_hierarchies};
use crate::config::{ContainerConfig, Resources};
use crate::error::{Error, Result};

/// The parent of every container's cgroup.
pub const PARENT: &str = "berth";

/// The cgroup path of a container, relative to each hierarchy's root.
pub fn cgroup_path(id: &str) -> PathBuf {
    Path::new("/").join(PARENT).join(id)
}

/// One container's cgroup.
pub struct Cgroup {
    id: String,
    layout: Layout,
}

impl Cgroup {
    /// The container's cgroup under `root` (normally `/sys/fs/cgroup`).
    /// Nothing is created until [`Cgroup::add_task`]. A `root` that is a
    /// cgroup2 mount is v2 ([`Cgroup::open_unified`]); anything else (the
    /// tmpfs of a v1 or hybrid host) means every v1 hierarchy in
    /// `/proc/self/mountinfo`, each holding `berth/<id>`.
    pub fn open(root: &Path, id: &str) -> Result<Self> {
        let fs_type = statfs(root)
            .map_err(|e| cg_err("open", root, e))?
            .filesystem_type();
        if fs_type == CGROUP2_SUPER_MAGIC {
            return Self::open_unified(root, id);
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| cg_err("open", Path::new("/proc/self/mountinfo"), e))?;
        let hierarchies = v1_hierarchies(&mountinfo);
        if hierarchies.is_empty() {
            return Err(cg_err(
                "open",
                root,
                "it is not a cgroup2 mount and no cgroup v1 hierarchy is mounted \
                 (set BERTH_CGROUP_ROOT to the cgroup2 mount point)",
            ));
        }
        Ok(Cgroup {
            id: id.to_owned(),
            layout: Layout::V1 {
                hierarchies,
                rel: relative(id),
            },
        })
    }

    /// The container's cgroup under `root` taken as a cgroup v2 hierarchy
    /// without looking at its file system type: what [`Cgroup::open`]
    /// uses on a `cgroup2` mount, and the way to run the v2 path against a
    /// directory that imitates one.
    pub fn open_unified(root: &Path, id: &str) -> Result<Self> {
        Ok(Cgroup {
            id: id.to_owned(),
            layout: Layout::V2 {
                root: root.to_owned(),
                rel: relative(id),
            },
        })
    }

    /// Moves `pid` in (creating the cgroup dirs on first use).
    pub fn add_task(&self, pid: i32) -> Result<()> {
        tracing::debug!(container.id = %self.id, pid, "cgroup add task");
        self.layout.join(pid)
    }

    /// Makes the cgroup ready, writes the container's limits and device
    /// rules into it, and only then moves `pid` in: v1's device rules are
    /// a `deny a` followed by the allowed ones, and a pid 1 that is
    /// already inside while it builds its `/dev` would see its `mknod`
    /// refused in between.
    pub fn limit_and_add(&self, cfg: &ContainerConfig, pid: i32) -> Result<()> {
        self.layout.create()?;
        self.apply_config(cfg)?;
        tracing::debug!(container.id = %self.id, pid, "cgroup add task");
        self.layout.enter(pid)
    }

    /// Writes the limits. Call once the cgroup exists (after the first
    /// [`Cgroup::add_task`]).
    /// (Containers go through [`Cgroup::apply_config`]; this is the limits
    /// alone, as the cgroup tests exercise them.)
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn apply(&self, resources: &Resources) -> Result<()> {
        let linux = to_linux_resources(resources)?;
        tracing::debug!(container.id = %self.id, ?resources, "cgroup apply");
        self.apply_linux(&linux, false)
    }

    /// Writes a container's limits, its OOM-killer and swappiness
    /// settings, and its device rules (see [`crate::devices`]). cgroup v2
    /// has no place for the first two and filters devices only through
    /// eBPF: there they are left out (the engine warns about the former).
    pub fn apply_config(&self, cfg: &ContainerConfig) -> Result<()> {
        let r = &cfg.resources;
        let mut linux = to_linux_resources(r)?;
        if r.memory_swappiness.is_some() {
            let mut memory = linux.memory().unwrap_or_default();
            memory.set_swappiness(r.memory_swappiness);
            linux.set_memory(Some(memory));
        }
        linux.set_devices(Some(crate::devices::cgroup_rules(cfg)?));
        tracing::debug!(container.id = %self.id, resources = ?r, "cgroup apply");
        self.apply_linux(&linux, r.oom_kill_disable)
    }

    /// Writes limits in the OCI form; `disable_oom_killer` only exists on
    /// v1. Everything is computed before the first write, so a value the
    /// kernel would refuse for its format leaves the cgroup untouched.
    fn apply_linux(&self, linux: &LinuxResources, disable_oom_killer: bool) -> Result<()> {
        let writes = self.layout.writes(linux, disable_oom_killer)?;
        self.layout.apply(&writes)
    }

    /// Kills what is left inside and removes the cgroup everywhere.
    pub fn remove(&self) -> Result<()> {
        tracing::debug!(container.id = %self.id, "cgroup remove");
        self.layout.remove()
    }

    /// Where this container's cgroup files are, for reading.
    pub fn paths(&self) -> CgroupPaths {
        match &self.layout {
            Layout::V2 { root, rel } => CgroupPaths::V2(root.join(rel)),
            Layout::V1 { .. } => CgroupPaths::V1 {
                memory: self.layout.dir_of("memory"),
                cpuacct: self.layout.dir_of("cpuacct"),
                pids: self.layout.dir_of("pids"),
            },
        }
    }
}

/// Whether `root` is a cgroup v2 (unified) hierarchy.
pub fn is_unified(root: &Path) -> bool {
    statfs(root).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

/// `berth/<id>`, relative to a hierarchy's root.
fn relative(id: &str) -> PathBuf {
    Path::new(PARENT).join(id)
}

fn cg_err(action: &'static str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Cgroup {
        action,
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// [`Resources`] in the OCI form. Only what is set is
/// written. Like Docker, a memory limit without `memory_swap` allows as
/// much swap again (memsw = 2 × memory), `memory_swap` -1 is unlimited
/// swap, a positive `memory_swap` needs a memory limit no larger than it,
/// and a pids limit of 0 or less is no limit.
pub fn to_linux_resources(r: &Resources) -> Result<LinuxResources> {
    let bad = |e: oci_spec::OciSpecError| Error::invalid("resources", e.to_string());
    let mut b = LinuxResourcesBuilder::default();
    // -1 without a memory limit is the default already, and v2 has no
    // place for any other swap value without a limit.
    let memory_swap = r.memory_swap.filter(|&s| r.memory.is_some() || s != -1);
    if let Some(swap) = memory_swap.filter(|&s| s != -1) {
        match r.memory {
            None => {
                return Err(Error::invalid(
                    "resources",
                    "a memory-swap limit needs a memory limit too",
                ));
            }
            Some(limit) if swap < limit => {
                return Err(Error::invalid(
                    "resources",
                    format!("memory-swap ({swap}) is less than memory ({limit})"),
                ));
            }
            Some(_) => {}
        }
    }
    if r.memory.is_some() || r.memory_reservation.is_some() || memory_swap.is_some() {
        let mut m = LinuxMemoryBuilder::default();
        if let Some(limit) = r.memory {
            m = m.limit(limit);
            let swap = match memory_swap {
                Some(s) => s,
                None => limit.saturating_mul(2),
            };
            m = m.swap(swap);
        }
        if let Some(res) = r.memory_reservation {
            m = m.reservation(res);
        }
        b = b.memory(m.build().map_err(bad)?);
    }
    if r.cpu_quota.is_some()
        || r.cpu_shares.is_some()
        || r.cpuset_cpus.is_some()
        || r.cpuset_mems.is_some()
    {
        let mut c = LinuxCpuBuilder::default();
        if let Some(q) = r.cpu_quota {
            c = c.quota(q).period(r.cpu_period.unwrap_or(100_000));
        }
        if let Some(s) = r.cpu_shares {
            c = c.shares(s);
        }
        if let Some(cpus) = &r.cpuset_cpus {
            c = c.cpus(cpus.clone());
        }
        if let Some(mems) = &r.cpuset_mems {
            c = c.mems(mems.clone());
        }
        b = b.cpu(c.build().map_err(bad)?);
    }
    if let Some(limit) = r.pids_limit {
        b = b.pids(
            LinuxPidsBuilder::default()
                .limit(if limit > 0 { limit } else { -1 })
                .build()
                .map_err(bad)?,
        );
    }
    b.build().map_err(bad)
}

/// The folders holding a container's accounting files.
#[derive(Debug, Clone, PartialEq)]
pub enum CgroupPaths {
    /// One folder per controller (v1 and hybrid).
    V1 {
        memory: Option<PathBuf>,
        cpuacct: Option<PathBuf>,
        pids: Option<PathBuf>,
    },
    /// The unified hierarchy.
    V2(PathBuf),
}

impl CgroupPaths {
    /// v2 when `root` itself is cgroup2; otherwise each v1 controller's
    /// mount point (from `/proc/self/mountinfo`) joined with the path.
    pub fn discover(root: &Path, id: &str) -> Self {
        let rel = cgroup_path(id);
        let rel = rel.strip_prefix("/").unwrap_or(&rel);
        if root.join("cgroup.controllers").exists() {
            return CgroupPaths::V2(root.join(rel));
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let find = |ctl: &str| v1_mount_point(&mountinfo, ctl).map(|m| m.join(rel));
        CgroupPaths::V1 {
            memory: find("memory"),
            cpuacct: find("cpuacct"),
            pids: find("pids"),
        }
    }

    fn memory_dir(&self) -> Option<&Path> {
        match self {
            CgroupPaths::V1 { memory, .. } => memory.as_deref(),
            CgroupPaths::V2(p) => Some(p),
        }
    }

    /// How many times the kernel OOM-killed a task in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        let (file, dir) = match self {
            CgroupPaths::V1 { memory, .. } => ("memory.oom_control", memory.as_deref()),
            CgroupPaths::V2(p) => ("memory.events", Some(p.as_path())),
        };
        dir.and_then(|d| fs::read_to_string(d.join(file)).ok())
            .and_then(|t| keyed(&t, "oom_kill"))
            .unwrap_or(0)
    }

    /// One reading of the counters `stats` shows.
    pub fn sample(&self) -> CgroupSample {
        let read = |dir: Option<&Path>, file: &str| -> Option<String> {
            fs::read_to_string(dir?.join(file)).ok()
        };
        let num = |s: Option<String>| s.and_then(|s| s.trim().parse::<u64>().ok());
        let mem = self.memory_dir();
        match self {
            CgroupPaths::V1 { cpuacct, pids, .. } => {
                let usage = num(read(mem, "memory.usage_in_bytes")).unwrap_or(0);
                let inactive = read(mem, "memory.stat")
                    .and_then(|t| keyed(&t, "total_inactive_file"))
                    .unwrap_or(0);
                // v1 reports "no limit" as a huge page-rounded number.
                let limit = num(read(mem, "memory.limit_in_bytes")).filter(|&l| l < 1 << 62);
                CgroupSample {
                    cpu_usage_ns: num(read(cpuacct.as_deref(), "cpuacct.usage")).unwrap_or(0),
                    memory_usage: usage.saturating_sub(inactive),
                    memory_limit: limit,
                    pids: num(read(pids.as_deref(), "pids.current")).unwrap_or(0),
                }
            }
            CgroupPaths::V2(dir) => {
                let dir = Some(dir.as_path());
                let usage = num(read(dir, "memory.current")).unwrap_or(0);
                let inactive = read(dir, "memory.stat")
                    .and_then(|t| keyed(&t, "inactive_file"))
                    .unwrap_or(0);
                CgroupSample {
                    cpu_usage_ns: read(dir, "cpu.stat")
                        .and_then(|t| keyed(&t, "usage_usec"))
                        .unwrap_or(0)
                        * 1000,
                    memory_usage: usage.saturating_sub(inactive),
                    memory_limit: num(read(dir, "memory.max")),
                    pids: num(read(dir, "pids.current")).unwrap_or(0),
                }
            }
        }
    }
}

/// The mount point of the v1 hierarchy that has `controller`.
pub(crate) fn v1_mount_point(mountinfo: &str, controller: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let mut post = post.split_whitespace();
        if post.next()? != "cgroup" {
            return None;
        }
        let opts = post.nth(1)?;
        if !opts.split(',').any(|o| o == controller) {
            return None;
        }
        pre.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// `key value` lines (memory.stat, memory.events, cpu.stat, oom_control).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// Counters read at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CgroupSample {
    /// Total CPU time used, nanoseconds.
    pub cpu_usage_ns: u64,
    /// Bytes, without inactive page cache (what `docker stats` shows).
    pub memory_usage: u64,
    /// Bytes; `None` when unlimited.
    pub memory_limit: Option<u64>,
    pub pids: u64,
}

/// CPU % between two samples `wall_ns` apart: 100 means one full CPU, as
/// `docker stats` reports it.
pub fn cpu_percent(prev_ns: u64, cur_ns: u64, wall_ns: u64) -> f64 {
    if wall_ns == 0 || cur_ns < prev_ns {
        return 0.0;
    }
    (cur_ns - prev_ns) as f64 / wall_ns as f64 * 100.0
}

#[cfg(test)]
#[path = "cgroup_tests.rs"]
mod layout_tests;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cpu_percent_is_usage_over_wall_time() {
        assert_eq!(cpu_percent(0, 500_000_000, 1_000_000_000), 50.0);
        assert_eq!(cpu_percent(1_000, 2_001_000, 1_000_000_000), 0.2);
        assert_eq!(cpu_percent(0, 2_000_000_000, 1_000_000_000), 200.0);
        assert_eq!(cpu_percent(5, 4, 10), 0.0);
        assert_eq!(cpu_percent(0, 4, 0), 0.0);
    }

    #[test]
    fn v2_sample_and_oom_from_files() {
        let d = tempfile::tempdir().unwrap();
        let w = |f: &str, t: &str| fs::write(d.path().join(f), t).unwrap();
        w("cpu.stat", "usage_usec 1500\nuser_usec 1000\n");
        w("memory.current", "1000000\n");
        w("memory.stat", "anon 5\ninactive_file 1000\n");
        w("memory.max", "max\n");
        w("pids.current", "3\n");
        w("memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n");
        let p = CgroupPaths::V2(d.path().to_owned());
        assert_eq!(
            p.sample(),
            CgroupSample {
                cpu_usage_ns: 1_500_000,
                memory_usage: 999_000,
                memory_limit: None,
                pids: 3
            }
        );
        assert_eq!(p.oom_kills(), 1);
    }

    #[test]
    fn v1_sample_and_oom_from_files() {
        let d = tempfile::tempdir().unwrap();
        let w = |f: &str, t: &str| fs::write(d.path().join(f), t).unwrap();
        w("cpuacct.usage", "42\n");
        w("memory.usage_in_bytes", "4096\n");
        w("memory.stat", "cache 0\ntotal_inactive_file 96\n");
        w("memory.limit_in_bytes", "33554432\n");
        w("pids.current", "2\n");
        w(
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        );
        let dir = Some(d.path().to_owned());
        let p = CgroupPaths::V1 {
            memory: dir.clone(),
            cpuacct: dir.clone(),
            pids: dir,
        };
        let s = p.sample();
        assert_eq!(
            (s.cpu_usage_ns, s.memory_usage, s.memory_limit, s.pids),
            (42, 4000, Some(33554432), 2)
        );
        assert_eq!(p.oom_kills(), 2);
    }

    #[test]
    fn v1_mount_points_come_from_mountinfo() {
        let mi = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                  33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n\
                  41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            v1_mount_point(mi, "cpuacct"),
            Some(PathBuf::from("/sys/fs/cgroup/cpuacct"))
        );
        assert_eq!(
            v1_mount_point(mi, "cpu"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu"))
        );
        assert_eq!(v1_mount_point(mi, "memory"), None);
    }

    #[test]
    fn resources_render_like_docker() {
        let mut r = Resources {
            memory: Some(64 << 20),
            pids_limit: Some(20),
            ..Default::default()
        };
        r.set_cpus(0.5);
        let l = to_linux_resources(&r).unwrap();
        let m = l.memory().as_ref().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(64 << 20), Some(128 << 20)));
        let c = l.cpu().as_ref().unwrap();
        assert_eq!((c.quota(), c.period()), (Some(50_000), Some(100_000)));
        assert_eq!(l.pids().as_ref().unwrap().limit(), 20);
        assert_eq!(r.nano_cpus(), 500_000_000);
        assert!(
            to_linux_resources(&Resources::default())
                .unwrap()
                .memory()
                .is_none()
        );
    }
}
