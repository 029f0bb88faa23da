//! What each fuzz target does with its input, shared by the cargo-fuzz targets in
//! `fuzz/` and by the regression test that replays `fuzz/regressions/` in CI.
//!
//! Besides "never panic", the line-based parsers are held to their coverage promise:
//! every line is either recognised or reported, exactly once.
//!
//! Every source of the registry is fuzzed: [`target_for`] names the target that runs
//! its parser (a `match` without a wildcard, so a new source does not compile until
//! it has one), and the tests hold that each such target exists.

use netsnap_analyzer::parse::{self, Coverage};
use netsnap_schema::registry::SourceId;
use netsnap_schema::{Bundle, ReadLimits};

/// Every fuzz target, by the name used in `fuzz/fuzz_targets/<name>.rs`.
pub const TARGETS: &[&str] = &[
    "bundle_reader",
    "iptables",
    "nft",
    "ipvs",
    "conntrack",
    "ct_stat",
    "resolv",
    "sysctl",
    "kmsg",
    "ipset",
    "netlink_json",
    "cni",
    "cilium",
    "samples",
    "import",
];

/// The fuzz target that runs the parser of a registered source. Several sources
/// share one target when they share one parser (every per-netns JSON file is JSON of
/// `schema` types; the three resolv.conf files are resolv.conf).
pub fn target_for(id: SourceId) -> &'static str {
    use SourceId as S;
    match id {
        S::HostFacts
        | S::NetnsIndex
        | S::NetnsLinks
        | S::NetnsAddrs
        | S::NetnsRoutes
        | S::NetnsNeigh
        | S::NetnsSockets
        | S::ConntrackSysctl => "netlink_json",
        S::HostSysctl | S::NetnsSysctl => "sysctl",
        S::HostResolvConf | S::HostKubeletResolvConf | S::NetnsResolvConf => "resolv",
        S::HostKmsg => "kmsg",
        S::HostCni => "cni",
        S::IptablesNftSave
        | S::IptablesLegacySave
        | S::Ip6tablesNftSave
        | S::Ip6tablesLegacySave => "iptables",
        S::NftJson => "nft",
        S::Ipset => "ipset",
        // The analyzer keeps ip_vs_stats and ip_vs_conn raw; their parsers are
        // fuzzed with ip_vs's all the same.
        S::Ipvs | S::IpvsStats | S::IpvsConn => "ipvs",
        S::ConntrackEntries => "conntrack",
        S::ConntrackStat => "ct_stat",
        // The analyzer keeps the BPF listing raw; the service listing is parsed.
        S::CiliumServices | S::CiliumBpfLb => "cilium",
        S::CounterSamples => "samples",
    }
}

