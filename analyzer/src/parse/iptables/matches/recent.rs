//! `-m recent …` (kube-proxy's session affinity).

use serde::{Deserialize, Serialize};

use super::super::render::Words;
use super::super::types::Opt;
use super::super::values::{no_arg, one, parse_u32};
use super::Match;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recent {
    pub name: Option<String>,
    pub action: RecentAction,
    /// `! --rcheck` etc.
    pub negated: bool,
    pub seconds: Option<u32>,
    pub reap: bool,
    pub hitcount: Option<u32>,
    pub rttl: bool,
    pub mask: Option<String>,
    pub side: Option<RecentSide>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecentAction {
    Set,
    Rcheck,
    Update,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecentSide {
    /// `--rsource`
    Source,
    /// `--rdest`
    Dest,
}

pub(crate) const OPTIONS: &[&str] = &[
    "--name",
    "--set",
    "--rcheck",
    "--update",
    "--remove",
    "--seconds",
    "--reap",
    "--hitcount",
    "--rttl",
    "--rsource",
    "--rdest",
    "--mask",
];

fn action_of(name: &str) -> Option<RecentAction> {
    match name {
        "--set" => Some(RecentAction::Set),
        "--rcheck" => Some(RecentAction::Rcheck),
        "--update" => Some(RecentAction::Update),
        "--remove" => Some(RecentAction::Remove),
        _ => None,
    }
}

pub(crate) fn parse(opts: &[Opt]) -> Result<Option<Match>, String> {
    let mut r = Recent {
        name: None,
        action: RecentAction::Set,
        negated: false,
        seconds: None,
        reap: false,
        hitcount: None,
        rttl: false,
        mask: None,
        side: None,
    };
    let mut actions = 0;
    for o in opts {
        if let Some(a) = action_of(&o.name) {
            no_arg(o)?;
            r.action = a;
            r.negated = o.negated;
            actions += 1;
            continue;
        }
        if o.negated {
            return Ok(None);
        }
        match o.name.as_str() {
            "--name" => r.name = Some(one(o)?),
            "--seconds" => r.seconds = Some(parse_u32(&one(o)?)?),
            "--hitcount" => r.hitcount = Some(parse_u32(&one(o)?)?),
            "--reap" => {
                no_arg(o)?;
                r.reap = true
            }
            "--rttl" => {
                no_arg(o)?;
                r.rttl = true
            }
            "--mask" => r.mask = Some(one(o)?),
            "--rsource" => {
                no_arg(o)?;
                r.side = Some(RecentSide::Source)
            }
            "--rdest" => {
                no_arg(o)?;
                r.side = Some(RecentSide::Dest)
            }
            _ => return Ok(None),
        }
    }
    if actions != 1 {
        return Err("recent needs exactly one of --set/--rcheck/--update/--remove".into());
    }
    Ok(Some(Match::Recent(Box::new(r))))
}

pub(crate) fn render(w: &mut Words, r: &Recent) {
    w.raw("recent");
    let action = match r.action {
        RecentAction::Set => "--set",
        RecentAction::Rcheck => "--rcheck",
        RecentAction::Update => "--update",
        RecentAction::Remove => "--remove",
    };
    w.opt(r.negated, action, &[]);
    if let Some(s) = r.seconds {
        w.opt(false, "--seconds", &[&s.to_string()]);
    }
    if r.reap {
        w.opt(false, "--reap", &[]);
    }
    if let Some(h) = r.hitcount {
        w.opt(false, "--hitcount", &[&h.to_string()]);
    }
    if r.rttl {
        w.opt(false, "--rttl", &[]);
    }
    if let Some(n) = &r.name {
        w.opt(false, "--name", &[n]);
    }
    if let Some(m) = &r.mask {
        w.opt(false, "--mask", &[m]);
    }
    match r.side {
        Some(RecentSide::Source) => w.opt(false, "--rsource", &[]),
        Some(RecentSide::Dest) => w.opt(false, "--rdest", &[]),
        None => {}
    }
}
