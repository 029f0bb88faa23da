//! What each fuzz target does with its input, shared by the cargo-fuzz targets in
//! `fuzz/` and by the regression test that replays `fuzz/regressions/` in CI.
//!
//! Besides "never panic", the line-based parsers are held to their coverage promise:
//! every line is either recognised or reported, exactly once.

use netsnap_analyzer::parse::{self, Coverage};
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
];

/// Runs target `name` on `data`. Panics (the fuzzer's signal) on a broken invariant.
pub fn run(name: &str, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    match name {
        "bundle_reader" => bundle_reader(data),
        "iptables" => {
            let p = parse::iptables::parse_iptables("fuzz", &text);
            every_line_once(&p.coverage, lines);
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
            // Chunked parsing must give exactly the whole-file result.
            let parts = parse::conntrack::split_chunks(&text, 3)
                .into_iter()
                .map(|(first, chunk)| parse::conntrack::parse_conntrack_lines("fuzz", chunk, first))
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
        other => panic!("unknown fuzz target {other}"),
    }
}

fn every_line_once(c: &Coverage, lines: usize) {
    assert_eq!(
        c.recognised + c.unrecognised.len(),
        lines,
        "coverage must account for every line once"
    );
}

fn bundle_reader(data: &[u8]) {
    // Small limits keep each execution fast; the limits themselves are under test too.
    let limits = ReadLimits {
        max_entry_bytes: 1 << 20,
        max_total_bytes: 4 << 20,
        max_entries: 1000,
        max_window_log: 22,
    };
    if let Ok(bundle) = Bundle::from_archive(data, "fuzz", &limits) {
        for path in bundle.paths().map(str::to_string).collect::<Vec<_>>() {
            let _ = bundle.json::<serde_json::Value>(&path);
        }
    }
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
}
