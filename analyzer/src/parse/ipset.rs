//! `ipset save` output: `create NAME TYPE [options]` and `add NAME ENTRY [options]`.

use serde::{Deserialize, Serialize};

use super::coverage::{numbered_lines, Coverage, Parsed};
use super::tokenize::tokenize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IpsetSave {
    pub sets: Vec<IpSet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSet {
    pub line: usize,
    pub name: String,
    /// `hash:ip,port`, `hash:net`, `bitmap:port`, `list:set`, …
    pub kind: String,
    /// `inet`/`inet6` from `family`.
    pub family: Option<String>,
    /// The create options as `(name, value)`; flags have an empty value.
    pub options: Vec<(String, String)>,
    pub entries: Vec<IpsetEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsetEntry {
    pub line: usize,
    /// The element as written, e.g. `10.96.0.1,tcp:443` or `10.244.0.0/16`.
    pub value: String,
    pub comment: Option<String>,
    pub timeout: Option<u64>,
    /// Other per-entry options (`packets N`, `nomatch`, …) as written.
    pub options: Vec<String>,
}

impl IpsetSave {
    pub fn set(&self, name: &str) -> Option<&IpSet> {
        self.sets.iter().find(|s| s.name == name)
    }
}

/// Options of `create` that take a value.
const VALUED: &[&str] = &[
    "family",
    "hashsize",
    "maxelem",
    "bucketsize",
    "initval",
    "timeout",
    "netmask",
    "range",
    "size",
    "markmask",
];

pub fn parse_ipset(path: &str, text: &str) -> Parsed<IpsetSave> {
    let mut cov = Coverage::new(path);
    let mut out = IpsetSave::default();
    for (no, raw) in numbered_lines(text) {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            cov.ok();
            continue;
        }
        let toks = match tokenize(line) {
            Ok(t) => t,
            Err(e) => {
                cov.miss(no, raw, e.to_string());
                continue;
            }
        };
        let words: Vec<&str> = toks.iter().map(|t| t.text.as_ref()).collect();
        match words.as_slice() {
            ["create" | "-N" | "n", name, kind, rest @ ..] => {
                let mut options = Vec::new();
                let mut family = None;
                let mut i = 0;
                while i < rest.len() {
                    let k = rest[i];
                    if VALUED.contains(&k) && i + 1 < rest.len() {
                        if k == "family" {
                            family = Some(rest[i + 1].to_string());
                        }
                        options.push((k.to_string(), rest[i + 1].to_string()));
                        i += 2;
                    } else {
                        options.push((k.to_string(), String::new()));
                        i += 1;
                    }
                }
                out.sets.push(IpSet {
                    line: no,
                    name: name.to_string(),
                    kind: kind.to_string(),
                    family,
                    options,
                    entries: Vec::new(),
                });
                cov.ok();
            }
            ["add" | "-A" | "a", name, value, rest @ ..] => {
                let Some(set) = out.sets.iter_mut().rev().find(|s| s.name == *name) else {
                    cov.miss(no, raw, format!("add to set {name:?} before its create"));
                    continue;
                };
                let mut e = IpsetEntry {
                    line: no,
                    value: value.to_string(),
                    comment: None,
                    timeout: None,
                    options: Vec::new(),
                };
                let mut i = 0;
                let mut bad = None;
                while i < rest.len() {
                    match (rest[i], rest.get(i + 1)) {
                        ("comment", Some(c)) => {
                            e.comment = Some(c.to_string());
                            i += 2;
                        }
                        ("timeout", Some(t)) => match t.parse() {
                            Ok(t) => {
                                e.timeout = Some(t);
                                i += 2;
                            }
                            Err(_) => {
                                bad = Some(format!("bad timeout {t:?}"));
                                break;
                            }
                        },
                        (o, _) => {
                            e.options.push(o.to_string());
                            i += 1;
                        }
                    }
                }
                match bad {
                    Some(reason) => cov.miss(no, raw, reason),
                    None => {
                        set.entries.push(e);
                        cov.ok();
                    }
                }
            }
            _ => cov.miss(
                no,
                raw,
                "expected `create NAME TYPE …` or `add NAME ENTRY …`",
            ),
        }
    }
    Parsed {
        model: out,
        coverage: cov,
    }
}
