//! Which parser runs on which bundle path, and folding the parsed outputs together.
//!
//! The path is looked up in the registry of sources ([`registry::locate`]) and the
//! parser is chosen by a `match` on [`SourceId`] with no wildcard arm ([`run`]): a
//! source registered in `schema` and not handled here does not compile. A source
//! the analysis does not read says so in that match (kept raw). A path the registry
//! does not know (a newer producer's source) is kept raw too, and reported in the
//! coverage so that it is never dropped silently.

use super::capped;
use super::flows::Aggregates;
use super::lines::{item_lines, key_lines, LineIndex};
use super::proxier::Proxier;
use super::{decode, IptablesSource, JsonSource, Sources};
use crate::parse::{self, Coverage, Parsed};
use netsnap_schema::registry::{self, SourceId};
use rayon::prelude::*;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// Conntrack text is parsed in chunks of about this many bytes (cut at line ends).
pub const CONNTRACK_CHUNK_BYTES: usize = 4 << 20;

/// What to do with one bundle path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// A registered source, with the netns id or the file name its location holds.
    Source {
        id: SourceId,
        netns: Option<String>,
        file: Option<String>,
    },
    /// A path no registry entry describes: kept raw, reported as not analysed.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub path: String,
    pub kind: JobKind,
}

impl Job {
    /// The conntrack entries: cut into `CONNTRACK_CHUNK_BYTES` chunks parsed side by
    /// side (see `conntrack_chunk`) instead of one job.
    pub fn is_conntrack_entries(&self) -> bool {
        matches!(
            self.kind,
            JobKind::Source {
                id: SourceId::ConntrackEntries,
                ..
            }
        )
    }
}

/// The job for one bundle path; `None` for the manifest, which the reader has read.
pub fn plan(path: &str) -> Option<Job> {
    if path == netsnap_schema::manifest::MANIFEST_PATH {
        return None;
    }
    let kind = match registry::locate(path) {
        Some(found) => JobKind::Source {
            id: found.id,
            netns: found.netns.map(str::to_string),
            file: found.file.map(str::to_string),
        },
        None => JobKind::Unknown,
    };
    Some(Job {
        path: path.to_string(),
        kind,
    })
}

/// Line-aligned byte ranges of about `size` bytes, with the 1-based first line of each.
pub fn chunks(data: &[u8], size: usize) -> Vec<(usize, usize, usize)> {
    let mut bounds = Vec::new();
    let mut start = 0usize;
    while start < data.len() {
        let mut end = (start + size.max(1)).min(data.len());
        if end < data.len() {
            end = match memchr::memchr(b'\n', &data[end..]) {
                Some(p) => end + p + 1,
                None => data.len(),
            };
        }
        bounds.push((start, end));
        start = end;
    }
    // Counting the lines of a 200 MB table is itself worth spreading over threads.
    let counts: Vec<usize> = bounds
        .par_iter()
        .map(|&(s, e)| memchr::memchr_iter(b'\n', &data[s..e]).count())
        .collect();
    let mut line = 1usize;
    bounds
        .into_iter()
        .zip(counts)
        .map(|((s, e), n)| {
            let first = line;
            line += n;
            (s, e, first)
        })
        .collect()
}

/// The parsed result of one job.
pub enum Output {
    HostFacts(Result<JsonSource<netsnap_schema::model::HostFacts>, Coverage>),
    HostSysctl(Result<JsonSource<netsnap_schema::model::Sysctls>, Coverage>),
    NetnsIndex(Result<JsonSource<netsnap_schema::model::NetnsIndex>, Coverage>),
    ConntrackSysctl(Result<JsonSource<netsnap_schema::model::ConntrackSysctl>, Coverage>),
    Netns(String, NetnsOutput),
    Iptables(Box<IptablesSource>, LineIndex),
    Nft(Parsed<parse::nft::NftRuleset>),
    Cilium(Parsed<parse::cilium::CiliumServices>),
    CounterSamples(Parsed<parse::samples::CounterReadings>),
    /// (is kubelet's, parsed, line index)
    Resolv(bool, Parsed<parse::resolv::ResolvConf>, LineIndex),
    Kmsg(Parsed<parse::kmsg::Kmsg>, String, LineIndex),
    Ipset(Parsed<parse::ipset::IpsetSave>, String, LineIndex),
    Ipvs(Parsed<parse::ipvs::IpvsTable>, String, LineIndex),
    ConntrackStat(Parsed<parse::ct_stat::ConntrackStats>, String, LineIndex),
    Cni(Parsed<parse::cni::CniFile>, LineIndex),
    /// The coverage of a path no registry entry describes.
    Unknown(Coverage),
    Nothing,
}

