//! The sockets and their loops: UDP and TCP on every listen address, one
//! single-threaded tokio runtime, answers from the current records.
//!
//! Why the records file is checked with one `stat` per query instead of
//! inotify: a stat of a cached inode costs about a microsecond (see
//! bench/results/dns.md), a few percent of a query's time, and it is
//! always right: an inotify watch needs a thread or a second event source,
//! can overflow, and would watch a directory the networking code may
//! delete and recreate. Writers replace the file by rename, so a new
//! version always has a new inode and is never seen half-written.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use super::RECORDS_FILE;
use super::answer::{Outcome, Transport, answer_for, server_failure};
use super::clients::Clients;
use super::error::{Error, Result};
use super::forward::forward;
use super::records::DnsRecords;
use super::zone::Zone;

/// Queries being forwarded at once (each holds a socket and a buffer);
/// beyond that, new ones get SERVFAIL at once rather than piling up.
const MAX_FORWARDS: usize = 256;

/// TCP connections open at once; more are closed on accept.
const MAX_TCP_CONNECTIONS: usize = 64;

/// How long a TCP connection may sit idle between queries (RFC 7766
/// suggests seconds, not minutes).
const TCP_IDLE: Duration = Duration::from_secs(10);

/// How often the server checks that its network still exists.
const WATCHDOG: Duration = Duration::from_secs(5);

/// The listening sockets, bound before the runtime runs them, so a bind
/// error is reported to whoever started the server.
pub(crate) struct Sockets {
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
}

impl Sockets {
    pub(crate) fn bind(listen: &[SocketAddr]) -> Result<Sockets> {
        let mut sockets = Sockets {
            udp: Vec::new(),
            tcp: Vec::new(),
        };
        for addr in listen {
            let udp = std::net::UdpSocket::bind(addr).map_err(|source| Error::Bind {
                addr: *addr,
                proto: "udp",
                source,
            })?;
            // The same port over TCP as over UDP, even when port 0 let the
            // kernel pick one.
            let tcp_addr = udp.local_addr().unwrap_or(*addr);
            let tcp = std::net::TcpListener::bind(tcp_addr).map_err(|source| Error::Bind {
                addr: tcp_addr,
                proto: "tcp",
                source,
            })?;
            for result in [udp.set_nonblocking(true), tcp.set_nonblocking(true)] {
                result.map_err(|e| Error::io("configure the socket on", addr.to_string(), e))?;
            }
            sockets.udp.push(udp);
            sockets.tcp.push(tcp);
        }
        Ok(sockets)
    }

    pub(crate) fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

/// Serves until the network's state dir disappears; must run inside a
/// tokio runtime with IO and time enabled.
pub(crate) async fn serve(dir: &Path, records: &DnsRecords, sockets: Sockets) -> Result<()> {
    let shared = Arc::new(Shared::new(dir, records));
    let clients = Arc::new(Clients::for_listen(&sockets.local_addrs()));
    let forwards = Arc::new(Semaphore::new(MAX_FORWARDS));
    let connections = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    for socket in sockets.udp {
        let socket = UdpSocket::from_std(socket)
            .map_err(|e| Error::io("register the UDP socket of", dir, e))?;
        tokio::spawn(udp_loop(
            Arc::new(socket),
            shared.clone(),
            clients.clone(),
            forwards.clone(),
        ));
    }
    for listener in sockets.tcp {
        let listener = TcpListener::from_std(listener)
            .map_err(|e| Error::io("register the TCP socket of", dir, e))?;
        tokio::spawn(tcp_loop(
            listener,
            shared.clone(),
            clients.clone(),
            connections.clone(),
        ));
    }
    loop {
        tokio::time::sleep(WATCHDOG).await;
        if !dir.exists() {
            tracing::info!(dir = %dir.display(), "the network's state dir is gone; stopping");
            return Ok(());
        }
    }
}

/// The zone and the identity of the records file it was built from.
struct Shared {
    path: PathBuf,
    dir: PathBuf,
    loaded: Mutex<Loaded>,
}

struct Loaded {
    zone: Zone,
    identity: Option<FileIdentity>,
    /// The zones of other networks that containers here are also on, by
    /// state dir, each re-read like our own when its file changes.
    others: HashMap<PathBuf, OtherNetwork>,
}

struct OtherNetwork {
    zone: Zone,
    identity: Option<FileIdentity>,
}

/// What changes when the records file is replaced or edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    mtime: i64,
    mtime_nsec: i64,
    len: u64,
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata) -> Self {
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            len: meta.len(),
        }
    }
}

impl Shared {
    fn new(dir: &Path, records: &DnsRecords) -> Shared {
        let path = dir.join(RECORDS_FILE);
        Shared {
            path,
            dir: dir.to_owned(),
            loaded: Mutex::new(Loaded {
                zone: Zone::new(records),
                // Unknown: the file may have been replaced since `records`
                // was read, so the first query reads it again.
                identity: None,
                others: HashMap::new(),
            }),
        }
    }

