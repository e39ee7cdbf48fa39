//! End-to-end: containers reach the outside through the host, masqueraded
//! (IPv4 and IPv6), where their network allows it. The "outside" is a
//! second network namespace joined to the test's own by a veth, with no
//! route back to any container subnet: only a masqueraded connection gets
//! an answer, and the answer names the source address it saw.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod net_support;
mod runtime_support;

use net_support::{Internet, assert_no_network_leftovers, exec, ip, project, setup};
use runtime_support::{need_root, ok};

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
