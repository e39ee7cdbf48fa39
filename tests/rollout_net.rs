//! End-to-end: a start-first rollout (`deploy.update_config.order:
//! start-first`) with the real `berth`, in a private network namespace.
//! A client on the host side requests the published port without pause
//! while `berth up -d` replaces the web server: not one request may fail,
//! and the new version answers at the end. A second edit whose
//! healthcheck fails leaves the old container serving, and `up` fails
//! naming the health gate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_image::testing::busybox_rootfs_tar;
use runtime_support::{Root, need_root, private_netns, text};

const PORT: u16 = 18080;

/// `VERSION` is what the server answers; the healthcheck fetches
/// `HEALTH_PATH`.
fn compose(version: &str, health_path: &str) -> String {
    format!(
        r#"name: roll
services:
  web:
    image: busybox:latest
    init: true
    command: ["sh", "-c", "mkdir -p /www && echo v$$VERSION > /www/index.html && echo v$$VERSION >> /data/log && exec httpd -f -p 80 -h /www"]
    volumes: ["/data"]
    environment:
      VERSION: "{version}"
    ports: ["{PORT}:80"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1{health_path}"]
      interval: 1s
      timeout: 2s
      retries: 2
    deploy:
      update_config:
        order: start-first
"#
    )
}

fn setup(label: &str) -> Root {
    private_netns();
    let root = Root::new(label);
    let mut tar = Vec::new();
    busybox_rootfs_tar(Path::new("/bin/busybox"), &mut tar).unwrap();
    let path = root.dir.join("busybox.tar");
    std::fs::write(&path, tar).unwrap();
    ok(root.run(&["image", "import", path.to_str().unwrap(), "busybox:latest"]));
    root
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "berth failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// One `GET /index.html` on the published port: the body, or why not.
fn get() -> Result<String, String> {
    get_on(PORT)
}

fn get_on(port: u16) -> Result<String, String> {
    let mut c = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(c, "GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut s = String::new();
    c.read_to_string(&mut s).map_err(|e| format!("read: {e}"))?;
    let s = s.replace("\r\n", "\n");
    match s.split_once("\n\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
            Ok(body.trim().to_owned())
        }
        _ => Err(format!("bad answer {s:?}")),
    }
}

/// Answers by body, and the failures.
type Tally = (BTreeMap<String, usize>, Vec<String>);

/// Requests the port back to back on a thread of this (private) network
/// namespace until dropped: answers counted by body, failures kept.
struct Client {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Tally>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    fn start() -> Self {
        Self::on(&[PORT])
    }

    /// Round-robin over `ports`, one request each in turn.
    fn on(ports: &[u16]) -> Self {
        let ports = ports.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new((BTreeMap::new(), Vec::new())));
        let (s, r) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            for port in ports.iter().cycle() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let answer = get_on(*port);
                let mut seen = r.lock().unwrap();
                match answer {
                    Ok(body) => *seen.0.entry(body).or_default() += 1,
                    Err(e) => seen.1.push(e),
                }
            }
        });
        Client {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Stops the loop: answers by body, and the failures.
    fn finish(mut self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn wait_for_answer(expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match get() {
            Ok(body) if body == expected => return,
            other if Instant::now() > deadline => {
                panic!("waiting for {expected:?} on port {PORT}: {other:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Names of the project's containers, from `ps -a`.
fn containers(root: &Root) -> Vec<String> {
    let ps = ok(root.run(&["ps", "-a"]));
    let mut names: Vec<String> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last())
        .filter(|n| n.starts_with("roll-"))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// The names of the network's DNS records, by container name.
fn dns_names(root: &Root) -> Vec<String> {
    let records: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.dir.join("networks/roll_default/dns.json")).unwrap(),
    )
    .unwrap();
    let mut names: Vec<String> = records["containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["names"][0].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_start_first_rollout_drops_no_request_and_a_failed_gate_keeps_the_old_version() {
    if !need_root("a_start_first_rollout_drops_no_request_and_a_failed_gate_keeps_the_old_version")
    {
        return;
    }
    let root = setup("rollout");
    let project = root.dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let file = project.join("compose.yaml");
    let f = file.to_str().unwrap();
    std::fs::write(&file, compose("1", "/index.html")).unwrap();
    ok(root.run(&["up", "-d", "-f", f]));
    wait_for_answer("v1");
    assert_eq!(containers(&root), ["roll-web-1"]);

    // The edit: the plan says how the replica is replaced.
    std::fs::write(&file, compose("2", "/index.html")).unwrap();
    let plan = ok(root.run(&["up", "--dry-run", "-f", f]));
    assert_eq!(
        plan.trim(),
        "0 Replace roll-web-1 (start-first: roll-web-2) [ConfigChanged: environment changed]"
    );
    let client = Client::start();
    let out = root.run(&["up", "-d", "-f", f]);
    // A few answers after the switch, then the tally.
    std::thread::sleep(Duration::from_millis(500));
    let (answers, failures) = client.finish();
    eprintln!("during the rollout: {answers:?}, {} failed", failures.len());
    ok(out.clone());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Container roll-web-2 Serving"), "{stderr}");
    assert!(
        failures.is_empty(),
        "failed requests: {failures:?}\nanswers: {answers:?}"
    );
    assert!(answers.get("v1").copied().unwrap_or(0) > 0, "{answers:?}");
    assert!(answers.get("v2").copied().unwrap_or(0) > 0, "{answers:?}");
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(get().unwrap(), "v2");
    assert_eq!(containers(&root), ["roll-web-2"]);
    assert_eq!(dns_names(&root), ["roll-web-2"]);
    // The anonymous volume came along: the old version's line is there.
    assert_eq!(
        ok(root.run(&["exec", "roll-web-2", "cat", "/data/log"])),
        "v1\nv2\n"
    );
    let ps = ok(root.run(&["ps"]));
    assert!(ps.contains(&format!("0.0.0.0:{PORT}->80/tcp")), "{ps}");

    // An edit whose healthcheck fails: the new container never serves,
    // is removed, and the old one answers throughout.
    std::fs::write(&file, compose("3", "/missing.html")).unwrap();
    let client = Client::start();
    let out = root.run(&["up", "-d", "-f", f]);
    std::thread::sleep(Duration::from_millis(300));
    let (answers, failures) = client.finish();
    assert!(!out.status.success(), "up succeeded: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "roll-web-1 failed its health gate (its healthcheck reports unhealthy); roll-web-2 keeps serving"
        ),
        "{stderr}"
    );
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert_eq!(answers.keys().collect::<Vec<_>>(), ["v2"], "{answers:?}");
    assert_eq!(get().unwrap(), "v2");
    assert_eq!(containers(&root), ["roll-web-2"]);
    assert_eq!(dns_names(&root), ["roll-web-2"]);
    // Still one anonymous volume, still replica 2's (the failed new
    // container shared it, and wrote to it).
    assert_eq!(
        ok(root.run(&["exec", "roll-web-2", "cat", "/data/log"])),
        "v1\nv2\nv3\n"
    );
    let volumes: Vec<serde_json::Value> = std::fs::read_dir(root.dir.join("volumes"))
        .unwrap()
        .map(|e| {
            serde_json::from_slice(&std::fs::read(e.unwrap().path().join("volume.json")).unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    assert_eq!(
        volumes[0]["labels"]["com.docker.compose.container-number"],
        "2"
    );

    ok(root.run(&["down", "-f", f]));
    assert!(containers(&root).is_empty());
}

/// Two replicas on a port range, replaced one batch of one at a time with
/// a delay between: both ports answer throughout, each replica switches
/// on its own.
#[test]
fn replicas_roll_one_at_a_time_and_every_port_keeps_answering() {
    if !need_root("replicas_roll_one_at_a_time_and_every_port_keeps_answering") {
        return;
    }
    let root = setup("rollout-batches");
    let project = root.dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let file = project.join("compose.yaml");
    let f = file.to_str().unwrap();
    let yaml = |version: &str| {
        compose(version, "/index.html")
            .replace(
                &format!("ports: [\"{PORT}:80\"]"),
                &format!("ports: [\"{PORT}-{}:80\"]", PORT + 1),
            )
            .replace(
                "      update_config:\n",
                "      replicas: 2\n      update_config:\n        parallelism: 1\n        delay: 1s\n",
            )
    };
    std::fs::write(&file, yaml("1")).unwrap();
    ok(root.run(&["up", "-d", "-f", f]));
    for port in [PORT, PORT + 1] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while get_on(port).as_deref() != Ok("v1") {
            assert!(Instant::now() < deadline, "port {port}: {:?}", get_on(port));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    std::fs::write(&file, yaml("2")).unwrap();
    let plan = ok(root.run(&["up", "--dry-run", "-f", f]));
    assert_eq!(
        plan.lines().collect::<Vec<_>>(),
        [
            "0 Replace roll-web-1 (start-first: roll-web-3) [ConfigChanged: environment changed]",
            "1 Replace roll-web-2 (start-first: roll-web-4) [ConfigChanged: environment changed]",
        ]
    );
    let client = Client::on(&[PORT, PORT + 1]);
    let out = root.run(&["up", "-d", "-f", f]);
    std::thread::sleep(Duration::from_millis(300));
    let (answers, failures) = client.finish();
    eprintln!("during the rollout: {answers:?}, {} failed", failures.len());
    ok(out);
    assert!(
        failures.is_empty(),
        "failed requests: {failures:?}\nanswers: {answers:?}"
    );
    assert_eq!(get_on(PORT).unwrap(), "v2");
    assert_eq!(get_on(PORT + 1).unwrap(), "v2");
    assert_eq!(containers(&root), ["roll-web-3", "roll-web-4"]);
    let ps = ok(root.run(&["ps"]));
    for port in [PORT, PORT + 1] {
        assert!(ps.contains(&format!("0.0.0.0:{port}->80/tcp")), "{ps}");
    }
    ok(root.run(&["down", "-f", f]));
}
