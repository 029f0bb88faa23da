//! RTM_GETNEIGH dumps → `neigh.json`: ARP/NDP neighbours, and the bridge forwarding
//! database of bridges and VXLAN devices (the same request with family AF_BRIDGE, like
//! `bridge fdb show`; a VXLAN entry keeps its remote VTEP address).

use super::{family_name, mac_string, Conn, Dump, NetlinkError};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netsnap_schema::model::{FdbEntry, Neigh};
use std::time::Duration;

pub async fn dump_neighbours(
    conn: &mut Conn,
    timeout: Duration,
) -> Result<Dump<Neigh>, NetlinkError> {
    let mut all = Dump::default();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut msg = NeighbourMessage::default();
        msg.header.family = family;
        let d = conn
            .dump(RouteNetlinkMessage::GetNeighbour(msg), timeout)
            .await?;
        all.undecoded += d.undecoded;
        all.interrupted |= d.interrupted;
        all.messages
            .extend(d.messages.into_iter().filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => neigh_from_msg(&n),
                _ => None,
            }));
    }
    Ok(all)
}

pub async fn dump_fdb(conn: &mut Conn, timeout: Duration) -> Result<Dump<FdbEntry>, NetlinkError> {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    let d = conn
        .dump(RouteNetlinkMessage::GetNeighbour(msg), timeout)
        .await?;
    Ok(d.map(|m| match m {
        RouteNetlinkMessage::NewNeighbour(n) => fdb_from_msg(&n),
        _ => None,
    }))
}

const NUD_NAMES: [(u16, &str); 8] = [
    (0x01, "INCOMPLETE"),
    (0x02, "REACHABLE"),
    (0x04, "STALE"),
    (0x08, "DELAY"),
    (0x10, "PROBE"),
    (0x20, "FAILED"),
    (0x40, "NOARP"),
    (0x80, "PERMANENT"),
];

/// NUD_* state names joined by `|` (`NONE` for 0).
pub fn state_name(state: NeighbourState) -> String {
    let bits = u16::from(state);
    if bits == 0 {
        return "NONE".into();
    }
    let mut names: Vec<String> = NUD_NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let known: u16 = NUD_NAMES.iter().map(|(b, _)| b).sum();
    if bits & !known != 0 {
        names.push(format!("0x{:x}", bits & !known));
    }
    names.join("|")
}

pub fn neigh_from_msg(msg: &NeighbourMessage) -> Option<Neigh> {
    let mut dst = None;
    let mut lladdr = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                dst = Some(ip.to_string())
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => {
                dst = Some(ip.to_string())
            }
            NeighbourAttribute::LinkLayerAddress(a) if !a.is_empty() => {
                lladdr = Some(mac_string(a))
            }
            _ => {}
        }
    }
    Some(Neigh {
        ifindex: msg.header.ifindex,
        family: family_name(u8::from(msg.header.family)),
        dst: dst?,
        lladdr,
        state: state_name(msg.header.state),
    })
}

/// The remote VTEP of an fdb entry (`NDA_DST`).
fn vtep_address(a: &NeighbourAddress) -> Option<String> {
    let ip: std::net::IpAddr = match a {
        NeighbourAddress::Inet(ip) => (*ip).into(),
        NeighbourAddress::Inet6(ip) => (*ip).into(),
        NeighbourAddress::Other(b) => match b.len() {
            4 => <[u8; 4]>::try_from(b.as_slice()).ok()?.into(),
            16 => <[u8; 16]>::try_from(b.as_slice()).ok()?.into(),
            _ => return None,
        },
        _ => return None,
    };
    Some(ip.to_string())
}

pub fn fdb_from_msg(msg: &NeighbourMessage) -> Option<FdbEntry> {
    let mut mac = None;
    let mut master = None;
    let mut vlan = None;
    let mut dst = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::LinkLayerAddress(a) => mac = Some(mac_string(a)),
            // A VXLAN entry's remote VTEP: without it the peer node is unknown. In an
            // AF_BRIDGE message the crate leaves it as raw bytes (4 or 16).
            NeighbourAttribute::Destination(a) => dst = vtep_address(a),
            NeighbourAttribute::Controller(m) => master = Some(*m),
            NeighbourAttribute::Vlan(v) => vlan = Some(*v),
            _ => {}
        }
    }
    Some(FdbEntry {
        ifindex: msg.header.ifindex,
        mac: mac?,
        master,
        vlan,
        dst,
        state: state_name(msg.header.state),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbour_and_fdb() {
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.ifindex = 3;
        m.header.state = NeighbourState::Reachable;
        m.attributes = vec![
            NeighbourAttribute::Destination(NeighbourAddress::Inet("10.244.0.7".parse().unwrap())),
            NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 7]),
        ];
        let n = neigh_from_msg(&m).unwrap();
        assert_eq!(n.dst, "10.244.0.7");
        assert_eq!(n.lladdr.as_deref(), Some("02:00:00:00:00:07"));
        assert_eq!(n.state, "REACHABLE");

        let mut f = NeighbourMessage::default();
        f.header.family = AddressFamily::Bridge;
        f.header.ifindex = 5;
        f.header.state = NeighbourState::Permanent;
        f.attributes = vec![
            NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 8]),
            NeighbourAttribute::Controller(3),
            NeighbourAttribute::Vlan(1),
        ];
        let e = fdb_from_msg(&f).unwrap();
        assert_eq!((e.ifindex, e.master, e.vlan), (5, Some(3), Some(1)));
        assert_eq!(e.state, "PERMANENT");
        assert_eq!(e.dst, None);

        // flannel.1's entry for a peer: VTEP MAC -> the peer node's address.
        let mut v = NeighbourMessage::default();
        v.header.family = AddressFamily::Bridge;
        v.header.ifindex = 9;
        v.header.state = NeighbourState::Permanent;
        v.attributes = vec![
            NeighbourAttribute::LinkLayerAddress(vec![0xa6, 0x3e, 0x73, 0x50, 0xc5, 0x92]),
            // As the crate parses an AF_BRIDGE message: raw bytes.
            NeighbourAttribute::Destination(NeighbourAddress::Other(vec![198, 51, 100, 3])),
        ];
        let e = fdb_from_msg(&v).unwrap();
        assert_eq!(e.mac, "a6:3e:73:50:c5:92");
        assert_eq!(e.dst.as_deref(), Some("198.51.100.3"));
        let v6 = NeighbourAddress::Other(
            "fd00::3"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
                .to_vec(),
        );
        assert_eq!(vtep_address(&v6).as_deref(), Some("fd00::3"));
        assert_eq!(vtep_address(&NeighbourAddress::Other(vec![1, 2])), None);
        assert_eq!(state_name(NeighbourState::Other(0x06)), "REACHABLE|STALE");
    }
}
