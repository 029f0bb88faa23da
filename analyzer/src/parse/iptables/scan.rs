//! The fast path for the rule lines kube-proxy writes by the hundred thousand:
//! `[p:b] -A CHAIN` with `-s`/`-d`/`-p`, `-m comment`, `-m tcp|udp|sctp` ports,
//! `-m statistic --mode random`, and a jump to a declared chain, a built-in verdict or
//! `DNAT --to-destination`. Such a line is read in one pass over its bytes into the
//! [`Rule`] the full parser would make, without its token, option and pending-match
//! allocations (those were most of a big save's parse time).
//!
//! A line the scanner does not accept in full — another option or module, an option
//! out of place, a repeated or negated one where it does not expect it, a bad value,
//! quoting other than one plain `"…"` comment, a tab, non-ASCII outside the comment, an
//! undeclared chain — goes to the full parser, which decides it (and reports a miss)
//! exactly as before. Unit tests and the iptables fuzz body hold the two equal.

use super::matches::{parse_port_range, Match, PortMatch, Statistic};
use super::parse::{parse_counters_bracket, Declared};
use super::targets::{bare_target_is_chain, Nat, Target};
use super::types::{protocol_name, Neg, Rule, RuleOp};
use super::values::parse_cidr;
use std::sync::Arc;

/// The most matches a scanned rule has (kube-proxy's have at most three).
const MAX_MATCHES: usize = 4;

/// `line` (trimmed) as the full parser would read it, when it is one of the shapes
/// above and every chain it names was declared; `None` for anything else.
pub(super) fn scan_rule(line: &str, no: usize, names: &mut RecentNames) -> Option<Rule> {
    let mut words = Words { rest: line };
    let mut word = words.plain()?;
    let mut counters = None;
    if word.starts_with('[') {
        counters = Some(parse_counters_bracket(word)?);
        word = words.plain()?;
    }
    if word != "-A" {
        return None;
    }
    let chain = names.chain(words.plain()?)?;
    let mut rule = Rule::head(no, chain, RuleOp::Append, counters);
    let mut found: [Option<Match>; MAX_MATCHES] = Default::default();
    let mut n = 0;
    let mut negated = false;
    while !words.is_empty() {
        let option = words.plain()?;
        match option {
            "!" if !negated => {
                negated = true;
                continue;
            }
            "-s" | "-d" => {
                let slot = match option {
                    "-s" => &mut rule.source,
                    _ => &mut rule.destination,
                };
                let cidr = parse_cidr(words.plain()?).ok()?;
                if slot.replace(Neg::new(negated, cidr)).is_some() {
                    return None;
                }
            }
            _ if negated => return None,
            "-p" => {
                let name = words.plain()?;
                if !matches!(name, "tcp" | "udp" | "sctp") || rule.protocol.is_some() {
                    return None;
                }
                rule.protocol = Some(Neg::new(false, protocol_name(name)));
            }
            "-m" => {
                let m = scan_match(&mut words)?;
                *found.get_mut(n)? = Some(m);
                n += 1;
            }
            "-j" => {
                rule.target = Some(scan_target(&mut words, names)?);
                if !words.is_empty() {
                    return None;
                }
            }
            _ => return None,
        }
        negated = false;
    }
    if negated {
        return None;
    }
    // Exact capacity, as the full parser allocates it.
    rule.matches = Vec::with_capacity(n);
    rule.matches.extend(found.into_iter().flatten());
    Some(rule)
}

/// `MODULE options…` after `-m`.
fn scan_match(words: &mut Words) -> Option<Match> {
    match words.plain()? {
        "comment" => {
            if words.plain()? != "--comment" {
                return None;
            }
            Some(Match::Comment(words.quoted()?.to_string()))
        }
        module @ ("tcp" | "udp" | "sctp") => {
            let mut ports = PortMatch {
                protocol: protocol_name(module),
                sport: None,
                dport: None,
            };
            loop {
                let slot = match words.peek() {
                    Some("--sport") => &mut ports.sport,
                    Some("--dport") => &mut ports.dport,
                    _ => break,
                };
                words.plain()?;
                let range = parse_port_range(words.value()?).ok()?;
                if slot.replace(Neg::new(false, range)).is_some() {
                    return None;
                }
            }
            Some(Match::Port(ports))
        }
        "statistic" => {
            if words.plain()? != "--mode"
                || words.value()? != "random"
                || words.plain()? != "--probability"
            {
                return None;
            }
            let probability: f64 = words.value()?.parse().ok()?;
            if !(0.0..=1.0).contains(&probability) {
                return None;
            }
            Some(Match::Statistic(Statistic::Random {
                probability,
                negated: false,
            }))
        }
        _ => None,
    }
}

