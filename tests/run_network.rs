//! End-to-end: Docker's standalone networking with the real `berth`, in a
//! private network namespace per test: `berth network create/ls/inspect/
//! rm/prune`, `run --network NAME` (containers find each other by name and
//! alias through the network's DNS server), `-p` from the host side, a
//! taken port named, ports freed at stop and taken back at start, and
//! `--rm`/`rm` leaving no endpoint, address or nft rule behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_image::testing::busybox_rootfs_tar;
use runtime_support::{Root, need_root, private_netns, text};
use serde_json::Value;

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

fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "berth should have failed:\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// `GET path` on 127.0.0.1:port; retries while nothing listens yet.
fn get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = TcpStream::connect(("127.0.0.1", port)).and_then(|mut c| {
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(c, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut s = String::new();
            c.read_to_string(&mut s)?;
            Ok(s)
        });
        match attempt {
            Ok(s) if !s.is_empty() => return s,
            Ok(_) | Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Ok(_) => panic!("127.0.0.1:{port}: empty answer"),
            Err(e) => panic!("127.0.0.1:{port}: {e}"),
        }
    }
}

/// Whether anything answers on 127.0.0.1:port (one try).
fn answers(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).is_ok()
}

/// The dnat rules of berth's nftables table in this namespace.
fn dnat_rules() -> Vec<String> {
    let out = Command::new("nft")
        .args(["list", "table", "ip", "berth"])
        .output()
        .unwrap();
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains("dnat to"))
        .map(|l| l.trim().to_owned())
        .collect()
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn network_inspect(root: &Root, name: &str) -> Value {
    let v: Value = serde_json::from_str(&ok(root.run(&["network", "inspect", name]))).unwrap();
    v[0].clone()
}

