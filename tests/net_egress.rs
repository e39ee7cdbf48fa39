//! End-to-end: containers reach the outside through the host, masqueraded
//! (IPv4 and IPv6), where their network allows it. The "outside" is a
//! second network namespace joined to the test's own by a veth, with no
//! route back to any container subnet: only a masqueraded connection gets
//! an answer, and the answer names the source address it saw.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod net_support;
mod runtime_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use net_support::{assert_no_network_leftovers, exec, ip, project, setup};
use runtime_support::{need_root, ok};

/// A network namespace standing for the internet, linked to the test's
/// namespace (`up0`, 198.51.100.2 and 2001:db8:1::2 on this side); an
/// HTTP server in it answers `from <peer address>`. Deleted on drop.
struct Internet {
    name: String,
}

impl Internet {
    fn new() -> Internet {
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
        ip(&[
            "-6",
            "addr",
            "add",
            "2001:db8:1::2/64",
            "dev",
            "up0",
            "nodad",
        ]);
        ip(&["link", "set", "up0", "up"]);
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["addr", "add", "198.51.100.1/24", "dev", "inet0"],
            vec![
                "-6",
                "addr",
                "add",
                "2001:db8:1::1/64",
                "dev",
                "inet0",
                "nodad",
            ],
            vec!["link", "set", "inet0", "up"],
        ] {
            let mut full = vec!["netns", "exec", n, "ip"];
            full.extend(args);
            ip(&full);
        }
        let ns = std::fs::File::open(format!("/run/netns/{n}")).unwrap();
        // The listener is made inside the namespace and stays there.
        let listener = std::thread::spawn(move || {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            TcpListener::bind("[::]:80").unwrap()
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

#[test]
fn containers_reach_the_outside_masqueraded_where_their_network_allows() {
    if !need_root("containers_reach_the_outside_masqueraded_where_their_network_allows") {
        return;
    }
    if !std::path::Path::new("/proc/sys/net/ipv6").exists() {
        eprintln!("SKIPPED: egress test: this kernel has IPv6 disabled (no /proc/sys/net/ipv6)");
        return;
    }
    let root = setup("net-egress");
    for key in ["all", "default"] {
        std::fs::write(format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6"), "0").unwrap();
    }
    let _internet = Internet::new();
    let sleeper = "    image: busybox:latest\n    init: true\n    command: [\"sleep\", \"1000\"]\n";
    let file = project(
        &root,
        "e",
        &format!(
            r#"name: e
services:
  out:
{sleeper}    networks: [wide]
  plain:
{sleeper}    networks: [nomasq]
  sealed:
{sleeper}    networks: [inside]
networks:
  wide:
    enable_ipv6: true
  nomasq:
    driver_opts:
      com.docker.network.bridge.enable_ip_masquerade: "false"
  inside:
    internal: true
"#
        ),
    );
    ok(root.run(&["up", "-d", "-f", &file]));
    // busybox nc rather than wget, whose -T (timeout) crashes the
    // static busybox here.
    let fetch = |container: &str, addr: &str| {
        let out = root.run(&[
            "exec",
            container,
            "sh",
            "-c",
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {addr} 80"),
        ]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("from "))
            .map(str::to_owned)
    };
    // Masqueraded: the outside sees the host's address, over both families.
    assert_eq!(
        fetch("e-out-1", "198.51.100.1").as_deref(),
        Some("from 198.51.100.2")
    );
    assert_eq!(
        fetch("e-out-1", "2001:db8:1::1").as_deref(),
        Some("from 2001:db8:1::2")
    );
    // Without masquerade the outside has no way back; internal networks
    // have no way out at all.
    assert_eq!(fetch("e-plain-1", "198.51.100.1"), None);
    assert_eq!(fetch("e-sealed-1", "198.51.100.1"), None);
    let routes = exec(&root, "e-sealed-1", "ip route");
    assert!(!routes.contains("default"), "{routes}");

    ok(root.run(&["down", "-f", &file]));
    // up0 is the test's own link to the outside, not berth's.
    ip(&["link", "del", "up0"]);
    assert_no_network_leftovers(&root);
}
