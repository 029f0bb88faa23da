//! `-m statistic --mode random|nth …` (kube-proxy spreads load over endpoints with it).

use serde::{Deserialize, Serialize};

use super::super::render::Words;
use super::super::types::Opt;
use super::super::values::{one, parse_u32};
use super::Match;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Statistic {
    /// `--mode random [!] --probability P`
    Random { probability: f64, negated: bool },
    /// `--mode nth [!] --every N [--packet P]`
    Nth {
        every: u32,
        packet: Option<u32>,
        negated: bool,
    },
}

pub(crate) const OPTIONS: &[&str] = &["--mode", "--probability", "--every", "--packet"];

pub(crate) fn parse(opts: &[Opt]) -> Result<Option<Match>, String> {
    let mut mode = None;
    let mut prob = None;
    let mut every = None;
    let mut packet = None;
    let mut negated = false;
    for o in opts {
        match o.name.as_str() {
            "--mode" if !o.negated => mode = Some(one(o)?),
            "--probability" => {
                let s = one(o)?;
                let v: f64 = s.parse().map_err(|_| format!("bad probability {s:?}"))?;
                if !(0.0..=1.0).contains(&v) {
                    return Err(format!("probability {s} outside [0, 1]"));
                }
                negated |= o.negated;
                prob = Some(v);
            }
            "--every" => {
                every = Some(parse_u32(&one(o)?)?);
                negated |= o.negated;
            }
            "--packet" if !o.negated => packet = Some(parse_u32(&one(o)?)?),
            _ => return Ok(None),
        }
    }
    let s = match (mode.as_deref(), prob, every) {
        (Some("random"), Some(probability), None) if packet.is_none() => Statistic::Random {
            probability,
            negated,
        },
        (Some("nth"), None, Some(every)) => Statistic::Nth {
            every,
            packet,
            negated,
        },
        _ => return Ok(None),
    };
    Ok(Some(Match::Statistic(s)))
}

pub(crate) fn render(w: &mut Words, s: &Statistic) {
    w.raw("statistic");
    match s {
        Statistic::Random {
            probability,
            negated,
        } => {
            w.opt(false, "--mode", &["random"]);
            // `{}` prints the shortest string that parses back to the same f64.
            w.opt(*negated, "--probability", &[&format!("{probability}")]);
        }
        Statistic::Nth {
            every,
            packet,
            negated,
        } => {
            w.opt(false, "--mode", &["nth"]);
            w.opt(*negated, "--every", &[&every.to_string()]);
            if let Some(p) = packet {
                w.opt(false, "--packet", &[&p.to_string()]);
            }
        }
    }
}
