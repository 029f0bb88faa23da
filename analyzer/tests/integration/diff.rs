//! `netsnap diff` on fixture bundles written by `netsnap_scale::fixture::Node`: an
//! identical pair, one change of each kind with its severity, `--ignore` and
//! `--fail-on`, conntrack counters as rates (and when they are not comparable),
//! snapshots of the text and JSON, and bad input on the command line.

use netsnap_analyzer::check::Severity;
use netsnap_analyzer::diff::{self, Category, ChangeKind, Diff, Ignore, Input};
use netsnap_analyzer::render;
use netsnap_analyzer::report;
use netsnap_scale::fixture::{route, Node, Pod};
use netsnap_schema::model::{Addr, Rule};
use netsnap_schema::{Bundle, ReadLimits};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Capture start of the "before" fixture, in ms.
const T0_MS: u64 = 1_795_282_681_000;

fn write(dir: &Path, name: &str, node: &Node) -> PathBuf {
    let p = dir.join(name);
    node.write(&p).expect("write fixture bundle");
    p
}

fn diff_paths(old: &Path, new: &Path, ignore: &[&str]) -> Diff {
    let limits = ReadLimits::default();
    let (ob, nb) = (
        Bundle::open(old, &limits).expect("old opens"),
        Bundle::open(new, &limits).expect("new opens"),
    );
    let (os, om, _) = report::prepare(&ob);
    let (ns, nm, _) = report::prepare(&nb);
    diff::diff(
        &Input {
            origin: "old",
            sources: &os,
            model: &om,
        },
        &Input {
            origin: "new",
            sources: &ns,
            model: &nm,
        },
        &Ignore::new(ignore.iter().copied()),
    )
}

fn diff_nodes(old: &Node, new: &Node, ignore: &[&str]) -> Diff {
    let tmp = tempfile::tempdir().unwrap();
    let (o, n) = (write(tmp.path(), "old", old), write(tmp.path(), "new", new));
    diff_paths(&o, &n, ignore)
}

fn netsnap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netsnap"))
        .args(args)
        .output()
        .expect("run netsnap")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The healthy node at `T0_MS`, with some conntrack activity.
fn before() -> Node {
    let mut n = Node::healthy("node-1");
    n.captured_at_unix_ms = Some(T0_MS);
    n.stat_row = [("drop", 0), ("insert_failed", 1), ("invalid", 5)].into();
    n.extra_root_routes = vec![route(
        "10.246.0.0/16",
        Some("10.0.0.3"),
        2,
        "static",
        "universe",
    )];
    n.extra_root_rules = vec![Rule::lookup("inet", 200, 200)];
    n
}

/// The same node 300.5 s later, with one change of each kind.
fn after() -> Node {
    let mut n = before();
    n.captured_at = "2026-11-21T17:49:41Z".into();
    n.captured_at_unix += 300;
    n.captured_at_unix_ms = Some(T0_MS + 300_500);
    // 2 CPUs: the fixture writes v and 2v, so the sums are 3v.
    n.stat_row = [("drop", 100), ("insert_failed", 11), ("invalid", 6)].into();
    n.conntrack_count = 304;
    n.services[4].endpoints.clear(); // default/api: its only endpoint
    n.services[3].endpoints.pop(); // default/web: one of two
    n.pods.remove(4); // default/client-0
    n.pods.push(Pod::new("default", "new-0", "10.244.1.30"));
    n.pods[1].host_up = false;
    n.pods[2].mtu = 9000;
    n.pods[3].hairpin = false;
    n.forward_policy = "DROP";
    n.sysctls.insert("net.ipv4.ip_forward".into(), "0".into());
    n.extra_root_routes = vec![
        route("10.246.0.0/16", Some("10.0.0.4"), 2, "static", "universe"),
        route("10.245.0.0/16", Some("10.0.0.2"), 2, "static", "universe"),
    ];
    n.extra_root_rules = vec![Rule::lookup("inet", 100, 100)];
    n.extra_root_addrs = vec![Addr::new(2, "10.0.0.11", 24).with_label("eth0")];
    n.host_resolv = "nameserver 10.0.0.3\nsearch example.internal\n".into();
    n
}

fn find<'d>(d: &'d Diff, cat: Category, subject: &str, field: Option<&str>) -> &'d diff::Change {
    d.changes
        .iter()
        .find(|c| c.category == cat && c.subject == subject && c.field.as_deref() == field)
        .unwrap_or_else(|| {
            panic!(
                "no {cat} change of {subject} {field:?} in:\n{}",
                render::diff::render_text(d)
            )
        })
}

