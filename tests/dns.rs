//! The network DNS server as the networking code uses it: records written
//! with `berth_net::dns`, the real `berth` binary spawned detached through
//! `spawn`, queried over UDP and TCP on 127.0.0.1, stopped with `stop`;
//! and getaddrinfo (`getent`) and busybox `nslookup` resolving through it
//! in a private network and mount namespace.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use berth_e2e::berth_bin;
use berth_net::dns::{self, DnsRecords, Spawned};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// How long a test waits for any one reply before calling it lost.
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// A network state dir with a running server; stops it on drop, even when
/// the test fails.
struct Network {
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Network {
    fn start(upstreams: Vec<SocketAddr>, setup: impl FnOnce(&mut DnsRecords)) -> Network {
        let dir = tempfile::tempdir().unwrap();
        let addr = free_port();
        let mut records = DnsRecords::new(vec![addr], upstreams);
        setup(&mut records);
        records.save(dir.path()).unwrap();
        let network = Network { dir, addr };
        match dns::spawn(network.dir(), &berth_bin()).unwrap() {
            Spawned::Started { pid } => assert!(pid > 0),
            Spawned::AlreadyRunning => panic!("a fresh dir has no server"),
        }
        network
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn update(&self, f: impl FnOnce(&mut DnsRecords)) {
        DnsRecords::update(self.dir(), |r| {
            f(r);
            Ok(())
        })
        .unwrap();
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Err(e) = dns::stop(self.dir.path()) {
            eprintln!(
                "cannot stop the DNS server of {}: {e}",
                self.dir.path().display()
            );
        }
    }
}

/// A port free for both UDP and TCP on 127.0.0.1.
fn free_port() -> SocketAddr {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

fn query(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m.to_vec().unwrap()
}

fn ask_udp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    ask_udp_from("127.0.0.1", server, name, qtype)
}

fn ask_udp_from(source: &str, server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let socket = UdpSocket::bind((source, 0)).unwrap();
    socket.set_read_timeout(Some(REPLY_WAIT)).unwrap();
    socket.connect(server).unwrap();
    socket.send(&query(0x5eed, name, qtype)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no UDP reply for {name} {qtype}: {e}"));
    let reply = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(reply.metadata.id, 0x5eed);
    reply
}

fn ask_tcp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let mut stream = TcpStream::connect(server).unwrap();
    stream.set_read_timeout(Some(REPLY_WAIT)).unwrap();
    // Two queries on one connection, as resolvers reuse them.
    let mut reply = None;
    for id in [1u16, 2] {
        let q = query(id, name, qtype);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        stream.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len).into()];
        stream.read_exact(&mut buf).unwrap();
        let m = Message::from_vec(&buf).unwrap();
        assert_eq!(m.metadata.id, id);
        reply = Some(m);
    }
    reply.unwrap()
}

fn addresses(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => a.0,
            other => panic!("not an A record: {other:?}"),
        })
        .collect()
}

fn sorted(mut v: Vec<Ipv4Addr>) -> Vec<Ipv4Addr> {
    v.sort();
    v
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 89, 0, last)
}

fn replicas(r: &mut DnsRecords, n: u8) {
    for i in 1..=n {
        r.set_container(
            &format!("web{i}"),
            [
                format!("shop-web-{i}"),
                "web".to_owned(),
                format!("{i:x}f1c2a9b8e7d"),
            ],
            ip(i + 1),
        )
        .unwrap();
    }
}