fn ip_on(net: &Value, container: &str) -> String {
    net["Containers"]
        .as_object()
        .unwrap()
        .values()
        .find(|c| c["Name"] == container)
        .unwrap_or_else(|| panic!("{container} not in {net:#}"))["IPv4Address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn containers_on_a_user_network_find_each_other_by_name() {
    if !need_root("containers_on_a_user_network_find_each_other_by_name") {
        return;
    }
    let root = setup("runnet-dns");
    let id = ok(root.run(&[
        "network",
        "create",
        "--subnet",
        "10.123.0.0/24",
        "--label",
        "team=web",
        "mynet",
    ]));
    assert_eq!(id.trim().len(), 64, "{id}");
    let ls = ok(root.run(&["network", "ls"]));
    assert!(ls.starts_with("NETWORK ID     NAME"), "{ls}");
    assert!(
        ls.lines().any(|l| l.starts_with(&id.trim()[..12])
            && l.contains(" mynet ")
            && l.ends_with("bridge   local")),
        "{ls}"
    );
    assert_eq!(
        ok(root.run(&["network", "ls", "-q", "--filter", "label=team=web"])).trim(),
        &id.trim()[..12]
    );

    ok(root.run(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "mynet",
        "--network-alias",
        "www",
        "--ip",
        "10.123.0.50",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]));
    ok(root.run(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "mynet",
        "busybox",
        "sleep",
        "600",
    ]));
    let web: Value = serde_json::from_str(&ok(root.run(&["inspect", "web"]))).unwrap();
    assert_eq!(web[0]["HostConfig"]["NetworkMode"], "mynet");
    assert_eq!(
        web[0]["NetworkSettings"]["Networks"]["mynet"]["IPAddress"],
        "10.123.0.50"
    );
    let net = network_inspect(&root, "mynet");
    assert_eq!(net["Name"], "mynet");
    assert_eq!(net["Driver"], "bridge");
    assert_eq!(net["IPAM"]["Config"][0]["Subnet"], "10.123.0.0/24");
    assert_eq!(net["IPAM"]["Config"][0]["Gateway"], "10.123.0.1");
    assert_eq!(net["Labels"]["team"], "web");
    assert_eq!(ip_on(&net, "web"), "10.123.0.50");
    let client_ip = ip_on(&net, "client");
    assert!(client_ip.starts_with("10.123.0."), "{client_ip}");

    // By container name and by alias, through the network's DNS server.
    for name in ["web", "www"] {
        let out = ok(root.run(&["exec", "client", "nslookup", name]));
        assert!(out.contains("Address: 10.123.0.50"), "{name}: {out}");
    }
    let got = ok(root.run(&[
        "exec",
        "client",
        "sh",
        "-c",
        "wget -q -O /tmp/p http://web/passwd && head -1 /tmp/p",
    ]));
    assert_eq!(got.trim(), "root:x:0:0:root:/root:/bin/sh");
    // resolv.conf points at the network's DNS server (its gateway).
    let resolv = ok(root.run(&["exec", "client", "cat", "/etc/resolv.conf"]));
    assert!(resolv.contains("nameserver 10.123.0.1"), "{resolv}");

    // connect / disconnect: one more interface, with its address and
    // alias on the other network's DNS, then gone again.
    ok(root.run(&["network", "create", "--subnet", "10.125.0.0/24", "other"]));
    ok(root.run(&[
        "network",
        "connect",
        "--alias",
        "backend",
        "--ip",
        "10.125.0.9",
        "other",
        "web",
    ]));
    let addrs = ok(root.run(&["exec", "web", "ip", "-o", "addr", "show", "eth1"]));
    assert!(addrs.contains("10.125.0.9/24"), "{addrs}");
    ok(root.run(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "other",
        "busybox",
        "sleep",
        "600",
    ]));
    let out = ok(root.run(&["exec", "peer", "nslookup", "backend"]));
    assert!(out.contains("Address: 10.125.0.9"), "{out}");
    let err = fails(root.run(&["network", "connect", "other", "web"]));
    assert!(err.contains("already connected"), "{err}");
    ok(root.run(&["network", "disconnect", "other", "web"]));
    let out = root.run(&["exec", "web", "ip", "-o", "addr", "show", "eth1"]);
    assert!(
        !out.status.success(),
        "eth1 is still there: {}",
        text(&out.stdout)
    );
    assert!(
        !network_inspect(&root, "other")["Containers"]
            .as_object()
            .unwrap()
            .values()
            .any(|c| c["Name"] == "web")
    );
    ok(root.run(&["rm", "-f", "peer"]));
    ok(root.run(&["network", "rm", "other"]));

    // In use: refused, naming the running containers.
    let err = fails(root.run(&["network", "rm", "mynet"]));
    assert!(err.contains("client") && err.contains("web"), "{err}");
    // A taken --ip is named.
    let err = fails(root.run(&[
        "run",
        "--rm",
        "--network",
        "mynet",
        "--ip",
        "10.123.0.50",
        "busybox",
        "true",
    ]));
    assert!(err.contains("10.123.0.50"), "{err}");

    // A Compose project uses it as an external network; `down` keeps it.
    let project = root.dir.join("ext");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("compose.yaml"),
        "name: extp\nservices:\n  a:\n    image: busybox:latest\n    command: [\"sleep\", \"600\"]\n    \
         init: true\n    stop_grace_period: 1s\n    networks: [shared]\nnetworks:\n  shared:\n    \
         name: mynet\n    external: true\n",
    )
    .unwrap();
    let file = project.join("compose.yaml");
    let file = file.to_str().unwrap();
    ok(root.run(&["up", "-d", "-f", file]));
    let out = ok(root.run(&["exec", "extp-a-1", "nslookup", "web"]));
    assert!(out.contains("Address: 10.123.0.50"), "{out}");
    ok(root.run(&["down", "-f", file]));
    assert!(ok(root.run(&["network", "ls"])).contains(" mynet "));

    ok(root.run(&["rm", "-f", "web", "client"]));
    ok(root.run(&["network", "rm", "mynet"]));
    assert!(!ok(root.run(&["network", "ls"])).contains("mynet"));
    // Nothing left of the two containers.
    assert!(entries(&root.dir.join("endpoints")).is_empty());
    assert!(entries(&root.dir.join("netns")).is_empty());
}

