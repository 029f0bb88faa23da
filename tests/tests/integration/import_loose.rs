//! `netsnap import` of loose dumps made by the real tools on a lab node (run in the
//! node netns), against a direct capture of the same node: every finding whose
//! evidence the dumps hold must be found again, nothing else found. The dumps are
//! handed over as a ticket would have them: file names that say nothing, one pasted
//! with a shell prompt and text after it, one cut in the middle of its last line,
//! IPv4 and IPv6, `-c` counters, both iptables backends. A second import takes the
//! other forms (`ip -j`, `/proc/net/nf_conntrack`, `/proc/net/stat/nf_conntrack`,
//! `nft list ruleset` text) of the same node.

use netsnap_schema::{Bundle, ReadLimits};
use netsnap_tests::collect_support::{collect_lab, with_built_lab};
use netsnap_tests::import_compare::{assert_same, compare};
use netsnap_tests::lab::{ok_stdout, require_lab, Lab};
use netsnap_tests::notice;
use std::path::{Path, PathBuf};

/// Runs a tool in the lab node's netns and returns its stdout.
pub(crate) fn dump(lab: &Lab, args: &[&str]) -> String {
    ok_stdout(&lab.node(args))
}

/// Writes the numbered files of one import into a fresh directory.
pub(crate) fn write_inputs(dir: &Path, files: &[String]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("input dir");
    files
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let p = dir.join(format!("ticket-attachment-{i:02}.txt"));
            std::fs::write(&p, text).expect("write input");
            p
        })
        .collect()
}

pub(crate) fn import(paths: &[PathBuf]) -> (Bundle, netsnap_import::Draft) {
    let limits = ReadLimits::default();
    let draft = netsnap_import::import(paths, &limits).expect("import");
    let again = netsnap_import::import(paths, &limits).expect("import");
    let bundle = netsnap_import::into_bundle(again, "imported", &limits).expect("bundle");
    (bundle, draft)
}

/// The first set: command output as people paste it.
fn command_forms(lab: &Lab) -> Vec<String> {
    let ipt = dump(lab, &["iptables-nft-save", "-c"]);
    let conntrack = dump(lab, &["conntrack", "-L"]);
    // A paste that stopped in the middle of a line: the first entry again, cut.
    let cut = format!("{conntrack}{}", &conntrack[..40]);
    let resolv =
        std::fs::read_to_string(lab.host_root().join("etc/resolv.conf")).expect("resolv.conf");
    vec![
        format!("root@node-7:~# iptables-save -c\n{ipt}root@node-7:~# exit\nlogout\nConnection to node-7 closed.\n"),
        dump(lab, &["ip6tables-nft-save", "-c"]),
        dump(lab, &["iptables-legacy-save", "-c"]),
        cut,
        dump(lab, &["conntrack", "-L", "-f", "ipv6"]),
        dump(lab, &["conntrack", "-S"]),
        dump(lab, &["ip", "-d", "addr", "show"]),
        dump(lab, &["ip", "route", "show", "table", "all"]),
        format!("$ ip -6 route show table all\n{}", dump(lab, &["ip", "-6", "route", "show", "table", "all"])),
        dump(lab, &["ip", "rule", "show"]),
        dump(lab, &["ip", "neigh", "show"]),
        dump(lab, &["sysctl", "-a"]),
        resolv,
    ]
}

/// The second set: JSON and kernel-file forms of the same state.
fn kernel_forms(lab: &Lab) -> Vec<String> {
    vec![
        dump(lab, &["iptables-nft-save", "-c"]),
        dump(lab, &["ip6tables-nft-save", "-c"]),
        dump(lab, &["iptables-legacy-save", "-c"]),
        dump(lab, &["cat", "/proc/net/nf_conntrack"]),
        dump(lab, &["cat", "/proc/net/nf_conntrack"]),
        dump(lab, &["cat", "/proc/net/stat/nf_conntrack"]),
        dump(lab, &["ip", "-j", "-d", "link", "show"]),
        dump(lab, &["ip", "-j", "addr", "show"]),
        dump(lab, &["ip", "-j", "route", "show", "table", "all"]),
        dump(lab, &["ip", "-j", "rule", "show"]),
        dump(lab, &["ip", "-j", "neigh", "show"]),
        dump(lab, &["nft", "list", "ruleset"]),
        dump(lab, &["sysctl", "-a"]),
    ]
}

pub(crate) fn notes_of(draft: &netsnap_import::Draft) -> Vec<String> {
    draft.inputs.iter().flat_map(|i| i.notes.clone()).collect()
}

