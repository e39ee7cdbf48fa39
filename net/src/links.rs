//! Links, addresses and routes over rtnetlink.
//!
//! A netlink socket acts on the network namespace it was *created* in, and
//! rtnetlink is async. Every operation here therefore runs on a fresh OS
//! thread with its own current-thread tokio runtime and its own
//! connection ([`in_host`], [`in_netns`]): callers may be sync or async,
//! and the namespace a thread joins ends with the thread, never leaking
//! into a tokio worker or the caller.

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteType};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::error::{Error, Result};
use crate::ipv4::Ipv4Net;

const RT_TABLE_MAIN: u8 = 254;

fn nl(action: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
    let action = action.into();
    move |e| Error::Netlink {
        action,
        message: e.to_string(),
    }
}

/// The errno of a netlink error, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn run<T, F, Fut>(f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| Error::sys("start a netlink runtime", e))?;
    rt.block_on(async move {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| Error::sys("open a netlink socket", e))?;
        tokio::spawn(conn);
        f(handle).await
    })
}

/// Runs `f` with a netlink handle on the caller's network namespace (the
/// host's, for the agent), on a thread of its own.
pub fn in_host<T, F, Fut>(f: F) -> Result<T>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T>>,
{
    std::thread::scope(|s| {
        s.spawn(|| run(f)).join().unwrap_or_else(|_| {
            Err(Error::Netlink {
                action: "netlink thread".into(),
                message: "panicked".into(),
            })
        })
    })
}

/// Runs `f` with a netlink handle inside the network namespace bound at
/// `netns`, on a thread that joined it (and dies with it).
pub fn in_netns<T, F, Fut>(netns: &Path, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T>>,
{
    let ns = std::fs::File::open(netns).map_err(|e| Error::io("open netns", netns, e))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| Error::sys(format!("join netns {}", netns.display()), e))?;
            run(f)
        })
        .join()
        .unwrap_or_else(|_| {
            Err(Error::Netlink {
                action: "netlink thread".into(),
                message: "panicked".into(),
            })
        })
    })
}

/// A link's index, `None` when there is no such link.
pub async fn index(h: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = h.link().get().match_name(name).execute();
    match links.try_next().await {
        Ok(Some(m)) => Ok(Some(m.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("look up link {name}"))(e)),
    }
}

/// The MTU of a link, if it exists.
pub async fn mtu(h: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = h.link().get().match_name(name).execute();
    match links.try_next().await {
        Ok(Some(m)) => Ok(m.attributes.iter().find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        })),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("look up link {name}"))(e)),
    }
}

/// Creates the bridge `name` with `gateway/prefix` unless it exists, and
/// brings it up. Idempotent: re-adopting a network after a reboot or a
/// manual `ip link del` calls it again.
pub async fn ensure_bridge(
    h: &Handle,
    name: &str,
    gateway: Ipv4Addr,
    subnet: Ipv4Net,
    mtu: Option<u32>,
) -> Result<u32> {
    let idx = match index(h, name).await? {
        Some(i) => i,
        None => {
            let mut b = LinkBridge::new(name);
            if let Some(m) = mtu {
                b = b.mtu(m);
            }
            match h.link().add(b.build()).execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                Err(e) => return Err(nl(format!("create bridge {name}"))(e)),
            }
            index(h, name).await?.ok_or_else(|| Error::Netlink {
                action: format!("create bridge {name}"),
                message: "the bridge vanished right after its creation".into(),
            })?
        }
    };
    let has_gateway = h
        .address()
        .get()
        .set_link_index_filter(idx)
        .execute()
        .try_filter(|m| {
            futures::future::ready(m.attributes.iter().any(|a| {
                matches!(a, AddressAttribute::Address(std::net::IpAddr::V4(ip)) if *ip == gateway)
            }))
        })
        .try_next()
        .await
        .map_err(nl(format!("list addresses of {name}")))?
        .is_some();
    if !has_gateway {
        match h
            .address()
            .add(idx, gateway.into(), subnet.prefix())
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::EEXIST) => {}
            Err(e) => {
                return Err(nl(format!("add {gateway}/{} to {name}", subnet.prefix()))(
                    e,
                ));
            }
        }
    }
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(nl(format!("bring {name} up")))?;
    Ok(idx)
}

