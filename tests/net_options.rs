//! End-to-end: the network options of Compose files, with the real
//! `berth` in a private network namespace: `links` (aliases that resolve
//! in the linking container only, and start order), `mac_address`,
//! `gw_priority`, `interface_name`, the bridge driver options
//! (`bridge.name`, `mtu`, `enable_icc`, `host_binding_ipv4`,
//! `container_iface_prefix`), and `link_local_ips` refused by name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod net_support;
mod runtime_support;

use net_support::{assert_no_network_leftovers, exec, ip, project, setup};
use runtime_support::{need_root, ok, text};

const SLEEPER: &str =
    "    image: busybox:latest\n    init: true\n    command: [\"sleep\", \"1000\"]\n";

/// The addresses busybox `nslookup NAME` prints for the name (after the
/// server's own lines), or `None` when the lookup fails.
fn lookup(root: &runtime_support::Root, container: &str, name: &str) -> Option<Vec<String>> {
    let out = root.run(&["exec", container, "nslookup", name]);
    if !out.status.success() {
        return None;
    }
    let stdout = text(&out.stdout);
    let after = stdout.split_once("Name:").map(|(_, a)| a)?;
    Some(
        after
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Address:"))
            .map(|a| a.trim().to_owned())
            .collect(),
    )
}

#[test]
fn links_resolve_in_the_linking_container_and_order_the_start() {
    if !need_root("links_resolve_in_the_linking_container_and_order_the_start") {
        return;
    }
    let root = setup("net-links");
    let file = project(
        &root,
        "l",
        &format!(
            "name: l\nservices:\n  web:\n{SLEEPER}    links: [\"db:database\", cache]\n  db:\n{SLEEPER}  cache:\n{SLEEPER}  other:\n{SLEEPER}"
        ),
    );
    // `up web` brings up what it links to, first.
    let out = root.run(&["up", "-d", "-f", &file, "web"]);
    let err = ok(out.clone()) + &text(&out.stderr);
    let started: Vec<&str> = err
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Container "))
        .filter_map(|l| l.strip_suffix(" Started"))
        .collect();
    assert_eq!(started.len(), 3, "{err}");
    assert_eq!(started.last(), Some(&"l-web-1"), "{err}");
    assert!(
        !root.run(&["inspect", "l-other-1"]).status.success(),
        "other was not asked for"
    );

    let db_ip = root.inspect("l-db-1")["NetworkSettings"]["Networks"]["l_default"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        lookup(&root, "l-web-1", "database"),
        Some(vec![db_ip.clone()])
    );
    assert_eq!(lookup(&root, "l-web-1", "db"), Some(vec![db_ip.clone()]));
    // getaddrinfo (busybox ping resolves through it) sees the alias too.
    let ping = exec(&root, "l-web-1", "ping -c 1 -W 2 database | head -1");
    assert!(ping.contains(&db_ip), "{ping}");
    // The alias is web's own: db itself does not resolve it.
    assert_eq!(lookup(&root, "l-db-1", "database"), None);

    ok(root.run(&["down", "-f", &file]));
    assert_no_network_leftovers(&root);
}

