//! One query in, one decision out: the reply to send, or "forward it".
//! Pure (no sockets), so every rule is tested on bytes.
//!
//! The rules, Docker's embedded DNS server's where it has one:
//! - A for a network name: every address (every replica), rotated per
//!   query; TTL 0, since replicas come and go and nothing may cache them.
//! - AAAA: the same for the IPv6 addresses of containers on networks with
//!   IPv6.
//! - Any other type for a network name (AAAA without IPv6, MX, TXT...): NOERROR with no
//!   records ("no data"), not NXDOMAIN, which would tell getaddrinfo and
//!   busybox's nslookup that the name does not exist at all.
//! - Names under the search domain work like the bare names; unknown ones
//!   there are NXDOMAIN (the domain is ours, asking upstream is pointless).
//! - PTR for a container's address: its own name.
//! - Everything else goes to the upstream resolvers; with none (an
//!   internal network), SERVFAIL, as Docker answers there.
//! - Over UDP an answer is cut to what the client can receive (512 bytes,
//!   or its EDNS size) and marked truncated, so it retries over TCP.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::zone::{Match, Zone};

/// Time to live of every answer: none, as the addresses change whenever a
/// replica is replaced.
pub(crate) const TTL: u32 = 0;

/// The largest UDP reply sent to an EDNS client: the size DNS flag day 2020
/// settled on, which fits any path's MTU without fragmentation.
pub(crate) const MAX_UDP_PAYLOAD: u16 = 1232;

/// How the query arrived, which bounds the reply's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

/// What to do with a query.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Relay the query as it is to the upstreams.
    Forward,
    /// Not a query (a stray response, a runt packet): drop it.
    Ignore,
}

/// Decides what to do with `packet`. `others` are the zones of the
/// client's other networks (see `DnsRecords::set_other_networks`), asked
/// after `zone` and before the upstreams.
#[cfg(test)]
pub(crate) fn answer(
    zone: &mut Zone,
    others: &mut [&mut Zone],
    packet: &[u8],
    transport: Transport,
) -> Outcome {
    answer_for(zone, others, packet, transport, None)
}

/// [`answer`] for a query from `client`: its `links` aliases resolve to
/// what they stand for (in this zone or its other networks').
pub(crate) fn answer_for(
    zone: &mut Zone,
    others: &mut [&mut Zone],
    packet: &[u8],
    transport: Transport,
    client: Option<std::net::IpAddr>,
) -> Outcome {
    let query = match Message::from_vec(packet) {
        Ok(query) => query,
        Err(_) => return format_error(packet).map_or(Outcome::Ignore, Outcome::Reply),
    };
    if query.metadata.message_type != MessageType::Query {
        return Outcome::Ignore;
    }
    if query.metadata.op_code != OpCode::Query {
        return reply(&query, ResponseCode::NotImp, Vec::new(), transport);
    }
    let [question] = query.queries.as_slice() else {
        return reply(&query, ResponseCode::FormErr, Vec::new(), transport);
    };
    if question.query_class() != DNSClass::IN {
        return Outcome::Forward;
    }
    let mut name = lower_name(question.name());
    let qtype = question.query_type();
    if let Some(std::net::IpAddr::V4(client)) = client
        && let Some(target) = zone.link(client, &name)
    {
        name = target.to_owned();
    }
    tracing::trace!(%name, %qtype, id = query.metadata.id, "query");
    if qtype == RecordType::PTR {
        let target = std::iter::once(&*zone)
            .chain(others.iter().map(|z| &**z))
            .find_map(|z| z.reverse(&name));
        if let Some(target) = target {
            let records = match Name::from_ascii(format!("{target}.")) {
                Ok(target) => vec![Record::from_rdata(
                    question.name().clone(),
                    TTL,
                    RData::PTR(PTR(target)),
                )],
                Err(_) => Vec::new(),
            };
            return reply(&query, ResponseCode::NoError, records, transport);
        }
    }
    let own = zone.classify(&name);
    let (zone, key) = match own {
        Match::Name(key) => (zone, key),
        // A name of one of the client's other networks.
        own => match others.iter_mut().find_map(|z| match z.classify(&name) {
            Match::Name(key) => Some((&mut **z, key)),
            _ => None,
        }) {
            Some(found) => found,
            None => {
                return match own {
                    Match::Domain => reply(&query, ResponseCode::NoError, Vec::new(), transport),
                    Match::Unknown => reply(&query, ResponseCode::NXDomain, Vec::new(), transport),
                    _ if zone.upstreams().is_empty() => {
                        reply(&query, ResponseCode::ServFail, Vec::new(), transport)
                    }
                    _ => Outcome::Forward,
                };
            }
        },
    };
    let mut records: Vec<Record> = Vec::new();
    if matches!(qtype, RecordType::A | RecordType::ANY) {
        records.extend(
            zone.rotated(&key)
                .into_iter()
                .map(|ip| Record::from_rdata(question.name().clone(), TTL, RData::A(A(ip)))),
        );
    }
    if matches!(qtype, RecordType::AAAA | RecordType::ANY) {
        records.extend(
            zone.rotated6(&key)
                .into_iter()
                .map(|ip| Record::from_rdata(question.name().clone(), TTL, RData::AAAA(AAAA(ip)))),
        );
    }
    reply(&query, ResponseCode::NoError, records, transport)
}

