//! `-m set [!] --match-set NAME FLAGS` (ipset; kube-proxy's IPVS mode).

use serde::{Deserialize, Serialize};

use super::super::render::Words;
use super::super::types::Opt;
use super::Match;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetMatch {
    pub negated: bool,
    pub name: String,
    /// `src`, `dst` per dimension.
    pub flags: Vec<String>,
}

pub(crate) const OPTIONS: &[&str] = &[
    "--match-set",
    "--set",
    "--return-nomatch",
    "--update-counters",
    "--update-subcounters",
    "--packets-eq",
    "--packets-lt",
    "--packets-gt",
    "--bytes-eq",
    "--bytes-lt",
    "--bytes-gt",
];

pub(crate) fn parse(opts: &[Opt]) -> Result<Option<Match>, String> {
    let [o] = opts else {
        return Ok(None);
    };
    if o.name != "--match-set" && o.name != "--set" {
        return Ok(None);
    }
    match o.args.as_slice() {
        [name, flags] => Ok(Some(Match::Set(Box::new(SetMatch {
            negated: o.negated,
            name: name.clone(),
            flags: flags.split(',').map(str::to_string).collect(),
        })))),
        _ => Err(format!("{} takes a set name and flags", o.name)),
    }
}

pub(crate) fn render(w: &mut Words, s: &SetMatch) {
    w.raw("set");
    w.opt(s.negated, "--match-set", &[&s.name, &s.flags.join(",")]);
}