#[test]
fn mac_addresses_gateway_priority_and_bridge_options_apply() {
    if !need_root("mac_addresses_gateway_priority_and_bridge_options_apply") {
        return;
    }
    let root = setup("net-opts");
    let file = project(
        &root,
        "o",
        &format!(
            r#"name: o
services:
  a:
{SLEEPER}    mac_address: "02:42:0A:00:00:AA"
    networks:
      front: {{}}
      back:
        gw_priority: 10
        mac_address: "02:42:0a:00:00:bb"
  b:
{SLEEPER}    networks: [quiet]
    ports: ["18095:80"]
  c:
{SLEEPER}    networks:
      quiet: {{}}
      named:
        interface_name: uplink7
  d:
{SLEEPER}    networks: [named]
networks:
  named:
    driver_opts:
      com.docker.network.container_iface_prefix: lan
  front: {{}}
  back:
    driver_opts:
      com.docker.network.bridge.name: berthback0
      com.docker.network.driver.mtu: "1400"
  quiet:
    driver_opts:
      com.docker.network.bridge.enable_icc: "false"
      com.docker.network.bridge.host_binding_ipv4: "127.0.0.1"
"#
        ),
    );
    ok(root.run(&["up", "-d", "-f", &file]));

    // The service's MAC goes to eth0 (the first network: front), the
    // network's own to its interface.
    let a = root.inspect("o-a-1");
    let nets = &a["NetworkSettings"]["Networks"];
    assert_eq!(nets["o_front"]["MacAddress"], "02:42:0a:00:00:aa", "{a:#}");
    assert_eq!(nets["o_back"]["MacAddress"], "02:42:0a:00:00:bb", "{a:#}");
    let links = exec(&root, "o-a-1", "ip -o link");
    let eth = |name: &str| {
        links
            .lines()
            .find(|l| l.contains(&format!(" {name}:")) || l.contains(&format!(" {name}@")))
            .unwrap_or_else(|| panic!("no {name} in {links}"))
            .to_owned()
    };
    assert!(eth("eth0").contains("02:42:0a:00:00:aa"), "{links}");
    assert!(eth("eth1").contains("02:42:0a:00:00:bb"), "{links}");
    // back's bridge has its name and MTU, and so does a's interface on it.
    assert!(eth("eth1").contains("mtu 1400"), "{links}");
    let bridge = ip(&["-o", "link", "show", "berthback0"]);
    assert!(bridge.contains("mtu 1400"), "{bridge}");
    // The default route goes through back (gw_priority 10), not eth0.
    let back_gw = nets["o_back"]["Gateway"].as_str().unwrap();
    let routes = exec(&root, "o-a-1", "ip route show default");
    assert!(
        routes.contains(&format!("via {back_gw}")) && routes.contains("eth1"),
        "{routes}"
    );

    // enable_icc=false: b and c do not reach each other, but reach the
    // gateway (the host).
    let c_ip = root.inspect("o-c-1")["NetworkSettings"]["Networks"]["o_quiet"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    let quiet_gw = root.inspect("o-b-1")["NetworkSettings"]["Networks"]["o_quiet"]["Gateway"]
        .as_str()
        .unwrap()
        .to_owned();
    let to_c = root.run(&["exec", "o-b-1", "ping", "-c", "1", "-W", "1", &c_ip]);
    assert!(!to_c.status.success(), "b reached c with icc off");
    ok(root.run(&["exec", "o-b-1", "ping", "-c", "1", "-W", "2", &quiet_gw]));
    // The network's iface prefix names d's interface; interface_name
    // names c's (the prefix would have made it lan1).
    let d_links = exec(&root, "o-d-1", "ip -o link");
    assert!(d_links.contains(" lan0@"), "{d_links}");
    let c_links = exec(&root, "o-c-1", "ip -o link");
    assert!(c_links.contains(" uplink7@"), "{c_links}");
    assert!(c_links.contains(" eth0@"), "{c_links}");
    // host_binding_ipv4: a port with no address is published there only.
    let ps = ok(root.run(&["ps"]));
    assert!(ps.contains("127.0.0.1:18095->80/tcp"), "{ps}");
    let table = net_support::nft_table();
    assert!(
        table.contains("ip daddr 127.0.0.1 tcp dport 18095"),
        "{table}"
    );

    ok(root.run(&["down", "-f", &file]));
    assert_no_network_leftovers(&root);
}

#[test]
fn link_local_ips_and_bad_mac_addresses_are_refused_by_name() {
    if !need_root("link_local_ips_and_bad_mac_addresses_are_refused_by_name") {
        return;
    }
    let root = setup("net-refused");
    let file = project(
        &root,
        "x",
        &format!(
            "name: x\nservices:\n  a:\n{SLEEPER}    networks:\n      default:\n        link_local_ips: [\"169.254.8.8\"]\n"
        ),
    );
    let out = root.run(&["up", "-d", "-f", &file]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("link_local_ips on network x_default is not supported"),
        "{}",
        text(&out.stderr)
    );
    ok(root.run(&["down", "-f", &file]));
    let file = project(
        &root,
        "y",
        &format!("name: y\nservices:\n  a:\n{SLEEPER}    mac_address: \"01:00:5e:00:00:01\"\n"),
    );
    let out = root.run(&["up", "-d", "-f", &file]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("invalid mac_address \"01:00:5e:00:00:01\": a multicast address"),
        "{}",
        text(&out.stderr)
    );
    ok(root.run(&["down", "-f", &file]));
    assert_no_network_leftovers(&root);
}
