//! Parser throughput (MB/s) on generated inputs, and the pipeline stages after
//! parsing (model, graph, checks) on a generated medium bundle.
//!
//! Inputs come from netsnap-scale's library (seed 1), so every run measures the same
//! bytes: iptables-save and nft JSON of the medium node (1,000 services × 5
//! endpoints), 50,000 conntrack lines, /proc/net/ip_vs of the same services, and the
//! resolv.conf files of the node and a pod. `cargo bench -p netsnap-analyzer`;
//! CI only compiles this (`cargo bench --no-run`) and never times anything.

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use netsnap_analyzer::check::{self, Context, Selection, Thresholds};
use netsnap_analyzer::parse::{
    conntrack, ct_stat::parse_ct_stat, iptables::parse_iptables, ipvs::parse_ipvs, nft::parse_nft,
    resolv::parse_resolv,
};
use netsnap_analyzer::{graph, model, sources};
use netsnap_scale::{write_bundle, Output, Plan, Size, Spec};
use netsnap_schema::{Bundle, ReadLimits};
use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

fn render(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut v = Vec::new();
    f(&mut v).expect("rendering into memory cannot fail");
    String::from_utf8(v).expect("generated text is UTF-8")
}

fn bench_text(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    text: &str,
    parse: impl Fn(&str) -> usize,
) {
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function(name, |b| b.iter(|| black_box(parse(black_box(text)))));
}

fn parsers(c: &mut Criterion) {
    let medium = Plan::new(&Spec::preset(Size::Medium)).expect("medium preset is valid");
    let ct_plan = Plan::new(&Spec {
        conntrack: 50_000,
        ..Spec::preset(Size::Medium)
    })
    .expect("valid spec");

    let iptables = render(|w| medium.write_iptables_save(w));
    let ct = render(|w| ct_plan.write_conntrack(w));
    let nft = render(|w| medium.write_nft_kube_proxy(w));
    let ip_vs = render(|w| medium.write_ip_vs(w));
    let stat = medium.conntrack_stat();
    let pod_resolv = medium.pod_resolv_conf(1).unwrap_or_default();
    let host_resolv = medium.host_resolv_conf();

    let mut g = c.benchmark_group("parse");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    bench_text(&mut g, "iptables_save_medium", &iptables, |t| {
        parse_iptables("netfilter/iptables-nft-save.txt", t)
            .coverage
            .recognised
    });
    bench_text(&mut g, "conntrack_50k", &ct, |t| {
        conntrack::parse_conntrack("conntrack/nf_conntrack.txt", t)
            .model
            .entries
            .len()
    });
    // The path the analysis takes: each line to a flow, the kernel's form scanned.
    bench_text(&mut g, "conntrack_50k_flows", &ct, |t| {
        let mut n = 0usize;
        conntrack::parse_conntrack_flows("conntrack/nf_conntrack.txt", t.as_bytes(), 1, |f, _| {
            n += usize::from(f.unreplied) + 1
        });
        n
    });
    // Line-aligned chunks in parallel (the analysis cuts big tables this way).
    bench_text(&mut g, "conntrack_50k_chunked", &ct, |t| {
        let chunks = conntrack::split_chunks(t, rayon_threads());
        let parts = std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|(first, chunk)| {
                    s.spawn(move || {
                        let part = conntrack::parse_conntrack_lines(
                            "conntrack/nf_conntrack.txt",
                            chunk,
                            *first,
                        );
                        (*first, part)
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok())
                .collect::<Vec<_>>()
        });
        conntrack::merge("conntrack/nf_conntrack.txt", parts)
            .model
            .entries
            .len()
    });
    bench_text(&mut g, "nft_json_medium", &nft, |t| {
        parse_nft("netfilter/nft.json", t).model.rules.len()
    });
    bench_text(&mut g, "ip_vs_medium", &ip_vs, |t| {
        parse_ipvs("ipvs/ip_vs.txt", t).model.services.len()
    });
    bench_text(&mut g, "ct_stat", &stat, |t| {
        parse_ct_stat("conntrack/stat.txt", t).model.cpus.len()
    });
    bench_text(&mut g, "resolv_pod", &pod_resolv, |t| {
        parse_resolv("resolv.conf", t).model.search.len()
    });
    bench_text(&mut g, "resolv_node", &host_resolv, |t| {
        parse_resolv("host/resolv.conf", t).model.nameservers.len()
    });
    g.finish();
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Model building, graph building, checks and the reachability matrix on a medium
/// bundle already in memory
/// (reading and parsing are measured above and by scripts/bench).
fn pipeline(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("medium.netsnap.tar.zst");
    let plan = Plan::new(&Spec::preset(Size::Medium)).expect("medium preset is valid");
    write_bundle(&plan, &Output::Archive(path.clone())).expect("bundle written");
    let bundle = Bundle::open(&path, &ReadLimits::default()).expect("bundle reads back");
    let bytes = bundle.total_bytes();
    let thresholds = Thresholds::default();
    let selection = Selection::default();

    let mut g = c.benchmark_group("pipeline_medium");
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("parse_all", |b| {
        b.iter(|| black_box(sources::parse_all(&bundle).coverage.len()))
    });
    // The model takes the conntrack aggregates out of the sources: each run gets its
    // own parse (made, and dropped, outside the timing).
    g.bench_function("model_build", |b| {
        b.iter_batched_ref(
            || sources::parse_all(&bundle),
            |src| black_box(model::build(src).counts()),
            criterion::BatchSize::LargeInput,
        )
    });
    let m = model::build(&mut sources::parse_all(&bundle));
    g.bench_function("graph_build", |b| {
        b.iter(|| black_box(graph::build(&m).graph.node_count()))
    });
    let gr = graph::build(&m);
    g.bench_function("checks", |b| {
        b.iter(|| {
            let ctx = Context::new(&m, &gr, &thresholds);
            black_box(check::run(&ctx, &selection).len())
        })
    });
    // The reachability matrix (every pod to every service port, `netsnap analyze`'s
    // default): thousands of traces, each a few route lookups and chain walks.
    let mut taken = sources::parse_all(&bundle);
    let firewall = netsnap_analyzer::trace::firewall::Firewall::take(&mut taken);
    g.bench_function("reach_matrix", |b| {
        b.iter(|| black_box(netsnap_analyzer::trace::reach::compute(&m, &gr, &firewall).traced))
    });
    g.finish();
    let _ = std::io::stderr().flush();
}

criterion_group!(benches, parsers, pipeline);
criterion_main!(benches);
