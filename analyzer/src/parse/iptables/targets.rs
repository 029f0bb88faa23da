//! What `-j`/`-g` points at: the targets netsnap reasons about are typed, each with its
//! parser and renderer side by side; any other target is kept generically.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::render::Words;
use super::types::Opt;
use super::values::{fmt_mark, no_arg, one, parse_mark, parse_nat_to};

/// What `-j`/`-g` points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    Accept,
    Drop,
    Return,
    Queue,
    /// A user-defined chain (interned like [`Rule::chain`](super::Rule::chain)).
    Chain(Arc<str>),
    /// `DNAT --to-destination …`
    Dnat(Nat),
    /// `SNAT --to-source …`
    Snat(Nat),
    Masquerade(Masquerade),
    Mark(MarkTarget),
    /// `REJECT [--reject-with TYPE]`
    Reject {
        with: Option<String>,
    },
    /// Any other target extension (LOG, CT, TPROXY, …) or one with unmodelled options,
    /// including `-j DNAT [unsupported revision]`.
    Other(GenericTarget),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenericTarget {
    pub name: String,
    pub options: Vec<Opt>,
    pub unsupported_revision: bool,
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Target::Accept => "ACCEPT",
            Target::Drop => "DROP",
            Target::Return => "RETURN",
            Target::Queue => "QUEUE",
            Target::Chain(c) => c,
            Target::Dnat(_) => "DNAT",
            Target::Snat(_) => "SNAT",
            Target::Masquerade(_) => "MASQUERADE",
            Target::Mark(_) => "MARK",
            Target::Reject { .. } => "REJECT",
            Target::Other(g) => &g.name,
        }
    }
}

/// Target extensions that take no options; a bare `-j NAME` of these is not a chain.
const OPTIONLESS_TARGETS: &[&str] = &[
    "NOTRACK",
    "TRACE",
    "CLUSTERIP",
    "AUDIT",
    "CONNSECMARK",
    "ECN",
    "MIRROR",
    "NETMAP",
    "REDIRECT",
    "LOG",
    "NFLOG",
    "NFQUEUE",
    "CT",
    "TPROXY",
    "CHECKSUM",
    "TCPMSS",
    "CONNMARK",
    "SECMARK",
    "TEE",
    "DSCP",
    "TOS",
    "TTL",
    "HL",
    "IDLETIMER",
    "LED",
    "RATEEST",
    "SET",
    "SYNPROXY",
    "HMARK",
    "CLASSIFY",
    "ULOG",
    "TCPOPTSTRIP",
];

/// Whether a bare `-j NAME` (no options) jumps to a chain: NAME is neither a typed
/// target ([`typed_target`]'s other arms) nor an optionless extension.
pub(crate) fn bare_target_is_chain(name: &str) -> bool {
    !matches!(
        name,
        "ACCEPT" | "DROP" | "RETURN" | "QUEUE" | "DNAT" | "SNAT" | "MASQUERADE" | "MARK" | "REJECT"
    ) && !OPTIONLESS_TARGETS.contains(&name)
}

fn generic_target(name: String, opts: Vec<Opt>, unsupported: bool) -> Target {
    Target::Other(GenericTarget {
        name,
        options: opts,
        unsupported_revision: unsupported,
    })
}

/// Turn a target and its options into a typed target, or a generic one; a bad value in
/// a modelled option is added to `problems`.
pub(crate) fn build_target(
    name: String,
    opts: Vec<Opt>,
    unsupported: bool,
    problems: &mut Vec<String>,
) -> Target {
    if unsupported {
        return generic_target(name, opts, true);
    }
    match typed_target(&name, &opts) {
        Ok(Some(t)) => t,
        Ok(None) => generic_target(name, opts, false),
        Err(e) => {
            problems.push(format!("-j {name}: {e}"));
            generic_target(name, opts, false)
        }
    }
}

/// `Ok(None)`: not representable typed (kept generic, not an error).
fn typed_target(name: &str, opts: &[Opt]) -> Result<Option<Target>, String> {
    if opts.iter().any(|o| o.negated) {
        return Ok(None);
    }
    let t = match name {
        "ACCEPT" | "DROP" | "RETURN" | "QUEUE" if !opts.is_empty() => return Ok(None),
        "ACCEPT" => Target::Accept,
        "DROP" => Target::Drop,
        "RETURN" => Target::Return,
        "QUEUE" => Target::Queue,
        "DNAT" => return Ok(parse_nat(opts, "--to-destination")?.map(Target::Dnat)),
        "SNAT" => return Ok(parse_nat(opts, "--to-source")?.map(Target::Snat)),
        "MASQUERADE" => return Ok(parse_masquerade(opts)?.map(Target::Masquerade)),
        "MARK" => return Ok(parse_mark_target(opts)?.map(Target::Mark)),
        "REJECT" => return parse_reject(opts),
        _ if opts.is_empty() && bare_target_is_chain(name) => Target::Chain(name.into()),
        _ => return Ok(None),
    };
    Ok(Some(t))
}

