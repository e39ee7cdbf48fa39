//! Bridges, veths, addresses, published ports and isolation for real, in a
//! private network namespace of the test thread's own (every thread the
//! crate spawns, and `nft`, inherit it), so nothing touches the host's
//! network. Namespace files are bound under a temp dir; a guard unbinds
//! them even when an assertion fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_net::{AttachRequest, ErrorKind, JoinRequest, Net, NetworkRequest, PortRequest, ipam};

fn private_netns() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: network tests need root");
        return false;
    }
    if std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: nft (nftables) is not installed");
        return false;
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare -n");
    berth_net::links::in_host(|h| async move { berth_net::links::loopback_up(&h).await }).unwrap();
    true
}

/// Detaches every endpoint (unbinding namespace files) on drop.
struct Cleanup {
    net: Net,
    _dir: tempfile::TempDir,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ep in self.net.endpoints().unwrap_or_default() {
            let _ = self.net.detach(&ep.container_id);
        }
        for n in self.net.networks().unwrap_or_default() {
            let _ = self.net.remove_network(&n.name, &|_| false);
        }
        // Anything still bound (a failed attach) under the temp root.
        if let Ok(rd) = std::fs::read_dir(self._dir.path().join("netns")) {
            for e in rd.flatten() {
                let _ = berth_net::netns::remove(&e.path());
            }
        }
    }
}

fn setup() -> Option<Cleanup> {
    if !private_netns() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    Some(Cleanup {
        net: Net::open(dir.path()),
        _dir: dir,
    })
}

fn id(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn join(network: &str, aliases: &[&str]) -> JoinRequest {
    JoinRequest {
        network: network.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    }
}

/// Runs `f` on a thread inside the namespace bound at `ns`.
fn in_ns<T: Send>(ns: &Path, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(ns).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

/// A TCP server in `ns` answering every connection with `reply`.
fn serve(ns: &Path, port: u16, reply: &'static str) {
    let l = in_ns(ns, || TcpListener::bind(("0.0.0.0", port)).unwrap());
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let peer = c
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            let _ = c.write_all(format!("{reply} from {peer}").as_bytes());
        }
    });
}

fn fetch(addr: SocketAddr) -> std::io::Result<String> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut s = String::new();
    c.read_to_string(&mut s)?;
    Ok(s)
}

fn netns(c: &Cleanup, n: u8) -> PathBuf {
    c.net.netns_path(&id(n))
}