/// The target after `-j`: `DNAT --to-destination V`, a built-in verdict, or a declared
/// chain.
fn scan_target(words: &mut Words, names: &mut RecentNames) -> Option<Target> {
    let target = match words.plain()? {
        "DNAT" => {
            if words.plain()? != "--to-destination" {
                return None;
            }
            Target::Dnat(Nat {
                to: Some(words.value()?.to_string()),
                ..Nat::default()
            })
        }
        "ACCEPT" => Target::Accept,
        "DROP" => Target::Drop,
        "RETURN" => Target::Return,
        name if bare_target_is_chain(name) => Target::Chain(names.target(name)?),
        _ => return None,
    };
    Some(target)
}

/// The declared chain names, with those a rule most likely names at hand, so most are
/// found without hashing them or touching the set (a big save declares ~100,000,
/// and each lookup there is a cache miss or two): the chain of the rule before, or
/// else the name declared after it (a save lists its chains' rules in declaration
/// order), and the last two jump targets (a chain's rules jump to the same few).
pub(super) struct RecentNames<'d> {
    declared: &'d Declared,
    /// The last rule's chain and its place in the declaration order.
    chain: Option<(Arc<str>, usize)>,
    targets: [Option<Arc<str>>; 2],
    /// The target slot the next miss replaces.
    next: usize,
}

impl<'d> RecentNames<'d> {
    pub(super) fn new(declared: &'d Declared) -> RecentNames<'d> {
        RecentNames {
            declared,
            chain: None,
            targets: [None, None],
            next: 0,
        }
    }

    pub(super) fn declared(&self) -> &'d Declared {
        self.declared
    }

    /// The shared copy of a rule's chain `name` if it was declared.
    fn chain(&mut self, name: &str) -> Option<Arc<str>> {
        if let Some((last, at)) = &self.chain {
            if **last == *name {
                return Some(last.clone());
            }
            if let Some(following) = self.declared.at(at + 1).filter(|d| ***d == *name) {
                let shared = following.clone();
                self.chain = Some((shared.clone(), at + 1));
                return Some(shared);
            }
        }
        let (shared, at) = self.declared.place(name)?;
        self.chain = Some((shared.clone(), at));
        Some(shared)
    }

    /// The shared copy of a jump target `name` if it was declared.
    fn target(&mut self, name: &str) -> Option<Arc<str>> {
        if let Some(hit) = self.targets.iter().flatten().find(|n| ***n == *name) {
            return Some(hit.clone());
        }
        let shared = self.declared.get(name)?;
        self.targets[self.next] = Some(shared.clone());
        self.next = 1 - self.next;
        Some(shared)
    }
}

/// What a byte is to [`Words::plain`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum ByteClass {
    /// Printable ASCII other than a quote: part of a plain word.
    Plain,
    /// Ends a word.
    Space,
    /// Anything else (quotes, tabs, control bytes, non-ASCII): the scan stops.
    Other,
}

const BYTE_CLASS: [ByteClass; 256] = {
    let mut class = [ByteClass::Other; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        if byte == b' ' {
            class[b] = ByteClass::Space;
        } else if byte.is_ascii_graphic() && byte != b'"' && byte != b'\'' {
            class[b] = ByteClass::Plain;
        }
        b += 1;
    }
    class
};

/// The words of a trimmed line, split at runs of spaces. Only words the tokenizer would
/// give back unchanged are handed out: printable ASCII without quotes, or one
/// `"…"` run without escapes; anything else ends the scan.
#[derive(Clone, Copy)]
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next unquoted word: its bytes are classed in the one pass that finds its
    /// end (a big save's rule lines are tens of millions of bytes).
    fn plain(&mut self) -> Option<&'a str> {
        let bytes = self.rest.as_bytes();
        let mut len = 0;
        loop {
            match bytes.get(len).map(|&b| BYTE_CLASS[usize::from(b)]) {
                Some(ByteClass::Plain) => len += 1,
                Some(ByteClass::Space) | None => break,
                Some(ByteClass::Other) => return None,
            }
        }
        if len == 0 {
            return None;
        }
        let word = &self.rest[..len];
        self.rest = self.rest[len..].trim_start_matches(' ');
        Some(word)
    }

    /// The next word, left in place.
    fn peek(&self) -> Option<&'a str> {
        let mut words = *self;
        words.plain()
    }

    /// The next word as an option's value: one the full parser's option reader takes
    /// as an argument (not `!`, not an option).
    fn value(&mut self) -> Option<&'a str> {
        let word = self.plain()?;
        let option = word.len() > 1 && word.starts_with('-');
        (word != "!" && !option).then_some(word)
    }

    /// The contents of the next word when it is one `"…"` run with no backslash in it,
    /// followed by a space or the end of the line.
    fn quoted(&mut self) -> Option<&'a str> {
        let inner = self.rest.strip_prefix('"')?;
        let end = memchr::memchr2(b'"', b'\\', inner.as_bytes())?;
        let after = &inner[end..];
        if !after.starts_with('"') {
            return None;
        }
        let after = &after[1..];
        if !(after.is_empty() || after.starts_with(' ')) {
            return None;
        }
        self.rest = after.trim_start_matches(' ');
        Some(&inner[..end])
    }
}

#[cfg(test)]
mod tests;
