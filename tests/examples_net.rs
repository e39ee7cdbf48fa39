//! End-to-end: the networking examples (`examples/visits`, the Docker
//! docs' multi-container app, and `examples/notes`, a database whose data
//! outlives `down`) brought up with the real `berth` in a private network
//! namespace, checked through their published ports, and taken down.
//!
//! Name resolution between services is the per-network DNS server's
//! (`berth dns`, built separately): without it in the binary, the checks
//! that go through service names are reported SKIPPED and the rest
//! (ports, addresses, the store, persistence through the volume) still
//! run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod net_support;
mod runtime_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_image::testing::busybox_rootfs_tar;
use runtime_support::{Root, need_root, ok, private_netns, text};

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

fn example(name: &str) -> PathBuf {
    berth_e2e::workspace_root()
        .join("examples")
        .join(name)
        .join("compose.yaml")
}

/// Whether this berth has the DNS server (`berth dns`).
fn has_dns(root: &Root) -> bool {
    root.run(&["dns", "--help"]).status.success()
}

/// `GET path` on 127.0.0.1:port: (status code, body). Retries while the
/// server is not listening yet.
fn get(port: u16, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut c) => {
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                write!(c, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
                let mut s = String::new();
                c.read_to_string(&mut s).unwrap();
                let status = s
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                // CGI scripts end their headers with a bare "\n\n".
                let s = s.replace("\r\n", "\n");
                let body = s.split_once("\n\n").map(|(_, b)| b).unwrap_or("");
                return (status, body.trim().to_owned());
            }
            Err(e) if Instant::now() > deadline => panic!("127.0.0.1:{port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn exec(root: &Root, container: &str, script: &str) -> String {
    ok(root.run(&["exec", container, "sh", "-c", script]))
        .trim()
        .to_owned()
}

#[test]
fn visits_proxy_round_robins_over_two_counting_web_servers() {
    if !need_root("visits_proxy_round_robins_over_two_counting_web_servers") {
        return;
    }
    let root = setup("ex-visits");
    let file = example("visits");
    let file = file.to_str().unwrap();
    let out = root.run(&["up", "-d", "-f", file]);
    let progress = text(&out.stderr);
    ok(out);
    // The images are built from the example's Dockerfiles; web1 and web2
    // share one, built once.
    for service in ["store", "web1", "proxy"] {
        assert_eq!(
            progress
                .lines()
                .filter(|l| l.trim() == format!("Service {service} Built"))
                .count(),
            1,
            "{progress}"
        );
    }
    assert!(!progress.contains("Service web2 Built"), "{progress}");
    let images = ok(root.run(&["images"]));
    for image in ["visits-web ", "visits-store ", "visits-proxy "] {
        assert!(images.contains(image), "{images}");
    }
    let ps = ok(root.run(&["ps"]));
    let proxy = ps
        .lines()
        .find(|l| l.ends_with("visits-proxy-1"))
        .unwrap_or_default();
    assert!(proxy.contains("0.0.0.0:8080->80/tcp"), "{ps}");
    // The published port reaches the proxy from the host.
    assert_eq!(get(8080, "/health.txt"), (200, "ok".to_owned()));
    // Two networks: web1 is on both, the store only on the internal one.
    let web1 = root.inspect("visits-web1-1");
    let nets = web1["NetworkSettings"]["Networks"].as_object().unwrap();
    assert_eq!(nets.len(), 2, "{web1:#}");
    let store = root.inspect("visits-store-1");
    let store_ip = store["NetworkSettings"]["Networks"]["visits_backend"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    // The frontend's DNS records name both web servers (service name,
    // hostname, short id) and the proxy, each at its address there.
    let records: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.dir.join("networks/visits_frontend/dns.json")).unwrap(),
    )
    .unwrap();
    let web1_front = nets["visits_frontend"]["IPAddress"].as_str().unwrap();
    let web1_id = web1["Id"].as_str().unwrap();
    assert_eq!(
        records["containers"][web1_id]["ipv4"], web1_front,
        "{records:#}"
    );
    assert_eq!(
        records["containers"][web1_id]["names"],
        serde_json::json!(["visits-web1-1", "web1", &web1_id[..12]]),
        "{records:#}"
    );
    assert_eq!(
        records["containers"].as_object().unwrap().len(),
        3,
        "{records:#}"
    );
    // web1 reaches the store by address over the internal network; the
    // proxy, on the frontend only, does not.
    assert_eq!(
        exec(
            &root,
            "visits-web1-1",
            &format!("echo INCR hits | nc {store_ip} 6379")
        ),
        "1"
    );
    let from_proxy = root.run(&[
        "exec",
        "visits-proxy-1",
        "sh",
        "-c",
        &format!("echo GET hits | nc -w 2 {store_ip} 6379"),
    ]);
    assert!(
        text(&from_proxy.stdout).trim().is_empty(),
        "the proxy must not reach the internal network"
    );
    // The internal network has no way out: no default route in the store.
    let routes = exec(&root, "visits-store-1", "ip route");
    assert!(!routes.contains("default"), "{routes}");

    if has_dns(&root) {
        let answers: Vec<String> = (0..4).map(|_| get(8080, "/").1).collect();
        assert_eq!(
            answers,
            [
                "web1: visit 2",
                "web2: visit 3",
                "web1: visit 4",
                "web2: visit 5"
            ]
        );
    } else {
        eprintln!(
            "SKIPPED: round-robin through service names: this berth has no DNS server (`berth dns`)"
        );
    }
    let hits: u32 = exec(&root, "visits-store-1", "echo GET hits | nc 127.0.0.1 6379")
        .parse()
        .unwrap();
    assert!(hits >= 1, "the store counted {hits}");

    // Compose's progress lines, on stderr.
    let out = root.run(&["down", "-f", file]);
    ok(out.clone());
    let down = text(&out.stderr);
    for network in ["visits_frontend", "visits_backend"] {
        assert!(
            down.lines()
                .any(|l| l.trim() == format!("Network {network} Removed")),
            "{down}"
        );
    }
    assert!(root.ids().is_empty());
    assert!(
        TcpStream::connect(("127.0.0.1", 8080)).is_err(),
        "the port is unpublished"
    );
    net_support::assert_no_network_leftovers(&root);
}

