//! End-to-end: the network, `/etc/hosts`, privileges and limits of RUN
//! steps. RUN on the default network joins berth's default bridge and
//! reaches an "internet" (a second namespace linked to the test's own,
//! with no route back to the bridge: only a masqueraded connection gets
//! an answer) and does not under `--network none`; `--add-host` and
//! compose `build.extra_hosts` land in `/etc/hosts`; `RUN
//! --security=insecure` is refused without the entitlement and runs
//! privileged with it; `--ulimit` and compose `build.ulimits` apply. No
//! endpoint, namespace or veth is left after a build, whether it passed,
//! failed or was cancelled. Root only; each test runs berth in a network
//! namespace of its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;
mod build_support;
mod compose_support;
mod net_support;
mod runtime_support;

use std::path::Path;
use std::time::{Duration, Instant};

use build_support::{build, build_ok, context, counts, sh};
use compose_support::Project;
use net_support::{Internet, assert_no_endpoint_leftovers, setup};
use runtime_support::{Root, ok, text};

/// The default bridge's gateway, as `berth network inspect` gives it.
fn bridge_gateway(root: &Root) -> String {
    let out = ok(root.run(&["network", "inspect", "bridge"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The `nameserver` lines of a resolv.conf.
fn nameservers(resolv: &str) -> Vec<String> {
    resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .map(|s| s.trim().to_owned())
        .collect()
}

#[test]
fn run_steps_reach_the_outside_on_the_default_bridge_and_get_extra_hosts() {
    if !build_support::need_root_and_net(
        "run_steps_reach_the_outside_on_the_default_bridge_and_get_extra_hosts",
    ) {
        return;
    }
    let root = setup("build-net");
    let _internet = Internet::new();
    let dockerfile = "FROM busybox:latest
RUN printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 198.51.100.1 80 > /answer; cat /answer; grep -q '^from ' /answer
RUN cat /etc/hosts > /hosts && cat /etc/resolv.conf > /resolv
";
    let ctx = context(&root, "ctx", &[("Dockerfile", dockerfile)]);
    let hosts = [
        "--add-host",
        "db:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "--add-host",
        "v6=[2001:db8::5]",
    ];
    let flags: Vec<&str> = ["-t", "net:1"].into_iter().chain(hosts).collect();
    let progress = build_ok(&root, &ctx, &flags);
    // The extra hosts and the network are part of the steps' cache keys,
    // as in BuildKit: the same flags hit the cache, other ones do not.
    assert_eq!(counts(&build_ok(&root, &ctx, &flags)), (0, 2));
    assert_eq!(
        counts(&build_ok(&root, &ctx, &["--add-host", "db:10.1.2.4"])),
        (2, 0)
    );
    // Masqueraded: the outside saw the host's address, not the step's.
    assert!(progress.contains(" from 198.51.100.2"), "{progress}");
    assert_eq!(
        sh(&root, "net:1", "cat /answer").lines().last(),
        Some("from 198.51.100.2")
    );
    let gw = bridge_gateway(&root);
    assert_eq!(
        sh(&root, "net:1", "cat /hosts"),
        format!(
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             10.1.2.3\tdb\n{gw}\tgw\n2001:db8::5\tv6\n"
        )
    );
    // The host's resolvers, without the loopback ones the step could not
    // reach.
    let resolv = sh(&root, "net:1", "cat /resolv");
    let servers = nameservers(&resolv);
    assert!(!servers.is_empty(), "{resolv}");
    assert!(
        servers.iter().all(|s| !s.starts_with("127.") && s != "::1"),
        "{resolv}"
    );
    assert_no_endpoint_leftovers(&root);

    // Without a network the same step cannot get out.
    let out = build(
        &root,
        &ctx,
        &["--no-cache", "--network", "none", "-t", "net:none"],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("did not complete successfully"), "{err}");
    assert!(!err.contains(" from 198.51.100.2"), "{err}");
    // host-gateway has nothing to point at there: refused, naming it.
    let out = build(
        &root,
        &ctx,
        &["--network", "none", "--add-host", "gw:host-gateway"],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("gw:host-gateway") && err.contains("none network"),
        "{err}"
    );
    assert_no_endpoint_leftovers(&root);
}

#[test]
fn failed_and_cancelled_run_steps_leave_no_endpoint() {
    if !build_support::need_root_and_net("failed_and_cancelled_run_steps_leave_no_endpoint") {
        return;
    }
    let root = setup("build-net-end");
    let failing = context(
        &root,
        "fail",
        &[(
            "Dockerfile",
            "FROM busybox:latest\nRUN ip link show eth0 && exit 3\n",
        )],
    );
    let out = build(&root, &failing, &[]);
    let err = text(&out.stderr);
    assert!(err.contains("exit code: 3"), "{err}");
    // The step had its interface.
    assert!(err.contains("eth0@"), "{err}");
    assert_no_endpoint_leftovers(&root);

    let slow = context(
        &root,
        "slow",
        &[(
            "Dockerfile",
            "FROM busybox:latest\nRUN echo started && sleep 60\n",
        )],
    );
    let child = root
        .cmd(&["build", slow.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let endpoints = root.dir.join("endpoints");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&endpoints).map_or(0, |d| d.count()) == 0 {
        assert!(
            Instant::now() < deadline,
            "the RUN step never got an endpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    // Interrupted: 128 + SIGINT, as shells report it.
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("cancelled"), "{err}");
    assert!(root.ids().is_empty(), "{:?}", root.ids());
    assert_no_endpoint_leftovers(&root);
}

/// The test process's bounding set: everything root can have here.
fn own_bounding_set() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn insecure_run_steps_need_the_entitlement_and_run_privileged() {
    if !build_support::need_root_and_net(
        "insecure_run_steps_need_the_entitlement_and_run_privileged",
    ) {
        return;
    }
    let root = setup("build-priv");
    let dockerfile = "FROM busybox:latest
RUN grep CapEff /proc/self/status > /caps-normal; if mount -t tmpfs none /mnt 2>/dev/null; then echo mounted; else echo refused; fi > /mount-normal
RUN --security=insecure grep CapEff /proc/self/status > /caps-insecure && mkdir -p /m && mount -t tmpfs none /m && echo mounted > /m/x && cat /m/x > /mount-insecure
RUN ulimit -n > /nofile && ulimit -Hn >> /nofile
";
    let ctx = context(&root, "ctx", &[("Dockerfile", dockerfile)]);
    let out = build(&root, &ctx, &["-t", "priv:1"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    // Refused before any step runs, naming the line and the way out.
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("--allow security.insecure"), "{err}");
    assert!(!err.contains("[2/4] RUN"), "{err}");

    build_ok(
        &root,
        &ctx,
        &[
            "-t",
            "priv:1",
            "--allow",
            "security.insecure",
            "--ulimit",
            "nofile=1024:2048",
        ],
    );
    let full = own_bounding_set();
    assert_eq!(
        sh(&root, "priv:1", "cat /caps-insecure")
            .split_whitespace()
            .nth(1),
        Some(full.as_str())
    );
    assert_eq!(sh(&root, "priv:1", "cat /mount-insecure").trim(), "mounted");
    // The entitlement allows it; only the step that asks runs privileged.
    assert_ne!(
        sh(&root, "priv:1", "cat /caps-normal")
            .split_whitespace()
            .nth(1),
        Some(full.as_str())
    );
    assert_eq!(sh(&root, "priv:1", "cat /mount-normal").trim(), "refused");
    assert_eq!(sh(&root, "priv:1", "cat /nofile"), "1024\n2048\n");
    // Ulimits are part of RUN steps' cache keys: other ones run them again.
    let with_limit = |limit| {
        counts(&build_ok(
            &root,
            &ctx,
            &["--allow", "security.insecure", "--ulimit", limit],
        ))
    };
    assert_eq!(with_limit("nofile=1024:2048"), (0, 3));
    assert_eq!(with_limit("nofile=1000:2000"), (3, 0));

    // RUN --network=host needs network.host, which --network host grants.
    let host = context(
        &root,
        "host",
        &[(
            "Dockerfile",
            "FROM busybox:latest\nRUN --network=host true\n",
        )],
    );
    let err = text(&build(&root, &host, &[]).stderr);
    assert!(err.contains("--allow network.host"), "{err}");
    build_ok(&root, &host, &["--allow", "network.host"]);
    build_ok(&root, &host, &["--network", "host", "--no-cache"]);
    // A bad limit or entitlement is refused up front.
    let err = text(&build(&root, &host, &["--ulimit", "nofile"]).stderr);
    assert!(err.contains("NAME=SOFT[:HARD]"), "{err}");
    let err = text(&build(&root, &host, &["--allow", "device"]).stderr);
    assert!(err.contains("\"device\" is not an entitlement"), "{err}");
    assert_no_endpoint_leftovers(&root);
}

#[test]
fn compose_build_extra_hosts_privileged_and_ulimits_reach_run_steps() {
    if !build_support::need_root_and_net(
        "compose_build_extra_hosts_privileged_and_ulimits_reach_run_steps",
    ) {
        return;
    }
    let dockerfile = "FROM busybox
RUN --security=insecure cat /etc/hosts > /hosts && grep CapEff /proc/self/status > /caps && ulimit -n > /nofile && ulimit -Hn >> /nofile && ip route > /route
";
    let compose = r#"
services:
  listed:
    build:
      context: ./app
      extra_hosts:
        - "db:10.0.0.9"
        - "cache=10.0.0.10"
        - "v6:[2001:db8::7]"
        - "gw=host-gateway"
      privileged: true
      ulimits:
        nofile:
          soft: 1500
          hard: 2500
  mapped:
    build:
      context: ./app
      extra_hosts:
        db: 10.0.0.9
        v6: "::1"
      entitlements: [security.insecure]
      ulimits:
        nofile: 3000
  refused:
    build:
      context: ./app
    profiles: [refused]
"#;
    let p = Project::new("build-compose-net", compose);
    std::fs::create_dir_all(p.dir.join("app")).unwrap();
    std::fs::write(p.dir.join("app/Dockerfile"), dockerfile).unwrap();
    p.ok(&["build", "listed", "mapped"]);
    let gw = bridge_gateway(&p.root);
    let image = |service: &str| format!("{}-{service}", project_name(&p.dir));
    let listed = image("listed");
    assert_eq!(
        sh(&p.root, &listed, "cat /hosts"),
        format!(
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             10.0.0.9\tdb\n10.0.0.10\tcache\n2001:db8::7\tv6\n{gw}\tgw\n"
        )
    );
    assert_eq!(sh(&p.root, &listed, "cat /nofile"), "1500\n2500\n");
    assert_eq!(
        sh(&p.root, &listed, "cat /caps").split_whitespace().nth(1),
        Some(own_bounding_set().as_str())
    );
    // The step was on the default bridge, routed through its gateway.
    assert!(
        sh(&p.root, &listed, "cat /route").contains(&format!("default via {gw}")),
        "{}",
        sh(&p.root, &listed, "cat /route")
    );
    let mapped = image("mapped");
    assert_eq!(
        sh(&p.root, &mapped, "cat /hosts"),
        "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         10.0.0.9\tdb\n::1\tv6\n"
    );
    assert_eq!(sh(&p.root, &mapped, "cat /nofile"), "3000\n3000\n");
    // Without privileged or the entitlement: refused, naming the line.
    let out = p.run(&["compose", "--profile", "refused", "build", "refused"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("Dockerfile:2") && err.contains("build.privileged: true"),
        "{err}"
    );
    assert_no_endpoint_leftovers(&p.root);
}

/// Compose's project name for a folder: its name, lower-cased.
fn project_name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().to_lowercase()
}

#[test]
fn run_steps_join_a_named_network_and_use_its_dns() {
    if !build_support::need_root_and_net("run_steps_join_a_named_network_and_use_its_dns") {
        return;
    }
    let root = setup("build-net-named");
    ok(root.run(&["network", "create", "--subnet", "10.125.0.0/24", "n1"]));
    ok(root.run(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "n1",
        "busybox:latest",
        "sh",
        "-c",
        "mkdir -p /www && echo served-on-n1 > /www/index.html && exec httpd -f -p 80 -h /www",
    ]));
    let ctx = context(
        &root,
        "ctx",
        &[(
            "Dockerfile",
            // httpd may still be starting: a few tries.
            "FROM busybox:latest\nRUN ip -4 -o addr show eth0 > /addr && cat /etc/resolv.conf > /resolv && \\\n    for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 web 80 > /page; grep -q served /page && break; sleep 0.3; done\n",
        )],
    );
    build_ok(&root, &ctx, &["-t", "named:1", "--network", "n1"]);
    let addr = sh(&root, "named:1", "cat /addr");
    assert!(addr.contains("inet 10.125.0."), "{addr}");
    assert_eq!(
        nameservers(&sh(&root, "named:1", "cat /resolv")),
        ["10.125.0.1"]
    );
    // The network's DNS server gave the step its containers' names.
    let page = sh(&root, "named:1", "cat /page");
    assert!(page.ends_with("\r\n\r\nserved-on-n1\n"), "{page:?}");
    ok(root.run(&["rm", "-f", "web"]));
    let out = build(&root, &ctx, &["--no-cache", "--network", "nope"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("network nope not found") && err.contains("berth network create nope"),
        "{err}"
    );
    assert_no_endpoint_leftovers(&root);
}

/// Starts `berth ARGS` in the project, waits for its RUN step's endpoint,
/// sends SIGINT, and checks the verb ended with 130 saying the build was
/// cancelled, promptly, leaving no container or endpoint.
fn interrupt_a_build(p: &Project, args: &[&str]) {
    let child = p
        .cmd(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let endpoints = p.root.dir.join("endpoints");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&endpoints).map_or(0, |d| d.count()) == 0 {
        assert!(
            Instant::now() < deadline,
            "{args:?}: the RUN step never got an endpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{args:?}: {err}");
    assert!(err.contains("cancelled"), "{args:?}: {err}");
    // Stopped, not waited out.
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    assert!(p.root.ids().is_empty(), "{args:?}: {:?}", p.root.ids());
    assert_no_endpoint_leftovers(&p.root);
}

#[test]
fn cancelled_compose_builds_leave_no_container_or_endpoint() {
    if !build_support::need_root_and_net("cancelled_compose_builds_leave_no_container_or_endpoint")
    {
        return;
    }
    let p = Project::new(
        "build-compose-cancel",
        "services:\n  slow:\n    build: ./slow\n",
    );
    std::fs::create_dir_all(p.dir.join("slow")).unwrap();
    std::fs::write(
        p.dir.join("slow/Dockerfile"),
        "FROM busybox\nRUN sleep 60\n",
    )
    .unwrap();
    interrupt_a_build(&p, &["compose", "build"]);
    interrupt_a_build(&p, &["up", "-d"]);
}

#[test]
fn an_agent_stopped_mid_build_leaves_no_container_or_endpoint() {
    if !build_support::need_root_and_net(
        "an_agent_stopped_mid_build_leaves_no_container_or_endpoint",
    ) {
        return;
    }
    let p = Project::new("build-agent-stop", "services: {}\n");
    let projects = p.root.dir.join("projects");
    std::fs::create_dir_all(projects.join("slow/app")).unwrap();
    std::fs::write(
        projects.join("slow/app/Dockerfile"),
        "FROM busybox\nRUN sleep 60\n",
    )
    .unwrap();
    std::fs::write(
        projects.join("slow/compose.yaml"),
        "services:\n  app:\n    build: ./app\n",
    )
    .unwrap();
    let root = p.root.dir.display().to_string();
    let agent =
        agent_support::Agent::start_with(&projects, &["--listen", "127.0.0.1:0", "--root", &root]);
    let endpoints = p.root.dir.join("endpoints");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&endpoints).map_or(0, |d| d.count()) == 0 {
        assert!(
            Instant::now() < deadline,
            "the agent's build never ran its RUN step\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    agent.terminate();
    // The build was cancelled, not waited out (nor cut off by the exit).
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(p.root.ids().is_empty(), "{:?}", p.root.ids());
    assert_no_endpoint_leftovers(&p.root);
}
