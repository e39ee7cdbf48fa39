//! The cgroup file systems, written directly: where a container's cgroup
//! lives (one dir per v1 hierarchy, or one dir under the v2 root), joining
//! it, its limits as a list of file writes, and its removal.
//!
//! Why not youki's libcgroups, which berth used first: on a v1 host its
//! manager reads `/proc/self/mountinfo` and `/proc/self/cgroup` through a
//! checked procfs handle once per controller when it is created (about
//! 1,200 system calls per container, twice with `--rm`), writes device
//! rules to a cgroup that allows every device anyway, and sleeps 10 ms
//! between attempts to remove a busy cgroup. Together that was the largest
//! part of a container's start (bench/results/run.md). Here one read of
//! mountinfo finds every hierarchy, and the limits are computed as
//! `(file, value)` pairs ([`v1_writes`], [`v2_writes`]) before anything
//! is written, so the kernel formats are unit-tested on their own.

use std::fs;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};

/// The v1 controllers a container joins. Named hierarchies
/// (`name=systemd`) carry no controller and are left alone.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
];

/// How long [`Layout::remove`] keeps trying while the cgroup is busy
/// (tasks that were killed but are not reaped yet).
const REMOVE_PATIENCE: Duration = Duration::from_secs(5);

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    /// The controllers mounted together there (`cpu`, `cpuacct`).
    pub controllers: Vec<String>,
    pub mount: PathBuf,
}

/// Where one container's cgroup lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `<mount>/<rel>` in every v1 hierarchy.
    V1 {
        hierarchies: Vec<Hierarchy>,
        rel: PathBuf,
    },
    /// `<root>/<rel>` in the unified hierarchy.
    V2 { root: PathBuf, rel: PathBuf },
}

/// One write a limit needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    /// The controller that owns the file (on v1, the hierarchy it is in).
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
    /// The file may be missing (swap accounting disabled in the kernel):
    /// then the write is skipped with a warning, as Docker does.
    pub optional: bool,
}

impl Write {
    fn new(controller: &'static str, file: &'static str, value: impl ToString) -> Self {
        Write {
            controller,
            file,
            value: value.to_string(),
            optional: false,
        }
    }

    fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

/// The v1 hierarchies in `/proc/self/mountinfo` text, each once.
pub(crate) fn v1_hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split_whitespace();
        if post.next() != Some("cgroup") {
            continue;
        }
        let Some(options) = post.nth(1) else { continue };
        let controllers: Vec<String> = options
            .split(',')
            .filter(|o| V1_CONTROLLERS.contains(o))
            .map(str::to_owned)
            .collect();
        let Some(mount) = pre.split_whitespace().nth(4) else {
            continue;
        };
        // The same hierarchy may be mounted twice (bind mounts): the
        // first mount point serves.
        if controllers.is_empty() || out.iter().any(|h| h.controllers == controllers) {
            continue;
        }
        out.push(Hierarchy {
            controllers,
            mount: PathBuf::from(mount),
        });
    }
    out
}

impl Layout {
    /// Every dir of the container's cgroup (one per v1 hierarchy).
    pub fn dirs(&self) -> Vec<PathBuf> {
        match self {
            Layout::V1 { hierarchies, rel } => {
                hierarchies.iter().map(|h| h.mount.join(rel)).collect()
            }
            Layout::V2 { root, rel } => vec![root.join(rel)],
        }
    }