pub enum NetnsOutput {
    Links(Result<JsonSource<Vec<netsnap_schema::model::Link>>, Coverage>),
    Addrs(Result<JsonSource<Vec<netsnap_schema::model::Addr>>, Coverage>),
    Routes(Result<JsonSource<netsnap_schema::model::RouteTable>, Coverage>),
    Neigh(Result<JsonSource<netsnap_schema::model::NeighTable>, Coverage>),
    Sockets(Result<JsonSource<Vec<netsnap_schema::model::Socket>>, Coverage>),
    Sysctl(Result<JsonSource<netsnap_schema::model::Sysctls>, Coverage>),
    Resolv(Parsed<parse::resolv::ResolvConf>, LineIndex),
}

/// Runs a text parser and keeps the file's line index for excerpts.
fn text_job(
    data: &[u8],
    path: &str,
    make: impl Fn(&str, &str, String, LineIndex) -> Output,
) -> Output {
    let text = decode(data);
    make(path, &text, path.to_string(), LineIndex::new(&text))
}

/// Parses a pretty JSON source; a parse error becomes an unrecognised line.
fn json<T: DeserializeOwned>(
    data: &[u8],
    path: &str,
    indent: usize,
) -> Result<JsonSource<T>, Coverage> {
    let text = decode(data);
    match serde_json::from_str::<T>(&text) {
        Ok(value) => Ok(JsonSource {
            path: path.to_string(),
            value,
            item_lines: item_lines(&text, indent),
            key_lines: key_lines(&text),
            left_out: None,
        }),
        Err(e) => Err(invalid_json(path, &text, &e)),
    }
}

/// Coverage of a JSON source that does not parse: the error's line, excerpted.
fn invalid_json(path: &str, text: &str, e: &serde_json::Error) -> Coverage {
    let mut cov = Coverage::new(path);
    let line = e.line().max(1);
    cov.miss(
        line,
        &LineIndex::new(text).excerpt(text, line),
        format!("invalid JSON: {e}"),
    );
    cov
}

/// The netns index, keeping at most [`capped::MAX_NETNS`] entries.
fn netns_index(
    data: &[u8],
    path: &str,
) -> Result<JsonSource<netsnap_schema::model::NetnsIndex>, Coverage> {
    let text = decode(data);
    match capped::parse_index(&text, capped::MAX_NETNS) {
        Ok(c) => {
            let item_lines = item_lines(&text, 4);
            let kept = c.index.netns.len();
            let left_out = (c.total > kept).then(|| {
                let line = item_lines.get(kept).copied().unwrap_or(1);
                let reason = format!(
                    "the index lists {} netns; only the first {kept} are analyzed",
                    c.total
                );
                (line, reason)
            });
            Ok(JsonSource {
                path: path.to_string(),
                value: c.index,
                item_lines,
                key_lines: BTreeMap::new(),
                left_out,
            })
        }
        Err(e) => Err(invalid_json(path, &text, &e)),
    }
}

