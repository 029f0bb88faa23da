//! `-m addrtype [!] --src-type T [!] --dst-type T [--limit-iface-in|out]`.

use serde::{Deserialize, Serialize};

use super::super::render::Words;
use super::super::types::{Neg, Opt};
use super::super::values::{no_arg, one};
use super::Match;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrType {
    pub src_type: Option<Neg<String>>,
    pub dst_type: Option<Neg<String>>,
    pub limit_iface_in: bool,
    pub limit_iface_out: bool,
}

pub(crate) const OPTIONS: &[&str] = &[
    "--src-type",
    "--dst-type",
    "--limit-iface-in",
    "--limit-iface-out",
];

pub(crate) fn parse(opts: &[Opt]) -> Result<Option<Match>, String> {
    let mut a = AddrType {
        src_type: None,
        dst_type: None,
        limit_iface_in: false,
        limit_iface_out: false,
    };
    for o in opts {
        match o.name.as_str() {
            "--src-type" => a.src_type = Some(Neg::new(o.negated, one(o)?)),
            "--dst-type" => a.dst_type = Some(Neg::new(o.negated, one(o)?)),
            "--limit-iface-in" if !o.negated => {
                no_arg(o)?;
                a.limit_iface_in = true
            }
            "--limit-iface-out" if !o.negated => {
                no_arg(o)?;
                a.limit_iface_out = true
            }
            _ => return Ok(None),
        }
    }
    Ok(Some(Match::AddrType(Box::new(a))))
}

pub(crate) fn render(w: &mut Words, a: &AddrType) {
    w.raw("addrtype");
    if let Some(s) = &a.src_type {
        w.opt(s.negated, "--src-type", &[&s.value]);
    }
    if let Some(d) = &a.dst_type {
        w.opt(d.negated, "--dst-type", &[&d.value]);
    }
    if a.limit_iface_in {
        w.opt(false, "--limit-iface-in", &[]);
    }
    if a.limit_iface_out {
        w.opt(false, "--limit-iface-out", &[]);
    }
}