/// Runs target `name` on `data`. Panics (the fuzzer's signal) on a broken invariant.
pub fn run(name: &str, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    match name {
        "bundle_reader" => bundle_reader(data),
        "iptables" => {
            let p = parse::iptables::parse_iptables("fuzz", &text);
            every_line_once(&p.coverage, lines);
            // The scanner reads what it accepts as the full parser does.
            assert_eq!(
                p,
                parse::iptables::parse_iptables_full_parser("fuzz", &text)
            );
            // What parsed must render to something that parses to the same rules.
            let again = parse::iptables::parse_iptables(
                "fuzz",
                &parse::iptables::render_iptables(&p.model),
            );
            assert_eq!(again.model.tables.len(), p.model.tables.len());
        }
        "nft" => drop(parse::nft::parse_nft("fuzz", &text)),
        "ipvs" => {
            every_line_once(&parse::ipvs::parse_ipvs("fuzz", &text).coverage, lines);
            drop(parse::ipvs::parse_ipvs_stats("fuzz", &text));
            drop(parse::ipvs::parse_ipvs_conn("fuzz", &text));
        }
        "conntrack" => {
            let whole = parse::conntrack::parse_conntrack("fuzz", &text);
            every_line_once(&whole.coverage, lines);
            conntrack_flows(data);
            // Chunked parsing must give exactly the whole-file result.
            let parts = parse::conntrack::split_chunks(&text, 3)
                .into_iter()
                .map(|(first, chunk)| {
                    (
                        first,
                        parse::conntrack::parse_conntrack_lines("fuzz", chunk, first),
                    )
                })
                .collect();
            let merged = parse::conntrack::merge("fuzz", parts);
            assert_eq!(merged.model, whole.model);
        }
        "ct_stat" => drop(parse::ct_stat::parse_ct_stat("fuzz", &text)),
        "resolv" => every_line_once(&parse::resolv::parse_resolv("fuzz", &text).coverage, lines),
        "sysctl" => {
            drop(parse::sysctl::parse_sysctl_json("fuzz", &text));
            every_line_once(
                &parse::sysctl::parse_sysctl_text("fuzz", &text).coverage,
                lines,
            );
        }
        "kmsg" => every_line_once(&parse::kmsg::parse_kmsg("fuzz", &text).coverage, lines),
        "ipset" => every_line_once(&parse::ipset::parse_ipset("fuzz", &text).coverage, lines),
        "netlink_json" => netlink_json(data),
        "cni" => cni(&text, lines),
        "cilium" => cilium(&text),
        "samples" => samples(&text),
        "import" => import(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

/// The analysis's path (a fast scanner for the kernel's usual lines, the full parser
/// for the rest) must read the raw bytes exactly as the full parser alone.
fn conntrack_flows(data: &[u8]) {
    use parse::conntrack::{parse_conntrack_flows, parse_conntrack_stream, CtFlow};
    let mut full = Vec::new();
    let slow = parse_conntrack_stream("fuzz", data, 1, |e, at| full.push((CtFlow::of(&e), at)));
    let mut fast = Vec::new();
    let quick = parse_conntrack_flows("fuzz", data, 1, |f, at| fast.push((f, at)));
    assert_eq!(quick, slow);
    assert_eq!(fast, full);
}

fn every_line_once(c: &Coverage, lines: usize) {
    assert_eq!(
        c.recognised + c.unrecognised.len(),
        lines,
        "coverage must account for every line once"
    );
}

/// Small limits keep each execution fast; the limits themselves are under test too.
const FUZZ_LIMITS: ReadLimits = ReadLimits {
    max_entry_bytes: 1 << 20,
    max_total_bytes: 4 << 20,
    max_entries: 1000,
    max_window_log: 22,
};

fn bundle_reader(data: &[u8]) {
    let whole = Bundle::from_archive(data, "fuzz", &FUZZ_LIMITS);
    if let Ok(bundle) = &whole {
        for path in bundle.paths().map(str::to_string).collect::<Vec<_>>() {
            let _ = bundle.json::<serde_json::Value>(&path);
        }
    }
    // Read again with every entry but the manifest in pieces of lines: the same
    // verdict, and pieces that make up what reading whole gave.
    let mut pieces = InPieces::default();
    let in_pieces = Bundle::from_archive_with(data, "fuzz", &FUZZ_LIMITS, &mut pieces);
    match (&whole, &in_pieces) {
        (Ok(whole), Ok(_)) => {
            for (path, content) in &pieces.entries {
                assert_eq!(whole.file(path), Some(&content[..]), "{path}");
            }
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!(
            "read whole: {:?}; in pieces: {:?}",
            a.as_ref().err(),
            b.as_ref().err()
        ),
    }
}

/// What a customer sends (`netsnap import`, `netsnap analyze DUMP…`): a pasted dump,
/// one compressed file or an archive of any known layout. Whatever is recognised must
/// make a bundle the reader accepts, and its analysis must run.
fn import(data: &[u8]) {
    let read = netsnap_import::input::read_bytes(data, "fuzz", &FUZZ_LIMITS);
    // The path `netsnap import` takes once its inputs are read.
    let Ok(draft) = netsnap_import::import_trees([read.map(|tree| (tree, 0))]) else {
        return;
    };
    let bundle = netsnap_import::into_bundle(draft, "fuzz", &ReadLimits::default())
        .unwrap_or_else(|e| panic!("an imported node must read back: {e}"));
    let analysis = netsnap_analyzer::report::analyze(
        &bundle,
        &netsnap_analyzer::check::Thresholds::default(),
        &netsnap_analyzer::check::Selection::default(),
    );
    drop(analysis);
}

/// Takes every entry in pieces, checking they are whole lines that follow each other.
#[derive(Default)]
struct InPieces {
    entries: std::collections::BTreeMap<String, Vec<u8>>,
}

impl netsnap_schema::OnRead for InPieces {
    fn wants_pieces(&mut self, path: &str) -> bool {
        self.entries.insert(path.to_string(), Vec::new());
        true
    }
    fn piece(&mut self, path: &str, offset: usize, piece: &std::sync::Arc<Vec<u8>>) {
        let content = self.entries.entry(path.to_string()).or_default();
        assert_eq!(offset, content.len(), "{path}: pieces follow each other");
        assert!(
            content.is_empty() || content.last() == Some(&b'\n'),
            "{path}: only the last piece may end inside a line"
        );
        content.extend_from_slice(piece);
    }
    fn entry(&mut self, _: &str, _: &std::sync::Arc<Vec<u8>>) {}
}

fn netlink_json(data: &[u8]) {
    use netsnap_schema::model::*;
    let _ = serde_json::from_slice::<NetnsIndex>(data);
    let _ = serde_json::from_slice::<Vec<Link>>(data);
    let _ = serde_json::from_slice::<Vec<Addr>>(data);
    let _ = serde_json::from_slice::<RouteTable>(data);
    let _ = serde_json::from_slice::<NeighTable>(data);
    let _ = serde_json::from_slice::<Vec<Socket>>(data);
    let _ = serde_json::from_slice::<HostFacts>(data);
    let _ = serde_json::from_slice::<ConntrackSysctl>(data);
}

/// A CNI file under every name kind: parsed exactly when it is recognised, and every
/// miss on a line of the file.
fn cni(text: &str, lines: usize) {
    for name in ["10-fuzz.conflist", "10-fuzz.conf", "10-fuzz.json", "README"] {
        let p = parse::cni::parse_cni("fuzz", name, text);
        assert_eq!(p.model.config.is_some(), p.coverage.recognised == 1);
        assert!(p.coverage.recognised <= 1);
        assert!(p
            .coverage
            .unrecognised
            .iter()
            .all(|u| u.line >= 1 && u.line <= lines.max(1)));
        let configs = parse::cni::CniConfigs::new(vec![p.model]);
        assert_eq!(configs.in_use().is_some(), configs.files[0].is_usable());
    }
}

fn cilium(text: &str) {
    let p = parse::cilium::parse_cilium_services("fuzz", text);
    assert_eq!(p.model.services.len(), p.coverage.recognised);
    // Every service of the array is one line: understood or not, never both.
    let mut lines: Vec<usize> = p.model.services.iter().map(|s| s.index).collect();
    lines.extend(p.coverage.unrecognised.iter().map(|u| u.line));
    lines.sort_unstable();
    let before = lines.len();
    lines.dedup();
    assert_eq!(before, lines.len(), "a line counted twice");
    assert!(lines.iter().all(|l| *l >= 1));
}

fn samples(text: &str) {
    let p = parse::samples::parse_counter_samples("fuzz", text);
    assert_eq!(p.model.readings.len(), p.coverage.recognised);
    // Every reading is one line: understood or not, never both.
    let mut lines: Vec<usize> = p.model.readings.iter().map(|r| r.index).collect();
    lines.extend(p.coverage.unrecognised.iter().map(|u| u.line));
    lines.sort_unstable();
    let before = lines.len();
    lines.dedup();
    assert_eq!(before, lines.len(), "a line counted twice");
    assert!(lines.iter().all(|l| *l >= 1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsnap_schema::registry::SOURCES;
    use std::path::Path;

    fn fuzz_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
    }

    #[test]
    fn every_registered_source_has_a_fuzz_target() {
        let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
        for s in SOURCES {
            let target = target_for(s.id);
            assert!(
                TARGETS.contains(&target),
                "{}: {target} not in TARGETS",
                s.name
            );
            let file = format!("fuzz_targets/{target}.rs");
            assert!(
                fuzz_dir().join(&file).is_file(),
                "{}: {file} missing",
                s.name
            );
            assert!(
                manifest.contains(&format!("name = \"{target}\"\npath = \"{file}\"")),
                "{}: no [[bin]] {target} in fuzz/Cargo.toml",
                s.name
            );
        }
    }

    #[test]
    fn every_target_is_a_bin_and_fuzzes_something() {
        let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
        let bins = manifest.matches("[[bin]]").count();
        assert_eq!(bins, TARGETS.len(), "fuzz/Cargo.toml bins vs TARGETS");
        for target in TARGETS {
            let body =
                std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{target}.rs")))
                    .unwrap_or_else(|e| panic!("{target}: {e}"));
            assert!(
                body.contains(&format!("run(\"{target}\", data)")),
                "{target}"
            );
            // The reader and the importer are the targets that are not a source's parser.
            let used = matches!(*target, "bundle_reader" | "import")
                || SOURCES.iter().any(|s| target_for(s.id) == *target);
            assert!(used, "{target} fuzzes no registered source");
        }
    }
}
