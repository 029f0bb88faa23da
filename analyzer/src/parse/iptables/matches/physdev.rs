//! `-m physdev …`: the bridge port a bridged packet came in or goes out on.

use serde::{Deserialize, Serialize};

use super::super::render::Words;
use super::super::types::{Neg, Opt};
use super::super::values::{no_arg, one};
use super::Match;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Physdev {
    pub physdev_in: Option<Neg<String>>,
    pub physdev_out: Option<Neg<String>>,
    /// `Some(true)` for `--physdev-is-in`, `Some(false)` for `! --physdev-is-in`.
    pub is_in: Option<bool>,
    pub is_out: Option<bool>,
    pub is_bridged: Option<bool>,
}

pub(crate) const OPTIONS: &[&str] = &[
    "--physdev-in",
    "--physdev-out",
    "--physdev-is-in",
    "--physdev-is-out",
    "--physdev-is-bridged",
];

pub(crate) fn parse(opts: &[Opt]) -> Result<Option<Match>, String> {
    let mut d = Physdev {
        physdev_in: None,
        physdev_out: None,
        is_in: None,
        is_out: None,
        is_bridged: None,
    };
    for o in opts {
        match o.name.as_str() {
            "--physdev-in" => d.physdev_in = Some(Neg::new(o.negated, one(o)?)),
            "--physdev-out" => d.physdev_out = Some(Neg::new(o.negated, one(o)?)),
            "--physdev-is-in" => {
                no_arg(o)?;
                d.is_in = Some(!o.negated)
            }
            "--physdev-is-out" => {
                no_arg(o)?;
                d.is_out = Some(!o.negated)
            }
            "--physdev-is-bridged" => {
                no_arg(o)?;
                d.is_bridged = Some(!o.negated)
            }
            _ => return Ok(None),
        }
    }
    Ok(Some(Match::Physdev(Box::new(d))))
}

pub(crate) fn render(w: &mut Words, d: &Physdev) {
    w.raw("physdev");
    if let Some(i) = &d.physdev_in {
        w.opt(i.negated, "--physdev-in", &[&i.value]);
    }
    if let Some(o) = &d.physdev_out {
        w.opt(o.negated, "--physdev-out", &[&o.value]);
    }
    for (v, name) in [
        (d.is_in, "--physdev-is-in"),
        (d.is_out, "--physdev-is-out"),
        (d.is_bridged, "--physdev-is-bridged"),
    ] {
        if let Some(v) = v {
            w.opt(!v, name, &[]);
        }
    }
}
