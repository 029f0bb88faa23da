//! Address helpers: prefixes (`ipnet`) as the analyzer reads them from a bundle, and
//! which addresses can identify a pod.

use std::net::IpAddr;

/// An IP prefix such as `10.244.1.0/24`, always masked to its network (see [`cidr`]).
pub type Cidr = ipnet::IpNet;

/// `addr/len` masked to its network (`10.244.1.7/24` is `10.244.1.0/24`); `None` when
/// `len` is longer than the address.
pub fn cidr(addr: IpAddr, len: u8) -> Option<Cidr> {
    Cidr::new(addr, len).ok().map(|c| c.trunc())
}

/// `addr/len`, or a bare address (a host prefix), masked to its network: a route's
/// destination as `ip route` prints it.
pub fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| format!("bad address {a:?}"))?;
    let len = match l {
        Some(l) => l.parse::<u8>().map_err(|_| format!("bad prefix {l:?}"))?,
        None => host_len(addr),
    };
    cidr(addr, len).ok_or_else(|| format!("prefix /{len} too long"))
}

/// 32 for IPv4, 128 for IPv6.
pub fn host_len(ip: IpAddr) -> u8 {
    Cidr::from(ip).max_prefix_len()
}

/// Loopback, link-local and unspecified addresses: never a pod's identity.
pub fn is_local_only(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback() || a.is_link_local() || a.is_unspecified(),
        IpAddr::V6(a) => {
            a.is_loopback() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Parses an address that may carry a zone (`fe80::1%eth0`) or brackets.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    let s = s.split('%').next().unwrap_or(s);
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Cidr {
        match parse_cidr(s) {
            Ok(c) => c,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn contains_and_covers() {
        let c = parsed("10.244.1.7/24");
        assert_eq!(c.to_string(), "10.244.1.0/24");
        assert!(c.contains(&"10.244.1.200".parse::<IpAddr>().unwrap()));
        assert!(!c.contains(&"10.244.2.1".parse::<IpAddr>().unwrap()));
        assert!(!c.contains(&"::1".parse::<IpAddr>().unwrap()));
        let wide = parsed("10.244.0.0/16");
        assert!(wide.contains(&c));
        assert!(!c.contains(&wide));
        let all = parsed("0.0.0.0/0");
        assert!(all.contains(&"1.2.3.4".parse::<IpAddr>().unwrap()));
        let v6 = parsed("fd00:10:244::/64");
        assert!(v6.contains(&"fd00:10:244::3".parse::<IpAddr>().unwrap()));
    }

    #[test]
    fn bare_addresses_and_bad_prefixes() {
        assert_eq!(parsed("10.0.0.1").to_string(), "10.0.0.1/32");
        assert_eq!(parsed("fd00::1").prefix_len(), 128);
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("default").is_err());
        let ip: IpAddr = "fd00::1:2".parse().unwrap();
        assert_eq!(
            cidr(ip, 112).map(|c| c.to_string()),
            Some("fd00::1:0/112".into())
        );
        assert_eq!(cidr(ip, 129), None);
        assert_eq!(host_len("10.0.0.1".parse().unwrap()), 32);
    }

    #[test]
    fn local_only() {
        for a in ["127.0.0.1", "169.254.1.1", "::1", "fe80::1", "0.0.0.0"] {
            assert!(is_local_only(a.parse().unwrap()), "{a}");
        }
        assert!(!is_local_only("10.0.0.1".parse().unwrap()));
        assert_eq!(parse_ip("fe80::1%eth0"), "fe80::1".parse().ok());
    }
}