/// The SERVFAIL reply to a forwarded query none of the upstreams answered.
pub(crate) fn server_failure(packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    match reply(&query, ResponseCode::ServFail, Vec::new(), transport) {
        Outcome::Reply(bytes) => Some(bytes),
        Outcome::Forward | Outcome::Ignore => None,
    }
}

/// The name as the zone compares it: lower case, no trailing dot.
fn lower_name(name: &Name) -> String {
    let mut text = name.to_ascii();
    if text.ends_with('.') {
        text.pop();
    }
    text.make_ascii_lowercase();
    text
}

fn reply(
    query: &Message,
    code: ResponseCode,
    mut answers: Vec<Record>,
    transport: Transport,
) -> Outcome {
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.checking_disabled = query.metadata.checking_disabled;
    response.metadata.recursion_available = true;
    // Our own names (and the lack of one) are authoritative; failures and
    // refusals are not statements about a name.
    response.metadata.authoritative =
        matches!(code, ResponseCode::NoError | ResponseCode::NXDomain);
    response.metadata.response_code = code;
    response.add_queries(query.queries.iter().cloned());
    // RFC 6891: a reply to an EDNS query carries an OPT record too.
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(MAX_UDP_PAYLOAD);
        response.set_edns(edns);
    }
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => usize::from(query.max_payload().clamp(512, MAX_UDP_PAYLOAD)),
    };
    let full = answers.len();
    response.answers = std::mem::take(&mut answers);
    let Ok(mut bytes) = response.to_vec() else {
        return Outcome::Ignore;
    };
    if bytes.len() > limit {
        // Keep as many answers as fit (each compressed A record is 16
        // bytes), then trim further if a guess was off.
        response.metadata.truncation = true;
        let all = std::mem::take(&mut response.answers);
        let Ok(empty) = response.to_vec() else {
            return Outcome::Ignore;
        };
        let mut keep = (limit.saturating_sub(empty.len()) / 16).min(full);
        loop {
            response.answers = all[..keep].to_vec();
            match response.to_vec() {
                Ok(b) if b.len() <= limit || keep == 0 => {
                    bytes = b;
                    break;
                }
                Ok(_) => keep -= 1,
                Err(_) => return Outcome::Ignore,
            }
        }
    }
    Outcome::Reply(bytes)
}

/// FORMERR for a query that does not parse, when at least its header is
/// there to take the id from; None for runts and stray responses.
fn format_error(packet: &[u8]) -> Option<Vec<u8>> {
    let header = packet.get(..12)?;
    let is_response = header[2] & 0x80 != 0;
    if is_response {
        return None;
    }
    let opcode = header[2] & 0x78;
    let mut reply = vec![0u8; 12];
    reply[..2].copy_from_slice(&header[..2]);
    reply[2] = 0x80 | opcode;
    reply[3] = ResponseCode::FormErr.low();
    Some(reply)
}

