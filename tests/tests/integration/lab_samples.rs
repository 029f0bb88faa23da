//! `netsnap-collect --samples N --interval S` on a lab node whose conntrack table is
//! full while the collector runs: the readings land in the bundle, and CT002 says the
//! node is dropping *now*, at the rate the readings give — computed here again from
//! the raw readings, independently of the analyzer. A second capture with no traffic
//! sees the same totals since boot but no drop during the capture: CT002 is info.

use netsnap_analyzer::check::Severity;
use netsnap_schema::layout;
use netsnap_schema::model::CounterSamples;
use netsnap_tests::collect_support::{collect_lab, lab_args};
use netsnap_tests::collector::collector_bin;
use netsnap_tests::datapath_check as dc;
use netsnap_tests::lab::{assert_no_leaks, require_lab, Lab};
use netsnap_tests::notice;
use std::net::SocketAddrV4;
use std::process::{Command, Stdio};

/// Sum over CPUs of the `drop` column of raw `/proc/net/stat/nf_conntrack` text.
fn drops(stat: &str) -> u64 {
    let mut lines = stat.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let col = header
        .iter()
        .position(|c| *c == "drop")
        .expect("drop column");
    lines
        .map(|l| l.split_whitespace().nth(col).expect("value"))
        .map(|v| u64::from_str_radix(v, 16).expect("hex"))
        .sum()
}

/// The readings of a bundle, as the collector wrote them.
fn readings(b: &netsnap_schema::Bundle) -> CounterSamples {
    let bytes = b
        .file(layout::COUNTER_SAMPLES)
        .expect("samples/counters.json");
    serde_json::from_slice(bytes).expect("counter samples")
}

#[test]
fn samples_turn_conntrack_drops_into_a_rate() {
    let Some(_env) = require_lab() else { return };
    let mut lab = Lab::builder("samples")
        .pods(2)
        .services(1)
        .cluster_dns(false)
        .traffic(false)
        .build()
        .expect("build lab");
    let fp = lab.footprint();
    lab.fault_conntrack_table_full().expect("fill the table");
    let to = SocketAddrV4::new(lab.gateway_ip(), 9);

    // Collect with 5 readings 0.3 s apart while pod 0 keeps opening new flows, each
    // dropped by the full table. Traffic runs until the collector exits (bounded).
    let out = lab.dir().join("dropping.netsnap.tar.zst");
    let mut child = Command::new(collector_bin().expect("netsnap-collect"))
        .args(lab_args(&lab, lab.host_root(), &out))
        .args(["-q", "--samples", "5", "--interval", "0.3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netsnap-collect");
    let mut sent = 0;
    while child.try_wait().expect("collector status").is_none() && sent < 1_000_000 {
        lab.udp_send(0, to, 50).expect("send");
        sent += 50;
    }
    let status = child.wait().expect("collector exits");
    assert!(status.success() && out.is_file(), "collector: {status}");

    let b = dc::open(&out);
    let r = readings(&b);
    assert_eq!((r.requested, r.samples.len(), r.interval_ms), (5, 5, 300));
    let (first, last) = (&r.samples[0], &r.samples[4]);
    let seconds = (last.at_ms - first.at_ms) as f64 / 1000.0;
    assert!(seconds >= 1.2, "readings {seconds} s apart");
    let stat = |s: &netsnap_schema::model::CounterSample| {
        drops(s.conntrack_stat.text().expect("conntrack stat read"))
    };
    let delta = stat(last) - stat(first);
    assert!(
        delta > 0,
        "no drop during the capture ({sent} datagrams sent)"
    );
    let want = format!(
        "dropping now: {:.1}/s for lack of room",
        delta as f64 / seconds
    );
    let a = dc::analyze(&b);
    let ct002 = a
        .findings
        .iter()
        .find(|f| f.id.as_str() == "CT002")
        .unwrap_or_else(|| panic!("no CT002:\n{}", dc::describe(&a.findings)));
    assert_eq!(ct002.severity, Severity::Critical);
    assert!(
        ct002.message.contains(&want),
        "{} (want {want})",
        ct002.message
    );

    // Quiet now: same totals since boot, no drop between the readings.
    let quiet = collect_lab(&lab, "quiet", &["--samples", "3", "--interval", "0.2"]);
    let b = dc::open(&quiet);
    let q = readings(&b);
    let unchanged = stat(&q.samples[0]) == stat(&q.samples[2]);
    let a = dc::analyze(&b);
    let ct002 = a.findings.iter().find(|f| f.id.as_str() == "CT002");
    if unchanged {
        let f = ct002.expect("CT002 still reports the drops since boot");
        assert_eq!(f.severity, Severity::Info, "{}", f.message);
        assert!(f.message.contains("not dropping now"), "{}", f.message);
    }
    notice(&format!(
        "lab_samples: 5 readings over {seconds:.2} s while {sent} UDP datagrams met a full table: drop +{delta}, CT002 critical '{}'; quiet capture (3 readings): drops {} → CT002 {}",
        want,
        if unchanged { "unchanged" } else { "still moving" },
        ct002.map_or("absent".to_string(), |f| format!("{:?}", f.severity)),
    ));
    lab.teardown().expect("teardown");
    assert_no_leaks(&fp);
}
