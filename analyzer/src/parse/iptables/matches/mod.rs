//! `-m module …` matches. Each typed extension keeps its type, its option list, its
//! parser and its renderer in one file; this module dispatches on the module name.
//! Modules whose options we know but do not model are kept as [`GenericMatch`].

mod addrtype;
mod physdev;
mod ports;
mod recent;
mod set;
mod simple;
mod statistic;

pub use addrtype::AddrType;
pub use physdev::Physdev;
pub(crate) use ports::parse_port_range;
pub use ports::{Multiport, PortDirection, PortMatch, PortRange};
pub use recent::{Recent, RecentAction, RecentSide};
pub use set::SetMatch;
pub use simple::{Conntrack, MarkMatch};
pub use statistic::Statistic;

use serde::{Deserialize, Serialize};

use super::render::Words;
use super::types::Opt;

/// A `-m module …` match. The rarer, larger kinds are boxed: a big node's save holds
/// hundreds of thousands of matches, nearly all comments, ports and statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Match {
    /// `-m comment --comment TEXT`
    Comment(String),
    /// `-m tcp|udp|sctp [--sport P[:P]] [--dport P[:P]]`
    Port(PortMatch),
    /// `-m multiport --dports|--sports|--ports LIST`
    Multiport(Multiport),
    /// `-m statistic --mode random|nth …`
    Statistic(Statistic),
    /// `-m recent …` (kube-proxy session affinity)
    Recent(Box<Recent>),
    /// `-m mark [!] --mark V[/M]`
    Mark(MarkMatch),
    /// `-m conntrack [!] --ctstate S,…`
    Conntrack(Conntrack),
    /// `-m addrtype …`
    AddrType(Box<AddrType>),
    /// `-m set [!] --match-set NAME FLAGS`
    Set(Box<SetMatch>),
    /// `-m physdev …`
    Physdev(Box<Physdev>),
    /// `-m nfacct --nfacct-name NAME`
    Nfacct(String),
    /// Any other module, or a known one with options the typed form does not model.
    Other(Box<GenericMatch>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenericMatch {
    pub module: String,
    pub options: Vec<Opt>,
    /// iptables-nft printed `[unsupported revision]` for it.
    pub unsupported_revision: bool,
}

/// A match being collected: its module and raw options.
pub(crate) struct PendingMatch {
    pub(crate) module: String,
    pub(crate) opts: Vec<Opt>,
    pub(crate) unsupported: bool,
}

/// `Some(true)` if `module` has option `opt`, `Some(false)` if it does not,
/// `None` if the module is not one we know the options of.
pub(crate) fn known_option(module: &str, opt: &str) -> Option<bool> {
    let opts: &[&str] = match module {
        "tcp" => ports::TCP_OPTIONS,
        "udp" | "udplite" => ports::UDP_OPTIONS,
        "sctp" => ports::SCTP_OPTIONS,
        "dccp" => ports::DCCP_OPTIONS,
        "multiport" => ports::MULTIPORT_OPTIONS,
        "comment" => simple::COMMENT_OPTIONS,
        "statistic" => statistic::OPTIONS,
        "recent" => recent::OPTIONS,
        "mark" | "connmark" => simple::MARK_OPTIONS,
        "conntrack" => simple::CONNTRACK_OPTIONS,
        "addrtype" => addrtype::OPTIONS,
        "set" => set::OPTIONS,
        "physdev" => physdev::OPTIONS,
        "nfacct" => simple::NFACCT_OPTIONS,
        other => untyped_options(other)?,
    };
    Some(opts.contains(&opt))
}

/// Options of modules kept generically: known only so an option can be told apart
/// from the next match's.
fn untyped_options(module: &str) -> Option<&'static [&'static str]> {
    let opts: &[&str] = match module {
        "icmp" => &["--icmp-type"],
        "icmp6" | "ipv6-icmp" | "icmpv6" => &["--icmpv6-type"],
        "state" => &["--state"],
        "rpfilter" => &["--loose", "--validmark", "--accept-local", "--invert"],
        "limit" => &["--limit", "--limit-burst"],
        "mac" => &["--mac-source"],
        "iprange" => &["--src-range", "--dst-range"],
        "owner" => &[
            "--uid-owner",
            "--gid-owner",
            "--socket-exists",
            "--suppl-groups",
        ],
        "socket" => &["--transparent", "--nowildcard", "--restore-skmark"],
        "pkttype" => &["--pkt-type"],
        _ => return None,
    };
    Some(opts)
}

fn generic_match(p: PendingMatch) -> Match {
    Match::Other(Box::new(GenericMatch {
        module: p.module,
        options: p.opts,
        unsupported_revision: p.unsupported,
    }))
}

/// Turn collected options into a typed match. Falls back to [`Match::Other`] for
/// modules or option combinations the typed form does not model; a bad value in a
/// modelled option is added to `problems`.
pub(crate) fn build_match(p: PendingMatch, problems: &mut Vec<String>) -> Match {
    if p.unsupported {
        return generic_match(p);
    }
    match typed_match(&p) {
        Ok(Some(m)) => m,
        Ok(None) => generic_match(p),
        Err(e) => {
            problems.push(format!("-m {}: {e}", p.module));
            generic_match(p)
        }
    }
}

/// `Ok(None)`: not representable typed (kept generic, not an error).
fn typed_match(p: &PendingMatch) -> Result<Option<Match>, String> {
    let opts = p.opts.as_slice();
    match p.module.as_str() {
        "comment" => simple::parse_comment(opts),
        "tcp" | "udp" | "sctp" | "udplite" | "dccp" => ports::parse_ports(&p.module, opts),
        "multiport" => ports::parse_multiport(opts),
        "statistic" => statistic::parse(opts),
        "recent" => recent::parse(opts),
        "mark" => simple::parse_mark_match(opts),
        "conntrack" => simple::parse_conntrack(opts),
        "addrtype" => addrtype::parse(opts),
        "set" => set::parse(opts),
        "physdev" => physdev::parse(opts),
        "nfacct" => simple::parse_nfacct(opts),
        _ => Ok(None),
    }
}

pub(crate) fn render_match(w: &mut Words, m: &Match) {
    w.raw("-m");
    match m {
        Match::Comment(c) => simple::render_comment(w, c),
        Match::Port(p) => ports::render_ports(w, p),
        Match::Multiport(mp) => ports::render_multiport(w, mp),
        Match::Statistic(s) => statistic::render(w, s),
        Match::Recent(r) => recent::render(w, r),
        Match::Mark(mm) => simple::render_mark(w, mm),
        Match::Conntrack(c) => simple::render_conntrack(w, c),
        Match::AddrType(a) => addrtype::render(w, a),
        Match::Set(s) => set::render(w, s),
        Match::Physdev(d) => physdev::render(w, d),
        Match::Nfacct(n) => simple::render_nfacct(w, n),
        Match::Other(g) => {
            w.val(&g.module);
            if g.unsupported_revision {
                w.raw("[unsupported revision]");
            }
            w.opts(&g.options);
        }
    }
}