#[test]
fn every_replica_is_answered_in_rotating_order_and_updates_apply_without_restart() {
    let net = Network::start(vec![], |r| {
        replicas(r, 3);
        r.set_domain(Some("berth.internal")).unwrap();
    });
    assert!(dns::is_running(net.dir()));
    let pid = dns::pid(net.dir()).unwrap();
    // Detached: not our child, in `/`, with the small allocator.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: u32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(ppid, std::process::id());
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/")
    );
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|v| v == b"BERTH_SYSTEM_ALLOCATOR=1")
    );
    assert_eq!(
        dns::spawn(net.dir(), &berth_bin()).unwrap(),
        Spawned::AlreadyRunning
    );

    let first = ask_udp(net.addr, "web", RecordType::A);
    assert_eq!(first.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&first), [ip(2), ip(3), ip(4)]);
    assert!(first.answers.iter().all(|r| r.ttl == 0));
    let second = ask_udp(net.addr, "WEB.berth.internal.", RecordType::A);
    assert_eq!(addresses(&second), [ip(3), ip(4), ip(2)], "rotated");
    assert_eq!(
        addresses(&ask_udp(net.addr, "shop-web-2", RecordType::A)),
        [ip(3)]
    );
    assert_eq!(
        addresses(&ask_udp(net.addr, "3F1C2A9B8E7D", RecordType::A)),
        [ip(4)]
    );

    let aaaa = ask_udp(net.addr, "web", RecordType::AAAA);
    assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
    assert!(aaaa.answers.is_empty());
    let unknown = ask_udp(net.addr, "db.berth.internal", RecordType::A);
    assert_eq!(unknown.metadata.response_code, ResponseCode::NXDomain);
    // No upstreams (an internal network): foreign names fail as in Docker.
    let foreign = ask_udp(net.addr, "example.com", RecordType::A);
    assert_eq!(foreign.metadata.response_code, ResponseCode::ServFail);

    let ptr = ask_udp(net.addr, "4.0.89.10.in-addr.arpa", RecordType::PTR);
    match &ptr.answers[0].data {
        RData::PTR(name) => assert_eq!(name.0.to_ascii(), "shop-web-3.berth.internal."),
        other => panic!("{other:?}"),
    }

    let tcp = ask_tcp(net.addr, "web", RecordType::A);
    assert_eq!(sorted(addresses(&tcp)), [ip(2), ip(3), ip(4)]);

    // busybox's nslookup (A and AAAA at once) on the server's port.
    if Path::new("/bin/busybox").exists() {
        let out = Command::new("/bin/busybox")
            .args(["nslookup", "web", &net.addr.to_string()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        let mut found: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Address: "))
            .filter(|a| a.starts_with("10."))
            .collect();
        found.sort();
        assert_eq!(found, ["10.89.0.2", "10.89.0.3", "10.89.0.4"], "{text}");
    } else {
        eprintln!("SKIPPED: busybox nslookup check (no /bin/busybox)");
    }

    // A replica goes, another comes, a new service appears: the next query
    // sees it, from the same process.
    net.update(|r| {
        r.remove_container("web1");
        r.set_container("web9", ["shop-web-9", "web"], ip(10))
            .unwrap();
        r.set_container("db1", ["shop-db-1", "db", "database"], ip(20))
            .unwrap();
    });
    assert_eq!(
        sorted(addresses(&ask_udp(net.addr, "web", RecordType::A))),
        [ip(3), ip(4), ip(10)]
    );
    assert_eq!(
        addresses(&ask_udp(net.addr, "Database", RecordType::A)),
        [ip(20)]
    );
    let gone = ask_udp(net.addr, "shop-web-1.berth.internal", RecordType::A);
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(dns::pid(net.dir()), Some(pid), "not restarted");

    assert!(dns::stop(net.dir()).unwrap());
    assert!(!dns::is_running(net.dir()));
    assert!(!dns::stop(net.dir()).unwrap(), "a second stop is a no-op");
    // The port is free again: a new server can take it.
    assert!(matches!(
        dns::spawn(net.dir(), &berth_bin()).unwrap(),
        Spawned::Started { .. }
    ));
    assert_eq!(addresses(&ask_udp(net.addr, "db", RecordType::A)), [ip(20)]);
}

/// A container on two networks asks the server of one; it resolves the
/// names of the other too, and only it does (by its address).
#[test]
fn a_container_on_two_networks_resolves_the_names_of_both() {
    let back = Network::start(vec![], |r| {
        r.set_container("db1", ["shop-db-1", "db"], Ipv4Addr::new(10, 90, 0, 5))
            .unwrap();
    });
    let back_dir = back.dir().to_owned();
    // The client's address on the front network is 127.0.0.1: where the
    // test's queries come from.
    let front = Network::start(vec![], |r| {
        replicas(r, 1);
        r.set_container("app1", ["shop-app-1", "app"], Ipv4Addr::LOCALHOST)
            .unwrap();
        assert!(r.set_other_networks("app1", vec![back_dir.clone()]));
    });
    let db = ask_udp(front.addr, "db", RecordType::A);
    assert_eq!(addresses(&db), [Ipv4Addr::new(10, 90, 0, 5)]);
    assert_eq!(
        addresses(&ask_udp(front.addr, "web", RecordType::A)),
        [ip(2)]
    );
    // Another client of the front network does not share the back one.
    let stranger = ask_udp_from("127.0.0.2", front.addr, "db", RecordType::A);
    assert_eq!(stranger.metadata.response_code, ResponseCode::ServFail);
    assert!(stranger.answers.is_empty());
    // The back network's changes show through the front server at once.
    back.update(|r| {
        r.set_container("db2", ["shop-db-2", "db"], Ipv4Addr::new(10, 90, 0, 6))
            .unwrap();
    });
    let db = ask_tcp(front.addr, "db", RecordType::A);
    assert_eq!(
        sorted(addresses(&db)),
        [Ipv4Addr::new(10, 90, 0, 5), Ipv4Addr::new(10, 90, 0, 6)]
    );
}

#[test]
fn a_udp_answer_too_big_is_truncated_and_complete_over_tcp() {
    let net = Network::start(vec![], |r| {
        for i in 0..60u8 {
            r.set_container(&format!("c{i}"), ["web"], Ipv4Addr::new(10, 89, 1, i))
                .unwrap();
        }
    });
    let udp = ask_udp(net.addr, "web", RecordType::A);
    assert!(udp.metadata.truncation);
    assert!(udp.answers.len() < 60);
    let tcp = ask_tcp(net.addr, "web", RecordType::A);
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 60);
}