#[test]
fn published_ports_answer_from_the_host_and_a_taken_port_is_named() {
    if !need_root("published_ports_answer_from_the_host_and_a_taken_port_is_named") {
        return;
    }
    let root = setup("runnet-ports");
    // -p without --network: berth's default bridge network, made now.
    ok(root.run(&[
        "run",
        "-d",
        "--name",
        "w",
        "-p",
        "127.0.0.1:18080:80",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]));
    let page = get(18080, "/passwd");
    assert!(page.contains("root:x:0:0"), "{page}");
    assert_eq!(
        ok(root.run(&["port", "w"])).trim(),
        "80/tcp -> 127.0.0.1:18080"
    );
    assert_eq!(ok(root.run(&["port", "w", "80"])).trim(), "127.0.0.1:18080");
    let ps = ok(root.run(&["ps"]));
    assert!(ps.contains("127.0.0.1:18080->80/tcp"), "{ps}");
    let bridge = network_inspect(&root, "bridge");
    assert_eq!(
        bridge["Options"]["com.docker.network.bridge.default_bridge"],
        "true"
    );
    assert!(
        bridge["Containers"].as_object().unwrap().len() == 1,
        "{bridge:#}"
    );

    // Taken: a clear error naming the port and its holder, nothing left.
    let out = root.run(&["run", "--rm", "-p", "127.0.0.1:18080:80", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert!(
        err.contains("18080") && err.contains("container w"),
        "{err}"
    );
    assert_eq!(entries(&root.dir.join("endpoints")).len(), 1);

    // Stopped: the port is free (nothing answers, another may take it);
    // started: it is back.
    ok(root.run(&["stop", "-t", "1", "w"]));
    assert!(!answers(18080));
    assert_eq!(ok(root.run(&["port", "w"])).trim(), "");
    assert!(dnat_rules().is_empty(), "{:?}", dnat_rules());
    ok(root.run(&["start", "w"]));
    assert!(get(18080, "/passwd").contains("root:x:0:0"));

    // The default bridge has no DNS server, as Docker's has none: the
    // host's resolvers.
    let resolv = ok(root.run(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]));
    let gw = bridge["IPAM"]["Config"][0]["Gateway"].as_str().unwrap();
    assert!(!resolv.contains(&format!("nameserver {gw}")), "{resolv}");
    // Docker refuses aliases there too.
    let err = fails(root.run(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "--network-alias",
        "x",
        "busybox",
        "true",
    ]));
    assert!(err.contains("user-defined networks"), "{err}");
    // A bad -p is refused before anything is made.
    let err = fails(root.run(&["run", "--rm", "-p", "80/icmp", "busybox", "true"]));
    assert!(err.contains("80/icmp"), "{err}");
}

