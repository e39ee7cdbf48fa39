//! The cgroup v2 and v1 writers against temp directories laid out like
//! the cgroup file systems. (The real v2 kernel interface is exercised in
//! a VM by tests/cgroup2_vm.rs, since this machine binds its controllers
//! to v1; the real v1 one by the runtime e2e tests.)
//!
//! The v2 imitation: `cgroup.controllers` and `cgroup.subtree_control` at
//! the root, and the container's dir `berth/<id>` with every file a limit
//! may write, all **empty**. Files are opened without creating or
//! truncating (a cgroupfs file takes each write whole), so an empty file
//! shows exactly the last value written, and a file that is still empty
//! was not written at all.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::*;

const ID: &str = "c0ffee";

/// Every file of the container's dir the v2 manager could write for the
/// limits berth sets.
const LIMIT_FILES: &[&str] = &[
    "cgroup.procs",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "memory.max",
    "memory.low",
    "memory.swap.max",
    "pids.max",
];

struct FakeV2 {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dir: PathBuf,
}

impl FakeV2 {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cgroup");
        let dir = root.join(PARENT).join(ID);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids\n",
        )
        .unwrap();
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        fs::write(root.join(PARENT).join("cgroup.subtree_control"), "").unwrap();
        for f in LIMIT_FILES {
            fs::write(dir.join(f), "").unwrap();
        }
        FakeV2 {
            _tmp: tmp,
            root,
            dir,
        }
    }

    fn cgroup(&self) -> Cgroup {
        Cgroup::open_unified(&self.root, ID).unwrap()
    }

    /// The files of the container's dir that are not empty, with their text.
    fn written(&self) -> BTreeMap<String, String> {
        fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read_to_string(e.path()).unwrap(),
                )
            })
            .filter(|(_, text)| !text.is_empty())
            .collect()
    }

    /// Every file name in the container's dir.
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const MIB: i64 = 1 << 20;

fn full() -> Resources {
    let mut r = Resources {
        memory: Some(32 * MIB),
        memory_reservation: Some(16 * MIB),
        memory_swap: Some(64 * MIB),
        cpu_shares: Some(512),
        cpuset_cpus: Some("0".into()),
        pids_limit: Some(20),
        ..Default::default()
    };
    r.set_cpus(0.5);
    r
}

/// Applies `r` on a fresh imitation and returns what was written.
fn apply(r: &Resources) -> BTreeMap<String, String> {
    let fake = FakeV2::new();
    fake.cgroup().apply(r).unwrap();
    fake.written()
}

#[test]
fn open_unified_is_the_v2_layout_on_that_root() {
    let fake = FakeV2::new();
    let cg = fake.cgroup();
    assert_eq!(
        cg.layout,
        Layout::V2 {
            root: fake.root.clone(),
            rel: PathBuf::from("berth").join(ID)
        }
    );
    // The stats side agrees on where the files are.
    assert_eq!(cg.paths(), CgroupPaths::V2(fake.dir.clone()));
}

#[test]
fn v2_apply_writes_every_limit_in_the_kernel_format() {
    let fake = FakeV2::new();
    let cg = fake.cgroup();
    cg.add_task(4242).unwrap();
    cg.apply(&full()).unwrap();
    assert_eq!(
        fake.written(),
        map(&[
            ("cgroup.procs", "4242"),
            // quota then period, microseconds.
            ("cpu.max", "50000 100000"),
            // runc >= 1.3.2 and crun map shares to a weight on a log
            // scale that keeps the defaults aligned (1024 -> 100); the
            // old linear 1 + (s-2)*9999/262142 gave 20.
            ("cpu.weight", "59"),
            ("cpuset.cpus", "0"),
            ("memory.low", "16777216"),
            ("memory.max", "33554432"),
            // v2 counts swap alone: memory+swap 64 MiB - memory 32 MiB.
            ("memory.swap.max", "33554432"),
            ("pids.max", "20"),
        ])
    );
    // Nothing created beside the imitation's own files.
    let mut expected: Vec<String> = LIMIT_FILES.iter().map(|f| (*f).to_owned()).collect();
    expected.sort();
    assert_eq!(fake.names(), expected);
    // The stats reader sees the limit the writer set.
    assert_eq!(cg.paths().sample().memory_limit, Some(32 * MIB as u64));
}

