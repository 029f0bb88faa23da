//! Option values shared by matches and targets: numbers, marks, ports, addresses,
//! NAT destinations, and the argument-count checks of an option.

use std::net::{IpAddr, Ipv4Addr};

use super::types::{Cidr, Opt};

/// The single argument of `o`.
pub(crate) fn one(o: &Opt) -> Result<String, String> {
    match o.args.as_slice() {
        [a] => Ok(a.clone()),
        _ => Err(format!("{} takes one argument", o.name)),
    }
}

/// `o` is a flag: it takes no argument.
pub(crate) fn no_arg(o: &Opt) -> Result<(), String> {
    if o.args.is_empty() {
        Ok(())
    } else {
        Err(format!("{} takes no argument", o.name))
    }
}

pub(crate) fn parse_u32(s: &str) -> Result<u32, String> {
    s.parse().map_err(|_| format!("bad number {s:?}"))
}

pub(crate) fn parse_num_u32(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("bad number {s:?}"))
}

pub(crate) fn parse_mark(s: &str) -> Result<(u32, Option<u32>), String> {
    match s.split_once('/') {
        Some((v, m)) => Ok((parse_num_u32(v)?, Some(parse_num_u32(m)?))),
        None => Ok((parse_num_u32(s)?, None)),
    }
}

/// `10.0.0.1`, `10.0.0.0/8`, `10.0.0.0/255.0.0.0`, `fd00::/56`.
pub fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a
        .parse()
        .map_err(|_| format!("bad address {s:?} (host names are not resolved)"))?;
    let prefix = match p {
        None => return Ok(Cidr::from(addr)),
        Some(p) => match p.parse::<u8>() {
            Ok(n) => n,
            Err(_) => {
                // Dotted netmask; only contiguous masks have a prefix length.
                let m: Ipv4Addr = p.parse().map_err(|_| format!("bad mask in {s:?}"))?;
                ipnet::ipv4_mask_to_prefix(m)
                    .ok()
                    .filter(|_| addr.is_ipv4())
                    .ok_or_else(|| format!("non-contiguous mask in {s:?}"))?
            }
        },
    };
    Cidr::new(addr, prefix).map_err(|_| format!("prefix too long in {s:?}"))
}

/// `V[/M]` in hex (`0x4000/0x4000`) or decimal, as a mark match and the MARK target write it.
pub(crate) fn fmt_mark(value: u32, mask: Option<u32>) -> String {
    match mask {
        Some(m) => format!("0x{value:x}/0x{m:x}"),
        None => format!("0x{value:x}"),
    }
}

/// Split `--to-destination` values: `IP[-IP][:PORT[-PORT]]`, `[IPv6][-[IPv6]][:PORT…]`.
pub fn parse_nat_to(s: &str) -> Option<(IpAddr, Option<u16>)> {
    let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        let port = after
            .strip_prefix(':')
            .or_else(|| after.split_once("]:").map(|(_, p)| p));
        (&rest[..end], port)
    } else if s.bytes().filter(|&b| b == b':').count() > 1 {
        (s, None) // bare IPv6 without port
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let first_addr = addr.split('-').next()?;
    let ip: IpAddr = first_addr.parse().ok()?;
    let port = match port {
        Some(p) => Some(p.split('-').next()?.parse().ok()?),
        None => None,
    };
    Some((ip, port))
}