#[test]
fn identical_bundles_differ_in_nothing_and_exit_0() {
    let tmp = tempfile::tempdir().unwrap();
    let node = before();
    let (a, b) = (write(tmp.path(), "a", &node), write(tmp.path(), "b", &node));
    let d = diff_paths(&a, &b, &[]);
    assert!(d.changes.is_empty(), "{:#?}", d.changes);
    assert!(d.is_empty());
    let out = netsnap(&["diff", s(&a), s(&b), "--fail-on", "info"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("No differences."), "{text}");
}

#[test]
fn each_kind_of_change_is_reported_with_its_severity() {
    let d = diff_nodes(&before(), &after(), &[]);
    let web_veth = netsnap_scale::fixture::Pod::new("default", "web-7f9c6b5d4-x2k8p", "").veth();
    let api_veth = netsnap_scale::fixture::Pod::new("default", "api-6d8f7c9b8-m4n5p", "").veth();
    let client_veth = netsnap_scale::fixture::Pod::new("default", "client-0", "").veth();
    let node_link = |v: &str| format!("node {v}");
    use Category::*;
    use Severity::*;
    let want: &[(Category, &str, Option<&str>, ChangeKind, Severity)] = &[
        (
            Service,
            "default/api:http tcp (iptables-nft)",
            Some("endpoints"),
            ChangeKind::Changed,
            Critical,
        ),
        (
            Service,
            "default/web:http tcp (iptables-nft)",
            Some("endpoints"),
            ChangeKind::Changed,
            Info,
        ),
        (
            Endpoint,
            "default/web:http tcp (iptables-nft) -> 10.244.1.12:8080",
            None,
            ChangeKind::Removed,
            Warning,
        ),
        (
            Endpoint,
            "default/api:http tcp (iptables-nft) -> 10.244.1.13:8080",
            None,
            ChangeKind::Removed,
            Warning,
        ),
        (Pod, "default/client-0", None, ChangeKind::Removed, Warning),
        (Pod, "default/new-0", None, ChangeKind::Added, Info),
        (
            Link,
            &node_link(&client_veth),
            None,
            ChangeKind::Removed,
            Warning,
        ),
        (
            Link,
            &node_link(&web_veth),
            Some("state"),
            ChangeKind::Changed,
            Warning,
        ),
        (
            Link,
            "pod default/web-7f9c6b5d4-x2k8p eth0",
            Some("state"),
            ChangeKind::Changed,
            Warning,
        ),
        (
            Link,
            "pod default/web-7f9c6b5d4-q7r2m eth0",
            Some("mtu"),
            ChangeKind::Changed,
            Warning,
        ),
        (
            Link,
            &node_link(&api_veth),
            Some("hairpin"),
            ChangeKind::Changed,
            Warning,
        ),
        (
            Address,
            "node eth0 10.0.0.11/24",
            None,
            ChangeKind::Added,
            Info,
        ),
        (
            Route,
            "node table main 10.246.0.0/16",
            Some("gateway"),
            ChangeKind::Changed,
            Warning,
        ),
        (
            Route,
            "node table main 10.245.0.0/16",
            None,
            ChangeKind::Added,
            Info,
        ),
        (
            Rule,
            "node inet priority 200 from all",
            None,
            ChangeKind::Removed,
            Warning,
        ),
        (
            Rule,
            "node inet priority 100 from all",
            None,
            ChangeKind::Added,
            Info,
        ),
        (
            Chain,
            "iptables-nft ipv4 filter FORWARD",
            Some("policy"),
            ChangeKind::Changed,
            Critical,
        ),
        (
            Sysctl,
            "node",
            Some("net.ipv4.ip_forward"),
            ChangeKind::Changed,
            Warning,
        ),
        (
            Dns,
            "node",
            Some("nameservers"),
            ChangeKind::Changed,
            Warning,
        ),
    ];
    for (cat, subject, field, kind, sev) in want {
        let c = find(&d, *cat, subject, *field);
        assert_eq!(
            (c.change, c.severity),
            (*kind, *sev),
            "{cat} {subject} {field:?}: {c:?}"
        );
    }
    let api = find(
        &d,
        Service,
        "default/api:http tcp (iptables-nft)",
        Some("endpoints"),
    );
    assert_eq!(
        (api.old.as_deref(), api.new.as_deref()),
        (Some("1"), Some("0"))
    );
    // The removed pod is one entry: its own links, routes, sysctls and resolver are
    // not listed again, nor the per-interface sysctls of its host veth.
    assert!(
        !d.changes
            .iter()
            .any(|c| c.subject.starts_with("pod default/client-0")
                || c.subject == node_link(&client_veth) && c.category == Sysctl),
        "{}",
        render::diff::render_text(&d)
    );
    // Volatile counters are rates, not sysctl changes.
    assert!(!d.changes.iter().any(|c| c
        .field
        .as_deref()
        .is_some_and(|f| f.contains("conntrack_count"))));
    // Stable order: category, then subject, then field.
    let keys: Vec<_> = d
        .changes
        .iter()
        .map(|c| (c.category, c.subject.clone(), c.field.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn the_cni_config_in_use_is_part_of_the_datapath() {
    let mut new = before();
    new.files.insert(
        "host/cni/10-flannel.conflist".into(),
        include_str!("data/cni-flannel.conflist").into(),
    );
    let d = diff_nodes(&before(), &new, &[]);
    let c = find(&d, Category::Datapath, "node", Some("cni_config"));
    assert_eq!(
        (c.old.as_deref(), c.new.as_deref(), c.severity),
        (Some("none"), Some("10-flannel.conflist"), Severity::Warning)
    );
    assert_eq!(
        find(&d, Category::Datapath, "node", Some("cni"))
            .new
            .as_deref(),
        Some("flannel (cni0)")
    );
}

#[test]
fn counters_become_rates_over_the_interval() {
    let d = diff_nodes(&before(), &after(), &[]);
    let r = &d.rates;
    assert!(r.comparable, "{r:?}");
    assert_eq!(r.interval_secs, Some(300.5));
    assert_eq!(r.interval_note, None);
    let get = |name: &str| r.counters.iter().find(|c| c.counter == name).unwrap();
    // Sums over the fixture's two CPUs: 3 × the row value.
    let drop = get("drop");
    assert_eq!((drop.old, drop.new, drop.delta), (0, 300, 300));
    assert_eq!(drop.per_second, Some(300.0 / 300.5));
    assert_eq!(drop.severity, Severity::Warning);
    let failed = get("insert_failed");
    assert_eq!((failed.delta, failed.severity), (30, Severity::Warning));
    let invalid = get("invalid");
    assert_eq!((invalid.delta, invalid.severity), (3, Severity::Info));
    let count = get("count");
    assert_eq!((count.old, count.new), (4, 304));
    assert_eq!(count.per_second, Some(300.0 / 300.5));
    // Without milliseconds in the manifests, whole seconds, said so.
    let (mut old, mut new) = (before(), after());
    old.captured_at_unix_ms = None;
    new.captured_at_unix_ms = None;
    let r = diff_nodes(&old, &new, &[]).rates;
    assert_eq!(r.interval_secs, Some(300.0));
    assert!(r.interval_note.unwrap().contains("up to 1 s"));
}

#[test]
fn a_counter_that_went_down_was_reset() {
    let mut new = after();
    new.stat_row.insert("drop", 0);
    let mut old = before();
    old.stat_row.insert("drop", 50);
    let d = diff_nodes(&old, &new, &[]);
    let drop = d
        .rates
        .counters
        .iter()
        .find(|c| c.counter == "drop")
        .unwrap();
    assert!(drop.reset && drop.per_second.is_none(), "{drop:?}");
    assert!(drop.note.contains("reset"), "{}", drop.note);
    assert!(render::diff::render_text(&d).contains("reset"));
}

#[test]
fn rates_need_the_same_node_and_boot() {
    let mut rebooted = after();
    rebooted.boot_id = "00000000-0000-4000-8000-000000000002".into();
    let r = diff_nodes(&before(), &rebooted, &[]).rates;
    assert!(!r.comparable && r.counters.is_empty());
    assert!(r.reason.unwrap().contains("rebooted"));
    let mut other = after();
    other.hostname = "node-2".into();
    let d = diff_nodes(&before(), &other, &[]);
    assert!(d.rates.reason.as_deref().unwrap().contains("two nodes"));
    assert!(render::diff::render_text(&d)
        .contains("Rates: not comparable: OLD is node node-1 and NEW is node node-2"));
}

#[test]
fn ignore_patterns_drop_changes_and_rates() {
    let all = diff_nodes(&before(), &after(), &[]);
    let d = diff_nodes(
        &before(),
        &after(),
        &[
            "chain:*:rules",
            "link:node veth*",
            "rate:conntrack:invalid",
            "dns",
        ],
    );
    assert!(!d.changes.iter().any(|c| c.category == Category::Dns));
    assert!(!d
        .changes
        .iter()
        .any(|c| c.category == Category::Chain && c.field.as_deref() == Some("rules")));
    assert!(!d
        .changes
        .iter()
        .any(|c| c.category == Category::Link && c.subject.starts_with("node veth")));
    assert!(d.changes.iter().any(|c| c.category == Category::Link));
    assert!(!d.rates.counters.iter().any(|r| r.counter == "invalid"));
    assert_eq!(
        d.ignored,
        all.changes.len() - d.changes.len() + 1,
        "changes and the rate left out are counted"
    );
    assert!(render::diff::render_text(&d).contains("left out by --ignore"));
}

#[test]
fn fail_on_and_ignore_decide_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let (o, n) = (
        write(tmp.path(), "old", &before()),
        write(tmp.path(), "new", &after()),
    );
    let code = |extra: &[&str]| {
        let mut args = vec!["diff", s(&o), s(&n), "--format", "json"];
        args.extend(extra);
        let out = netsnap(&args);
        let _: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
        out.status.code()
    };
    assert_eq!(code(&[]), Some(1));
    assert_eq!(code(&["--fail-on", "never"]), Some(0));
    assert_eq!(code(&["--fail-on", "critical"]), Some(1));
    // Without the two critical changes, nothing critical is left.
    let no_crit = [
        "--ignore",
        "service:default/api*:endpoints",
        "--ignore",
        "chain:*FORWARD:policy",
    ];
    let mut args = no_crit.to_vec();
    args.extend(["--fail-on", "critical"]);
    assert_eq!(code(&args), Some(0));
    // A change only at info level passes the default --fail-on warning.
    let mut info_only = before();
    info_only.extra_root_addrs = vec![Addr::new(2, "10.0.0.11", 24).with_label("eth0")];
    let p = write(tmp.path(), "info", &info_only);
    let out = netsnap(&["diff", s(&o), s(&p)]);
    assert_eq!(out.status.code(), Some(0));
    let out = netsnap(&["diff", s(&o), s(&p), "--fail-on", "info"]);
    assert_eq!(out.status.code(), Some(1));
    let out = netsnap(&["diff", s(&o), s(&p), "--fail-on", "sometimes"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn snapshots_of_text_json_and_markdown() {
    let d = diff_nodes(&before(), &after(), &[]);
    insta::assert_snapshot!("diff_text", render::diff::render_text(&d));
    insta::assert_snapshot!("diff_json", render::diff::render_json(&d));
    insta::assert_snapshot!("diff_markdown", render::diff::render_markdown(&d));
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let good = write(tmp.path(), "good", &before());
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "not a bundle\n").unwrap();
    let out = netsnap(&["diff", s(&good), s(&text)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.txt"), "{err}");
    assert!(out.stdout.is_empty());

    // A truncated archive: named, and the entry it broke in.
    let spool = tempfile::tempdir().unwrap();
    let (w, m) = before().writer(spool.path()).unwrap();
    let archive = tmp.path().join("node-1.netsnap.tar.zst");
    w.write_archive(m, &archive).unwrap();
    let ok = netsnap(&["diff", s(&archive), s(&good)]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&archive, bytes).unwrap();
    let out = netsnap(&["diff", s(&archive), s(&good)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node-1.netsnap.tar.zst"), "{err}");
}

/// IPv6 keeps one `fe80::/64` per link: each is its own route, not one route whose
/// device flips.
#[test]
fn ipv6_routes_are_keyed_by_their_device() {
    let v6 = |oif: u32, mtu: Option<u32>| {
        let mut r = route("fe80::/64", None, oif, "kernel", "link");
        r.family = "inet6".into();
        r.metric = Some(256);
        r.mtu = mtu;
        r
    };
    let mut old = before();
    old.extra_root_routes = vec![v6(2, None), v6(3, None)];
    let mut new = before();
    new.extra_root_routes = vec![v6(3, Some(1400)), v6(2, None)];
    let d = diff_nodes(&old, &new, &[]);
    let routes: Vec<(&str, Option<&str>)> = d
        .changes
        .iter()
        .filter(|c| c.category == Category::Route)
        .map(|c| (c.subject.as_str(), c.field.as_deref()))
        .collect();
    assert_eq!(
        routes,
        [("node table main fe80::/64 dev cni0 metric 256", Some("mtu"))]
    );
}