#[test]
fn v2_apply_of_nothing_writes_nothing() {
    let fake = FakeV2::new();
    let cg = fake.cgroup();
    cg.apply(&Resources::default()).unwrap();
    assert_eq!(fake.written(), BTreeMap::new());
    // The root's files are untouched too.
    assert_eq!(
        fs::read_to_string(fake.root.join("cgroup.subtree_control")).unwrap(),
        ""
    );
}

#[test]
fn v2_unlimited_values_are_max() {
    let r = Resources {
        memory: Some(32 * MIB),
        memory_swap: Some(-1),
        pids_limit: Some(-1),
        ..Default::default()
    };
    assert_eq!(
        apply(&r),
        map(&[
            ("memory.max", "33554432"),
            ("memory.swap.max", "max"),
            ("pids.max", "max"),
        ])
    );
    // `--pids-limit 0` is unlimited in Docker (a literal 0 would let the
    // container run no task at all).
    let r = Resources {
        pids_limit: Some(0),
        ..Default::default()
    };
    assert_eq!(apply(&r), map(&[("pids.max", "max")]));
    // `--memory-swap -1` alone: nothing to write (it is the default).
    let r = Resources {
        memory_swap: Some(-1),
        ..Default::default()
    };
    assert_eq!(apply(&r), BTreeMap::new());
}

#[test]
fn v2_memory_alone_allows_as_much_swap_again() {
    let r = Resources {
        memory: Some(32 * MIB),
        ..Default::default()
    };
    assert_eq!(
        apply(&r),
        map(&[("memory.max", "33554432"), ("memory.swap.max", "33554432"),])
    );
}

#[test]
fn v2_memory_swap_equal_to_memory_is_no_swap() {
    let r = Resources {
        memory: Some(32 * MIB),
        memory_swap: Some(32 * MIB),
        ..Default::default()
    };
    assert_eq!(
        apply(&r),
        map(&[("memory.max", "33554432"), ("memory.swap.max", "0")])
    );
}

#[test]
fn v2_reservation_alone_is_memory_low() {
    let r = Resources {
        memory_reservation: Some(16 * MIB),
        ..Default::default()
    };
    assert_eq!(apply(&r), map(&[("memory.low", "16777216")]));
}

#[test]
fn v2_cpu_weight_from_shares() {
    for (shares, weight) in [(2, "1"), (512, "59"), (1024, "100"), (262_144, "10000")] {
        let r = Resources {
            cpu_shares: Some(shares),
            ..Default::default()
        };
        assert_eq!(apply(&r), map(&[("cpu.weight", weight)]), "shares {shares}");
    }
}

#[test]
fn v2_cpus_and_cpuset_mems() {
    let mut r = Resources {
        cpuset_cpus: Some("0-2,5".into()),
        cpuset_mems: Some("0".into()),
        ..Default::default()
    };
    r.set_cpus(1.5);
    assert_eq!(
        apply(&r),
        map(&[
            ("cpu.max", "150000 100000"),
            ("cpuset.cpus", "0-2,5"),
            ("cpuset.mems", "0"),
        ])
    );
}

#[test]
fn swap_without_memory_or_below_it_is_refused_up_front() {
    let alone = Resources {
        memory_swap: Some(64 * MIB),
        ..Default::default()
    };
    assert!(to_linux_resources(&alone).is_err());
    let below = Resources {
        memory: Some(64 * MIB),
        memory_swap: Some(32 * MIB),
        ..Default::default()
    };
    assert!(to_linux_resources(&below).is_err());
    // And nothing reaches the files.
    let fake = FakeV2::new();
    assert!(fake.cgroup().apply(&alone).is_err());
    assert_eq!(fake.written(), BTreeMap::new());
}