/// A resolver that knows one name, over UDP and TCP; counts its queries.
struct FakeUpstream {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl FakeUpstream {
    const NAME: &'static str = "upstream.test.";
    const ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    fn start() -> FakeUpstream {
        let addr = free_port();
        let udp = UdpSocket::bind(addr).unwrap();
        let tcp = TcpListener::bind(addr).unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (queries.clone(), stop.clone());
        let udp_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = udp.recv_from(&mut buf) {
                    q.fetch_add(1, Ordering::Relaxed);
                    udp.send_to(&Self::reply(&buf[..n]), peer).unwrap();
                }
            }
        });
        let (q, s) = (queries.clone(), stop.clone());
        let tcp_thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                let mut len = [0u8; 2];
                stream.read_exact(&mut len).unwrap();
                let mut buf = vec![0u8; u16::from_be_bytes(len).into()];
                stream.read_exact(&mut buf).unwrap();
                q.fetch_add(1, Ordering::Relaxed);
                let reply = Self::reply(&buf);
                let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&reply);
                stream.write_all(&framed).unwrap();
            }
        });
        FakeUpstream {
            addr,
            queries,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    fn reply(packet: &[u8]) -> Vec<u8> {
        let q = Message::from_vec(packet).unwrap();
        let question = q.queries[0].clone();
        let mut m = Message::response(q.metadata.id, OpCode::Query);
        m.metadata.recursion_available = true;
        m.add_query(question.clone());
        if question.name().to_ascii().eq_ignore_ascii_case(Self::NAME) {
            if question.query_type() == RecordType::A {
                m.add_answer(Record::from_rdata(
                    question.name().clone(),
                    300,
                    RData::A(A(Self::ADDRESS)),
                ));
            }
        } else {
            m.metadata.response_code = ResponseCode::NXDomain;
        }
        m.to_vec().unwrap()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn other_names_are_forwarded_to_the_upstreams_over_udp_and_tcp() {
    let upstream = FakeUpstream::start();
    // A first upstream that never answers: the second is asked after it
    // times out.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let net = Network::start(vec![silent.local_addr().unwrap(), upstream.addr], |r| {
        replicas(r, 1)
    });
    let reply = ask_udp(net.addr, "Upstream.Test", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&reply), [FakeUpstream::ADDRESS]);
    assert_eq!(reply.answers[0].ttl, 300, "relayed as the upstream said it");
    let nx = ask_udp(net.addr, "nowhere.test", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    let tcp = ask_tcp(net.addr, "upstream.test", RecordType::A);
    assert_eq!(addresses(&tcp), [FakeUpstream::ADDRESS]);
    // Local names never reach the upstream.
    let before = upstream.queries.load(Ordering::Relaxed);
    assert_eq!(addresses(&ask_udp(net.addr, "web", RecordType::A)), [ip(2)]);
    assert_eq!(upstream.queries.load(Ordering::Relaxed), before);
    assert_eq!(before, 4, "two over UDP, two on the TCP connection");
}

#[test]
fn an_upstream_that_never_answers_gives_servfail() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let net = Network::start(vec![silent.local_addr().unwrap()], |_| {});
    let reply = ask_udp(net.addr, "example.com", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert!(reply.answers.is_empty());
}

