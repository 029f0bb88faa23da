//! `-m tcp|udp|sctp|udplite|dccp` (source and destination ports) and `-m multiport`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::super::render::Words;
use super::super::types::{protocol_name, Neg, Opt, ProtocolName};
use super::super::values::one;
use super::Match;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMatch {
    /// Module name: `tcp`, `udp`, `sctp`, `udplite`, `dccp`.
    pub protocol: ProtocolName,
    pub sport: Option<Neg<PortRange>>,
    pub dport: Option<Neg<PortRange>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn single(p: u16) -> PortRange {
        PortRange { first: p, last: p }
    }
    pub fn contains(&self, p: u16) -> bool {
        self.first <= p && p <= self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}:{}", self.first, self.last)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Multiport {
    pub direction: PortDirection,
    pub negated: bool,
    pub ports: Vec<PortRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortDirection {
    /// `--sports`
    Source,
    /// `--dports`
    Destination,
    /// `--ports`
    Either,
}

pub(crate) const TCP_OPTIONS: &[&str] = &[
    "--sport",
    "--source-port",
    "--dport",
    "--destination-port",
    "--tcp-flags",
    "--syn",
    "--tcp-option",
];
pub(crate) const UDP_OPTIONS: &[&str] =
    &["--sport", "--source-port", "--dport", "--destination-port"];
pub(crate) const SCTP_OPTIONS: &[&str] = &[
    "--sport",
    "--source-port",
    "--dport",
    "--destination-port",
    "--chunk-types",
];
pub(crate) const DCCP_OPTIONS: &[&str] = &[
    "--sport",
    "--source-port",
    "--dport",
    "--destination-port",
    "--dccp-types",
    "--dccp-option",
];

/// `P`, `P:P`, `:P`, `P:` (open ends are 0 and 65535).
pub(crate) fn parse_port_range(s: &str) -> Result<PortRange, String> {
    let port = |p: &str, default: u16| -> Result<u16, String> {
        if p.is_empty() {
            Ok(default)
        } else {
            p.parse().map_err(|_| format!("bad port {p:?}"))
        }
    };
    match s.split_once(':') {
        Some((a, b)) => {
            let r = PortRange {
                first: port(a, 0)?,
                last: port(b, u16::MAX)?,
            };
            if r.first > r.last {
                return Err(format!("bad port range {s:?}"));
            }
            Ok(r)
        }
        None if s.is_empty() => Err("empty port".to_string()),
        None => Ok(PortRange::single(port(s, 0)?)),
    }
}

/// `--sport`/`--dport` of a port module; anything else (`--tcp-flags`) stays generic.
pub(crate) fn parse_ports(module: &str, opts: &[Opt]) -> Result<Option<Match>, String> {
    let mut pm = PortMatch {
        protocol: protocol_name(module),
        sport: None,
        dport: None,
    };
    for o in opts {
        let slot = match o.name.as_str() {
            "--sport" | "--source-port" => &mut pm.sport,
            "--dport" | "--destination-port" => &mut pm.dport,
            _ => return Ok(None),
        };
        let v = Neg::new(o.negated, parse_port_range(&one(o)?)?);
        if slot.replace(v).is_some() {
            return Ok(None);
        }
    }
    Ok(Some(Match::Port(pm)))
}

pub(crate) fn render_ports(w: &mut Words, p: &PortMatch) {
    w.val(&p.protocol);
    if let Some(s) = &p.sport {
        w.opt(s.negated, "--sport", &[&s.value.to_string()]);
    }
    if let Some(d) = &p.dport {
        w.opt(d.negated, "--dport", &[&d.value.to_string()]);
    }
}

pub(crate) const MULTIPORT_OPTIONS: &[&str] = &[
    "--sports",
    "--dports",
    "--ports",
    "--source-ports",
    "--destination-ports",
];

pub(crate) fn parse_multiport(opts: &[Opt]) -> Result<Option<Match>, String> {
    let [o] = opts else {
        return Ok(None);
    };
    let direction = match o.name.as_str() {
        "--sports" | "--source-ports" => PortDirection::Source,
        "--dports" | "--destination-ports" => PortDirection::Destination,
        "--ports" => PortDirection::Either,
        _ => return Ok(None),
    };
    let ports = one(o)?
        .split(',')
        .map(parse_port_range)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Match::Multiport(Multiport {
        direction,
        negated: o.negated,
        ports,
    })))
}

pub(crate) fn render_multiport(w: &mut Words, mp: &Multiport) {
    w.raw("multiport");
    let name = match mp.direction {
        PortDirection::Source => "--sports",
        PortDirection::Destination => "--dports",
        PortDirection::Either => "--ports",
    };
    let list: Vec<String> = mp.ports.iter().map(ToString::to_string).collect();
    w.opt(mp.negated, name, &[&list.join(",")]);
}
