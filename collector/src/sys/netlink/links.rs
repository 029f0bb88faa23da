//! RTM_GETLINK dump → `links.json`.
//!
//! veth peers: `IFLA_LINK` is the peer's ifindex *inside the peer netns* and
//! `IFLA_LINK_NETNSID` the peer netns id relative to the netns that was asked; the
//! analyzer pairs links by (netns, ifindex), never by name.

use super::{mac_string, Conn, Dump, NetlinkError};
use netlink_packet_route::link::{
    InfoBridge, InfoBridgePort, InfoData, InfoPortData, InfoVxlan, LinkAttribute, LinkFlags,
    LinkInfo, LinkMessage, State,
};
use netlink_packet_route::RouteNetlinkMessage;
use netsnap_schema::model::{BridgeInfo, BridgePort, Link, LinkState, Vxlan};
use std::time::Duration;

pub async fn dump(conn: &mut Conn, timeout: Duration) -> Result<Dump<Link>, NetlinkError> {
    let d = conn
        .dump(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            timeout,
        )
        .await?;
    let mut d = d.map(|m| match m {
        RouteNetlinkMessage::NewLink(l) => Some(link_from_msg(&l)),
        _ => None,
    });
    d.messages.sort_by_key(|l| l.ifindex);
    Ok(d)
}

/// IFF_* names as the kernel and iproute2 spell them.
const FLAG_NAMES: [(u32, &str); 19] = [
    (libc::IFF_UP as u32, "UP"),
    (libc::IFF_BROADCAST as u32, "BROADCAST"),
    (libc::IFF_DEBUG as u32, "DEBUG"),
    (libc::IFF_LOOPBACK as u32, "LOOPBACK"),
    (libc::IFF_POINTOPOINT as u32, "POINTOPOINT"),
    (libc::IFF_NOTRAILERS as u32, "NOTRAILERS"),
    (libc::IFF_RUNNING as u32, "RUNNING"),
    (libc::IFF_NOARP as u32, "NOARP"),
    (libc::IFF_PROMISC as u32, "PROMISC"),
    (libc::IFF_ALLMULTI as u32, "ALLMULTI"),
    (libc::IFF_MASTER as u32, "MASTER"),
    (libc::IFF_SLAVE as u32, "SLAVE"),
    (libc::IFF_MULTICAST as u32, "MULTICAST"),
    (libc::IFF_PORTSEL as u32, "PORTSEL"),
    (libc::IFF_AUTOMEDIA as u32, "AUTOMEDIA"),
    (libc::IFF_DYNAMIC as u32, "DYNAMIC"),
    (1 << 16, "LOWER_UP"),
    (1 << 17, "DORMANT"),
    (1 << 18, "ECHO"),
];

pub fn flag_names(flags: LinkFlags) -> Vec<String> {
    let bits = flags.bits();
    FLAG_NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn state(s: State) -> LinkState {
    match s {
        State::Up => LinkState::Up,
        State::Down => LinkState::Down,
        State::Dormant => LinkState::Dormant,
        State::LowerLayerDown => LinkState::Lowerlayerdown,
        State::NotPresent => LinkState::Notpresent,
        State::Testing => LinkState::Testing,
        _ => LinkState::Unknown,
    }
}

pub fn link_from_msg(msg: &LinkMessage) -> Link {
    let mut link = Link {
        flags: flag_names(msg.header.flags),
        ..Link::new(msg.header.index, String::new(), 0)
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::OperState(s) => link.state = state(*s),
            LinkAttribute::Address(a) if !a.is_empty() => link.mac = Some(mac_string(a)),
            LinkAttribute::Controller(m) => link.master = Some(*m),
            LinkAttribute::Link(l) => link.link = Some(*l),
            LinkAttribute::LinkNetNsId(n) => link.link_netnsid = Some(*n),
            LinkAttribute::Promiscuity(p) => link.promiscuity = *p,
            LinkAttribute::LinkInfo(infos) => apply_info(&mut link, infos),
            _ => {}
        }
    }
    link
}

