//! Helpers for the network end-to-end tests (`tests/net_*.rs`): a state
//! root in a private network namespace with the busybox image imported,
//! projects written into it, HTTP over published ports, and the check
//! that `down` left no kernel state behind.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_image::testing::busybox_rootfs_tar;

use crate::runtime_support::{Root, ok, private_netns, text};

/// A state root whose berth runs in a network namespace of the calling
/// test thread's own, with `busybox:latest` imported.
pub fn setup(label: &str) -> Root {
    private_netns();
    let root = Root::new(label);
    let mut tar = Vec::new();
    busybox_rootfs_tar(Path::new("/bin/busybox"), &mut tar).unwrap();
    let path = root.dir.join("busybox.tar");
    std::fs::write(&path, tar).unwrap();
    ok(root.run(&["image", "import", path.to_str().unwrap(), "busybox:latest"]));
    root
}

/// Writes `yaml` as `<root>/<name>/compose.yaml`; its path.
pub fn project(root: &Root, name: &str, yaml: &str) -> String {
    let dir = root.dir.join("projects").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("compose.yaml");
    std::fs::write(&file, yaml).unwrap();
    file.to_str().unwrap().to_owned()
}

/// A busybox service serving `body` over HTTP on port 80.
pub fn web_service(body: &str) -> String {
    format!(
        r#"    image: busybox:latest
    init: true
    command: ["sh", "-c", "mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www"]
"#
    )
}

/// `GET /` on `addr`: the body. Retries while nothing answers yet (up to
/// 10 s), then panics with the last error.
pub fn get(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match try_get(addr) {
            Ok(body) => return body,
            Err(e) if Instant::now() > deadline => panic!("GET http://{addr}/: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One attempt at `GET /` on `addr`.
pub fn try_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut s = String::new();
    c.read_to_string(&mut s)?;
    let s = s.replace("\r\n", "\n");
    match s.split_once("\n\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") => Ok(body.trim().to_owned()),
        _ => Err(std::io::Error::other(format!("not an HTTP answer: {s:?}"))),
    }
}

pub fn local(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port)
}

/// `sh -c script` in `container`: its trimmed stdout (fails the test when
/// it fails).
pub fn exec(root: &Root, container: &str, script: &str) -> String {
    ok(root.run(&["exec", container, "sh", "-c", script]))
        .trim()
        .to_owned()
}

/// `ip ARGS` in the test's namespace: stdout.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The nftables table berth keeps, as `nft list` prints it (empty when
/// there is none).
pub fn nft_table() -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", "berth"])
        .output()
        .unwrap();
    text(&out.stdout)
}

