//! resolv.conf with glibc semantics: `nameserver` (the first 3 are used), `search` and
//! `domain` (the last of them wins and replaces the list), `options` (later values
//! override), `sortlist`; comments start with `#` or `;`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::coverage::{numbered_lines, Coverage, Parsed};

/// glibc's MAXNS: nameservers after the third are ignored.
pub const MAX_NAMESERVERS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResolvConf {
    /// Every valid `nameserver` line in order (glibc uses the first [`MAX_NAMESERVERS`]).
    pub nameservers: Vec<Nameserver>,
    /// Effective search list (from the last `search` or `domain` line).
    pub search: Vec<String>,
    /// Line of the effective `search`/`domain`.
    pub search_line: Option<usize>,
    /// The effective list came from `domain`, not `search`.
    pub search_from_domain: bool,
    /// Every `search`/`domain` line, also the overridden ones.
    pub search_lines: Vec<usize>,
    pub options: ResolvOptions,
    /// Lines that carried `options`.
    pub options_lines: Vec<usize>,
    pub sortlist: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nameserver {
    pub line: usize,
    pub addr: IpAddr,
    /// As written (may carry an IPv6 zone, `fe80::1%eth0`).
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResolvOptions {
    pub ndots: Option<u32>,
    pub timeout: Option<u32>,
    pub attempts: Option<u32>,
    pub rotate: bool,
    pub edns0: bool,
    pub single_request: bool,
    pub single_request_reopen: bool,
    pub use_vc: bool,
    pub no_tld_query: bool,
    pub trust_ad: bool,
    pub inet6: bool,
    pub no_aaaa: bool,
    /// Options the resolver does not know (glibc ignores them), as written.
    pub unknown: Vec<String>,
}

impl ResolvConf {
    /// Nameservers glibc actually queries.
    pub fn used_nameservers(&self) -> &[Nameserver] {
        &self.nameservers[..self.nameservers.len().min(MAX_NAMESERVERS)]
    }

    /// Effective ndots (glibc default 1).
    pub fn ndots(&self) -> u32 {
        self.options.ndots.unwrap_or(1)
    }

    /// Length of the search list as glibc counts it (domains joined by spaces).
    pub fn search_chars(&self) -> usize {
        self.search.iter().map(String::len).sum::<usize>() + self.search.len().saturating_sub(1)
    }
}

pub fn parse_resolv(path: &str, text: &str) -> Parsed<ResolvConf> {
    let mut cov = Coverage::new(path);
    let mut rc = ResolvConf::default();
    for (no, raw) in numbered_lines(text) {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            cov.ok();
            continue;
        }
        let mut words = line.split_whitespace();
        let key = words.next().unwrap_or("");
        match key {
            "nameserver" => {
                match words.next() {
                    Some(a) => {
                        let host = a.split('%').next().unwrap_or(a);
                        match host.parse::<IpAddr>() {
                        Ok(addr) => {
                            rc.nameservers.push(Nameserver {
                                line: no,
                                addr,
                                text: a.to_string(),
                            });
                            cov.ok();
                        }
                        Err(_) => cov.miss(no, raw, format!("nameserver {a:?} is not an IP address (ignored by the resolver)")),
                    }
                    }
                    None => cov.miss(no, raw, "nameserver without an address"),
                }
            }
            "search" | "domain" => {
                // Trailing comments are not comments to glibc, but `#`/`;` never start a domain.
                let list: Vec<String> = words
                    .take_while(|w| !w.starts_with('#') && !w.starts_with(';'))
                    .map(str::to_string)
                    .collect();
                rc.search_lines.push(no);
                rc.search_line = Some(no);
                rc.search_from_domain = key == "domain";
                rc.search = if key == "domain" {
                    list.into_iter().take(1).collect()
                } else {
                    list
                };
                cov.ok();
            }
            "options" => {
                rc.options_lines.push(no);
                for o in words {
                    apply_option(&mut rc.options, o);
                }
                cov.ok();
            }
            "sortlist" => {
                rc.sortlist.extend(words.map(str::to_string));
                cov.ok();
            }
            other => cov.miss(
                no,
                raw,
                format!("unknown keyword {other:?} (ignored by the resolver)"),
            ),
        }
    }
    Parsed {
        model: rc,
        coverage: cov,
    }
}

fn apply_option(o: &mut ResolvOptions, w: &str) {
    let num = |v: &str, max: u32| v.parse::<u32>().ok().map(|n| n.min(max));
    match w.split_once(':') {
        Some(("ndots", v)) => o.ndots = num(v, 15).or(o.ndots),
        Some(("timeout", v)) => o.timeout = num(v, 30).or(o.timeout),
        Some(("attempts", v)) => o.attempts = num(v, 5).or(o.attempts),
        None => match w {
            "rotate" => o.rotate = true,
            "edns0" => o.edns0 = true,
            "single-request" => o.single_request = true,
            "single-request-reopen" => o.single_request_reopen = true,
            "use-vc" | "usevc" => o.use_vc = true,
            "no-tld-query" => o.no_tld_query = true,
            "trust-ad" => o.trust_ad = true,
            "inet6" => o.inet6 = true,
            "no-aaaa" => o.no_aaaa = true,
            _ => o.unknown.push(w.to_string()),
        },
        Some(_) => o.unknown.push(w.to_string()),
    }
}