    /// The dir holding `controller`'s files, if that controller is there.
    pub fn dir_of(&self, controller: &str) -> Option<PathBuf> {
        match self {
            Layout::V1 { hierarchies, rel } => hierarchies
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == controller))
                .map(|h| h.mount.join(rel)),
            Layout::V2 { root, rel } => Some(root.join(rel)),
        }
    }

    /// Creates the cgroup where missing and moves `pid` in.
    pub fn join(&self, pid: i32) -> Result<()> {
        self.create()?;
        self.enter(pid)
    }

    /// Moves `pid` into the cgroup, which must exist ([`Layout::create`]).
    pub fn enter(&self, pid: i32) -> Result<()> {
        for dir in self.dirs() {
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Creates the cgroup where missing, ready to take tasks and limits.
    pub fn create(&self) -> Result<()> {
        match self {
            Layout::V1 { hierarchies, rel } => {
                for h in hierarchies {
                    let dir = h.mount.join(rel);
                    fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
                    if h.controllers.iter().any(|c| c == "cpuset") {
                        init_cpuset(&h.mount, rel)?;
                    }
                }
                Ok(())
            }
            Layout::V2 { root, rel } => {
                let mut dir = root.clone();
                for component in rel.components() {
                    let Component::Normal(name) = component else {
                        continue;
                    };
                    // A child gets the controllers its parent delegates.
                    enable_controllers(&dir);
                    dir.push(name);
                    match fs::create_dir(&dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(io_err("create", &dir, e)),
                    }
                }
                Ok(())
            }
        }
    }

    /// The writes that set `linux` (and the v1 OOM-killer switch) here.
    pub fn writes(&self, linux: &LinuxResources, disable_oom_killer: bool) -> Result<Vec<Write>> {
        match self {
            Layout::V1 { .. } => v1_writes(linux, disable_oom_killer),
            Layout::V2 { .. } => {
                if disable_oom_killer {
                    tracing::debug!("cgroup v2 has no switch for the OOM killer; not set");
                }
                v2_writes(linux)
            }
        }
    }

    /// Performs `writes` in order.
    pub fn apply(&self, writes: &[Write]) -> Result<()> {
        for w in writes {
            let Some(dir) = self.dir_of(w.controller) else {
                return Err(Error::Cgroup {
                    action: "apply limits to",
                    path: self
                        .dirs()
                        .first()
                        .map(|d| d.display().to_string())
                        .unwrap_or_default(),
                    reason: format!(
                        "setting {} needs the {} controller, which is not mounted on this host",
                        w.file, w.controller
                    ),
                });
            };
            let file = dir.join(w.file);
            if !file.exists() {
                if w.optional {
                    tracing::warn!(
                        file = %file.display(),
                        "the kernel does not account swap (no {}): memory limited without swap",
                        w.file
                    );
                    continue;
                }
                return Err(Error::Cgroup {
                    action: "apply limits to",
                    path: file.display().to_string(),
                    reason: match self {
                        Layout::V1 { .. } => "the file does not exist".to_owned(),
                        Layout::V2 { .. } => format!(
                            "the file does not exist: is the {} controller enabled in the parent's cgroup.subtree_control?",
                            w.controller
                        ),
                    },
                });
            }
            write_file(&file, &w.value)?;
        }
        Ok(())
    }

    /// Kills whatever is still inside, then removes the cgroup's dirs.
    /// Idempotent: a cgroup that is gone is removed.
    pub fn remove(&self) -> Result<()> {
        let deadline = Instant::now() + REMOVE_PATIENCE;
        self.kill_all();
        for dir in self.dirs() {
            let mut pause = Duration::from_millis(1);
            loop {
                match fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        if Instant::now() > deadline {
                            return Err(Error::Cgroup {
                                action: "remove",
                                path: dir.display().to_string(),
                                reason: format!(
                                    "still busy after {} s (tasks left: {:?})",
                                    REMOVE_PATIENCE.as_secs(),
                                    read_procs(&dir)
                                ),
                            });
                        }
                        // Killed tasks leave the cgroup when they are
                        // reaped; one that forked meanwhile is killed here.
                        for pid in read_procs(&dir) {
                            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                        }
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_millis(50));
                    }
                    Err(e) => return Err(io_err("remove", &dir, e)),
                }
            }
        }
        Ok(())
    }

    /// SIGKILL to every task inside: `cgroup.kill` on v2 (kernel 5.14+;
    /// atomic, so a fork bomb cannot outrun it), otherwise each task in
    /// `cgroup.procs` with the group frozen meanwhile when the freezer is
    /// there, for the same reason.
    fn kill_all(&self) {
        let Some(dir) = self.dirs().into_iter().find(|d| d.exists()) else {
            return;
        };
        let freeze = match self {
            Layout::V2 { .. } => {
                if write_file(&dir.join("cgroup.kill"), "1").is_ok() {
                    return;
                }
                Some((dir.join("cgroup.freeze"), "1", "0"))
            }
            Layout::V1 { .. } => self
                .dir_of("freezer")
                .map(|d| (d.join("freezer.state"), "FROZEN", "THAWED")),
        };
        if read_procs(&dir).is_empty() {
            return;
        }
        // Frozen tasks cannot fork; killed, they die once thawed, so the
        // thaw follows whenever the freeze was asked for.
        let asked = freeze
            .as_ref()
            .is_some_and(|(file, on, _)| write_file(file, on).is_ok());
        if asked {
            wait_until(|| match self {
                Layout::V1 { .. } => freeze
                    .as_ref()
                    .and_then(|(file, _, _)| fs::read_to_string(file).ok())
                    .is_some_and(|t| t.trim() == "FROZEN"),
                // cgroup.freeze echoes the request; cgroup.events says
                // when every task has stopped.
                Layout::V2 { .. } => fs::read_to_string(dir.join("cgroup.events"))
                    .is_ok_and(|t| t.lines().any(|l| l == "frozen 1")),
            });
        }
        for pid in read_procs(&dir) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let (true, Some((file, _, off))) = (asked, &freeze) {
            let _ = write_file(file, off);
        }
    }
}

