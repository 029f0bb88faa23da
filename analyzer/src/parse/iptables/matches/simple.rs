//! The one-option matches: `comment`, `mark`, `conntrack --ctstate`, `nfacct`.

use serde::{Deserialize, Serialize};

use super::super::render::Words;
use super::super::types::{Neg, Opt};
use super::super::values::{fmt_mark, one, parse_mark};
use super::Match;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkMatch {
    pub negated: bool,
    pub value: u32,
    pub mask: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conntrack {
    /// `[!] --ctstate NEW,ESTABLISHED,…`
    pub ctstate: Option<Neg<Vec<String>>>,
}

pub(crate) const COMMENT_OPTIONS: &[&str] = &["--comment"];

pub(crate) fn parse_comment(opts: &[Opt]) -> Result<Option<Match>, String> {
    match opts {
        [o] if o.name == "--comment" && !o.negated => Ok(Some(Match::Comment(one(o)?))),
        _ => Ok(None),
    }
}

pub(crate) fn render_comment(w: &mut Words, c: &str) {
    w.raw("comment");
    w.opt(false, "--comment", &[c]);
}

/// `mark` and `connmark` share the option.
pub(crate) const MARK_OPTIONS: &[&str] = &["--mark"];

pub(crate) fn parse_mark_match(opts: &[Opt]) -> Result<Option<Match>, String> {
    match opts {
        [o] if o.name == "--mark" => {
            let (value, mask) = parse_mark(&one(o)?)?;
            Ok(Some(Match::Mark(MarkMatch {
                negated: o.negated,
                value,
                mask,
            })))
        }
        _ => Ok(None),
    }
}

pub(crate) fn render_mark(w: &mut Words, mm: &MarkMatch) {
    w.raw("mark");
    w.opt(mm.negated, "--mark", &[&fmt_mark(mm.value, mm.mask)]);
}

pub(crate) const CONNTRACK_OPTIONS: &[&str] = &[
    "--ctstate",
    "--ctproto",
    "--ctorigsrc",
    "--ctorigdst",
    "--ctreplsrc",
    "--ctrepldst",
    "--ctorigsrcport",
    "--ctorigdstport",
    "--ctreplsrcport",
    "--ctrepldstport",
    "--ctstatus",
    "--ctexpire",
    "--ctdir",
];

/// Only `--ctstate` is typed; other conntrack options stay generic.
pub(crate) fn parse_conntrack(opts: &[Opt]) -> Result<Option<Match>, String> {
    match opts {
        [o] if o.name == "--ctstate" => Ok(Some(Match::Conntrack(Conntrack {
            ctstate: Some(Neg::new(
                o.negated,
                one(o)?.split(',').map(str::to_string).collect(),
            )),
        }))),
        _ => Ok(None),
    }
}

pub(crate) fn render_conntrack(w: &mut Words, c: &Conntrack) {
    w.raw("conntrack");
    if let Some(s) = &c.ctstate {
        w.opt(s.negated, "--ctstate", &[&s.value.join(",")]);
    }
}

pub(crate) const NFACCT_OPTIONS: &[&str] = &["--nfacct-name"];

pub(crate) fn parse_nfacct(opts: &[Opt]) -> Result<Option<Match>, String> {
    match opts {
        [o] if o.name == "--nfacct-name" && !o.negated => Ok(Some(Match::Nfacct(one(o)?))),
        _ => Ok(None),
    }
}

pub(crate) fn render_nfacct(w: &mut Words, n: &str) {
    w.raw("nfacct");
    w.opt(false, "--nfacct-name", &[n]);
}