/// Makes sure the host end of a container's veth is a port of the bridge
/// at `bridge_idx` (a bridge deleted and made again has no ports).
/// `false` when the veth itself is gone.
pub async fn ensure_port(h: &Handle, host: &str, bridge_idx: u32) -> Result<bool> {
    let mut links = h.link().get().match_name(host).execute();
    let msg = match links.try_next().await {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(false),
        Err(e) if errno(&e) == Some(libc::ENODEV) => return Ok(false),
        Err(e) => return Err(nl(format!("look up link {host}"))(e)),
    };
    let controller = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(c) => Some(*c),
        _ => None,
    });
    if controller == Some(bridge_idx) {
        return Ok(true);
    }
    let idx = msg.header.index;
    h.link()
        .set(
            LinkUnspec::new_with_index(idx)
                .controller(bridge_idx)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(nl(format!("attach {host} to its bridge again")))?;
    h.link()
        .set_port(LinkBridgePort::new(idx).hairpin(true).build())
        .execute()
        .await
        .map_err(nl(format!("turn hairpin mode on for {host}")))?;
    Ok(true)
}

/// Whether the host end of a veth is a port of the bridge `bridge_idx`.
pub async fn is_port_of(h: &Handle, host: &str, bridge_idx: u32) -> Result<bool> {
    let mut links = h.link().get().match_name(host).execute();
    match links.try_next().await {
        Ok(Some(m)) => Ok(m
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::Controller(c) if *c == bridge_idx))),
        Ok(None) => Ok(false),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(nl(format!("look up link {host}"))(e)),
    }
}

/// Adds an IPv6 address to the link `idx` (no duplicate address
/// detection: berth hands out each address once, and DAD would keep it
/// unusable for a second), after turning IPv6 on for `ifname` (a host or
/// namespace default of `disable_ipv6=1` would refuse it). Idempotent.
pub async fn ensure_address6(
    h: &Handle,
    idx: u32,
    ifname: &str,
    ip: Ipv6Addr,
    prefix: u8,
) -> Result<()> {
    let sysctl = format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
    if std::fs::read_to_string(&sysctl).is_ok_and(|v| v.trim() != "0") {
        std::fs::write(&sysctl, "0").map_err(|e| Error::io("write", &sysctl, e))?;
    }
    let mut add = h.address().add(idx, ip.into(), prefix);
    add.message_mut().attributes.push(AddressAttribute::Flags(
        rtnetlink::packet_route::address::AddressFlags::Nodad,
    ));
    match add.execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(nl(format!("add {ip}/{prefix} to {ifname}"))(e)),
    }
}

/// Deletes a link; a missing one is fine.
pub async fn delete(h: &Handle, name: &str) -> Result<()> {
    let Some(idx) = index(h, name).await? else {
        return Ok(());
    };
    match h.link().del(idx).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
        Err(e) => Err(nl(format!("delete link {name}"))(e)),
    }
}

/// A veth pair: `host` enslaved to the bridge `bridge` and up, `peer`
/// made right inside the namespace bound at `netns` (down, with `mac`).
///
/// One request makes the pair, the peer in its namespace, the host end on
/// the bridge and up: moving a link between namespaces afterwards costs an
/// RCU grace period in the kernel (~20 ms on a loaded 2-core machine, see
/// bench/results/run-breakdown.md), creating it there costs none.
pub async fn veth_into(
    h: &Handle,
    host: &str,
    peer: &str,
    mac: [u8; 6],
    bridge: &str,
    netns: &Path,
    mtu: Option<u32>,
) -> Result<()> {
    delete(h, host).await?;
    let bridge_idx = index(h, bridge).await?.ok_or_else(|| Error::Netlink {
        action: format!("attach {host}"),
        message: format!("bridge {bridge} does not exist"),
    })?;
    let ns = std::fs::File::open(netns).map_err(|e| Error::io("open netns", netns, e))?;
    let mut peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer.to_owned())
        .address(mac.to_vec())
        .setns_by_fd(ns.as_raw_fd());
    let mut v = LinkVeth::new(host, peer).controller(bridge_idx).up();
    if let Some(m) = mtu {
        v = v.mtu(m);
        peer_msg = peer_msg.mtu(m);
    }
    let v = v.set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())));
    h.link().add(v.build()).execute().await.map_err(nl(format!(
        "create veth pair {host}/{peer} into {}",
        netns.display()
    )))?;
    let host_idx = index(h, host).await?.ok_or_else(|| Error::Netlink {
        action: format!("create veth {host}"),
        message: "the host end is missing".into(),
    })?;
    // Hairpin: with br_netfilter, a container's packet to its own
    // published port is DNAT'd while being bridged and must go back out
    // the port it came in by.
    h.link()
        .set_port(LinkBridgePort::new(host_idx).hairpin(true).build())
        .execute()
        .await
        .map_err(nl(format!("turn hairpin mode on for {host}")))?;
    Ok(())
}