/// Polls `done` for up to half a second.
fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// v1 refuses tasks in a cpuset with no cpus or mems: each level from the
/// hierarchy's root down gets its parent's when it has none yet.
fn init_cpuset(mount: &Path, rel: &Path) -> Result<()> {
    let mut parent = mount.to_path_buf();
    for component in rel.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        let dir = parent.join(name);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = fs::read_to_string(dir.join(file)).unwrap_or_default();
            if own.trim().is_empty() {
                let from = parent.join(file);
                let inherited = fs::read_to_string(&from).map_err(|e| io_err("read", &from, e))?;
                write_file(&dir.join(file), inherited.trim())?;
            }
        }
        parent = dir;
    }
    Ok(())
}

/// Turns on, in `dir/cgroup.subtree_control`, every controller `dir` has
/// and does not delegate yet. Best effort, like libcgroups and runc: a
/// controller that cannot be enabled shows up as a missing file when a
/// limit needs it ([`Layout::apply`]).
fn enable_controllers(dir: &Path) {
    let have = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let on = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let missing: Vec<&str> = have
        .split_whitespace()
        .filter(|c| !on.split_whitespace().any(|o| o == *c))
        .collect();
    if missing.is_empty() {
        return;
    }
    let file = dir.join("cgroup.subtree_control");
    let all = missing
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    // One write for all; the kernel takes it whole or not at all, so on a
    // refusal each is tried alone.
    if write_file(&file, &all).is_ok() {
        return;
    }
    for c in missing {
        if let Err(e) = write_file(&file, &format!("+{c}")) {
            tracing::debug!("cannot enable {c}: {e}");
        }
    }
}

/// The pids in `dir/cgroup.procs` (none when it cannot be read).
fn read_procs(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// One write to a cgroup file, without create or truncate: cgroupfs takes
/// each write whole as the new value.
fn write_file(path: &Path, value: &str) -> Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| Error::Cgroup {
            action: "write",
            path: path.display().to_string(),
            reason: format!("{value:?}: {e}"),
        })
}

fn io_err(action: &'static str, path: &Path, e: std::io::Error) -> Error {
    Error::Cgroup {
        action,
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The writes for `linux` on cgroup v1. Zero values mean "not set", as in
/// libcgroups and runc; memory goes before memory+swap, which must never
/// be below it (the cgroup is new, so both start unlimited).
pub(crate) fn v1_writes(linux: &LinuxResources, disable_oom_killer: bool) -> Result<Vec<Write>> {
    let mut w = Vec::new();
    if let Some(m) = linux.memory() {
        if let Some(limit) = m.limit().filter(|l| *l != 0) {
            w.push(Write::new("memory", "memory.limit_in_bytes", limit));
        }
        if let Some(swap) = m.swap().filter(|s| *s != 0) {
            w.push(Write::new("memory", "memory.memsw.limit_in_bytes", swap).optional());
        }
        if let Some(reservation) = m.reservation().filter(|r| *r != 0) {
            w.push(Write::new(
                "memory",
                "memory.soft_limit_in_bytes",
                reservation,
            ));
        }
        if let Some(swappiness) = m.swappiness() {
            if swappiness > 100 {
                return Err(Error::invalid(
                    "memory-swappiness",
                    format!("{swappiness} is not in 0..=100"),
                ));
            }
            w.push(Write::new("memory", "memory.swappiness", swappiness));
        }
    }
    if disable_oom_killer {
        w.push(Write::new("memory", "memory.oom_control", 1));
    }
    if let Some(c) = linux.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s != 0) {
            w.push(Write::new("cpu", "cpu.shares", shares));
        }
        // The period first: the quota is checked against it.
        if let Some(period) = c.period().filter(|p| *p != 0) {
            w.push(Write::new("cpu", "cpu.cfs_period_us", period));
        }
        if let Some(quota) = c.quota().filter(|q| *q != 0) {
            w.push(Write::new("cpu", "cpu.cfs_quota_us", quota));
        }
        if let Some(cpus) = c.cpus() {
            w.push(Write::new("cpuset", "cpuset.cpus", cpus));
        }
        if let Some(mems) = c.mems() {
            w.push(Write::new("cpuset", "cpuset.mems", mems));
        }
    }
    if let Some(p) = linux.pids() {
        w.push(Write::new("pids", "pids.max", pids_max(p.limit())));
    }
    for d in linux.devices().iter().flatten() {
        let file = if d.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        w.push(Write::new("devices", file, d));
    }
    Ok(w)
}