#[test]
fn v2_stats_read_a_numeric_limit_and_default_missing_files_to_zero() {
    let fake = FakeV2::new();
    let d = &fake.dir;
    let w = |f: &str, t: &str| fs::write(d.join(f), t).unwrap();
    w("memory.max", "33554432\n");
    w("memory.current", "8192\n");
    w("cpu.stat", "user_usec 7\nusage_usec 250\nsystem_usec 3\n");
    w("pids.current", "5\n");
    // oom_kill after oom: the key is matched whole.
    w("memory.events", "low 0\nhigh 0\nmax 9\noom 4\noom_kill 2\n");
    let p = CgroupPaths::discover(&fake.root, ID);
    assert_eq!(p, CgroupPaths::V2(d.clone()));
    assert_eq!(
        p.sample(),
        CgroupSample {
            cpu_usage_ns: 250_000,
            memory_usage: 8192,
            memory_limit: Some(32 * MIB as u64),
            pids: 5,
        }
    );
    assert_eq!(p.oom_kills(), 2);

    // A cgroup that is gone (or a controller that is not enabled).
    let gone = CgroupPaths::V2(fake.root.join("nope"));
    assert_eq!(gone.sample(), CgroupSample::default());
    assert_eq!(gone.oom_kills(), 0);
    // memory.events before any OOM-kill counter was exposed.
    w("memory.events", "low 0\nhigh 0\nmax 0\noom 0\n");
    assert_eq!(p.oom_kills(), 0);
}

#[test]
fn open_takes_v2_on_a_cgroup2_mount_and_v1_on_a_tmpfs() {
    // Opening writes nothing; the file system type of the root decides.
    let unified = Path::new("/sys/fs/cgroup/unified");
    if unified.join("cgroup.controllers").exists() {
        let cg = Cgroup::open(unified, ID).unwrap();
        assert!(matches!(cg.layout, Layout::V2 { .. }));
        let cg = Cgroup::open(Path::new("/sys/fs/cgroup"), ID).unwrap();
        let Layout::V1 { hierarchies, .. } = &cg.layout else {
            panic!("a tmpfs root is v1: {:?}", cg.layout);
        };
        assert!(
            hierarchies
                .iter()
                .any(|h| h.controllers.contains(&"memory".to_owned())),
            "{hierarchies:?}"
        );
        // The stats side finds the same memory dir as mountinfo says.
        assert_eq!(
            cg.paths(),
            CgroupPaths::discover(Path::new("/sys/fs/cgroup"), ID)
        );
    } else if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let cg = Cgroup::open(Path::new("/sys/fs/cgroup"), ID).unwrap();
        assert!(matches!(cg.layout, Layout::V2 { .. }));
    } else {
        eprintln!("SKIPPED: no cgroup file system at /sys/fs/cgroup");
    }
}

/// Two v1 hierarchies in a temp dir: `cpu,cpuacct` and `cpuset` plus
/// `memory` (and `pids` unless left out), their roots holding the files a
/// hierarchy root has, the container's dirs made by joining.
struct FakeV1 {
    _tmp: tempfile::TempDir,
    cg: Cgroup,
    mounts: Vec<PathBuf>,
}