/// What one interface inside a container gets.
#[derive(Debug, Clone)]
pub struct InsideConfig {
    /// The name the peer had when it arrived (older berths moved it in
    /// under a temporary name; [`veth_into`] names it `ifname` already).
    pub from: String,
    pub ifname: String,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub mtu: Option<u32>,
    /// Set on the one interface that carries the default route.
    pub default_via: Option<Ipv4Addr>,
    /// The IPv6 address and prefix, on a network with IPv6.
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// The IPv6 default route, with `default_via`.
    pub default_via6: Option<Ipv6Addr>,
}

/// Inside the container's namespace: `lo` up, the peer renamed, addressed,
/// up, and the default route. Must run through [`in_netns`].
pub async fn configure_inside(h: &Handle, c: &InsideConfig) -> Result<()> {
    if let Some(lo) = index(h, "lo").await? {
        h.link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(nl("bring lo up"))?;
    }
    let idx = match index(h, &c.from).await? {
        Some(i) => i,
        None => index(h, &c.ifname).await?.ok_or_else(|| Error::Netlink {
            action: format!("configure {}", c.ifname),
            message: format!("neither {} nor {} is in the namespace", c.from, c.ifname),
        })?,
    };
    let mut set = LinkUnspec::new_with_index(idx)
        .name(c.ifname.clone())
        .address(c.mac.to_vec());
    if let Some(m) = c.mtu {
        set = set.mtu(m);
    }
    h.link()
        .set(set.build())
        .execute()
        .await
        .map_err(nl(format!("rename {} to {}", c.from, c.ifname)))?;
    match h.address().add(idx, c.ip.into(), c.prefix).execute().await {
        Ok(()) => {}
        Err(e) if errno(&e) == Some(libc::EEXIST) => {}
        Err(e) => return Err(nl(format!("add {}/{} to {}", c.ip, c.prefix, c.ifname))(e)),
    }
    if let Some((ip6, prefix6)) = c.ip6 {
        ensure_address6(h, idx, &c.ifname, ip6, prefix6).await?;
    }
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(nl(format!("bring {} up", c.ifname)))?;
    if let Some(gw) = c.default_via6 {
        let route = RouteMessageBuilder::<Ipv6Addr>::new()
            .gateway(gw)
            .output_interface(idx)
            .build();
        match h.route().add(route).execute().await {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::EEXIST) => {}
            Err(e) => return Err(nl(format!("add the IPv6 default route via {gw}"))(e)),
        }
    }
    if let Some(gw) = c.default_via {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gw)
            .output_interface(idx)
            .build();
        match h.route().add(route).execute().await {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::EEXIST) => {}
            Err(e) => return Err(nl(format!("add the default route via {gw}"))(e)),
        }
    }
    Ok(())
}

/// Brings `lo` up (a namespace with no network attached still has one).
pub async fn loopback_up(h: &Handle) -> Result<()> {
    if let Some(lo) = index(h, "lo").await? {
        h.link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(nl("bring lo up"))?;
    }
    Ok(())
}

/// The IPv4 destinations of the main routing table (the default route
/// included, as `0.0.0.0/0`).
pub async fn routes(h: &Handle) -> Result<Vec<Ipv4Net>> {
    let msgs: Vec<_> = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute()
        .try_collect()
        .await
        .map_err(nl("list routes"))?;
    Ok(msgs
        .into_iter()
        .filter(|m| m.header.table == RT_TABLE_MAIN && m.header.kind == RouteType::Unicast)
        .filter_map(|m| {
            let dst = m
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                    _ => None,
                })
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            Ipv4Net::new(dst, m.header.destination_prefix_length)
        })
        .collect())
}