#[test]
fn notes_survive_down_and_up_in_their_named_volume() {
    if !need_root("notes_survive_down_and_up_in_their_named_volume") {
        return;
    }
    let root = setup("ex-notes");
    let file = example("notes");
    let file = file.to_str().unwrap();
    ok(root.run(&["up", "-d", "-f", file]));
    assert_eq!(get(8081, "/health.txt"), (200, "ok".to_owned()));
    let dns = has_dns(&root);
    if dns {
        assert_eq!(get(8081, "/?greeting=hello%20world").1, "stored: greeting");
    } else {
        eprintln!(
            "SKIPPED: the app reaching the db by name: this berth has no DNS server (`berth dns`)"
        );
        assert_eq!(
            exec(
                &root,
                "notes-db-1",
                "echo 'PUT greeting hello world' | nc 127.0.0.1 5432"
            ),
            "OK"
        );
    }
    ok(root.run(&["down", "-f", file]));
    assert!(root.ids().is_empty());
    // The db's build has a RUN step, which ran on the default bridge.
    net_support::assert_no_network_leftovers_but_the_default_bridge(&root);
    assert!(
        root.dir.join("volumes/notes_data/_data/greeting").exists(),
        "down keeps the volume"
    );

    ok(root.run(&["up", "-d", "-f", file]));
    if dns {
        assert_eq!(get(8081, "/?greeting").1, "hello world");
    }
    assert_eq!(
        exec(
            &root,
            "notes-db-1",
            "echo 'GET greeting' | nc 127.0.0.1 5432"
        ),
        "hello world"
    );
    ok(root.run(&["down", "-f", file]));
    net_support::assert_no_network_leftovers_but_the_default_bridge(&root);
}
