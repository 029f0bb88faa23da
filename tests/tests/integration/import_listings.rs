//! `netsnap import` of the listings the collector stores in another form: `bridge fdb
//! show` and `bridge -j fdb show` (the fdb of `neigh.json`), `ipset list` (`ipset
//! save` text), made by the real tools in a lab node's netns and compared with a
//! direct capture; and `dmesg` lines (written here: the root kernel log must not be
//! polluted with a conntrack table-full message) into the kernel log, where CT004
//! must fire on them.

use netsnap_schema::model::{FdbEntry, NeighTable};
use netsnap_schema::{Bundle, ReadLimits};
use netsnap_tests::collect_support::{collect_lab, with_built_lab};
use netsnap_tests::lab::{ok_stdout, require_lab, Lab};
use netsnap_tests::notice;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn import(dir: &Path, files: &[String]) -> (Bundle, Vec<String>) {
    std::fs::create_dir_all(dir).expect("input dir");
    let paths: Vec<PathBuf> = files
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let p = dir.join(format!("attachment-{i}.txt"));
            std::fs::write(&p, text).expect("write input");
            p
        })
        .collect();
    let limits = ReadLimits::default();
    let draft = netsnap_import::import(&paths, &limits).expect("import");
    let notes = draft.inputs.iter().flat_map(|i| i.notes.clone()).collect();
    let bundle = netsnap_import::into_bundle(draft, "imported", &limits).expect("bundle");
    (bundle, notes)
}

/// The fdb entries a capture and an import both hold for sure: the permanent and
/// static ones (learned entries come and go between two reads).
fn fixed_fdb(b: &Bundle) -> BTreeSet<String> {
    let t: NeighTable = b
        .json("netns/root/neigh.json")
        .unwrap()
        .expect("neigh.json");
    t.fdb
        .iter()
        .filter(|e| e.state == "PERMANENT" || e.state == "NOARP")
        .map(|e: &FdbEntry| {
            format!(
                "{} if{} master {:?} vlan {:?} {}",
                e.mac, e.ifindex, e.master, e.vlan, e.state
            )
        })
        .collect()
}

fn recogniser(b: &Bundle, path: &str) -> String {
    let rec = b
        .manifest
        .source_at(path)
        .unwrap_or_else(|| panic!("{path} not imported"));
    rec.imported_from
        .as_ref()
        .expect("imported_from")
        .recogniser
        .clone()
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut l: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    l.sort();
    l
}

#[test]
fn fdb_and_ipset_listings_of_a_lab_node_match_a_direct_capture() {
    let Some(_env) = require_lab() else { return };
    with_built_lab(Lab::builder("implist").pods(1).services(1).endpoints_per_service(1), |lab| {
        let node = |args: &[&str]| ok_stdout(&lab.node(args));
        node(&["ipset", "create", "KUBE-TEST-SET", "hash:ip,port", "family", "inet"]);
        node(&["ipset", "add", "KUBE-TEST-SET", "10.96.0.10,udp:53"]);
        node(&["ipset", "add", "KUBE-TEST-SET", "10.96.0.10,tcp:53"]);
        node(&["ipset", "create", "KUBE-TEST-NETS", "hash:net", "family", "inet6"]);
        // The kernel adds permanent multicast fdb entries (33:33:…) while a fresh
        // lab's IPv6 addresses come up, so a capture and a listing taken a moment
        // apart can differ by one. Compare only a capture bracketed by two equal
        // listings: the fdb held still over the capture and the JSON listing
        // (bounded attempts).
        let fdb_listing = || node(&["bridge", "fdb", "show"]);
        let mut attempt = 0;
        let (direct, fdb_text, fdb_json) = loop {
            attempt += 1;
            let before = fdb_listing();
            let direct = collect_lab(lab, &format!("direct-{attempt}"), &[]);
            let json = node(&["bridge", "-j", "fdb", "show"]);
            let after = fdb_listing();
            if sorted_lines(&before) == sorted_lines(&after) || attempt == 10 {
                break (direct, after, json);
            }
        };
        let direct = Bundle::open(&direct, &ReadLimits::default())?;
        let links = node(&["ip", "-d", "link", "show"]);

        let text = [links.clone(), format!("$ bridge fdb show\n{fdb_text}"), node(&["ipset", "list"])];
        let (a, notes) = import(&lab.dir().join("import-text"), &text);
        let json = [links, fdb_json];
        let (b, _) = import(&lab.dir().join("import-json"), &json);

        let want = fixed_fdb(&direct);
        let (got_text, got_json) = (fixed_fdb(&a), fixed_fdb(&b));
        notice(&format!("fdb import: the fdb held still over capture attempt {attempt}"));
        notice(&format!(
            "fdb import: direct capture {} permanent/static entries, from `bridge fdb show` {}, from `bridge -j fdb show` {}; {} note(s)",
            want.len(),
            got_text.len(),
            got_json.len(),
            notes.len()
        ));
        assert!(want.iter().any(|e| e.contains("master Some")), "no bridge port entry in the lab: {want:#?}");
        assert_eq!(got_text, want, "bridge fdb show");
        assert_eq!(got_json, want, "bridge -j fdb show");
        assert_eq!(recogniser(&a, "netns/root/neigh.json"), "bridge-fdb");
        assert_eq!(recogniser(&b, "netns/root/neigh.json"), "ip-json");

        let imported = a.text("netfilter/ipset.txt").expect("ipset imported");
        let captured = direct.text("netfilter/ipset.txt").expect("ipset captured");
        assert!(captured.contains("add KUBE-TEST-SET 10.96.0.10,tcp:53"), "{captured}");
        assert_eq!(sorted_lines(&imported), sorted_lines(&captured), "ipset list → ipset save");
        assert_eq!(recogniser(&a, "netfilter/ipset.txt"), "ipset-list");
        Ok(())
    })
    .expect("lab");
}

/// Lines as `dmesg` prints them, around a table-full message; no lab needed.
const DMESG: &str = "[  812.004113] cni0: port 2(veth3a4b5c6d) entered forwarding state
[  901.551090] nf_conntrack: nf_conntrack: table full, dropping packet
[  901.551332] nf_conntrack: nf_conntrack: table full, dropping packet
[  903.100201] neighbour: arp_cache: neighbor table overflow!
";

#[test]
fn dmesg_lines_are_the_kernel_log_and_ct004_fires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paste = format!("user@laptop:~$ ssh node-4 dmesg | tail -4\n{DMESG}user@laptop:~$\n");
    let (b, notes) = import(dir.path(), &[paste]);
    assert_eq!(b.text("host/kmsg.txt").as_deref(), Some(DMESG));
    assert_eq!(recogniser(&b, "host/kmsg.txt"), "dmesg");
    let report = netsnap_analyzer::report::analyze(
        &b,
        &netsnap_analyzer::check::Thresholds::default(),
        &netsnap_analyzer::check::Selection::default(),
    );
    let ids: Vec<String> = report.findings.iter().map(|f| f.id.to_string()).collect();
    notice(&format!(
        "dmesg import: findings {ids:?}; {} note(s)",
        notes.len()
    ));
    let ct004 = report
        .findings
        .iter()
        .find(|f| f.id == "CT004")
        .unwrap_or_else(|| panic!("no CT004 on imported dmesg lines: {ids:?}"));
    assert!(ct004.message.contains("2 time(s)"), "{}", ct004.message);
    assert!(
        ct004.evidence.iter().all(|e| e.path == "host/kmsg.txt"),
        "{:?}",
        ct004.evidence
    );
}