/// `berth dns` run by hand in the foreground, on a relative dir: `stop`
/// with the absolute one finds and stops it, and a spawn meanwhile is a
/// no-op.
#[test]
fn a_foreground_server_is_found_and_stopped_by_its_lock() {
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let mut records = DnsRecords::new(vec![addr], vec![]);
    replicas(&mut records, 1);
    records.save(dir.path()).unwrap();
    let mut server = Reap(
        Command::new(berth_bin())
            .args(["dns", "--state-dir"])
            .arg(dir.path().file_name().unwrap())
            .current_dir(dir.path().parent().unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Started by hand, nobody says when it listens: ask until it answers.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 512];
    let answered = (0..100).any(|_| {
        socket
            .send_to(&query(9, "web", RecordType::A), addr)
            .unwrap();
        socket.recv(&mut buf).is_ok()
    });
    assert!(answered, "the foreground server never answered");
    assert!(dns::is_running(dir.path()));
    assert_eq!(
        dns::spawn(dir.path(), &berth_bin()).unwrap(),
        Spawned::AlreadyRunning
    );
    assert!(dns::stop(dir.path()).unwrap());
    let status = server.0.wait().unwrap();
    assert!(!status.success(), "ended by SIGTERM: {status}");
    assert!(!dns::is_running(dir.path()));
}

#[test]
fn a_server_that_cannot_listen_reports_why() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    DnsRecords::new(vec![taken.local_addr().unwrap()], vec![])
        .save(dir.path())
        .unwrap();
    let err = dns::spawn(dir.path(), &berth_bin())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("failed to start: cannot listen on 127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("Address already in use"), "{err}");
    assert!(!dns::is_running(dir.path()));
    let log = std::fs::read_to_string(dir.path().join(dns::LOG_FILE)).unwrap();
    assert!(log.contains("cannot listen on"), "{log}");
}

/// getaddrinfo (glibc's `getent`) and busybox's `nslookup` through the
/// server, as a container would: a private network namespace whose
/// `/etc/resolv.conf` (bind-mounted in a private mount namespace) names
/// only the server, on 127.0.0.1:53.
#[test]
fn getaddrinfo_resolves_service_names_through_the_server() {
    if !unshare_works() {
        eprintln!("SKIPPED: getaddrinfo test: `unshare -mn` is not permitted here (needs root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut records = DnsRecords::new(vec!["127.0.0.1:53".parse().unwrap()], vec![]);
    replicas(&mut records, 2);
    records.save(dir.path()).unwrap();
    std::fs::write(
        dir.path().join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n",
    )
    .unwrap();
    let busybox = Path::new("/bin/busybox");
    let script = format!(
        r#"set -e
ip link set lo up
# An interface with an IPv4 address, as a container has: without one,
# getaddrinfo's AI_ADDRCONFIG skips IPv4 lookups altogether.
ip link add eth0 type veth peer name peer0
ip addr add 10.89.0.100/24 dev eth0
ip link set peer0 up
ip link set eth0 up
mount --bind {dir}/resolv.conf /etc/resolv.conf
{berth} dns --state-dir {dir} 2>{dir}/fg.log &
server=$!
trap 'kill $server' EXIT
# Ready when it answers.
i=0
until getent hosts shop-web-1 >/dev/null; do
  i=$((i+1)); [ $i -lt 200 ] || {{ echo "server not answering"; cat {dir}/fg.log; exit 1; }}
  sleep 0.05
done
echo "ahosts:"; getent ahostsv4 web | awk '{{print $1}}' | sort -u
echo "unspec:"; getent ahosts web | awk '{{print $1}}' | sort -u
echo "hosts:"; getent hosts 2f1c2a9b8e7d
if getent hosts nosuchservice; then echo "nosuchservice resolved"; fi
{nslookup}
"#,
        dir = dir.path().display(),
        berth = berth_bin().display(),
        nslookup = if busybox.exists() {
            "echo nslookup:; /bin/busybox nslookup web | grep -A1 '^Name:' | grep Address | sort"
        } else {
            "echo 'SKIPPED: busybox nslookup (no /bin/busybox)' >&2"
        },
    );
    let out = Command::new("unshare")
        .args(["-mn", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let mut want = String::from(
        "ahosts:\n10.89.0.2\n10.89.0.3\nunspec:\n10.89.0.2\n10.89.0.3\n\
         hosts:\n10.89.0.3       2f1c2a9b8e7d\n",
    );
    if busybox.exists() {
        want.push_str("nslookup:\nAddress: 10.89.0.2\nAddress: 10.89.0.3\n");
    }
    assert_eq!(stdout, want, "{stderr}");
}

fn unshare_works() -> bool {
    Command::new("unshare")
        .args(["-mn", "true"])
        .status()
        .is_ok_and(|s| s.success())
}