fn apply_info(link: &mut Link, infos: &[LinkInfo]) {
    for info in infos {
        match info {
            LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
            LinkInfo::Data(InfoData::Bridge(attrs)) => {
                let mut b = BridgeInfo::default();
                for a in attrs {
                    match a {
                        InfoBridge::StpState(s) => b.stp_state = Some(u32::from(*s)),
                        InfoBridge::VlanFiltering(v) => b.vlan_filtering = Some(*v),
                        _ => {}
                    }
                }
                link.bridge = Some(b);
            }
            LinkInfo::Data(InfoData::Vxlan(attrs)) => {
                let mut v = Vxlan::default();
                for a in attrs {
                    match a {
                        InfoVxlan::Id(id) => v.id = *id,
                        InfoVxlan::Local(ip) => v.local = Some(ip.to_string()),
                        InfoVxlan::Local6(ip) => v.local = Some(ip.to_string()),
                        InfoVxlan::Group(ip) => v.group = Some(ip.to_string()),
                        InfoVxlan::Group6(ip) => v.group = Some(ip.to_string()),
                        InfoVxlan::Link(dev) => v.dev = Some(*dev),
                        InfoVxlan::Port(p) => v.port = Some(*p),
                        InfoVxlan::Learning(b) => v.learning = Some(*b),
                        InfoVxlan::CollectMetadata(b) => v.external = Some(*b),
                        InfoVxlan::L2Miss(b) => v.l2miss = Some(*b),
                        InfoVxlan::L3Miss(b) => v.l3miss = Some(*b),
                        InfoVxlan::Proxy(b) => v.proxy = Some(*b),
                        _ => {}
                    }
                }
                link.vxlan = Some(v);
            }
            LinkInfo::PortData(InfoPortData::BridgePort(attrs)) => {
                let mut p = BridgePort::default();
                for a in attrs {
                    match a {
                        InfoBridgePort::HairpinMode(h) => p.hairpin = *h,
                        InfoBridgePort::State(s) => p.state = Some(u8::from(*s)),
                        InfoBridgePort::Learning(l) => p.learning = Some(*l),
                        _ => {}
                    }
                }
                link.bridge_port = Some(p);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::{BridgePortState, InfoKind};

    #[test]
    fn veth_on_a_bridge() {
        let mut m = LinkMessage::default();
        m.header.index = 7;
        m.header.flags = LinkFlags::Up | LinkFlags::Broadcast | LinkFlags::LowerUp;
        m.attributes = vec![
            LinkAttribute::IfName("veth0a1b2c3d".into()),
            LinkAttribute::Mtu(1450),
            LinkAttribute::OperState(State::Up),
            LinkAttribute::Address(vec![0x0a, 0x58, 0x0a, 0xf4, 0x00, 0x01]),
            LinkAttribute::Controller(3),
            LinkAttribute::Link(2),
            LinkAttribute::LinkNetNsId(4),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::PortKind(netlink_packet_route::link::InfoPortKind::Bridge),
                LinkInfo::PortData(InfoPortData::BridgePort(vec![
                    InfoBridgePort::State(BridgePortState::Forwarding),
                    InfoBridgePort::HairpinMode(true),
                    InfoBridgePort::Learning(true),
                ])),
            ]),
        ];
        let l = link_from_msg(&m);
        assert_eq!(l.ifindex, 7);
        assert_eq!(l.name, "veth0a1b2c3d");
        assert_eq!(l.kind.as_deref(), Some("veth"));
        assert_eq!(l.mtu, 1450);
        assert_eq!(l.state, LinkState::Up);
        assert_eq!(l.flags, vec!["UP", "BROADCAST", "LOWER_UP"]);
        assert_eq!(l.mac.as_deref(), Some("0a:58:0a:f4:00:01"));
        assert_eq!(
            (l.master, l.link, l.link_netnsid),
            (Some(3), Some(2), Some(4))
        );
        let p = l.bridge_port.unwrap();
        assert!(p.hairpin);
        assert_eq!(p.state, Some(3));
    }

    #[test]
    fn vxlan_data() {
        let mut m = LinkMessage::default();
        m.header.index = 9;
        m.attributes = vec![LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(vec![
                InfoVxlan::Id(1),
                InfoVxlan::Local("192.0.2.1".parse().unwrap()),
                InfoVxlan::Link(2),
                InfoVxlan::Port(8472),
                InfoVxlan::Learning(false),
                InfoVxlan::CollectMetadata(false),
                InfoVxlan::L2Miss(false),
                InfoVxlan::L3Miss(true),
                InfoVxlan::Proxy(false),
            ])),
        ])];
        let v = link_from_msg(&m).vxlan.unwrap();
        assert_eq!(v.id, 1);
        assert_eq!(v.local.as_deref(), Some("192.0.2.1"));
        assert_eq!((v.dev, v.port), (Some(2), Some(8472)));
        assert_eq!(
            (v.learning, v.external, v.l2miss, v.l3miss, v.proxy),
            (
                Some(false),
                Some(false),
                Some(false),
                Some(true),
                Some(false)
            )
        );
    }
}