impl FakeV1 {
    fn new(with_pids: bool) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut groups = vec![vec!["cpu", "cpuacct"], vec!["cpuset"], vec!["memory"]];
        if with_pids {
            groups.push(vec!["pids"]);
        }
        let mut hierarchies = Vec::new();
        let mut mounts = Vec::new();
        for g in groups {
            let mount = tmp.path().join(g.join(","));
            fs::create_dir_all(mount.join(PARENT).join(ID)).unwrap();
            fs::write(mount.join("cgroup.procs"), "").unwrap();
            if g.contains(&"cpuset") {
                fs::write(mount.join("cpuset.cpus"), "0-3\n").unwrap();
                fs::write(mount.join("cpuset.mems"), "0\n").unwrap();
                fs::write(mount.join(PARENT).join("cpuset.cpus"), "").unwrap();
                fs::write(mount.join(PARENT).join("cpuset.mems"), "").unwrap();
            }
            hierarchies.push(crate::cgroupfs::Hierarchy {
                controllers: g.iter().map(|c| (*c).to_owned()).collect(),
                mount: mount.clone(),
            });
            mounts.push(mount);
        }
        // Every file a limit writes, empty, as the kernel would have them.
        let files: &[(&str, &[&str])] = &[
            (
                "cpu,cpuacct",
                &["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
            ),
            ("cpuset", &["cpuset.cpus", "cpuset.mems"]),
            (
                "memory",
                &[
                    "memory.limit_in_bytes",
                    "memory.memsw.limit_in_bytes",
                    "memory.soft_limit_in_bytes",
                    "memory.oom_control",
                    "memory.swappiness",
                ],
            ),
            ("pids", &["pids.max"]),
        ];
        for (dir, names) in files {
            let d = tmp.path().join(dir).join(PARENT).join(ID);
            if d.exists() {
                fs::write(d.join("cgroup.procs"), "").unwrap();
                for n in *names {
                    fs::write(d.join(n), "").unwrap();
                }
            }
        }
        let cg = Cgroup {
            id: ID.to_owned(),
            layout: Layout::V1 {
                hierarchies,
                rel: PathBuf::from(PARENT).join(ID),
            },
        };
        FakeV1 {
            _tmp: tmp,
            cg,
            mounts,
        }
    }

    /// The non-empty files of the container's dir in every hierarchy, as
    /// `hierarchy/file`.
    fn written(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for m in &self.mounts {
            let dir = m.join(PARENT).join(ID);
            for e in fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                let text = fs::read_to_string(e.path()).unwrap();
                if !text.is_empty() {
                    out.insert(
                        format!(
                            "{}/{}",
                            m.file_name().unwrap().to_string_lossy(),
                            e.file_name().to_string_lossy()
                        ),
                        text,
                    );
                }
            }
        }
        out
    }
}

#[test]
fn v1_join_writes_the_pid_everywhere_and_gives_the_cpuset_its_parents_cpus() {
    let fake = FakeV1::new(true);
    fake.cg.add_task(4242).unwrap();
    assert_eq!(
        fake.written(),
        map(&[
            ("cpu,cpuacct/cgroup.procs", "4242"),
            ("cpuset/cgroup.procs", "4242"),
            // An empty cpuset refuses tasks: the root's values, down each
            // level (berth/ too).
            ("cpuset/cpuset.cpus", "0-3"),
            ("cpuset/cpuset.mems", "0"),
            ("memory/cgroup.procs", "4242"),
            ("pids/cgroup.procs", "4242"),
        ])
    );
    let berth = fake.mounts[1].join(PARENT);
    assert_eq!(
        fs::read_to_string(berth.join("cpuset.cpus")).unwrap(),
        "0-3"
    );
}

#[test]
fn v1_apply_writes_every_limit_in_the_kernel_format() {
    let fake = FakeV1::new(true);
    fake.cg.apply(&full()).unwrap();
    assert_eq!(
        fake.written(),
        map(&[
            ("cpu,cpuacct/cpu.cfs_period_us", "100000"),
            ("cpu,cpuacct/cpu.cfs_quota_us", "50000"),
            ("cpu,cpuacct/cpu.shares", "512"),
            ("cpuset/cpuset.cpus", "0"),
            ("memory/memory.limit_in_bytes", "33554432"),
            // v1 counts memory and swap together.
            ("memory/memory.memsw.limit_in_bytes", "67108864"),
            ("memory/memory.soft_limit_in_bytes", "16777216"),
            ("pids/pids.max", "20"),
        ])
    );
    // The readers find the limit where the writer put it.
    assert_eq!(
        fake.cg.paths().memory_dir(),
        Some(fake.mounts[2].join(PARENT).join(ID).as_path())
    );
}