pub(crate) fn render_target(w: &mut Words, t: &Target) {
    match t {
        Target::Accept | Target::Drop | Target::Return | Target::Queue => w.raw(t.name()),
        Target::Chain(c) => w.val(c),
        Target::Dnat(n) => render_nat(w, "DNAT", "--to-destination", n),
        Target::Snat(n) => render_nat(w, "SNAT", "--to-source", n),
        Target::Masquerade(m) => render_masquerade(w, m),
        Target::Mark(m) => render_mark_target(w, m),
        Target::Reject { with } => {
            w.raw("REJECT");
            if let Some(x) = with {
                w.opt(false, "--reject-with", &[x]);
            }
        }
        Target::Other(g) => {
            w.val(&g.name);
            if g.unsupported_revision {
                w.raw("[unsupported revision]");
            }
            w.opts(&g.options);
        }
    }
}

/// A flag option's value: set, or an error when it carries an argument.
fn flag(o: &Opt) -> Result<bool, String> {
    no_arg(o).map(|()| true)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nat {
    /// `--to-destination`/`--to-source` value, e.g. `10.244.1.5:8080`, `[fd00::1]:53`.
    pub to: Option<String>,
    pub random: bool,
    pub random_fully: bool,
    pub persistent: bool,
}

impl Nat {
    /// The first address and port of `to` (`1.2.3.4:80`, `[::1]:53`, `1.2.3.4-1.2.3.9:80-90`).
    pub fn endpoint(&self) -> Option<(IpAddr, Option<u16>)> {
        parse_nat_to(self.to.as_deref()?)
    }
}

/// `DNAT`/`SNAT` with `to_opt` (`--to-destination`/`--to-source`) given at most once.
fn parse_nat(opts: &[Opt], to_opt: &str) -> Result<Option<Nat>, String> {
    let mut n = Nat::default();
    for o in opts {
        match o.name.as_str() {
            x if x == to_opt && n.to.is_none() => n.to = Some(one(o)?),
            "--random" => n.random = flag(o)?,
            "--random-fully" => n.random_fully = flag(o)?,
            "--persistent" => n.persistent = flag(o)?,
            _ => return Ok(None),
        }
    }
    Ok(Some(n))
}

fn render_nat(w: &mut Words, name: &str, to_opt: &str, n: &Nat) {
    w.raw(name);
    if let Some(v) = &n.to {
        w.opt(false, to_opt, &[v]);
    }
    if n.random {
        w.opt(false, "--random", &[]);
    }
    if n.random_fully {
        w.opt(false, "--random-fully", &[]);
    }
    if n.persistent {
        w.opt(false, "--persistent", &[]);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Masquerade {
    pub to_ports: Option<String>,
    pub random: bool,
    pub random_fully: bool,
}

fn parse_masquerade(opts: &[Opt]) -> Result<Option<Masquerade>, String> {
    let mut m = Masquerade {
        to_ports: None,
        random: false,
        random_fully: false,
    };
    for o in opts {
        match o.name.as_str() {
            "--to-ports" if m.to_ports.is_none() => m.to_ports = Some(one(o)?),
            "--random" => m.random = flag(o)?,
            "--random-fully" => m.random_fully = flag(o)?,
            _ => return Ok(None),
        }
    }
    Ok(Some(m))
}

fn render_masquerade(w: &mut Words, m: &Masquerade) {
    w.raw("MASQUERADE");
    if let Some(p) = &m.to_ports {
        w.opt(false, "--to-ports", &[p]);
    }
    if m.random {
        w.opt(false, "--random", &[]);
    }
    if m.random_fully {
        w.opt(false, "--random-fully", &[]);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkTarget {
    pub op: MarkOp,
    pub value: u32,
    /// Only for `--set-xmark`/`--set-mark` `V/M`.
    pub mask: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarkOp {
    SetXmark,
    SetMark,
    OrMark,
    AndMark,
    XorMark,
}

fn parse_mark_target(opts: &[Opt]) -> Result<Option<MarkTarget>, String> {
    let [o] = opts else {
        return Ok(None);
    };
    let op = match o.name.as_str() {
        "--set-xmark" => MarkOp::SetXmark,
        "--set-mark" => MarkOp::SetMark,
        "--or-mark" => MarkOp::OrMark,
        "--and-mark" => MarkOp::AndMark,
        "--xor-mark" => MarkOp::XorMark,
        _ => return Ok(None),
    };
    let (value, mask) = parse_mark(&one(o)?)?;
    if mask.is_some() && !matches!(op, MarkOp::SetXmark | MarkOp::SetMark) {
        return Err(format!("{} takes no mask", o.name));
    }
    Ok(Some(MarkTarget { op, value, mask }))
}

fn render_mark_target(w: &mut Words, m: &MarkTarget) {
    w.raw("MARK");
    let name = match m.op {
        MarkOp::SetXmark => "--set-xmark",
        MarkOp::SetMark => "--set-mark",
        MarkOp::OrMark => "--or-mark",
        MarkOp::AndMark => "--and-mark",
        MarkOp::XorMark => "--xor-mark",
    };
    w.opt(false, name, &[&fmt_mark(m.value, m.mask)]);
}

fn parse_reject(opts: &[Opt]) -> Result<Option<Target>, String> {
    Ok(match opts {
        [] => Some(Target::Reject { with: None }),
        [o] if o.name == "--reject-with" => Some(Target::Reject {
            with: Some(one(o)?),
        }),
        _ => None,
    })
}
