//! End-to-end: healthchecks and restart policies of Compose services,
//! through `berth up` and the real adapters (root only). Each test has
//! its own `--root`, cleaned up on drop. No timing thresholds: order and
//! counts only, with generous polling.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use berth_image::testing::{TestImage, busybox_rootfs_tar, docker_save};
use runtime_support::{Root, need_root, ok, private_netns, text, wait_long};
use serde_json::json;

/// A state root with `busybox` (no healthcheck) and `hcimg` (busybox with
/// a `HEALTHCHECK` in its config), and a project folder with `compose`.
fn setup(label: &str, compose: &str) -> (Root, PathBuf) {
    // Its networks' bridges, veths and nftables rules are made in the
    // test thread's own network namespace, never on the host.
    private_netns();
    let root = Root::new(label);
    let mut layer = Vec::new();
    busybox_rootfs_tar(Path::new("/bin/busybox"), &mut layer).unwrap();
    let plain = TestImage::new(vec![layer.clone()], &["busybox:latest"]);
    let mut checked = TestImage::new(vec![layer], &["hcimg:latest"]);
    checked.config["config"]["Healthcheck"] = json!({
        "Test": ["CMD-SHELL", "echo from-image"],
        "Interval": 200_000_000u64,
        "Retries": 2,
    });
    let archive = root.dir.join("images.tar");
    std::fs::write(&archive, docker_save(&[plain, checked])).unwrap();
    ok(root.run(&["load", "-i", archive.to_str().unwrap()]));
    let project = root.dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("compose.yaml"), compose).unwrap();
    (root, project)
}

fn up(root: &Root, project: &Path, flags: &[&str]) -> Output {
    let file = project.join("compose.yaml");
    let mut args = vec!["up", "-f", file.to_str().unwrap()];
    args.extend(flags);
    root.run(&args)
}

const IMAGE_HEALTHCHECKS: &str = r#"
name: hc
services:
  inherit:
    image: hcimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
  disabled:
    image: hcimg
    command: ["sleep", "3600"]
    healthcheck:
      disable: true
    stop_grace_period: 1s
  tuned:
    image: hcimg
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "echo", "exec-form"]
      interval: 300ms
    stop_grace_period: 1s
"#;