/// A query for tests: `name` and `qtype`, recursion desired.
#[cfg(test)]
pub(crate) fn query_bytes(id: u16, name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    if let Ok(name) = Name::from_ascii(name) {
        message.add_query(hickory_proto::op::Query::query(name, qtype));
    }
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(MAX_UDP_PAYLOAD);
        message.set_edns(opt);
    }
    message.to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::dns::records::DnsRecords;

    fn zone(upstreams: &[&str], replicas: u8, domain: Option<&str>) -> Zone {
        let mut r = DnsRecords::new(
            vec!["10.89.0.1:53".parse().unwrap()],
            upstreams.iter().map(|u| u.parse().unwrap()).collect(),
        );
        r.set_domain(domain).unwrap();
        for i in 0..replicas {
            r.set_container(
                &format!("w{i}"),
                [format!("shop-web-{}", i + 1), "web".to_owned()],
                Ipv4Addr::new(10, 89, 0, 10 + i),
            )
            .unwrap();
        }
        Zone::new(&r)
    }

    fn ask(zone: &mut Zone, name: &str, qtype: RecordType, t: Transport) -> Message {
        match answer(zone, &mut [], &query_bytes(7, name, qtype, false), t) {
            Outcome::Reply(bytes) => Message::from_vec(&bytes).unwrap(),
            other => panic!("{name} {qtype}: {other:?}"),
        }
    }

    fn addresses(m: &Message) -> Vec<Ipv4Addr> {
        m.answers
            .iter()
            .map(|r| match &r.data {
                RData::A(a) => a.0,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_answers_every_replica_rotating_with_ttl_zero_in_any_case() {
        let mut z = zone(&["192.0.2.53:53"], 3, None);
        let m = ask(&mut z, "WEB.", RecordType::A, Transport::Udp);
        assert_eq!(m.metadata.id, 7);
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative && m.metadata.recursion_available);
        assert!(m.metadata.recursion_desired, "RD is copied");
        assert_eq!(
            m.queries[0].name().to_ascii(),
            "WEB.",
            "the question as asked"
        );
        assert_eq!(m.answers[0].name.to_ascii(), "WEB.");
        assert!(m.answers.iter().all(|r| r.ttl == 0));
        let ip = |d| Ipv4Addr::new(10, 89, 0, d);
        assert_eq!(addresses(&m), [ip(10), ip(11), ip(12)]);
        let m = ask(&mut z, "web", RecordType::A, Transport::Udp);
        assert_eq!(addresses(&m), [ip(11), ip(12), ip(10)]);
        let m = ask(&mut z, "shop-web-2", RecordType::A, Transport::Udp);
        assert_eq!(addresses(&m), [ip(11)]);
    }

    #[test]
    fn other_types_of_a_known_name_are_no_data_not_nxdomain() {
        let mut z = zone(&["192.0.2.53:53"], 2, None);
        for qtype in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
            let m = ask(&mut z, "web", qtype, Transport::Udp);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{qtype}");
            assert!(m.answers.is_empty(), "{qtype}");
        }
    }

    #[test]
    fn the_search_domain_answers_its_names_and_denies_the_rest() {
        let mut z = zone(&["192.0.2.53:53"], 2, Some("berth.internal"));
        let m = ask(&mut z, "web.berth.internal.", RecordType::A, Transport::Udp);
        assert_eq!(addresses(&m).len(), 2);
        let m = ask(&mut z, "db.berth.internal.", RecordType::A, Transport::Udp);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(m.metadata.authoritative);
        let m = ask(&mut z, "berth.internal.", RecordType::A, Transport::Udp);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
    }

    #[test]
    fn foreign_names_are_forwarded_or_fail_without_upstreams() {
        let mut z = zone(&["192.0.2.53:53"], 1, None);
        let q = query_bytes(9, "example.com.", RecordType::A, false);
        assert_eq!(
            answer(&mut z, &mut [], &q, Transport::Udp),
            Outcome::Forward
        );
        let chaos = {
            let mut m = Message::from_vec(&q).unwrap();
            let mut question = m.queries[0].clone();
            question.set_query_class(DNSClass::CH);
            m.queries = vec![question];
            m.to_vec().unwrap()
        };
        assert_eq!(
            answer(&mut z, &mut [], &chaos, Transport::Udp),
            Outcome::Forward
        );
        let mut internal = zone(&[], 1, None);
        let m = ask(&mut internal, "example.com.", RecordType::A, Transport::Udp);
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        assert!(!m.metadata.authoritative);
        let failure = server_failure(&q, Transport::Udp).unwrap();
        let failure = Message::from_vec(&failure).unwrap();
        assert_eq!(failure.metadata.id, 9);
        assert_eq!(failure.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(failure.queries, Message::from_vec(&q).unwrap().queries);
    }

    #[test]
    fn ptr_of_a_container_address_is_its_name_others_are_forwarded() {
        let mut z = zone(&["192.0.2.53:53"], 2, None);
        let m = ask(
            &mut z,
            "11.0.89.10.in-addr.arpa.",
            RecordType::PTR,
            Transport::Udp,
        );
        match &m.answers[0].data {
            RData::PTR(p) => assert_eq!(p.0.to_ascii(), "shop-web-2."),
            other => panic!("{other:?}"),
        }
        let q = query_bytes(1, "99.0.89.10.in-addr.arpa.", RecordType::PTR, false);
        assert_eq!(
            answer(&mut z, &mut [], &q, Transport::Udp),
            Outcome::Forward
        );
    }

    #[test]
    fn aaaa_answers_ipv6_addresses_and_ptr_maps_them_back() {
        let mut r = DnsRecords::new(vec![], vec![]);
        r.set_container("a", ["p-web-1", "web"], Ipv4Addr::new(10, 89, 0, 2))
            .unwrap();
        r.set_container("b", ["p-web-2", "web"], Ipv4Addr::new(10, 89, 0, 3))
            .unwrap();
        assert!(r.set_ipv6("a", Some("fd12::2".parse().unwrap())));
        assert!(r.set_ipv6("b", Some("fd12::3".parse().unwrap())));
        let mut z = Zone::new(&r);
        let v6 = |m: &Message| -> Vec<std::net::Ipv6Addr> {
            m.answers
                .iter()
                .filter_map(|rec| match &rec.data {
                    RData::AAAA(a) => Some(a.0),
                    _ => None,
                })
                .collect()
        };
        let first = ask(&mut z, "web", RecordType::AAAA, Transport::Udp);
        let second = ask(&mut z, "web", RecordType::AAAA, Transport::Udp);
        assert_eq!(
            v6(&first),
            [
                "fd12::2".parse::<std::net::Ipv6Addr>().unwrap(),
                "fd12::3".parse().unwrap()
            ]
        );
        assert_eq!(
            v6(&second)[0],
            "fd12::3".parse::<std::net::Ipv6Addr>().unwrap()
        );
        // A still answers the IPv4 addresses only.
        let a = ask(&mut z, "p-web-1", RecordType::A, Transport::Udp);
        assert_eq!(addresses(&a), [Ipv4Addr::new(10, 89, 0, 2)]);
        assert!(v6(&a).is_empty());
        let ptr = ask(
            &mut z,
            "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.1.d.f.ip6.arpa",
            RecordType::PTR,
            Transport::Udp,
        );
        assert_eq!(ptr.answers.len(), 1, "{ptr:?}");
        assert!(matches!(&ptr.answers[0].data, RData::PTR(p) if p.0.to_ascii() == "p-web-1."));
    }

    #[test]
    fn link_aliases_answer_for_the_linking_container_only() {
        let mut r = DnsRecords::new(vec![], vec!["192.0.2.53:53".parse().unwrap()]);
        r.set_domain(Some("berth.internal")).unwrap();
        r.set_container("db", ["shop-db-1", "db"], Ipv4Addr::new(10, 89, 0, 5))
            .unwrap();
        r.set_container("w", ["shop-web-1", "web"], Ipv4Addr::new(10, 89, 0, 2))
            .unwrap();
        let links = std::collections::BTreeMap::from([("Database".to_owned(), "db".to_owned())]);
        assert!(r.set_links("w", links).unwrap());
        let mut z = Zone::new(&r);
        let ask_from = |z: &mut Zone, client: [u8; 4], name: &str| match answer_for(
            z,
            &mut [],
            &query_bytes(3, name, RecordType::A, false),
            Transport::Udp,
            Some(std::net::IpAddr::from(client)),
        ) {
            Outcome::Reply(b) => Some(Message::from_vec(&b).unwrap()),
            Outcome::Forward => None,
            Outcome::Ignore => panic!(),
        };
        for name in ["database", "DATABASE", "database.berth.internal"] {
            let m = ask_from(&mut z, [10, 89, 0, 2], name).unwrap();
            assert_eq!(addresses(&m), [Ipv4Addr::new(10, 89, 0, 5)], "{name}");
            // The answer names what was asked.
            assert_eq!(
                m.answers[0].name.to_ascii().to_ascii_lowercase(),
                format!("{}.", name.to_ascii_lowercase())
            );
        }
        // Another container does not have the alias: forwarded upstream.
        assert!(ask_from(&mut z, [10, 89, 0, 5], "database").is_none());
    }

    #[test]
    fn the_clients_other_networks_answer_after_this_one_and_before_upstream() {
        let mut front = zone(&["192.0.2.53:53"], 1, Some("front.internal"));
        let mut back = {
            let mut r = DnsRecords::new(vec![], vec![]);
            r.set_container("db", ["shop-db-1", "db"], Ipv4Addr::new(10, 90, 0, 5))
                .unwrap();
            r.set_container("w", ["shop-web-1", "web"], Ipv4Addr::new(10, 90, 0, 2))
                .unwrap();
            Zone::new(&r)
        };
        let ask2 = |front: &mut Zone, back: &mut Zone, name: &str, qtype| match answer(
            front,
            &mut [back],
            &query_bytes(1, name, qtype, false),
            Transport::Udp,
        ) {
            Outcome::Reply(b) => Some(Message::from_vec(&b).unwrap()),
            Outcome::Forward => None,
            Outcome::Ignore => panic!(),
        };
        let m = ask2(&mut front, &mut back, "db", RecordType::A).unwrap();
        assert_eq!(addresses(&m), [Ipv4Addr::new(10, 90, 0, 5)]);
        let m = ask2(&mut front, &mut back, "db", RecordType::AAAA).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        // A name on both: this network's address wins.
        let m = ask2(&mut front, &mut back, "web", RecordType::A).unwrap();
        assert_eq!(addresses(&m), [Ipv4Addr::new(10, 89, 0, 10)]);
        let m = ask2(
            &mut front,
            &mut back,
            "5.0.90.10.in-addr.arpa",
            RecordType::PTR,
        )
        .unwrap();
        assert_eq!(m.answers.len(), 1);
        assert!(ask2(&mut front, &mut back, "example.com", RecordType::A).is_none());
        let m = ask2(&mut front, &mut back, "cache.front.internal", RecordType::A).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        // Without the other network, db is not this client's to resolve.
        let q = query_bytes(1, "db", RecordType::A, false);
        assert_eq!(
            answer(&mut front, &mut [], &q, Transport::Udp),
            Outcome::Forward
        );
    }

    #[test]
    fn a_udp_answer_too_big_is_truncated_and_tcp_gets_all() {
        let mut z = zone(&[], 100, None);
        let m = ask(&mut z, "web", RecordType::A, Transport::Udp);
        assert!(m.metadata.truncation);
        assert!(!m.answers.is_empty() && m.answers.len() < 100);
        assert!(m.to_vec().unwrap().len() <= 512);
        let m = ask(&mut z, "web", RecordType::A, Transport::Tcp);
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 100);
        // An EDNS client receives up to 1232 bytes, and an OPT back.
        let q = query_bytes(3, "web", RecordType::A, true);
        let Outcome::Reply(bytes) = answer(&mut z, &mut [], &q, Transport::Udp) else {
            panic!()
        };
        assert!(bytes.len() <= 1232 && bytes.len() > 512, "{}", bytes.len());
        let m = Message::from_vec(&bytes).unwrap();
        assert!(m.edns.is_some());
        assert!(m.metadata.truncation);
        let mut small = zone(&[], 3, None);
        let m = ask(&mut small, "web", RecordType::A, Transport::Udp);
        assert!(m.edns.is_none() && !m.metadata.truncation);
    }

    #[test]
    fn garbage_gets_formerr_and_responses_are_ignored() {
        let mut z = zone(&[], 1, None);
        let mut junk = query_bytes(0x1234, "web", RecordType::A, false);
        junk.truncate(14);
        let Outcome::Reply(bytes) = answer(&mut z, &mut [], &junk, Transport::Udp) else {
            panic!()
        };
        assert_eq!(&bytes[..2], &[0x12, 0x34]);
        assert_eq!(bytes[2] & 0x80, 0x80);
        assert_eq!(bytes[3] & 0x0f, 1, "FORMERR");
        assert_eq!(
            answer(&mut z, &mut [], &[1, 2, 3], Transport::Udp),
            Outcome::Ignore
        );
        let mut response = query_bytes(1, "web", RecordType::A, false);
        response[2] |= 0x80;
        assert_eq!(
            answer(&mut z, &mut [], &response, Transport::Udp),
            Outcome::Ignore
        );
        let mut notify = query_bytes(1, "web", RecordType::A, false);
        notify[2] |= 4 << 3;
        let Outcome::Reply(bytes) = answer(&mut z, &mut [], &notify, Transport::Udp) else {
            panic!()
        };
        assert_eq!(bytes[3] & 0x0f, 4, "NOTIMP");
    }
}
