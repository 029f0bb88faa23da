//! RTM_GETADDR dumps (IPv4 and IPv6) → `addrs.json`.

use super::{family_name, Conn, Dump, NetlinkError};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netsnap_schema::model::Addr;
use std::time::Duration;

pub async fn dump(conn: &mut Conn, timeout: Duration) -> Result<Dump<Addr>, NetlinkError> {
    let mut all = Dump::default();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut msg = AddressMessage::default();
        msg.header.family = family;
        let d = conn
            .dump(RouteNetlinkMessage::GetAddress(msg), timeout)
            .await?;
        all.undecoded += d.undecoded;
        all.interrupted |= d.interrupted;
        all.messages
            .extend(d.messages.into_iter().filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => addr_from_msg(&a),
                _ => None,
            }));
    }
    Ok(all)
}

/// Scope names as iproute2 prints them for addresses.
pub fn scope_name(scope: AddressScope) -> String {
    match u8::from(scope) {
        0 => "global".into(),
        200 => "site".into(),
        253 => "link".into(),
        254 => "host".into(),
        255 => "nowhere".into(),
        n => n.to_string(),
    }
}

pub fn addr_from_msg(msg: &AddressMessage) -> Option<Addr> {
    let mut address = None;
    let mut local = None;
    let mut label = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links and equal to IFA_LOCAL otherwise.
    let ip = local.or(address)?;
    Some(Addr {
        ifindex: msg.header.index,
        family: family_name(u8::from(msg.header.family)),
        address: ip.to_string(),
        prefix_len: msg.header.prefix_len,
        scope: scope_name(msg.header.scope),
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_address() {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.index = 2;
        m.header.prefix_len = 24;
        m.header.scope = AddressScope::Universe;
        m.attributes = vec![
            AddressAttribute::Address("10.244.0.5".parse().unwrap()),
            AddressAttribute::Local("10.244.0.5".parse().unwrap()),
            AddressAttribute::Label("eth0".into()),
        ];
        let a = addr_from_msg(&m).unwrap();
        assert_eq!(a.family, "inet");
        assert_eq!(a.address, "10.244.0.5");
        assert_eq!(a.prefix_len, 24);
        assert_eq!(a.scope, "global");
        assert_eq!(a.label.as_deref(), Some("eth0"));
    }

    #[test]
    fn ipv6_link_local() {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet6;
        m.header.index = 3;
        m.header.prefix_len = 64;
        m.header.scope = AddressScope::Link;
        m.attributes = vec![AddressAttribute::Address("fe80::1".parse().unwrap())];
        let a = addr_from_msg(&m).unwrap();
        assert_eq!((a.family.as_str(), a.scope.as_str()), ("inet6", "link"));
    }
}