/// The veths of the test's namespace once the kernel is done tearing
/// down the namespaces berth unbound: berth leaves a container's veth pair
/// to that teardown, which runs in the background (a workqueue after an
/// RCU grace period), so a pair can outlive `down` by some milliseconds.
/// Waits for none to be left (a generous bound, not a speed check), then
/// returns what is left. The test's own link to an [`Internet`] (`up0`)
/// is not berth's and not counted.
pub fn veths_after_teardown() -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let veths: String = ip(&["-o", "link", "show", "type", "veth"])
            .lines()
            .filter(|l| !l.contains(" up0@"))
            .map(|l| format!("{l}\n"))
            .collect();
        if veths.trim().is_empty() || std::time::Instant::now() >= deadline {
            return veths;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// After `down` of every project of `root`: no bound network namespace
/// under the root, no endpoint record, no veth or bridge in the test's
/// namespace, no berth nftables table, no DNS server left running. Called
/// before the root's own cleanup (which would unmount leftovers and hide
/// them).
pub fn assert_no_network_leftovers(root: &Root) {
    assert_network_leftovers_at_most(root, false);
}

/// [`assert_no_network_leftovers`], but berth's default `bridge` network
/// (`berth0`) may stay: a build's RUN steps made it, and it stays as
/// docker0 does. Nothing of any other network may.
pub fn assert_no_network_leftovers_but_the_default_bridge(root: &Root) {
    assert_network_leftovers_at_most(root, true);
}

fn assert_network_leftovers_at_most(root: &Root, default_bridge: bool) {
    assert_no_endpoint_leftovers(root);
    let entries = |d: &str| -> Vec<PathBuf> {
        std::fs::read_dir(root.dir.join(d))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let networks: Vec<PathBuf> = entries("networks")
        .into_iter()
        .filter(|p| p.is_dir())
        .filter(|p| !(default_bridge && p.ends_with("bridge")))
        .collect();
    assert_eq!(networks, Vec::<PathBuf>::new(), "networks left");
    let bridges: Vec<String> = ip(&["-o", "link", "show", "type", "bridge"])
        .lines()
        .filter(|l| !(default_bridge && l.contains(": berth0:")))
        .map(str::to_owned)
        .collect();
    assert!(bridges.is_empty(), "bridges left:\n{}", bridges.join("\n"));
    let table = nft_table();
    if default_bridge {
        // Only the default bridge's rules: no other bridge is named.
        assert!(!table.contains("\"br-"), "nftables rules left:\n{table}");
    } else {
        assert!(table.trim().is_empty(), "nftables table left:\n{table}");
    }
    let dns: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(" dns ") && c.contains(root.dir.to_str().unwrap()))
        .collect();
    assert!(dns.is_empty(), "DNS servers left: {dns:?}");
}

/// No container networking left under `root`: no bound network namespace,
/// no endpoint record, no veth in the test's namespace (networks
/// themselves may stay: a build leaves the default bridge, as Docker
/// keeps docker0).
pub fn assert_no_endpoint_leftovers(root: &Root) {
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|p| Path::new(p).starts_with(root.dir.join("netns")))
        .collect();
    assert!(
        mounts.is_empty(),
        "network namespaces still bound: {mounts:?}"
    );
    let entries = |d: &str| -> Vec<PathBuf> {
        std::fs::read_dir(root.dir.join(d))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    assert_eq!(entries("netns"), Vec::<PathBuf>::new(), "netns files left");
    assert_eq!(
        entries("endpoints"),
        Vec::<PathBuf>::new(),
        "endpoints left"
    );
    let veths = veths_after_teardown();
    assert!(veths.trim().is_empty(), "veths left:\n{veths}");
}

/// A network namespace standing for the internet, linked to the test's
/// namespace (`up0`, 198.51.100.2 and 2001:db8:1::2 on this side); an
/// HTTP server in it answers `from <peer address>`. Deleted on drop.
/// Without IPv6 in the kernel, IPv4 only.
pub struct Internet {
    name: String,
}

impl Internet {
    pub fn new() -> Internet {
        let ipv6 = Path::new("/proc/sys/net/ipv6").exists();
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "berth-e2e-inet-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let inet = Internet { name };
        let n = &inet.name;
        ip(&["netns", "add", n]);
        ip(&[
            "link", "add", "up0", "type", "veth", "peer", "name", "inet0", "netns", n,
        ]);
        ip(&["addr", "add", "198.51.100.2/24", "dev", "up0"]);
        if ipv6 {
            ip(&[
                "-6",
                "addr",
                "add",
                "2001:db8:1::2/64",
                "dev",
                "up0",
                "nodad",
            ]);
        }
        ip(&["link", "set", "up0", "up"]);
        let mut inside = vec![
            vec!["link", "set", "lo", "up"],
            vec!["addr", "add", "198.51.100.1/24", "dev", "inet0"],
        ];
        if ipv6 {
            inside.push(vec![
                "-6",
                "addr",
                "add",
                "2001:db8:1::1/64",
                "dev",
                "inet0",
                "nodad",
            ]);
        }
        inside.push(vec!["link", "set", "inet0", "up"]);
        for args in inside {
            let mut full = vec!["netns", "exec", n, "ip"];
            full.extend(args);
            ip(&full);
        }
        let ns = std::fs::File::open(format!("/run/netns/{n}")).unwrap();
        // The listener is made inside the namespace and stays there.
        let listener = std::thread::spawn(move || {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            TcpListener::bind(if ipv6 { "[::]:80" } else { "0.0.0.0:80" }).unwrap()
        })
        .join()
        .unwrap();
        std::thread::spawn(move || {
            for mut c in listener.incoming().flatten() {
                let peer = c.peer_addr().unwrap().ip();
                let peer = match peer {
                    std::net::IpAddr::V6(v6) => v6
                        .to_ipv4_mapped()
                        .map(std::net::IpAddr::V4)
                        .unwrap_or(peer),
                    v4 => v4,
                };
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                let _ = write!(
                    c,
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfrom {peer}\n"
                );
            }
        });
        inet
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