/// Parses one entry (`data`) as `job` says; conntrack entries go to [`conntrack_chunk`].
pub fn run(data: &[u8], job: &Job) -> Output {
    let path = job.path.as_str();
    let JobKind::Source { id, netns, file } = &job.kind else {
        return Output::Unknown(unknown_source(path));
    };
    let netns = |out| Output::Netns(netns.clone().unwrap_or_default(), out);
    match id {
        SourceId::HostFacts => Output::HostFacts(json(data, path, 2)),
        SourceId::HostSysctl => Output::HostSysctl(json(data, path, 2)),
        SourceId::HostResolvConf => resolv(data, path, false),
        SourceId::HostKubeletResolvConf => resolv(data, path, true),
        SourceId::HostKmsg => text_job(data, path, |p, t, o, ix| {
            Output::Kmsg(parse::kmsg::parse_kmsg(p, t), o, ix)
        }),
        SourceId::HostCni => {
            let text = decode(data);
            let name = file.as_deref().unwrap_or_default();
            Output::Cni(
                parse::cni::parse_cni(path, name, &text),
                LineIndex::new(&text),
            )
        }
        SourceId::NetnsIndex => Output::NetnsIndex(netns_index(data, path)),
        SourceId::NetnsLinks => netns(NetnsOutput::Links(json(data, path, 2))),
        SourceId::NetnsAddrs => netns(NetnsOutput::Addrs(json(data, path, 2))),
        SourceId::NetnsRoutes => netns(NetnsOutput::Routes(json(data, path, 4))),
        SourceId::NetnsNeigh => netns(NetnsOutput::Neigh(json(data, path, 4))),
        SourceId::NetnsSockets => netns(NetnsOutput::Sockets(json(data, path, 2))),
        SourceId::NetnsSysctl => netns(NetnsOutput::Sysctl(json(data, path, 2))),
        SourceId::NetnsResolvConf => {
            let text = decode(data);
            netns(NetnsOutput::Resolv(
                parse::resolv::parse_resolv(path, &text),
                LineIndex::new(&text),
            ))
        }
        SourceId::IptablesNftSave => iptables(data, path, Proxier::IptablesNft, false),
        SourceId::IptablesLegacySave => iptables(data, path, Proxier::IptablesLegacy, false),
        SourceId::Ip6tablesNftSave => iptables(data, path, Proxier::IptablesNft, true),
        SourceId::Ip6tablesLegacySave => iptables(data, path, Proxier::IptablesLegacy, true),
        SourceId::NftJson => Output::Nft(parse::nft::parse_nft(path, &decode(data))),
        SourceId::Ipset => text_job(data, path, |p, t, o, ix| {
            Output::Ipset(parse::ipset::parse_ipset(p, t), o, ix)
        }),
        SourceId::Ipvs => text_job(data, path, |p, t, o, ix| {
            Output::Ipvs(parse::ipvs::parse_ipvs(p, t), o, ix)
        }),
        // Kept raw for people to read; no check needs them.
        SourceId::IpvsStats | SourceId::IpvsConn => Output::Nothing,
        // Reduced chunk by chunk by [`conntrack_chunk`], not collected as one output.
        SourceId::ConntrackEntries => Output::Nothing,
        SourceId::ConntrackStat => text_job(data, path, |p, t, o, ix| {
            Output::ConntrackStat(parse::ct_stat::parse_ct_stat(p, t), o, ix)
        }),
        SourceId::ConntrackSysctl => Output::ConntrackSysctl(json(data, path, 2)),
        SourceId::CiliumServices => {
            Output::Cilium(parse::cilium::parse_cilium_services(path, &decode(data)))
        }
        SourceId::CounterSamples => {
            Output::CounterSamples(parse::samples::parse_counter_samples(path, &decode(data)))
        }
        // Kept raw for people to read: the service listing says what the checks need.
        SourceId::CiliumBpfLb => Output::Nothing,
    }
}

fn resolv(data: &[u8], path: &str, kubelet: bool) -> Output {
    let text = decode(data);
    let parsed = parse::resolv::parse_resolv(path, &text);
    Output::Resolv(kubelet, parsed, LineIndex::new(&text))
}

fn iptables(data: &[u8], path: &str, proxier: Proxier, ipv6: bool) -> Output {
    let text = decode(data);
    let (parsed, starts) = parse::iptables::parse_iptables_and_line_starts(path, &text);
    let lines = LineIndex::from_starts(starts);
    Output::Iptables(
        Box::new(IptablesSource {
            path: path.to_string(),
            proxier,
            ipv6,
            parsed,
        }),
        lines,
    )
}

/// Why an unknown path is in the coverage: kept, never read.
pub const UNKNOWN_SOURCE: &str =
    "not a source this analyzer knows (written by a newer collector?): kept raw, not analysed";

fn unknown_source(path: &str) -> Coverage {
    let mut cov = Coverage::new(path);
    cov.miss(1, "", UNKNOWN_SOURCE);
    cov
}

/// Conntrack chunks parsed and reduced to flow aggregates.
pub struct ConntrackPart {
    pub coverage: Coverage,
    pub flows: Aggregates,
}

impl ConntrackPart {
    pub fn new(path: &str) -> ConntrackPart {
        ConntrackPart {
            coverage: Coverage::new(path),
            flows: Aggregates::default(),
        }
    }
}

/// Parses `chunk`, bytes of the conntrack entries (at `path`) from byte `offset` and
/// line `first_line` on, straight into `part`'s aggregates (no entry is kept). A part
/// takes chunk after chunk: one map per worker grows once, instead of a map per chunk
/// grown and then merged.
pub fn conntrack_chunk(
    part: &mut ConntrackPart,
    path: &str,
    chunk: &[u8],
    (offset, first_line): (usize, usize),
) {
    let text = |at: usize| super::lines::excerpt_at(chunk, at - offset);
    let (coverage, _) = part.flows.add_chunk(&text, |add| {
        parse::conntrack::parse_conntrack_flows(path, chunk, first_line, |f, at| {
            add(&f, offset + at)
        })
    });
    part.coverage.merge(coverage);
}

