//! Relaying a query to the upstream resolvers, byte for byte: the client
//! gets exactly what the upstream said (its flags, EDNS options, DNSSEC
//! records), with nothing cached here.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::answer::Transport;

/// How long one upstream gets to answer before the next is asked.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a query may take in all, across upstreams: under glibc's and
/// musl's 5 s per try, so a client hears our SERVFAIL before it gives up on
/// us and repeats the query.
pub(crate) const TOTAL_TIMEOUT: Duration = Duration::from_millis(4500);

/// The upstreams' reply to `packet`, trying each in order; a SERVFAIL,
/// REFUSED or NOTIMP moves on to the next (as glibc's resolver does) and is
/// returned only when no upstream did better. None when nobody answered in
/// time: the caller replies SERVFAIL.
pub(crate) async fn forward(
    upstreams: &[SocketAddr],
    packet: &[u8],
    transport: Transport,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + TOTAL_TIMEOUT;
    let mut fallback = None;
    for upstream in upstreams {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let attempt = async {
            match transport {
                Transport::Udp => over_udp(*upstream, packet).await,
                Transport::Tcp => over_tcp(*upstream, packet).await,
            }
        };
        match tokio::time::timeout(left.min(ATTEMPT_TIMEOUT), attempt).await {
            Ok(Ok(reply)) if !is_failure(&reply) => return Some(reply),
            Ok(Ok(reply)) => fallback = Some(reply),
            Ok(Err(e)) => {
                tracing::debug!(%upstream, error = %e, "upstream DNS failed");
            }
            Err(_) => tracing::debug!(%upstream, "upstream DNS timed out"),
        }
    }
    if fallback.is_none() {
        warn_unreachable(upstreams);
    }
    fallback
}

/// SERVFAIL (2), NOTIMP (4) or REFUSED (5): worth asking someone else.
fn is_failure(reply: &[u8]) -> bool {
    reply.get(3).is_some_and(|b| matches!(b & 0x0f, 2 | 4 | 5))
}

/// One line in the log per 30 s at most, however many queries fail: a host
/// that lost its resolvers would otherwise fill the log.
fn warn_unreachable(upstreams: &[SocketAddr]) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 30
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            ?upstreams,
            "no upstream DNS server answered; replying SERVFAIL"
        );
    }
}

async fn over_udp(upstream: SocketAddr, packet: &[u8]) -> std::io::Result<Vec<u8>> {
    // A fresh socket per query: a random source port, and a reply can only
    // come from the upstream we connected to.
    let local: SocketAddr = if upstream.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(packet).await?;
    // Room for any datagram, left uninitialized: zeroing 64 KiB per query
    // would cost more than the rest of the forwarding.
    let mut buf = Vec::with_capacity(usize::from(u16::MAX));
    loop {
        buf.clear();
        socket.recv_buf(&mut buf).await?;
        if is_reply_to(&buf, packet) {
            return Ok(buf);
        }
    }
}

async fn over_tcp(upstream: SocketAddr, packet: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(packet.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut framed = Vec::with_capacity(packet.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(packet);
    stream.write_all(&framed).await?;
    loop {
        let len = stream.read_u16().await?;
        let mut reply = vec![0u8; usize::from(len)];
        stream.read_exact(&mut reply).await?;
        if is_reply_to(&reply, packet) {
            return Ok(reply);
        }
    }
}

/// Same id, and a response.
fn is_reply_to(reply: &[u8], query: &[u8]) -> bool {
    reply.len() >= 12 && query.len() >= 2 && reply[..2] == query[..2] && reply[2] & 0x80 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_matched_by_id_and_direction() {
        let query = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        let mut reply = query;
        reply[2] |= 0x80;
        assert!(is_reply_to(&reply, &query));
        assert!(!is_reply_to(&query, &query), "a query is not a reply");
        reply[1] = 0;
        assert!(!is_reply_to(&reply, &query));
        assert!(!is_reply_to(&reply[..11], &query));
    }

    #[test]
    fn failures_worth_retrying_elsewhere() {
        let with_rcode = |rcode: u8| [0, 0, 0x81, 0x80 | rcode];
        assert!(is_failure(&with_rcode(2)));
        assert!(is_failure(&with_rcode(5)));
        assert!(!is_failure(&with_rcode(0)));
        assert!(!is_failure(&with_rcode(3)), "NXDOMAIN is an answer");
    }
}