#[test]
fn loose_dumps_of_a_lab_node_give_the_direct_captures_findings() {
    let Some(_env) = require_lab() else { return };
    let b = Lab::builder("imploose")
        .pods(3)
        .services(4)
        .dual_stack(true);
    with_built_lab(b, |lab| {
        lab.fault_service_without_endpoints(1)?;
        lab.fault_bridge_nf_call_iptables_off()?;
        lab.fault_kube_rules_in_both_backends()?;
        lab.fault_service_without_endpoints_v6(2)?;
        let direct = collect_lab(lab, "direct", &[]);
        let direct = Bundle::open(&direct, &ReadLimits::default())?;

        let paths = write_inputs(&lab.dir().join("import-a"), &command_forms(lab));
        let (bundle, draft) = import(&paths);
        let notes = notes_of(&draft);
        notice(&format!(
            "import of command output: {} input(s), {} note(s)",
            paths.len(),
            notes.len()
        ));
        let has = |needle: &str| notes.iter().any(|n| n.contains(needle));
        assert!(
            has("shell prompt `iptables-save -c` left out"),
            "{notes:#?}"
        );
        assert!(
            has("no recognised dump left out (first: \"logout\")"),
            "{notes:#?}"
        );
        assert!(
            has("shell prompt `ip -6 route show table all` left out"),
            "{notes:#?}"
        );
        assert!(has("cut in the middle of the line"), "{notes:#?}");
        for path in [
            "netfilter/iptables-nft-save.txt",
            "netfilter/ip6tables-nft-save.txt",
            "netfilter/iptables-legacy-save.txt",
            "conntrack/nf_conntrack.txt",
            "conntrack/stat.txt",
            "netns/root/links.json",
            "netns/root/addrs.json",
            "netns/root/routes.json",
            "netns/root/neigh.json",
            "host/sysctl.json",
            "host/resolv.conf",
        ] {
            let rec = bundle
                .manifest
                .source_at(path)
                .unwrap_or_else(|| panic!("{path} not imported"));
            let from = rec.imported_from.as_ref().expect("imported_from");
            assert!(from.path.contains("ticket-attachment-"), "{path}: {from:?}");
        }
        let routes: netsnap_schema::model::RouteTable =
            bundle.json("netns/root/routes.json")?.expect("routes");
        let direct_routes: netsnap_schema::model::RouteTable =
            direct.json("netns/root/routes.json")?.expect("routes");
        assert_eq!(
            routes.routes.len(),
            direct_routes.routes.len(),
            "every route of every table, both families"
        );
        assert!(
            routes
                .routes
                .iter()
                .any(|r| r.family == "inet6" && r.dst == "default"),
            "IPv6 default route"
        );
        assert_eq!(
            routes.rules.len(),
            direct_routes
                .rules
                .iter()
                .filter(|r| r.family == "inet")
                .count()
        );
        assert_same(&compare(&direct, &bundle), "command output");

        let paths = write_inputs(&lab.dir().join("import-b"), &kernel_forms(lab));
        let (bundle, draft) = import(&paths);
        // The node's nft ruleset is iptables-nft's tables only: converted, and left
        // out as the iptables-save dumps' content.
        let nft = bundle
            .manifest
            .source_at("netfilter/nft.json")
            .expect("nft.json");
        assert!(
            nft.note
                .as_deref()
                .is_some_and(|n| n.contains("table(s) iptables-nft manages left out")),
            "{nft:?} {:#?}",
            notes_of(&draft)
        );
        // The operational state is left out: a fresh bridge goes from `unknown` to `up`
        // between the capture and the dump; so is the peer nsid, which an import
        // without the pods' netns leaves out on purpose.
        let recs = &bundle.manifest.sources;
        assert!(recs.iter().any(|r| r.name == "netns/links"
            && r.note
                .as_deref()
                .is_some_and(|n| n.contains("link_netnsid left out"))));
        let links_of = |b: &Bundle| -> Vec<netsnap_schema::model::Link> {
            let links: Vec<netsnap_schema::model::Link> = b
                .json("netns/root/links.json")
                .expect("json")
                .expect("links");
            links
                .into_iter()
                .map(|mut l| {
                    l.link_netnsid = None;
                    l.with_state(netsnap_schema::model::LinkState::Unknown)
                })
                .collect()
        };
        assert_eq!(
            links_of(&bundle),
            links_of(&direct),
            "ip -j -d link gives what netlink gives"
        );
        assert_same(&compare(&direct, &bundle), "JSON and kernel files");
        Ok(())
    })
    .expect("lab");
}
