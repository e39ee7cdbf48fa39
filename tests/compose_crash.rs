//! Reliability: `berth up -d` (and `down`) SIGKILLed at every step of its
//! plan, then run again, must converge with nothing leaked.
//!
//! The crash points come from the debug build's crash injector
//! (`BERTH_TEST_CRASH_AFTER=K`: the process SIGKILLs itself right after
//! its K-th call into the backends), for K = 1, 2, ... until a run gets
//! through: a cold `up -d`, an `up -d` that recreates changed containers,
//! and a `down -v`. After each crash the next run must leave exactly one
//! container per replica, all running, a second plan empty, and no
//! cgroup, shim, mount, state folder or name claim that belongs to no
//! container.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compose_support;
mod net_support;
mod runtime_support;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;

use compose_support::{Project, ok, serve};
use runtime_support::{cgroup_dirs, need_root};

const CRASH: &str = "BERTH_TEST_CRASH_AFTER";

/// db with a named volume, two web replicas that depend on it, a worker;
/// `tag` goes into web's and worker's environment (a change recreates
/// them).
fn compose(tag: &str) -> String {
    format!(
        r#"
name: crash
services:
  db:
    image: busybox
    command: {db}
    volumes: [data:/data]
    stop_grace_period: 2s
  web:
    image: busybox
    command: {web}
    environment: {{TAG: "{tag}"}}
    depends_on: [db]
    deploy: {{replicas: 2}}
    stop_grace_period: 2s
  worker:
    image: busybox
    command: {worker}
    environment: {{TAG: "{tag}"}}
    stop_grace_period: 2s
volumes:
  data: {{}}
"#,
        db = serve("db"),
        web = serve("web"),
        worker = serve("worker")
    )
}

const REPLICAS: [&str; 4] = ["crash-db-1", "crash-web-1", "crash-web-2", "crash-worker-1"];

