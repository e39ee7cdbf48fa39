//! The cgroup v2 path, run through libcgroups' own v2 manager against a
//! temp directory laid out like a cgroup2 mount: this machine is hybrid,
//! so nothing else exercises it.
//!
//! The imitation: `cgroup.controllers` and `cgroup.subtree_control` at the
//! root, and the container's dir `berth/<id>` with every file the v2
//! manager may write, all **empty**. libcgroups opens them without
//! creating or truncating (a cgroupfs file takes each write whole), so an
//! empty file shows exactly the last value written, and a file that is
//! still empty was not written at all.

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
fn open_unified_is_the_v2_manager_on_that_root() {
    let fake = FakeV2::new();
    let cg = fake.cgroup();
    assert!(matches!(cg.manager, AnyCgroupManager::V2(_)));
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
            // libcgroups 0.7 (like runc >= 1.3 and crun) maps shares to a
            // weight on a log scale that keeps the defaults aligned
            // (1024 -> 100); the old linear 1 + (s-2)*9999/262142 gave 20.
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
    // `--pids-limit 0` is unlimited in Docker; libcgroups' v2 alone would
    // write 1 (one task: the container could not fork).
    let r = Resources {
        pids_limit: Some(0),
        ..Default::default()
    };
    assert_eq!(apply(&r), map(&[("pids.max", "max")]));
    // `--memory-swap -1` alone: nothing to write (libcgroups' v2 alone
    // would refuse it, "unable to set swap limit without memory limit").
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
    // Opening writes nothing; only the file system type is looked at.
    let unified = Path::new("/sys/fs/cgroup/unified");
    if unified.join("cgroup.controllers").exists() {
        let cg = Cgroup::open(unified, ID).unwrap();
        assert!(matches!(cg.manager, AnyCgroupManager::V2(_)));
        let cg = Cgroup::open(Path::new("/sys/fs/cgroup"), ID).unwrap();
        assert!(matches!(cg.manager, AnyCgroupManager::V1(_)));
    } else if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let cg = Cgroup::open(Path::new("/sys/fs/cgroup"), ID).unwrap();
        assert!(matches!(cg.manager, AnyCgroupManager::V2(_)));
    }
}