#[test]
fn rm_and_run_rm_leave_no_endpoint_address_or_rule() {
    if !need_root("rm_and_run_rm_leave_no_endpoint_address_or_rule") {
        return;
    }
    let root = setup("runnet-rm");
    ok(root.run(&["network", "create", "--subnet", "10.124.0.0/24", "n1"]));
    ok(root.run(&["network", "create", "unused"]));
    // --rm in the foreground: gone, with its endpoint, when run returns.
    let out = ok(root.run(&[
        "run",
        "--rm",
        "--network",
        "n1",
        "-p",
        "127.0.0.1:18081:80",
        "busybox",
        "hostname",
        "-i",
    ]));
    assert_eq!(out.trim(), "10.124.0.2");
    assert!(entries(&root.dir.join("endpoints")).is_empty());
    assert!(entries(&root.dir.join("netns")).is_empty());
    assert!(dnat_rules().is_empty(), "{:?}", dnat_rules());
    assert!(root.ids().is_empty());
    // The address is free again.
    let out = ok(root.run(&[
        "run",
        "--rm",
        "--network",
        "n1",
        "busybox",
        "hostname",
        "-i",
    ]));
    assert_eq!(out.trim(), "10.124.0.2");

    // -d, then rm -f.
    ok(root.run(&[
        "run",
        "-d",
        "--name",
        "d",
        "--network",
        "n1",
        "-p",
        "127.0.0.1:18082:80",
        "busybox",
        "sleep",
        "600",
    ]));
    assert_eq!(dnat_rules().len(), 1, "{:?}", dnat_rules());
    ok(root.run(&["rm", "-f", "d"]));
    assert!(entries(&root.dir.join("endpoints")).is_empty());
    assert!(dnat_rules().is_empty(), "{:?}", dnat_rules());

    // -d --rm: the shim releases it when the container exits.
    ok(root.run(&["run", "-d", "--rm", "--network", "n1", "busybox", "true"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !entries(&root.dir.join("endpoints")).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(entries(&root.dir.join("endpoints")).is_empty());

    // prune takes the networks nothing is attached to.
    ok(root.run(&[
        "create",
        "--name",
        "holder",
        "--network",
        "n1",
        "busybox",
        "true",
    ]));
    let pruned = ok(root.run(&["network", "prune", "-f"]));
    assert_eq!(pruned, "Deleted Networks:\nunused\n");
    let ls = ok(root.run(&["network", "ls"]));
    assert!(ls.contains("n1"), "{ls}");
}

#[test]
fn ipv6_networks_take_ip6_mac_address_and_connect_ip6() {
    if !need_root("ipv6_networks_take_ip6_mac_address_and_connect_ip6") {
        return;
    }
    let root = setup("runnet-ipv6");
    ok(root.run(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.126.0.0/24",
        "--subnet",
        "fd00:beef::/64",
        "v6net",
    ]));
    ok(root.run(&[
        "run",
        "-d",
        "--name",
        "a",
        "--network",
        "v6net",
        "--ip6",
        "fd00:beef::50",
        "--mac-address",
        "02:42:0a:00:00:99",
        "busybox",
        "sleep",
        "600",
    ]));
    let addrs = ok(root.run(&["exec", "a", "ip", "-o", "addr", "show", "eth0"]));
    assert!(addrs.contains("inet6 fd00:beef::50/64"), "{addrs}");
    assert!(addrs.contains("inet 10.126.0."), "{addrs}");
    let link = ok(root.run(&["exec", "a", "ip", "-o", "link", "show", "eth0"]));
    assert!(link.contains("link/ether 02:42:0a:00:00:99"), "{link}");
    let net = network_inspect(&root, "v6net");
    assert_eq!(net["EnableIPv6"], true);
    assert_eq!(net["IPAM"]["Config"][1]["Subnet"], "fd00:beef::/64");
    let a = net["Containers"]
        .as_object()
        .unwrap()
        .values()
        .find(|c| c["Name"] == "a")
        .unwrap()
        .clone();
    assert_eq!(a["IPv6Address"], "fd00:beef::50/64");
    assert_eq!(a["MacAddress"], "02:42:0a:00:00:99");

    // A container on the default bridge joins it with its own IPv6
    // address, and finds the first by name over IPv6.
    ok(root.run(&[
        "run",
        "-d",
        "--name",
        "b",
        "--network",
        "bridge",
        "busybox",
        "sleep",
        "600",
    ]));
    ok(root.run(&["network", "connect", "--ip6", "fd00:beef::60", "v6net", "b"]));
    let addrs = ok(root.run(&["exec", "b", "ip", "-o", "addr", "show", "eth1"]));
    assert!(addrs.contains("inet6 fd00:beef::60/64"), "{addrs}");
    let out = ok(root.run(&["exec", "a", "nslookup", "-type=AAAA", "b"]));
    assert!(out.contains("fd00:beef::60"), "{out}");

    // Refused by name: an address outside the network, a MAC with no
    // bridge network.
    let err = fails(root.run(&[
        "run",
        "--rm",
        "--network",
        "v6net",
        "--ip6",
        "fd00:cafe::1",
        "busybox",
        "true",
    ]));
    assert!(err.contains("fd00:cafe::1"), "{err}");
    let err = fails(root.run(&[
        "run",
        "--rm",
        "--mac-address",
        "02:42:0a:00:00:98",
        "busybox",
        "true",
    ]));
    assert!(err.contains("--mac-address"), "{err}");

    ok(root.run(&["rm", "-f", "a", "b"]));
    ok(root.run(&["network", "rm", "v6net"]));
    assert!(entries(&root.dir.join("endpoints")).is_empty());
    assert!(entries(&root.dir.join("netns")).is_empty());
}