#[test]
fn v1_writes_come_in_an_order_the_kernel_accepts() {
    let linux = to_linux_resources(&full()).unwrap();
    let files: Vec<&str> = crate::cgroupfs::v1_writes(&linux, false)
        .unwrap()
        .iter()
        .map(|w| w.file)
        .collect();
    let pos = |f: &str| files.iter().position(|x| *x == f).unwrap();
    // memsw may never be below the memory limit; the quota is checked
    // against the period.
    assert!(pos("memory.limit_in_bytes") < pos("memory.memsw.limit_in_bytes"));
    assert!(pos("cpu.cfs_period_us") < pos("cpu.cfs_quota_us"));
}

#[test]
fn v1_without_swap_accounting_limits_memory_alone() {
    let fake = FakeV1::new(true);
    let memsw = fake.mounts[2]
        .join(PARENT)
        .join(ID)
        .join("memory.memsw.limit_in_bytes");
    fs::remove_file(&memsw).unwrap();
    let r = Resources {
        memory: Some(32 * MIB),
        ..Default::default()
    };
    fake.cg.apply(&r).unwrap();
    assert_eq!(
        fake.written(),
        map(&[("memory/memory.limit_in_bytes", "33554432")])
    );
    assert!(!memsw.exists(), "the writer must not create cgroup files");
}

#[test]
fn v1_limit_for_a_missing_controller_is_an_error_naming_it() {
    let fake = FakeV1::new(false);
    let r = Resources {
        pids_limit: Some(10),
        ..Default::default()
    };
    let err = fake.cg.apply(&r).unwrap_err().to_string();
    assert!(err.contains("pids controller"), "{err}");
    assert!(err.contains("pids.max"), "{err}");
}

#[test]
fn v1_oom_killer_switch_and_swappiness() {
    let mut linux = to_linux_resources(&Resources {
        memory: Some(32 * MIB),
        ..Default::default()
    })
    .unwrap();
    let mut m = linux.memory().unwrap();
    m.set_swappiness(Some(10));
    linux.set_memory(Some(m));
    let fake = FakeV1::new(true);
    fake.cg.apply_linux(&linux, true).unwrap();
    let w = fake.written();
    assert_eq!(w["memory/memory.oom_control"], "1");
    assert_eq!(w["memory/memory.swappiness"], "10");
    m = linux.memory().unwrap();
    m.set_swappiness(Some(101));
    linux.set_memory(Some(m));
    assert!(fake.cg.apply_linux(&linux, false).is_err());
}

#[test]
fn v1_hierarchies_come_from_mountinfo_once_each() {
    let mi = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n\
              32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
              35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
              40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
              41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
              90 35 0:32 / /mnt/again rw - cgroup cgroup rw,memory\n";
    let h = crate::cgroupfs::v1_hierarchies(mi);
    let got: Vec<(Vec<String>, PathBuf)> =
        h.into_iter().map(|h| (h.controllers, h.mount)).collect();
    assert_eq!(
        got,
        vec![
            (
                vec!["cpu".to_owned(), "cpuacct".to_owned()],
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
            ),
            (
                vec!["memory".to_owned()],
                PathBuf::from("/sys/fs/cgroup/memory")
            ),
        ]
    );
}

#[test]
fn shares_map_to_weights_with_the_defaults_aligned() {
    use crate::cgroupfs::shares_to_weight;
    assert_eq!(shares_to_weight(1024), 100);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1_000_000), 10_000);
    // Monotonic in between.
    let mut last = 0;
    for s in (2..262_144).step_by(997) {
        let w = shares_to_weight(s);
        assert!(w >= last, "{s} -> {w} after {last}");
        last = w;
    }
}
