//! End-to-end: IPv6 networks with the real `berth`, in a private network
//! namespace with IPv6 turned on: addresses from `ipam.config` or a unique
//! local /64, `ipv6_address`, the container's IPv6 default route and
//! `/etc/hosts` line, AAAA answers from the network's DNS server, ports
//! published on `[::]`, and what is refused (`[::1]`, `ipv6_address` on a
//! network without IPv6).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod net_support;
mod runtime_support;

use std::net::{Ipv6Addr, SocketAddr};

use net_support::{assert_no_network_leftovers, exec, get, local, project, setup, try_get};
use runtime_support::{Root, need_root, ok, text};

/// `setup` plus IPv6 on in the test's namespace; `None` (and SKIPPED
/// printed) when the kernel has no IPv6 at all.
fn setup6(label: &str) -> Option<Root> {
    if !std::path::Path::new("/proc/sys/net/ipv6").exists() {
        eprintln!("SKIPPED: {label}: this kernel has IPv6 disabled (no /proc/sys/net/ipv6)");
        return None;
    }
    let root = setup(label);
    // The namespace is the test thread's own, so are these sysctls.
    for key in ["all", "default", "lo"] {
        std::fs::write(format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6"), "0").unwrap();
    }
    Some(root)
}

fn v6(root: &Root, container: &str, network: &str, key: &str) -> String {
    root.inspect(container)["NetworkSettings"]["Networks"][network][key]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn ipv6_networks_address_route_resolve_and_publish() {
    if !need_root("ipv6_networks_address_route_resolve_and_publish") {
        return;
    }
    let Some(root) = setup6("net-v6") else { return };
    let file = project(
        &root,
        "s",
        &format!(
            r#"name: s
services:
  web:
{web}    hostname: web6
    ports: ["18090:80", "[::]:18091:80"]
    networks:
      v6net:
        ipv6_address: fd12:3456:789a::10
  client:
    image: busybox:latest
    init: true
    command: ["sleep", "1000"]
    networks: [v6net, auto]
networks:
  v6net:
    enable_ipv6: true
    ipam:
      config:
        - subnet: 172.30.0.0/24
        - subnet: fd12:3456:789a::/64
  auto:
    enable_ipv6: true
"#,
            web = net_support::web_service("hello6")
        ),
    );
    ok(root.run(&["up", "-d", "-f", &file]));

    assert_eq!(
        v6(&root, "s-web-1", "s_v6net", "GlobalIPv6Address"),
        "fd12:3456:789a::10"
    );
    assert_eq!(
        v6(&root, "s-web-1", "s_v6net", "IPv6Gateway"),
        "fd12:3456:789a::1"
    );
    // The network without a subnet got a unique local /64.
    let auto = v6(&root, "s-client-1", "s_auto", "GlobalIPv6Address");
    assert!(auto.starts_with("fd"), "{auto}");
    assert_eq!(
        root.inspect("s-client-1")["NetworkSettings"]["Networks"]["s_auto"]["GlobalIPv6PrefixLen"],
        64
    );

    // Inside: the address, the IPv6 default route, the /etc/hosts line.
    let addrs = exec(&root, "s-web-1", "ip -6 addr show dev eth0");
    assert!(addrs.contains("inet6 fd12:3456:789a::10/64"), "{addrs}");
    let routes = exec(&root, "s-web-1", "ip -6 route show default");
    assert!(routes.contains("via fd12:3456:789a::1"), "{routes}");
    let hosts = exec(&root, "s-web-1", "cat /etc/hosts");
    assert!(hosts.contains("fd12:3456:789a::10\tweb6"), "{hosts}");

    // The host reaches the container directly and through [::] ports
    // (on any of its IPv6 addresses but ::1: the bridge's here).
    let direct: SocketAddr = "[fd12:3456:789a::10]:80".parse().unwrap();
    assert_eq!(get(direct), "hello6");
    let gw6: Ipv6Addr = "fd12:3456:789a::1".parse().unwrap();
    assert_eq!(get(SocketAddr::from((gw6, 18090))), "hello6");
    assert_eq!(get(SocketAddr::from((gw6, 18091))), "hello6");
    // 18090 had no address: IPv4 too; 18091 was IPv6 only.
    assert_eq!(get(local(18090)), "hello6");
    assert!(
        try_get(local(18091)).is_err(),
        "[::]:18091 answered on IPv4"
    );
    let ps = ok(root.run(&["ps"]));
    for shown in [
        "0.0.0.0:18090->80/tcp",
        "[::]:18090->80/tcp",
        "[::]:18091->80/tcp",
    ] {
        assert!(ps.contains(shown), "{shown} missing:\n{ps}");
    }

    // Another container finds web's IPv6 address by name (AAAA), and
    // reaches it, and the published port through the gateway.
    let lookup = exec(&root, "s-client-1", "nslookup web");
    assert!(lookup.contains("fd12:3456:789a::10"), "{lookup}");
    let body = exec(
        &root,
        "s-client-1",
        "wget -qO- 'http://[fd12:3456:789a::10]/'",
    );
    assert_eq!(body, "hello6");
    let body = exec(
        &root,
        "s-client-1",
        "wget -qO- 'http://[fd12:3456:789a::1]:18091/'",
    );
    assert_eq!(body, "hello6");

    ok(root.run(&["down", "-f", &file]));
    assert_no_network_leftovers(&root);
}

#[test]
fn ipv6_loopback_ports_and_addresses_without_ipv6_are_refused() {
    if !need_root("ipv6_loopback_ports_and_addresses_without_ipv6_are_refused") {
        return;
    }
    let Some(root) = setup6("net-v6-refused") else {
        return;
    };
    let cases = [
        (
            "a",
            "    ports: [\"[::1]:18092:80\"]\nnetworks:\n  default:\n    enable_ipv6: true\n",
            "cannot publish on [::1]: Linux does not forward IPv6 loopback traffic",
        ),
        (
            "b",
            "    networks:\n      default:\n        ipv6_address: fd00::5\n",
            "ipv6_address fd00::5 needs the network to have enable_ipv6: true",
        ),
        (
            "c",
            "    ports: [\"[::]:18093:80\"]\n",
            "the container's network has no IPv6 (set enable_ipv6: true on it)",
        ),
        (
            "d",
            "networks:\n  default:\n    ipam:\n      config:\n        - subnet: fd00:1::/64\n",
            "an IPv6 subnet needs enable_ipv6: true",
        ),
    ];
    for (name, tail, expected) in cases {
        let file = project(
            &root,
            name,
            &format!(
                "name: {name}\nservices:\n  web:\n{}{tail}",
                net_support::web_service("x")
            ),
        );
        let out = root.run(&["up", "-d", "-f", &file]);
        assert!(!out.status.success(), "{name} came up");
        let err = text(&out.stderr);
        assert!(err.contains(expected), "{name}: {err}");
        ok(root.run(&["down", "-f", &file]));
    }
    assert_no_network_leftovers(&root);
}