#[test]
fn containers_reach_each_other_and_published_ports_answer() {
    let Some(c) = setup() else { return };
    let net = &c.net;
    let n = net
        .create_network(&NetworkRequest {
            name: "p_default".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(n.subnet.to_string(), "172.17.0.0/16");
    assert_eq!(n.gateway, Ipv4Addr::new(172, 17, 0, 1));
    assert!(
        n.bridge.starts_with("br-") && n.bridge.len() == 15,
        "{}",
        n.bridge
    );
    let a = net
        .attach(&AttachRequest {
            container_id: id(1),
            container_name: "p-web-1".into(),
            hostname: Some("web".into()),
            networks: vec![join("p_default", &["web"])],
            ports: vec![PortRequest {
                host_ip: None,
                host_port: Some("8080".into()),
                container_port: 80,
                protocol: "tcp".into(),
            }],
            ..Default::default()
        })
        .unwrap();
    let b = net
        .attach(&AttachRequest {
            container_id: id(2),
            container_name: "p-db-1".into(),
            hostname: None,
            networks: vec![join("p_default", &["db"])],
            ports: vec![],
            ..Default::default()
        })
        .unwrap();
    let ip_a = a.attachments[0].ip;
    let ip_b = b.attachments[0].ip;
    assert_eq!(ip_a, Ipv4Addr::new(172, 17, 0, 2));
    assert_eq!(ip_b, Ipv4Addr::new(172, 17, 0, 3));
    assert_eq!(a.attachments[0].mac, "02:42:ac:11:00:02");
    assert_eq!(a.ports[0].to_string(), "0.0.0.0:8080->80/tcp");

    serve(&netns(&c, 1), 80, "web");
    serve(&netns(&c, 2), 5432, "db");
    // Created, not started: its port is not published yet (Docker
    // allocates ports at start).
    assert!(fetch(([127, 0, 0, 1], 8080).into()).is_err());
    net.set_running(&id(1), true).unwrap();
    net.set_running(&id(2), true).unwrap();
    // Container to container over the bridge, source address kept.
    let got = in_ns(&netns(&c, 1), || fetch((ip_b, 5432).into())).unwrap();
    assert_eq!(got, format!("db from {ip_a}"));
    // The host reaches a container directly.
    assert_eq!(fetch((ip_a, 80).into()).unwrap(), "web from 172.17.0.1");
    // The published port from the host: on localhost (route_localnet and
    // masquerade) and on the host's own address (the gateway here).
    assert_eq!(
        fetch(([127, 0, 0, 1], 8080).into()).unwrap(),
        "web from 172.17.0.1"
    );
    assert_eq!(
        fetch((n.gateway, 8080).into()).unwrap(),
        "web from 172.17.0.1"
    );
    // Hairpin: another container, and the container itself, through the
    // published port.
    let got = in_ns(&netns(&c, 2), || fetch((n.gateway, 8080).into())).unwrap();
    assert_eq!(got, "web from 172.17.0.1");
    let got = in_ns(&netns(&c, 1), || fetch((n.gateway, 8080).into())).unwrap();
    assert_eq!(got, "web from 172.17.0.1");

    // The DNS records name both containers once they run.
    let dns = std::fs::read_to_string(c._dir.path().join("networks/p_default/dns.json")).unwrap();
    let dns: serde_json::Value = serde_json::from_str(&dns).unwrap();
    assert_eq!(dns["version"], 1);
    assert_eq!(dns["listen"], serde_json::json!(["172.17.0.1:53"]));
    assert_eq!(
        dns["containers"][id(1)],
        serde_json::json!({"names": ["p-web-1", "web", "010101010101"], "ipv4": "172.17.0.2"})
    );
    assert_eq!(dns["containers"][id(2)]["ipv4"], "172.17.0.3");

    // A second container asking for the same host port is told who has it.
    let e = net
        .attach(&AttachRequest {
            container_id: id(3),
            container_name: "p-other-1".into(),
            networks: vec![join("p_default", &[])],
            ports: vec![PortRequest {
                host_ip: None,
                host_port: Some("8080".into()),
                container_port: 80,
                protocol: "tcp".into(),
            }],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        e.to_string(),
        "cannot publish port 0.0.0.0:8080/tcp for p-other-1: container p-web-1 publishes it"
    );
    assert!(
        net.endpoint(&id(3)).unwrap().is_none(),
        "a failed attach leaves nothing"
    );
    assert!(!netns(&c, 3).exists());

    // And a port a host process listens on.
    let busy = TcpListener::bind("0.0.0.0:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let e = net
        .attach(&AttachRequest {
            container_id: id(4),
            container_name: "p-other-2".into(),
            networks: vec![join("p_default", &[])],
            ports: vec![PortRequest {
                host_ip: None,
                host_port: Some(busy_port.to_string()),
                container_port: 80,
                protocol: "tcp".into(),
            }],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "cannot publish port 0.0.0.0:{busy_port}/tcp for p-other-2: another process on the host is using it"
        )
    );

    // The network is in use while a running container is attached.
    let e = net.remove_network("p_default", &|_| true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);

    // A stopped container leaves the records.
    net.set_running(&id(2), false).unwrap();
    let dns = std::fs::read_to_string(c._dir.path().join("networks/p_default/dns.json")).unwrap();
    assert!(!dns.contains(&id(2)), "{dns}");
    // Detach takes the ports away.
    net.detach(&id(1)).unwrap();
    assert!(!netns(&c, 1).exists());
    assert!(fetch(([127, 0, 0, 1], 8080).into()).is_err());
    let dns = std::fs::read_to_string(c._dir.path().join("networks/p_default/dns.json")).unwrap();
    assert!(!dns.contains(&id(1)), "{dns}");
}

#[test]
fn udp_ports_ephemeral_ports_and_a_reboot_are_handled() {
    let Some(c) = setup() else { return };
    let net = &c.net;
    net.create_network(&NetworkRequest {
        name: "u".into(),
        ipam: vec![ipam::IpamRequest {
            subnet: Some("10.77.0.0/24".into()),
            gateway: None,
            ip_range: None,
        }],
        ..Default::default()
    })
    .unwrap();
    let ep = net
        .attach(&AttachRequest {
            container_id: id(5),
            container_name: "u-dns-1".into(),
            networks: vec![JoinRequest {
                network: "u".into(),
                ipv4_address: Some("10.77.0.53".into()),
                ..Default::default()
            }],
            ports: vec![
                PortRequest {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some("5353".into()),
                    container_port: 53,
                    protocol: "udp".into(),
                },
                PortRequest {
                    host_ip: None,
                    host_port: None,
                    container_port: 80,
                    protocol: "tcp".into(),
                },
            ],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ep.attachments[0].ip, Ipv4Addr::new(10, 77, 0, 53));
    net.set_running(&id(5), true).unwrap();
    let eph = ep.ports[1].host_port;
    assert!(eph >= 1024, "ephemeral port {eph}");
    let ns = netns(&c, 5);
    let sock = in_ns(&ns, || UdpSocket::bind("0.0.0.0:53").unwrap());
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], from);
        }
    });
    let ask = || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.send_to(b"ping", "127.0.0.1:5353").unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = s.recv_from(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(ask(), "ping");
    serve(&ns, 80, "eph");
    assert!(
        fetch(([127, 0, 0, 1], eph).into())
            .unwrap()
            .starts_with("eph")
    );

    // A reboot: the bridge and the table are gone, the files remain.
    let bridge = net.network("u").unwrap().bridge;
    berth_net::links::in_host(move |h| async move { berth_net::links::delete(&h, &bridge).await })
        .unwrap();
    berth_net::nft::apply(&berth_net::nft::render(&[], &[])).unwrap();
    assert!(fetch(([127, 0, 0, 1], eph).into()).is_err());
    net.restore(&|_| true).unwrap();
    net.detach(&id(5)).unwrap();
    // A container that is recreated on the restored network works again.
    let ep = net
        .attach(&AttachRequest {
            container_id: id(6),
            container_name: "u-web-1".into(),
            networks: vec![join("u", &[])],
            ports: vec![PortRequest {
                host_ip: None,
                host_port: Some("8081".into()),
                container_port: 80,
                protocol: "tcp".into(),
            }],
            ..Default::default()
        })
        .unwrap();
    net.set_running(&id(6), true).unwrap();
    serve(&netns(&c, 6), 80, "back");
    assert!(
        fetch(([127, 0, 0, 1], 8081).into())
            .unwrap()
            .starts_with("back")
    );
    assert_eq!(ep.attachments[0].ip, Ipv4Addr::new(10, 77, 0, 2));

    // A stopped container frees its port for another, and cannot take it
    // back while that one runs.
    net.set_running(&id(6), false).unwrap();
    assert!(fetch(([127, 0, 0, 1], 8081).into()).is_err());
    net.attach(&AttachRequest {
        container_id: id(7),
        container_name: "u-web-2".into(),
        networks: vec![join("u", &[])],
        ports: vec![PortRequest {
            host_ip: None,
            host_port: Some("8081".into()),
            container_port: 80,
            protocol: "tcp".into(),
        }],
        ..Default::default()
    })
    .unwrap();
    net.set_running(&id(7), true).unwrap();
    let err = net.set_running(&id(6), true).unwrap_err().to_string();
    assert!(
        err.contains("u-web-1") && err.contains("8081") && err.contains("container u-web-2"),
        "{err}"
    );
    net.detach(&id(7)).unwrap();
    net.set_running(&id(6), true).unwrap();
    assert!(
        fetch(([127, 0, 0, 1], 8081).into())
            .unwrap()
            .starts_with("back")
    );
}

#[test]
fn internal_networks_and_isolation() {
    let Some(c) = setup() else { return };
    let net = &c.net;
    let a = net
        .create_network(&NetworkRequest {
            name: "a".into(),
            ..Default::default()
        })
        .unwrap();
    let b = net
        .create_network(&NetworkRequest {
            name: "b".into(),
            ..Default::default()
        })
        .unwrap();
    let i = net
        .create_network(&NetworkRequest {
            name: "i".into(),
            internal: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(a.subnet.to_string(), "172.17.0.0/16");
    assert_eq!(b.subnet.to_string(), "172.18.0.0/16");
    assert_eq!(i.subnet.to_string(), "172.19.0.0/16");
    let on = |n: u8, name: &str, nets: &[&str]| {
        net.attach(&AttachRequest {
            container_id: id(n),
            container_name: name.into(),
            networks: nets.iter().map(|x| join(x, &[])).collect(),
            ..Default::default()
        })
        .unwrap()
    };
    let ca = on(10, "ca", &["a"]);
    let cb = on(11, "cb", &["b"]);
    let both = on(12, "both", &["a", "i"]);
    let ci = on(13, "ci", &["i"]);
    serve(&netns(&c, 11), 80, "b");
    serve(&netns(&c, 13), 80, "i");
    serve(&netns(&c, 12), 80, "both");
    // Another network is not reachable.
    let ip_b = cb.attachments[0].ip;
    assert!(in_ns(&netns(&c, 10), || fetch((ip_b, 80).into())).is_err());
    // A container on two networks has two interfaces; the default route
    // goes through the one that is not internal.
    assert_eq!(both.attachments[0].ifname, "eth0");
    assert_eq!(both.attachments[1].ifname, "eth1");
    assert!(both.attachments[0].default_route && !both.attachments[1].default_route);
    let ip_i = ci.attachments[0].ip;
    assert_eq!(
        in_ns(&netns(&c, 12), || fetch((ip_i, 80).into())).unwrap(),
        format!("i from {}", both.attachments[1].ip)
    );
    // An internal network's container has no default route: it reaches
    // neither the host nor the other networks.
    assert!(!ci.attachments[0].default_route);
    let ip_a = ca.attachments[0].ip;
    assert!(in_ns(&netns(&c, 13), || fetch((ip_a, 80).into())).is_err());
    // The host itself reaches it, as with Docker (nothing is forwarded).
    assert!(fetch((ip_i, 80).into()).unwrap().starts_with("i from"));
    // Removing a network with only stopped containers detaches them.
    net.remove_network("b", &|_| false).unwrap();
    assert!(
        net.endpoint(&id(11))
            .unwrap()
            .unwrap()
            .attachments
            .is_empty()
    );
    assert_eq!(net.network("b").unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn a_standby_container_takes_over_published_ports_and_names_at_promotion() {
    let Some(c) = setup() else { return };
    let net = &c.net;
    let n = net
        .create_network(&NetworkRequest {
            name: "p_default".into(),
            ..Default::default()
        })
        .unwrap();
    let port = |host: &str| PortRequest {
        host_ip: None,
        host_port: Some(host.into()),
        container_port: 80,
        protocol: "tcp".into(),
    };
    let old = net
        .attach(&AttachRequest {
            container_id: id(1),
            container_name: "p-web-1".into(),
            networks: vec![join("p_default", &["web"])],
            ports: vec![port("8080")],
            ..Default::default()
        })
        .unwrap();
    net.set_running(&id(1), true).unwrap();
    serve(&netns(&c, 1), 80, "old");
    // The replacement asks for the same host port: not a conflict, as
    // the container it replaces hands it over.
    let new = net
        .attach(&AttachRequest {
            container_id: id(2),
            container_name: "p-web-2".into(),
            networks: vec![join("p_default", &["web"])],
            ports: vec![port("8080")],
            standby: true,
            replacing: Some(id(1)),
            ..Default::default()
        })
        .unwrap();
    assert!(new.standby);
    assert_eq!(new.ports, old.ports);
    net.set_running(&id(2), true).unwrap();
    serve(&netns(&c, 2), 80, "new");
    let records = || -> serde_json::Value {
        let text =
            std::fs::read_to_string(c._dir.path().join("networks/p_default/dns.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    // Running but standby: neither forwarded to nor named.
    assert_eq!(
        fetch((n.gateway, 8080).into()).unwrap(),
        "old from 172.17.0.1"
    );
    assert!(
        records()["containers"].get(id(2)).is_none(),
        "{}",
        records()
    );
    assert!(records()["containers"].get(id(1)).is_some());
    // Someone else still may not take the port.
    let e = net
        .attach(&AttachRequest {
            container_id: id(3),
            container_name: "p-other-1".into(),
            networks: vec![join("p_default", &[])],
            ports: vec![port("8080")],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);

    net.promote(&id(2), &id(1)).unwrap();
    assert_eq!(
        fetch((n.gateway, 8080).into()).unwrap(),
        "new from 172.17.0.1"
    );
    assert_eq!(
        fetch(([127, 0, 0, 1], 8080).into()).unwrap(),
        "new from 172.17.0.1"
    );
    let dns = records();
    assert!(dns["containers"].get(id(1)).is_none(), "{dns}");
    assert_eq!(dns["containers"][id(2)]["names"][1], "web");
    assert!(net.endpoint(&id(1)).unwrap().unwrap().standby);
    // The old one still answers on its own address (its open connections
    // finish) until it is detached.
    assert_eq!(
        fetch((old.attachments[0].ip, 80).into()).unwrap(),
        "old from 172.17.0.1"
    );
    net.detach(&id(1)).unwrap();
    assert_eq!(
        fetch((n.gateway, 8080).into()).unwrap(),
        "new from 172.17.0.1"
    );
    // Promoting again, with the old one gone, changes nothing.
    net.promote(&id(2), &id(1)).unwrap();
    assert_eq!(
        fetch((n.gateway, 8080).into()).unwrap(),
        "new from 172.17.0.1"
    );
}

#[test]
fn connect_adds_an_interface_with_ipv6_a_mac_and_the_network_prefix_and_disconnect_takes_it() {
    let Some(c) = setup() else { return };
    let net = &c.net;
    net.create_network(&NetworkRequest {
        name: "front".into(),
        ..Default::default()
    })
    .unwrap();
    let v6 = net
        .create_network(&NetworkRequest {
            name: "back".into(),
            enable_ipv6: true,
            driver_opts: [(
                "com.docker.network.container_iface_prefix".to_owned(),
                "bk".to_owned(),
            )]
            .into(),
            ..Default::default()
        })
        .unwrap();
    let subnet6 = v6.subnet6.unwrap();
    net.attach(&AttachRequest {
        container_id: id(1),
        container_name: "web".into(),
        networks: vec![join("front", &[])],
        ..Default::default()
    })
    .unwrap();
    let other = net
        .attach(&AttachRequest {
            container_id: id(2),
            container_name: "db".into(),
            networks: vec![join("back", &["db"])],
            ..Default::default()
        })
        .unwrap();
    serve(&netns(&c, 2), 80, "db");
    let ep = net
        .connect(
            &id(1),
            &JoinRequest {
                network: "back".into(),
                aliases: vec!["web".into()],
                mac_address: Some("02:42:0a:0b:0c:0d".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let a = &ep.attachments[1];
    // The network's prefix and the first free slot; the default route
    // stays on the first network.
    assert_eq!(a.ifname, "bk1");
    assert_eq!(a.mac, "02:42:0a:0b:0c:0d");
    assert!(!a.default_route && ep.attachments[0].default_route);
    let ip6 = a.ip6.unwrap();
    assert!(
        ip6.segments()[..4] == subnet6.network().segments()[..4],
        "{ip6} in {subnet6}"
    );
    // The interface is there, with its MAC, and reaches the other
    // container over IPv4 and IPv6.
    // `ip` forked from the thread inside sees that namespace (sysfs would
    // show the one it was mounted in).
    let link = |name: &str| {
        in_ns(&netns(&c, 1), || {
            std::process::Command::new("ip")
                .args(["-o", "link", "show", name])
                .output()
                .unwrap()
        })
    };
    let shown = String::from_utf8(link("bk1").stdout).unwrap();
    assert!(shown.contains("link/ether 02:42:0a:0b:0c:0d"), "{shown}");
    let db4 = other.attachments[0].ip;
    assert_eq!(
        in_ns(&netns(&c, 1), || fetch((db4, 80).into())).unwrap(),
        format!("db from {}", a.ip)
    );
    let db6 = other.attachments[0].ip6.unwrap();
    let l6 = in_ns(&netns(&c, 2), || TcpListener::bind(("::", 81)).unwrap());
    std::thread::spawn(move || {
        for mut conn in l6.incoming().flatten() {
            let peer = conn.peer_addr().map(|a| a.ip().to_string());
            let _ = conn.write_all(format!("db6 from {}", peer.unwrap_or_default()).as_bytes());
        }
    });
    let got = in_ns(&netns(&c, 1), || {
        fetch(SocketAddr::new(std::net::IpAddr::V6(db6), 81))
    })
    .unwrap();
    assert_eq!(got, format!("db6 from {ip6}"));
    // A second connect to the same network is refused by name.
    let e = net.connect(&id(1), &join("back", &[])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    net.disconnect(&id(1), "back").unwrap();
    let ep = net.endpoint(&id(1)).unwrap().unwrap();
    assert_eq!(ep.attachments.len(), 1);
    assert!(!link("bk1").status.success(), "bk1 is still there");
}