    /// The zone, rebuilt first if the records file changed since.
    fn current(&self) -> MutexGuard<'_, Loaded> {
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A missing file keeps the last records: a network being torn down
        // answers until it is stopped.
        if let Ok(meta) = std::fs::metadata(&self.path) {
            let identity = FileIdentity::of(&meta);
            if loaded.identity != Some(identity) {
                loaded.identity = Some(identity);
                match DnsRecords::load(&self.dir) {
                    Ok(records) => {
                        loaded.zone = Zone::new(&records);
                        let wanted: Vec<PathBuf> =
                            loaded.zone.all_other_networks().cloned().collect();
                        loaded.others.retain(|dir, _| wanted.contains(dir));
                        tracing::debug!(
                            containers = records.containers().len(),
                            "records reloaded"
                        );
                    }
                    // Kept until the file changes again; a writer that
                    // renames never leaves a broken file.
                    Err(e) => tracing::warn!(
                        error = %error_chain(&e),
                        "cannot reload the records; answering from the previous ones"
                    ),
                }
            }
        }
        loaded
    }

    /// The outcome for `packet`, and for [`Outcome::Forward`] the
    /// upstreams to ask (from the same version of the records).
    fn answer(
        &self,
        packet: &[u8],
        transport: Transport,
        client: IpAddr,
    ) -> (Outcome, Vec<SocketAddr>) {
        let mut guard = self.current();
        let loaded = &mut *guard;
        let outcome = Self::decide(loaded, packet, transport, client);
        let upstreams = match outcome {
            Outcome::Forward => loaded.zone.upstreams().to_vec(),
            Outcome::Reply(_) | Outcome::Ignore => Vec::new(),
        };
        (outcome, upstreams)
    }

    fn decide(loaded: &mut Loaded, packet: &[u8], transport: Transport, client: IpAddr) -> Outcome {
        let dirs = match client {
            IpAddr::V4(client) => loaded.zone.other_networks(client),
            IpAddr::V6(_) => &[],
        };
        if dirs.is_empty() {
            return answer_for(&mut loaded.zone, &mut [], packet, transport, Some(client));
        }
        for dir in dirs {
            refresh_other(&mut loaded.others, dir);
        }
        let mut others: Vec<(usize, &mut Zone)> = loaded
            .others
            .iter_mut()
            .filter_map(|(dir, other)| Some((dirs.iter().position(|d| d == dir)?, &mut other.zone)))
            .collect();
        // In the order the records list them.
        others.sort_by_key(|(i, _)| *i);
        let mut others: Vec<&mut Zone> = others.into_iter().map(|(_, z)| z).collect();
        answer_for(
            &mut loaded.zone,
            &mut others,
            packet,
            transport,
            Some(client),
        )
    }
}

/// Loads (or re-reads, when its file changed) another network's zone. A
/// network without records (no DNS, or gone) has an empty zone.
fn refresh_other(others: &mut HashMap<PathBuf, OtherNetwork>, dir: &Path) {
    let identity = std::fs::metadata(dir.join(RECORDS_FILE))
        .ok()
        .map(|m| FileIdentity::of(&m));
    if let Some(other) = others.get(dir)
        && other.identity == identity
    {
        return;
    }
    let zone = match identity.map(|_| DnsRecords::load(dir)) {
        Some(Ok(records)) => Zone::new(&records),
        Some(Err(e)) => {
            tracing::warn!(error = %error_chain(&e), "cannot read another network's records");
            Zone::default()
        }
        None => Zone::default(),
    };
    others.insert(dir.to_owned(), OtherNetwork { zone, identity });
}

async fn udp_loop(
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    clients: Arc<Clients>,
    forwards: Arc<Semaphore>,
) {
    // Queries are small; a bigger one is cut and then refused as FORMERR.
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => {
                tracing::debug!(error = %e, "UDP receive failed");
                continue;
            }
        };
        if !clients.permits(peer.ip()) {
            tracing::trace!(%peer, "query from outside the network ignored");
            continue;
        }
        let packet = &buf[..n];
        let (outcome, upstreams) = shared.answer(packet, Transport::Udp, peer.ip());
        match outcome {
            Outcome::Reply(reply) => {
                let _ = socket.send_to(&reply, peer).await;
            }
            Outcome::Ignore => {}
            Outcome::Forward => {
                let Ok(permit) = forwards.clone().try_acquire_owned() else {
                    if let Some(reply) = server_failure(packet, Transport::Udp) {
                        let _ = socket.send_to(&reply, peer).await;
                    }
                    continue;
                };
                let (socket, packet) = (socket.clone(), packet.to_vec());
                tokio::spawn(async move {
                    let reply = match forward(&upstreams, &packet, Transport::Udp).await {
                        Some(reply) => Some(reply),
                        None => server_failure(&packet, Transport::Udp),
                    };
                    if let Some(reply) = reply {
                        let _ = socket.send_to(&reply, peer).await;
                    }
                    drop(permit);
                });
            }
        }
    }
}

async fn tcp_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    clients: Arc<Clients>,
    connections: Arc<Semaphore>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, peer)) if clients.permits(peer.ip()) => stream,
            Ok((_, peer)) => {
                tracing::trace!(%peer, "connection from outside the network closed");
                continue;
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::debug!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = tcp_connection(stream, &shared).await {
                tracing::trace!(error = %e, "TCP connection closed");
            }
            drop(permit);
        });
    }
}

/// Length-prefixed queries, answered in order, until the client closes or
/// idles past [`TCP_IDLE`].
async fn tcp_connection(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let client = stream.peer_addr()?.ip();
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(len) => len?,
            Err(_) => return Ok(()),
        };
        let mut packet = vec![0u8; usize::from(len)];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut packet))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        let (outcome, upstreams) = shared.answer(&packet, Transport::Tcp, client);
        let reply = match outcome {
            Outcome::Reply(reply) => reply,
            Outcome::Ignore => continue,
            Outcome::Forward => match forward(&upstreams, &packet, Transport::Tcp).await {
                Some(reply) => reply,
                None => match server_failure(&packet, Transport::Tcp) {
                    Some(reply) => reply,
                    None => continue,
                },
            },
        };
        let len = u16::try_from(reply.len()).map_err(|_| std::io::ErrorKind::InvalidData)?;
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        stream.write_all(&framed).await?;
    }
}

/// An error and its causes on one line, for log fields.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
