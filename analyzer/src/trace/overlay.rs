//! Where a VXLAN device sends a packet, as the kernel decides it: the next hop's
//! neighbour entry on the device gives the remote VTEP's MAC, the device's FDB entry
//! for that MAC gives the remote VTEP's address (or the all-zeros entry, the device's
//! default destination). Without them `vxlan_xmit` drops the frame (and ARP, a
//! broadcast, has nowhere to go). Flannel, Calico and others program both entries per
//! peer (`nolearning`); a device whose misses a program resolves (`external`, i.e.
//! Cilium's BPF, or `l2miss`/`l3miss`/`proxy`, a daemon) cannot be judged from a
//! snapshot, nor can one whose flags the bundle does not record.

use crate::model::Netns;
use netsnap_schema::model::Link;
use std::net::IpAddr;

/// The all-zeros FDB entry: the device's default destination.
const DEFAULT_DESTINATION: &str = "00:00:00:00:00:00";

/// What a VXLAN device does with a packet for `nexthop`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum VtepLookup {
    /// The bundle cannot tell (flags not recorded, a resolving device, no neighbour
    /// and FDB sources, or ARP through a default destination).
    Undecided,
    /// Sent to the VTEP `mac` at `dst`: neighbour entry `neigh`, FDB entry `fdb`.
    Found {
        mac: String,
        dst: Option<String>,
        neigh: usize,
        fdb: usize,
    },
    /// No usable neighbour entry for the next hop, and no default destination to
    /// send ARP to.
    NoNeighbour,
    /// The neighbour entry `neigh` names `mac`, for which the FDB has no entry and no
    /// default destination.
    NoFdb { mac: String, neigh: usize },
}

/// Looks `nexthop` up as the kernel does on VXLAN device `link` of `ns`.
pub(super) fn vtep_for(ns: &Netns, link: &Link, nexthop: IpAddr) -> VtepLookup {
    let Some(vx) = &link.vxlan else {
        return VtepLookup::Undecided;
    };
    let resolved_elsewhere = [vx.external, vx.l2miss, vx.l3miss, vx.proxy].contains(&Some(true));
    // `learning` is reported by every kernel: its absence means an older collector.
    if vx.learning.is_none() || resolved_elsewhere || !ns.neigh.present || !ns.fdb.present {
        return VtepLookup::Undecided;
    }
    let fdb_entry = |mac: &str| {
        ns.fdb
            .iter()
            .find(|(_, f)| f.ifindex == link.ifindex && f.mac.eq_ignore_ascii_case(mac))
            .map(|(i, _)| i)
    };
    let default = fdb_entry(DEFAULT_DESTINATION);
    let neigh = ns.neigh.iter().find(|(_, n)| {
        n.ifindex == link.ifindex
            && n.lladdr.is_some()
            && n.dst.parse::<IpAddr>().ok() == Some(nexthop)
            && !n.state.contains("FAILED")
            && !n.state.contains("INCOMPLETE")
    });
    let Some((ni, n)) = neigh else {
        return match default {
            Some(_) => VtepLookup::Undecided,
            None => VtepLookup::NoNeighbour,
        };
    };
    let mac = n.lladdr.clone().unwrap_or_default();
    match fdb_entry(&mac).or(default) {
        Some(fi) => VtepLookup::Found {
            dst: ns.fdb.items[fi].dst.clone(),
            mac,
            neigh: ni,
            fdb: fi,
        },
        None => VtepLookup::NoFdb { mac, neigh: ni },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::netns::Table;
    use netsnap_schema::model::{FdbEntry, Neigh, Vxlan};

    const PEER_MAC: &str = "a6:3e:73:50:c5:92";

    fn flannel_1() -> Link {
        Link {
            kind: Some("vxlan".into()),
            vxlan: Some(Vxlan {
                id: 1,
                learning: Some(false),
                external: Some(false),
                l2miss: Some(false),
                l3miss: Some(false),
                proxy: Some(false),
                ..Vxlan::default()
            }),
            ..Link::new(9, "flannel.1", 1450)
        }
    }

    fn table<T>(items: Vec<T>) -> Table<T> {
        Table {
            path: "netns/root/neigh.json".into(),
            present: true,
            lines: vec![None; items.len()],
            items,
        }
    }

    /// flannel's entries for the peer 10.244.2.0/24 at 198.51.100.3.
    fn node(neigh: bool, fdb: &[&str]) -> Netns {
        let mut ns = Netns::default();
        let n = Neigh {
            ifindex: 9,
            family: "inet".into(),
            dst: "10.244.2.0".into(),
            lladdr: Some(PEER_MAC.into()),
            state: "PERMANENT".into(),
        };
        ns.neigh = table(if neigh { vec![n] } else { Vec::new() });
        ns.fdb = table(
            fdb.iter()
                .map(|mac| FdbEntry {
                    ifindex: 9,
                    mac: mac.to_string(),
                    master: None,
                    vlan: None,
                    dst: Some("198.51.100.3".into()),
                    state: "PERMANENT".into(),
                })
                .collect(),
        );
        ns
    }

    fn lookup(ns: &Netns, link: &Link) -> VtepLookup {
        vtep_for(ns, link, "10.244.2.0".parse().unwrap())
    }

    #[test]
    fn the_peer_vtep_comes_from_the_neighbour_and_the_fdb() {
        let found = lookup(&node(true, &[PEER_MAC]), &flannel_1());
        assert_eq!(
            found,
            VtepLookup::Found {
                mac: PEER_MAC.into(),
                dst: Some("198.51.100.3".into()),
                neigh: 0,
                fdb: 0
            }
        );
        // The all-zeros entry (a `remote` device) takes any MAC.
        let default = lookup(&node(true, &[DEFAULT_DESTINATION]), &flannel_1());
        assert!(matches!(default, VtepLookup::Found { fdb: 0, .. }));
    }

    #[test]
    fn a_missing_entry_drops_on_a_nolearning_device() {
        let link = flannel_1();
        assert_eq!(
            lookup(&node(true, &[]), &link),
            VtepLookup::NoFdb {
                mac: PEER_MAC.into(),
                neigh: 0
            }
        );
        assert_eq!(
            lookup(&node(false, &[PEER_MAC]), &link),
            VtepLookup::NoNeighbour
        );
        // ARP through a default destination may still resolve it.
        assert_eq!(
            lookup(&node(false, &[DEFAULT_DESTINATION]), &link),
            VtepLookup::Undecided
        );
    }

    #[test]
    fn what_a_snapshot_cannot_tell_stays_undecided() {
        let bare = node(false, &[]);
        let mut older = flannel_1();
        older.vxlan.as_mut().unwrap().learning = None;
        assert_eq!(lookup(&bare, &older), VtepLookup::Undecided);
        for set in [
            |v: &mut Vxlan| v.external = Some(true),
            |v: &mut Vxlan| v.l2miss = Some(true),
            |v: &mut Vxlan| v.l3miss = Some(true),
            |v: &mut Vxlan| v.proxy = Some(true),
        ] {
            let mut link = flannel_1();
            set(link.vxlan.as_mut().unwrap());
            assert_eq!(lookup(&bare, &link), VtepLookup::Undecided);
        }
        let mut no_source = bare.clone();
        no_source.fdb.present = false;
        assert_eq!(lookup(&no_source, &flannel_1()), VtepLookup::Undecided);
    }
}
