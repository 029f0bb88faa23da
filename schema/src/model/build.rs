//! Constructors for the structured types, so that producers other than the collector
//! (the scale generator, test fixtures) say what a link or route *is* instead of
//! spelling every field. Each returns a plain value; fields stay public.

use super::{Addr, BridgePort, Link, LinkState, Route, Rule, Socket, SocketProto};

const BROADCAST_UP: [&str; 4] = ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"];

fn names(flags: &[&str]) -> Vec<String> {
    flags.iter().map(|f| f.to_string()).collect()
}

impl Link {
    /// A link with only its index, name and MTU set: no kind (a physical or loopback
    /// device), state unknown, no flags.
    pub fn new(ifindex: u32, name: impl Into<String>, mtu: u32) -> Link {
        Link {
            ifindex,
            name: name.into(),
            kind: None,
            mtu,
            state: LinkState::Unknown,
            flags: Vec::new(),
            mac: None,
            master: None,
            link: None,
            link_netnsid: None,
            promiscuity: 0,
            bridge: None,
            bridge_port: None,
            vxlan: None,
        }
    }

    /// `lo` as the kernel reports it.
    pub fn loopback() -> Link {
        Link::new(1, "lo", 65536)
            .with_flags(&["LOOPBACK", "UP", "LOWER_UP"])
            .with_mac("00:00:00:00:00:00")
    }

    /// A broadcast device that is up (`BROADCAST,MULTICAST,UP,LOWER_UP`, state up).
    pub fn up(mut self) -> Link {
        self.state = LinkState::Up;
        self.flags = names(&BROADCAST_UP);
        self
    }

    pub fn with_kind(mut self, kind: &str) -> Link {
        self.kind = Some(kind.to_string());
        self
    }

    pub fn with_state(mut self, state: LinkState) -> Link {
        self.state = state;
        self
    }

    pub fn with_flags(mut self, flags: &[&str]) -> Link {
        self.flags = names(flags);
        self
    }

    pub fn with_mac(mut self, mac: impl Into<String>) -> Link {
        self.mac = Some(mac.into());
        self
    }

    /// Enslaved to the bridge (or bond) with this ifindex.
    pub fn with_master(mut self, master: Option<u32>) -> Link {
        self.master = master;
        self
    }

    /// A veth whose peer is `peer_ifindex` in the netns with id `netnsid` (as seen
    /// from this link's netns).
    pub fn with_peer(mut self, peer_ifindex: u32, netnsid: i32) -> Link {
        self.link = Some(peer_ifindex);
        self.link_netnsid = Some(netnsid);
        self
    }

    pub fn with_bridge_port(mut self, port: BridgePort) -> Link {
        self.bridge_port = Some(port);
        self
    }
}

impl Addr {
    /// An address, family from its form (`inet` / `inet6`), scope `global`.
    pub fn new(ifindex: u32, address: impl Into<String>, prefix_len: u8) -> Addr {
        let address = address.into();
        let family = if address.contains(':') {
            "inet6"
        } else {
            "inet"
        };
        Addr {
            ifindex,
            family: family.into(),
            address,
            prefix_len,
            scope: "global".into(),
            label: None,
        }
    }

    pub fn with_scope(mut self, scope: &str) -> Addr {
        self.scope = scope.to_string();
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Addr {
        self.label = Some(label.into());
        self
    }
}

impl Route {
    /// A unicast route of the main table (254), protocol `kernel`, scope `universe`,
    /// family from the destination (`default` is IPv4).
    pub fn new(dst: impl Into<String>) -> Route {
        let dst = dst.into();
        let family = if dst.contains(':') { "inet6" } else { "inet" };
        Route {
            family: family.into(),
            table: 254,
            dst,
            gateway: None,
            oif: None,
            prefsrc: None,
            kind: "unicast".into(),
            protocol: "kernel".into(),
            scope: "universe".into(),
            metric: None,
            mtu: None,
            multipath: Vec::new(),
        }
    }

    /// With the MTU metric (`ip route … mtu N`).
    pub fn mtu(mut self, mtu: u32) -> Route {
        self.mtu = Some(mtu);
        self
    }

    pub fn via(mut self, gateway: impl Into<String>) -> Route {
        self.gateway = Some(gateway.into());
        self
    }

    pub fn dev(mut self, oif: u32) -> Route {
        self.oif = Some(oif);
        self
    }

    pub fn in_table(mut self, table: u32) -> Route {
        self.table = table;
        self
    }

    pub fn with_kind(mut self, kind: &str) -> Route {
        self.kind = kind.to_string();
        self
    }

    pub fn with_protocol(mut self, protocol: &str) -> Route {
        self.protocol = protocol.to_string();
        self
    }

    pub fn with_scope(mut self, scope: &str) -> Route {
        self.scope = scope.to_string();
        self
    }

    pub fn with_prefsrc(mut self, src: impl Into<String>) -> Route {
        self.prefsrc = Some(src.into());
        self
    }
}

impl Rule {
    /// A rule that matches everything of `family` and looks up `table` (`ip rule add
    /// pref PRIORITY lookup TABLE`); selectors are set on the value.
    pub fn lookup(family: &str, priority: u32, table: u32) -> Rule {
        Rule {
            family: family.into(),
            priority,
            src: None,
            dst: None,
            fwmark: None,
            fwmask: None,
            iif: None,
            oif: None,
            table,
            action: "to_tbl".into(),
        }
    }
}

impl Socket {
    /// A listening (TCP) or bound (UDP) socket, inode and uid 0.
    pub fn new(proto: SocketProto, local: impl Into<String>, port: u16) -> Socket {
        Socket {
            proto,
            local: local.into(),
            port,
            inode: 0,
            uid: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_fill_what_they_say() {
        let veth = Link::new(5, "veth1", 1450)
            .with_kind("veth")
            .up()
            .with_master(Some(3))
            .with_peer(2, 1);
        assert_eq!(veth.state, LinkState::Up);
        assert_eq!(veth.flags, names(&BROADCAST_UP));
        assert_eq!(
            (veth.master, veth.link, veth.link_netnsid),
            (Some(3), Some(2), Some(1))
        );
        assert_eq!(
            Link::loopback().flags,
            names(&["LOOPBACK", "UP", "LOWER_UP"])
        );
        assert_eq!(Addr::new(2, "fd00::1", 64).family, "inet6");
        assert_eq!(Addr::new(2, "10.0.0.1", 24).family, "inet");
        let r = Route::new("default").via("10.0.0.1").dev(2);
        assert_eq!((r.family.as_str(), r.table), ("inet", 254));
        assert_eq!(r.gateway.as_deref(), Some("10.0.0.1"));
    }
}