fn keep<T>(
    s: &mut Sources<'_>,
    r: Result<JsonSource<T>, Coverage>,
    count: impl Fn(&T) -> usize,
) -> Option<JsonSource<T>> {
    match r {
        Ok(j) => {
            let mut cov = Coverage::new(&j.path);
            cov.recognised = count(&j.value);
            if let Some((line, reason)) = &j.left_out {
                cov.miss(*line, "", reason.clone());
            }
            s.coverage.push(cov);
            Some(j)
        }
        Err(cov) => {
            s.coverage.push(cov);
            None
        }
    }
}

/// Folds one output into the sources (called in job order).
pub fn absorb(s: &mut Sources<'_>, out: Output) {
    match out {
        Output::HostFacts(r) => s.host_facts = keep(s, r, |_| 1),
        Output::HostSysctl(r) => s.host_sysctl = keep(s, r, |v| v.len()),
        Output::NetnsIndex(r) => s.netns_index = keep(s, r, |v| v.netns.len()),
        Output::ConntrackSysctl(r) => {
            s.conntrack_sysctl = keep(s, r, |v| v.node.len() + v.count_by_netns.len())
        }
        Output::Netns(id, o) => {
            let mut entry = s.netns.remove(&id).unwrap_or_default();
            match o {
                NetnsOutput::Links(r) => entry.links = keep(s, r, Vec::len),
                NetnsOutput::Addrs(r) => entry.addrs = keep(s, r, Vec::len),
                NetnsOutput::Routes(r) => {
                    entry.routes = keep(s, r, |v| v.routes.len() + v.rules.len())
                }
                NetnsOutput::Neigh(r) => {
                    entry.neigh = keep(s, r, |v| v.neighbours.len() + v.fdb.len())
                }
                NetnsOutput::Sockets(r) => entry.sockets = keep(s, r, Vec::len),
                NetnsOutput::Sysctl(r) => entry.sysctl = keep(s, r, |v| v.len()),
                NetnsOutput::Resolv(p, ix) => {
                    s.remember(p.coverage.path.clone(), ix);
                    s.coverage.push(p.coverage.clone());
                    entry.resolv = Some(p);
                }
            }
            s.netns.insert(id, entry);
        }
        Output::Iptables(src, ix) => {
            s.remember(src.path.clone(), ix);
            s.coverage.push(src.parsed.coverage.clone());
            s.iptables.push(*src);
        }
        Output::Nft(p) => {
            s.coverage.push(p.coverage.clone());
            s.nft = Some(p);
        }
        Output::Cilium(p) => {
            s.coverage.push(p.coverage.clone());
            s.cilium = Some(p);
        }
        Output::CounterSamples(p) => {
            s.coverage.push(p.coverage.clone());
            s.counter_samples = Some(p);
        }
        Output::Resolv(kubelet, p, ix) => {
            s.remember(p.coverage.path.clone(), ix);
            s.coverage.push(p.coverage.clone());
            if kubelet {
                s.kubelet_resolv = Some(p);
            } else {
                s.host_resolv = Some(p);
            }
        }
        Output::Kmsg(p, path, ix) => {
            s.remember(path, ix);
            s.coverage.push(p.coverage.clone());
            s.kmsg = Some(p);
        }
        Output::Ipset(p, path, ix) => {
            s.remember(path, ix);
            s.coverage.push(p.coverage.clone());
            s.ipset = Some(p);
        }
        Output::Ipvs(p, path, ix) => {
            s.remember(path, ix);
            s.coverage.push(p.coverage.clone());
            s.ipvs = Some(p);
        }
        Output::ConntrackStat(p, path, ix) => {
            s.remember(path, ix);
            s.coverage.push(p.coverage.clone());
            s.conntrack_stat = Some(p);
        }
        Output::Cni(p, ix) => {
            s.remember(p.coverage.path.clone(), ix);
            s.coverage.push(p.coverage);
            s.cni.push(p.model);
        }
        Output::Unknown(cov) => s.coverage.push(cov),
        Output::Nothing => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_line_aligned_and_numbered() {
        let data = b"aaa\nbb\ncccc\nd\n";
        let c = chunks(data, 5);
        assert_eq!(c, vec![(0, 7, 1), (7, 14, 3)]);
        let joined: Vec<u8> = c
            .iter()
            .flat_map(|(s, e, _)| data[*s..*e].to_vec())
            .collect();
        assert_eq!(joined, data);
        assert_eq!(chunks(b"", 5), vec![]);
        assert_eq!(chunks(b"no newline", 3), vec![(0, 10, 1)]);
    }
}
