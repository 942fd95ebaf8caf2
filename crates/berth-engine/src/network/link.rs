//! Interfaces over rtnetlink: bridges with their gateway address, veth pairs whose
//! container end is made directly inside the container's namespace, and the
//! addresses and routes inside it.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

fn err(what: &str) -> impl FnOnce(rtnetlink::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.code.map(|c| c.get()) == Some(-errno))
}

/// The index of the interface `name`, if it exists.
pub async fn index(handle: &Handle, name: &str) -> Result<Option<u32>, String> {
    match handle.link().get().match_name(name.to_owned()).execute().try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(format!("look up interface {name}: {e}")),
    }
}

/// The interface `name`, if it exists: its index and whether it is a bridge.
async fn find(handle: &Handle, name: &str) -> Result<Option<(u32, bool)>, String> {
    use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo};
    match handle.link().get().match_name(name.to_owned()).execute().try_next().await {
        Ok(Some(link)) => {
            let bridge = link
                .attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::LinkInfo(infos) if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge)))));
            Ok(Some((link.header.index, bridge)))
        }
        Ok(None) => Ok(None),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(format!("look up interface {name}: {e}")),
    }
}

/// Makes the bridge `name` (if missing) with `gateway/prefix` on it, and brings it up.
/// Its MAC address is fixed (`mac`): a bridge without one takes its lowest port's, and
/// would change it as containers come and go, leaving stale gateway entries in their
/// ARP caches (seconds without DNS or a way out).
pub async fn ensure_bridge(handle: &Handle, name: &str, gateway: Ipv4Addr, prefix: u8, mac: [u8; 6]) -> Result<(), String> {
    let index = match find(handle, name).await? {
        Some((index, true)) => index,
        // Never take over an interface that is not a bridge (eth0, lo, a VPN's tun).
        Some((_, false)) => return Err(format!("interface {name} exists and is not a bridge")),
        None => {
            match handle.link().add(LinkBridge::new(name).address(mac.to_vec()).build()).execute().await {
                // Another start made it meanwhile.
                Err(e) if is_errno(&e, libc::EEXIST) => {}
                other => other.map_err(err("create the bridge"))?,
            }
            index(handle, name).await?.ok_or_else(|| format!("bridge {name} vanished after creation"))?
        }
    };
    handle.address().add(index, IpAddr::V4(gateway), prefix).replace().execute().await.map_err(err("set the bridge's address"))?;
    handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await.map_err(err("bring the bridge up"))
}

/// Whether an interface named `name` exists.
pub async fn exists(handle: &Handle, name: &str) -> Result<bool, String> {
    Ok(find(handle, name).await?.is_some())
}

/// Deletes the interface `name`; missing is fine.
pub async fn delete(handle: &Handle, name: &str) -> Result<(), String> {
    let Some(index) = index(handle, name).await? else { return Ok(()) };
    match handle.link().del(index).execute().await {
        Err(e) if !is_errno(&e, libc::ENODEV) => Err(format!("delete interface {name}: {e}")),
        _ => Ok(()),
    }
}

/// Deletes the bridge `name`; missing is fine, and an interface of another kind by
/// that name is left alone.
pub async fn delete_bridge(handle: &Handle, name: &str) -> Result<(), String> {
    let Some((index, true)) = find(handle, name).await? else { return Ok(()) };
    match handle.link().del(index).execute().await {
        Err(e) if !is_errno(&e, libc::ENODEV) => Err(format!("delete interface {name}: {e}")),
        _ => Ok(()),
    }
}

/// A veth pair: `host_name` on the engine's side, enslaved to `bridge` and up;
/// `peer_name` with `mac`, created inside the namespace `netns_fd`.
pub async fn add_veth(handle: &Handle, host_name: &str, bridge: &str, netns_fd: RawFd, peer_name: &str, mac: [u8; 6]) -> Result<(), String> {
    let bridge_index = index(handle, bridge).await?.ok_or_else(|| format!("the bridge {bridge} is missing"))?;
    let peer = LinkMessageBuilder::<LinkUnspec>::new().name(peer_name.to_owned()).address(mac.to_vec()).setns_by_fd(netns_fd).build();
    let veth = LinkVeth::new(host_name, peer_name).set_info_data(InfoData::Veth(InfoVeth::Peer(peer))).build();
    handle.link().add(veth).execute().await.map_err(err("create the veth pair"))?;
    let host_index = index(handle, host_name).await?.ok_or_else(|| format!("veth {host_name} vanished after creation"))?;
    let attached = handle
        .link()
        .set(LinkUnspec::new_with_index(host_index).controller(bridge_index).up().build())
        .execute()
        .await
        .map_err(err("attach the veth to the bridge"));
    if attached.is_err() {
        let _ = handle.link().del(host_index).execute().await;
    }
    attached
}

/// Brings up loopback inside a new namespace.
pub async fn loopback_up(handle: &Handle) -> Result<(), String> {
    let lo = index(handle, "lo").await?.ok_or("no loopback interface")?;
    handle.link().set(LinkUnspec::new_with_index(lo).up().build()).execute().await.map_err(err("bring loopback up"))
}

/// Inside a container's namespace: `ip/prefix` on `ifname`, up, and the default route
/// through `gateway` when given.
pub async fn configure(handle: &Handle, ifname: &str, ip: Ipv4Addr, prefix: u8, gateway: Option<Ipv4Addr>) -> Result<(), String> {
    let index = index(handle, ifname).await?.ok_or_else(|| format!("{ifname} is missing in the container"))?;
    handle.address().add(index, IpAddr::V4(ip), prefix).execute().await.map_err(err("set the container's address"))?;
    handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await.map_err(err("bring the container's interface up"))?;
    if let Some(gateway) = gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gateway).output_interface(index).build();
        handle.route().add(route).execute().await.map_err(err("add the default route"))?;
    }
    Ok(())
}