/// `compose ARGS` with the crash injector armed at `k`. One action at a
/// time, so that the k-th call is the same call in every run and nothing
/// else is half done when it kills: crashes inside a call are the
/// measured-points test's.
fn crashing(p: &Project, args: &[&str], k: usize) -> Output {
    let mut full = vec!["compose"];
    full.extend(args);
    p.cmd(&full)
        .env(CRASH, k.to_string())
        .env("COMPOSE_PARALLEL_LIMIT", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn killed(out: &Output) -> bool {
    out.status.signal() == Some(9)
}

/// Every container folder under the root: its id.
fn container_dirs(root: &Path) -> BTreeSet<String> {
    std::fs::read_dir(root.join("containers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Dot files (the network crate's `.lock`) are not entries.
fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// Shim processes working under `root`.
fn shims(root: &Path) -> usize {
    let root = root.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| {
            c.split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        })
        .filter(|args| args.iter().any(|a| a == "shim") && args.contains(&root))
        .count()
}

/// Mounts on the host under `root` other than the containers' bound
/// network namespaces (there must be none: containers mount in their own
/// namespace).
fn host_mounts(root: &Path) -> Vec<String> {
    let netns = root.join("netns").to_string_lossy().into_owned();
    let root = root.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&root) && !l.contains(&format!(" {netns}/")))
        .map(str::to_owned)
        .collect()
}

/// The containers whose network namespace is bound under `root/netns`.
fn bound_netns(root: &Path) -> BTreeSet<String> {
    let prefix = format!("{}/", root.join("netns").display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter_map(|m| m.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Tracks every container id the root ever held, to look for leftovers
/// of removed ones.
struct Checker {
    seen: BTreeSet<String>,
}

impl Checker {
    fn record(&mut self, p: &Project) {
        self.seen.extend(container_dirs(&p.root.dir));
    }

    /// No cgroup of a container that no longer exists.
    fn no_stale_cgroups(&self, p: &Project, context: &str) {
        let live = container_dirs(&p.root.dir);
        for id in self.seen.difference(&live) {
            let dirs = cgroup_dirs(id);
            assert!(
                dirs.is_empty(),
                "{context}: cgroups of removed {id}: {dirs:?}"
            );
        }
    }

    /// Converged: one running container per replica, nothing else under
    /// the root, a second plan empty.
    fn converged(&mut self, p: &Project, context: &str) {
        self.record(p);
        let states = p.states();
        let names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, REPLICAS, "{context}");
        assert!(
            states.iter().all(|(_, s)| s == "running"),
            "{context}: {states:?}"
        );
        let dirs = container_dirs(&p.root.dir);
        assert_eq!(
            dirs.len(),
            REPLICAS.len(),
            "{context}: container folders {dirs:?}"
        );
        for id in &dirs {
            let dir = p.root.dir.join("containers").join(id);
            assert!(
                dir.join("config.json").is_file(),
                "{context}: {id} has no config"
            );
        }
        let claimed = entries(&p.root.dir.join("names"));
        let expected: BTreeSet<String> = REPLICAS.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(claimed, expected, "{context}: name claims");
        assert_eq!(
            entries(&p.root.dir.join("volumes")),
            ["crash_data".to_owned()].into()
        );
        assert_eq!(
            entries(&p.root.dir.join("networks")),
            ["crash_default".to_owned()].into()
        );
        assert_eq!(shims(&p.root.dir), REPLICAS.len(), "{context}: shims");
        assert_eq!(host_mounts(&p.root.dir), Vec::<String>::new(), "{context}");
        // One bound network namespace per container, none left over.
        assert_eq!(
            bound_netns(&p.root.dir),
            container_dirs(&p.root.dir),
            "{context}: netns"
        );
        self.no_stale_cgroups(p, context);
        assert_eq!(p.ok(&["up", "--dry-run"]), "nothing to do\n", "{context}");
    }

    /// After `down -v`: nothing at all.
    fn clean(&mut self, p: &Project, context: &str) {
        self.record(p);
        assert!(container_dirs(&p.root.dir).is_empty(), "{context}");
        assert!(entries(&p.root.dir.join("names")).is_empty(), "{context}");
        assert!(entries(&p.root.dir.join("volumes")).is_empty(), "{context}");
        assert!(
            entries(&p.root.dir.join("networks")).is_empty(),
            "{context}"
        );
        assert_eq!(shims(&p.root.dir), 0, "{context}: shims");
        assert_eq!(host_mounts(&p.root.dir), Vec::<String>::new(), "{context}");
        assert!(bound_netns(&p.root.dir).is_empty(), "{context}: netns");
        // And no kernel state: veths, bridges, nftables rules, DNS servers.
        net_support::assert_no_network_leftovers(&p.root);
        self.no_stale_cgroups(p, context);
    }
}

#[test]
fn up_and_down_killed_at_every_step_converge_without_leaks() {
    if !need_root("up_and_down_killed_at_every_step_converge_without_leaks") {
        return;
    }
    let p = Project::new("crash", &compose("1"));
    let mut check = Checker {
        seen: BTreeSet::new(),
    };
    let mut points = 0;

    // A cold `up -d` killed after its k-th call.
    for k in 1.. {
        let out = crashing(&p, &["up", "-d"], k);
        check.record(&p);
        if !killed(&out) {
            ok(out);
            check.converged(&p, "cold up that got through");
            break;
        }
        points += 1;
        let context = format!("cold up killed after call {k}");
        ok(p.run(&["compose", "up", "-d"]));
        check.converged(&p, &context);
        ok(p.run(&["compose", "down", "-v"]));
        check.clean(&p, &context);
    }
    let cold = points;

    // An `up -d` that recreates web and worker (their environment
    // changed), killed after its k-th call.
    for k in 1.. {
        p.write(&compose("1"));
        ok(p.run(&["compose", "up", "-d"]));
        check.record(&p);
        p.write(&compose("2"));
        let out = crashing(&p, &["up", "-d"], k);
        check.record(&p);
        if !killed(&out) {
            ok(out);
            check.converged(&p, "recreating up that got through");
            break;
        }
        points += 1;
        let context = format!("recreating up killed after call {k}");
        ok(p.run(&["compose", "up", "-d"]));
        check.converged(&p, &context);
        // The new configuration is what runs.
        let env = p.root.inspect("crash-web-2")["Config"]["Env"].clone();
        assert!(
            env.as_array()
                .unwrap()
                .iter()
                .any(|e| e.as_str() == Some("TAG=2")),
            "{context}: {env}"
        );
        ok(p.run(&["compose", "down", "-v"]));
        check.clean(&p, &context);
    }
    let recreate = points - cold;

    // A `down -v` killed after its k-th call; the next `down -v` finishes.
    for k in 1.. {
        ok(p.run(&["compose", "up", "-d"]));
        check.converged(&p, "up before a crashing down");
        let out = crashing(&p, &["down", "-v"], k);
        check.record(&p);
        if !killed(&out) {
            ok(out);
            check.clean(&p, "down that got through");
            break;
        }
        points += 1;
        let context = format!("down killed after call {k}");
        ok(p.run(&["compose", "down", "-v"]));
        check.clean(&p, &context);
    }
    let down = points - cold - recreate;
    println!("crash points: {cold} in a cold up, {recreate} in a recreating up, {down} in a down");
    assert!(
        points >= 20,
        "only {points} crash points ({cold} + {recreate} + {down})"
    );
}

/// The same from outside, at measured points: `up -d` SIGKILLed after
/// 1/24, 2/24, ... of the time a whole cold `up -d` takes here, which
/// lands inside the backends' calls too (between a name's claim and the
/// container's config, while a shim starts...), where the injector
/// cannot reach.
#[test]
fn up_killed_from_outside_at_measured_points_converges_without_leaks() {
    if !need_root("up_killed_from_outside_at_measured_points_converges_without_leaks") {
        return;
    }
    let p = Project::new("crash-ext", &compose("1"));
    let mut check = Checker {
        seen: BTreeSet::new(),
    };
    let start = std::time::Instant::now();
    ok(p.run(&["compose", "up", "-d"]));
    let whole = start.elapsed();
    check.converged(&p, "uncrashed up");
    ok(p.run(&["compose", "down", "-v"]));
    check.clean(&p, "uncrashed down");
    const POINTS: u32 = 24;
    for i in 1..=POINTS {
        let delay = whole * i / POINTS;
        let child = p
            .cmd(&["compose", "up", "-d"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let pid = child.id();
        compose_support::signal(pid, "KILL");
        let _ = compose_support::finish(child, &["compose", "up", "-d"]);
        check.record(&p);
        let context = format!("up killed after {delay:?} of {whole:?}");
        ok(p.run(&["compose", "up", "-d"]));
        check.converged(&p, &context);
        ok(p.run(&["compose", "down", "-v"]));
        check.clean(&p, &context);
    }
}