/// The image's HEALTHCHECK applies when the service has none, `disable`
/// turns it off, and a service's `healthcheck:` overrides it field by
/// field (here the test, in exec form, and the interval; retries come
/// from the image).
#[test]
fn the_image_healthcheck_is_the_default_and_compose_overrides_or_disables_it() {
    if !need_root("the_image_healthcheck_is_the_default_and_compose_overrides_or_disables_it") {
        return;
    }
    let (root, project) = setup("eh-image", IMAGE_HEALTHCHECKS);
    ok(up(&root, &project, &["-d"]));

    let v = wait_long(&root, "hc-inherit-1", "healthy", |v| {
        v["State"]["Health"]["Status"] == "healthy"
    });
    assert_eq!(
        v["Config"]["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "echo from-image"], "Interval": 200_000_000u64, "Retries": 2})
    );
    assert_eq!(v["State"]["Health"]["Log"][0]["Output"], "from-image\n");

    let v = wait_long(&root, "hc-tuned-1", "healthy", |v| {
        v["State"]["Health"]["Status"] == "healthy"
    });
    assert_eq!(
        v["Config"]["Healthcheck"],
        json!({"Test": ["CMD", "echo", "exec-form"], "Interval": 300_000_000u64, "Retries": 2})
    );
    assert_eq!(v["State"]["Health"]["Log"][0]["Output"], "exec-form\n");

    let v = root.inspect("hc-disabled-1");
    assert_eq!(v["Config"]["Healthcheck"]["Test"], json!(["NONE"]));
    assert_eq!(v["State"]["Running"], true);
    assert!(v["State"]["Health"].is_null(), "{v:#}");

    // Converged: health is not configuration.
    assert_eq!(ok(up(&root, &project, &["--dry-run"])), "nothing to do\n");
}

/// A background `berth` that must not outlive a failed test.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const HEALTHY_DEPENDENCY: &str = r#"
name: dep
services:
  db:
    image: busybox
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      start_period: 10m
      start_interval: 100ms
      interval: 1h
    stop_grace_period: 1s
  web:
    image: busybox
    command: ["sleep", "3600"]
    depends_on:
      db:
        condition: service_healthy
    stop_grace_period: 1s
"#;

/// `up` waits for `service_healthy`: the dependent starts only after the
/// dependency's first passing probe.
#[test]
fn up_waits_for_a_healthy_dependency_before_starting_the_dependent() {
    if !need_root("up_waits_for_a_healthy_dependency_before_starting_the_dependent") {
        return;
    }
    let (root, project) = setup("eh-dep", HEALTHY_DEPENDENCY);
    let file = project.join("compose.yaml");
    let mut running_up = KillOnDrop(Some(
        root.cmd(&["up", "-d", "-f", file.to_str().unwrap()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // db runs and fails its probe; `up` holds web back meanwhile.
    wait_long(&root, "dep-db-1", "a failed probe", |v| {
        v["State"]["Health"]["Log"][0]["ExitCode"] == 1
    });
    assert!(
        !root.run(&["inspect", "dep-web-1"]).status.success(),
        "web was created before db was healthy"
    );
    ok(root.run(&["exec", "dep-db-1", "touch", "/tmp/ready"]));
    let out = running_up.0.take().unwrap().wait_with_output().unwrap();
    let progress = text(&out.stderr);
    ok(out);
    // Compose's progress lines, in order: web is created only once db has
    // started (and, above, turned healthy).
    let at = |line: &str| {
        progress
            .lines()
            .position(|l| l.trim() == line)
            .unwrap_or_else(|| panic!("no {line:?} in:\n{progress}"))
    };
    assert!(at("Network dep_default Created") < at("Container dep-db-1 Started"));
    assert!(at("Container dep-db-1 Started") < at("Container dep-web-1 Created"));
    assert!(at("Container dep-web-1 Created") < at("Container dep-web-1 Started"));
    let db = root.inspect("dep-db-1");
    let web = root.inspect("dep-web-1");
    assert_eq!(db["State"]["Health"]["Status"], "healthy", "{db:#}");
    let log = db["State"]["Health"]["Log"].as_array().unwrap();
    let passed = log
        .iter()
        .find(|e| e["ExitCode"] == 0)
        .unwrap_or_else(|| panic!("no passing probe: {db:#}"));
    // web started after db's first passing probe (same clock, same RFC
    // 3339 form).
    let healthy_at = passed["End"].as_str().unwrap();
    let web_started = web["State"]["StartedAt"].as_str().unwrap();
    assert!(
        healthy_at <= web_started,
        "web started at {web_started}, db was healthy at {healthy_at}"
    );
}

const POLICIES: &str = r#"
name: pol
services:
  job:
    image: busybox
    command: ["sh", "-c", "echo attempt; exit 1"]
    restart: on-failure:2
  sick:
    image: busybox
    command: ["sleep", "3600"]
    restart: always
    healthcheck:
      test: ["CMD", "false"]
      interval: 100ms
      retries: 1
    stop_grace_period: 1s
"#;

/// The shim applies `restart:` (the planner does not restart what it gave
/// up on), and an unhealthy container is planned for a restart with the
/// `Unhealthy` reason.
#[test]
fn compose_restart_policies_run_in_the_shim_and_unhealthy_is_a_reason() {
    if !need_root("compose_restart_policies_run_in_the_shim_and_unhealthy_is_a_reason") {
        return;
    }
    let (root, project) = setup("eh-policy", POLICIES);
    ok(up(&root, &project, &["-d"]));
    let v = wait_long(&root, "pol-job-1", "the shim to give up", |v| {
        v["State"]["Status"] == "exited" && v["State"]["ShimAlive"] == false
    });
    assert_eq!(v["RestartCount"], 2, "{v:#}");
    assert_eq!(
        v["HostConfig"]["RestartPolicy"],
        json!({"Name": "on-failure", "MaximumRetryCount": 2})
    );
    let logs = ok(root.run(&["logs", "pol-job-1"]));
    assert_eq!(
        logs.lines().filter(|l| *l == "attempt").count(),
        3,
        "{logs}"
    );

    wait_long(&root, "pol-sick-1", "unhealthy", |v| {
        v["State"]["Health"]["Status"] == "unhealthy"
    });
    // `up` is the user asking for the project to run: like `docker compose
    // up`, it starts the job the shim gave up on again (the agent, which
    // plans without `start_exited`, leaves it alone: see the planner's
    // tests), and restarts the unhealthy one for its reason.
    let plan = ok(up(&root, &project, &["--dry-run"]));
    let mut lines: Vec<&str> = plan.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{plan}");
    assert_eq!(
        lines[0], "0 RestartContainer pol-sick-1 [Unhealthy: the healthcheck reports unhealthy]",
        "{plan}"
    );
    assert!(
        lines[1].starts_with("0 StartContainer pol-job-1 [Exited: exited with code ")
            && lines[1].ends_with("; up starts it again]"),
        "{plan}"
    );
}

const RESTART_ON_A_NETWORK: &str = r#"
name: flap
services:
  flappy:
    image: busybox
    command: ["sh", "-c", "ip -4 addr show eth0 | awk '/inet /{print \"addr\", $2}'; exit 1"]
    restart: on-failure:2
"#;

/// The shim restarts a container in the same container: it joins the
/// same network namespace again, with the same address on the project's
/// network, and its endpoint stays until the container is removed.
#[test]
fn a_container_restarted_by_the_shim_keeps_its_network() {
    if !need_root("a_container_restarted_by_the_shim_keeps_its_network") {
        return;
    }
    let (root, project) = setup("eh-netrestart", RESTART_ON_A_NETWORK);
    ok(up(&root, &project, &["-d"]));
    let v = wait_long(&root, "flap-flappy-1", "the shim to give up", |v| {
        v["State"]["Status"] == "exited" && v["State"]["ShimAlive"] == false
    });
    assert_eq!(v["RestartCount"], 2, "{v:#}");
    let ip = v["NetworkSettings"]["Networks"]["flap_default"]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!ip.is_empty(), "{v:#}");
    let logs = ok(root.run(&["logs", "flap-flappy-1"]));
    let addrs: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("addr "))
        .collect();
    assert_eq!(addrs.len(), 3, "one address per run: {logs}");
    for a in &addrs {
        assert_eq!(a.split('/').next(), Some(ip.as_str()), "{logs}");
    }
    let id = v["Id"].as_str().unwrap();
    assert!(
        root.dir
            .join("endpoints")
            .join(format!("{id}.json"))
            .exists()
    );
    let file = project.join("compose.yaml");
    ok(root.run(&["down", "-f", file.to_str().unwrap()]));
    assert!(
        !root
            .dir
            .join("endpoints")
            .join(format!("{id}.json"))
            .exists()
    );
}