/// The writes for `linux` on cgroup v2: memory+swap becomes swap alone
/// (`memory.swap.max` = swap − memory), shares become a weight, quota and
/// period one `cpu.max`. Device rules need an eBPF program on v2, which
/// berth does not load yet: they are left out, as libcgroups did without
/// its `cgroupsv2_devices` feature.
pub(crate) fn v2_writes(linux: &LinuxResources) -> Result<Vec<Write>> {
    let mut w = Vec::new();
    if let Some(m) = linux.memory() {
        let limit = m.limit().filter(|l| *l != 0);
        if let Some(limit) = limit {
            w.push(Write::new("memory", "memory.max", max_or(limit)));
        }
        if let Some(swap) = m.swap().filter(|s| *s != 0) {
            let value = match (limit, swap) {
                (_, -1) => "max".to_owned(),
                (Some(limit), swap) if limit > 0 && swap >= limit => (swap - limit).to_string(),
                (Some(limit), swap) if limit > 0 => {
                    return Err(Error::invalid(
                        "resources",
                        format!("memory-swap ({swap}) is less than memory ({limit})"),
                    ));
                }
                _ => {
                    return Err(Error::invalid(
                        "resources",
                        "a memory-swap limit needs a memory limit too",
                    ));
                }
            };
            w.push(Write::new("memory", "memory.swap.max", value).optional());
        }
        if let Some(reservation) = m.reservation().filter(|r| *r != 0) {
            w.push(Write::new("memory", "memory.low", max_or(reservation)));
        }
        if m.swappiness().is_some() {
            tracing::debug!("cgroup v2 has no per-cgroup swappiness; not set");
        }
    }
    if let Some(c) = linux.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s != 0) {
            w.push(Write::new("cpu", "cpu.weight", shares_to_weight(shares)));
        }
        let quota = c.quota().filter(|q| *q != 0);
        let max = match (quota, c.period().filter(|p| *p != 0)) {
            (Some(q), Some(p)) if q > 0 => Some(format!("{q} {p}")),
            (Some(_), Some(p)) | (None, Some(p)) => Some(format!("max {p}")),
            (Some(q), None) if q > 0 => Some(q.to_string()),
            (Some(_), None) => Some("max".to_owned()),
            (None, None) => None,
        };
        if let Some(max) = max {
            w.push(Write::new("cpu", "cpu.max", max));
        }
        if let Some(cpus) = c.cpus() {
            w.push(Write::new("cpuset", "cpuset.cpus", cpus));
        }
        if let Some(mems) = c.mems() {
            w.push(Write::new("cpuset", "cpuset.mems", mems));
        }
    }
    if let Some(p) = linux.pids() {
        w.push(Write::new("pids", "pids.max", pids_max(p.limit())));
    }
    if linux.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        tracing::debug!("device rules need eBPF on cgroup v2; not applied");
    }
    Ok(w)
}

/// A byte value, or `max` for -1 (unlimited).
fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_owned()
    } else {
        v.to_string()
    }
}

/// Docker's `--pids-limit`: 0 or less is no limit.
fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_owned()
    }
}

/// v1 `cpu.shares` (2..=262144, default 1024) as a v2 `cpu.weight`
/// (1..=10000, default 100), on the logarithmic scale of runc >= 1.3.2,
/// crun and libcgroups 0.7 that maps the defaults onto each other (the
/// older linear formula made 1024 a weight of 39).
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
}
