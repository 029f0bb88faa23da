//! `netsnap import` of what other tools collect from a lab node, each compared with a
//! direct capture of the same node (every finding whose evidence the tool collected
//! must be found again, nothing else; what it lacks is listed as unavailable):
//! - a real `sos report` (Debian's sosreport, networking and kernel plugins), confined
//!   to the lab by scripts/sos-confined; one run, a few seconds on a small node, bounded;
//! - the hand recipe (scripts/peer-hand-recipe), confined to the lab's netns;
//! - the EKS log collector's tree, made by running the commands its script runs
//!   (awslabs/amazon-eks-ami, log-collector-script/linux/eks-log-collector.sh) in the
//!   node's netns, in its layout, as its `.tar.gz`.

use netsnap_schema::{Bundle, ReadLimits, SourceStatus};
use netsnap_tests::collect_support::{collect_lab, with_built_lab};
use netsnap_tests::import_compare::compare;
use netsnap_tests::lab::{ok_stdout, require_lab, CniMode, Lab};
use netsnap_tests::notice;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SOS_TIMEOUT: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs scripts/sos-confined on the lab with its default options plus the kernel
/// plugin (for `sysctl -a`); returns the report archive.
fn sos_report(lab: &Lab) -> PathBuf {
    let out = lab.dir().join("sos-out");
    let script = repo().join("scripts/sos-confined");
    let defaults = Command::new(&script)
        .arg("--options")
        .output()
        .expect("sos-confined --options");
    let options = String::from_utf8_lossy(&defaults.stdout).replacen(
        "-o networking",
        "-o networking,kernel",
        1,
    );
    let start = Instant::now();
    run(
        Command::new("timeout")
            .arg(SOS_TIMEOUT.as_secs().to_string())
            .arg(&script)
            .arg(lab.name())
            .arg(&out)
            .args(options.split_whitespace()),
        "scripts/sos-confined",
    );
    notice(&format!(
        "sos report of the lab node: {:.1} s",
        start.elapsed().as_secs_f64()
    ));
    std::fs::read_dir(&out)
        .expect("sos output dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".tar.xz"))
        .expect("an sosreport .tar.xz")
}

/// Runs scripts/peer-hand-recipe on the lab node and its netns.
fn hand_recipe(lab: &Lab) -> PathBuf {
    let out = lab.dir().join("hand.tar.zst");
    run(
        Command::new(repo().join("scripts/peer-hand-recipe"))
            .arg(&out)
            .args(["--node-netns", lab.node_netns_name()])
            .args(["--netns-glob", &format!("{}.*", lab.name())])
            .arg("--host-root")
            .arg(lab.host_root()),
        "scripts/peer-hand-recipe",
    );
    out
}

/// The EKS log collector's tree of the lab node, as `.tar.gz`.
fn eks_tree(lab: &Lab) -> PathBuf {
    let dir = lab.dir().join("eks-log-collector");
    for d in ["networking", "sysctls", "system", "cni"] {
        std::fs::create_dir_all(dir.join(d)).expect("eks dirs");
    }
    let node = |args: &[&str]| ok_stdout(&lab.node(args));
    let write = |rel: &str, text: String| std::fs::write(dir.join(rel), text).expect("eks file");
    write("networking/iptables-save.txt", node(&["iptables-save"]));
    write("networking/ip6tables-save.txt", node(&["ip6tables-save"]));
    write("networking/ipvsadm.txt", "ipvsadm not installed\n".into());
    write(
        "networking/conntrack.txt",
        format!(
            "*** Output of conntrack -S *** \n{}*** Output of conntrack -L ***\n{}",
            node(&["conntrack", "-S"]),
            node(&["conntrack", "-L"])
        ),
    );
    write(
        "networking/conntrack6.txt",
        format!(
            "*** Output of conntrack -L -f ipv6 ***\n{}",
            node(&["conntrack", "-L", "-f", "ipv6"])
        ),
    );
    write("networking/iprule.txt", node(&["ip", "rule", "show"]));
    write(
        "networking/ip6rule.txt",
        node(&["ip", "-6", "rule", "show"]),
    );
    write(
        "networking/iproute.txt",
        node(&["ip", "route", "show", "table", "all"]),
    );
    write(
        "networking/ip6route.txt",
        node(&["ip", "-6", "route", "show", "table", "all"]),
    );
    write("sysctls/sysctl_all.txt", node(&["sysctl", "--all"]));
    write("system/instance-id.txt", "i-0123456789abcdef0\n".into());
    let resolv =
        std::fs::read_to_string(lab.host_root().join("etc/resolv.conf")).expect("resolv.conf");
    write("networking/resolv.conf", resolv);
    for entry in std::fs::read_dir(lab.host_root().join("etc/cni/net.d"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        write(
            &format!("cni/{name}"),
            std::fs::read_to_string(entry.path()).expect("CNI config"),
        );
    }
    let out = lab.dir().join("eks_i-0123456789abcdef0.tar.gz");
    run(
        Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-czf")
            .arg(&out)
            .arg("."),
        "tar",
    );
    out
}

/// A `cilium-dbg bugtool` archive of the lab node, made by hand (no Cilium runs
/// here): bugtool's commands run in the node netns, written under bugtool's names
/// (`ip -d -s l` → `cmd/ip--d--s-l.md`), half of them in its `--enable-markdown`
/// form, stdout and stderr together as bugtool writes them; an uncompressed `.tar`,
/// bugtool's default.
fn bugtool_archive(lab: &Lab) -> PathBuf {
    let top = lab.dir().join("bugtool");
    let cmd = top.join("cilium-bugtool-20261205-060000.123+0000-UTC-1234567/cmd");
    std::fs::create_dir_all(&cmd).expect("bugtool dir");
    let commands = [
        "ip a",
        "ip -4 r",
        "ip -6 r",
        "ip -d -s l",
        "ip -4 n",
        "ip -6 n",
        "ip rule",
        "sysctl -a",
        "iptables-save -c",
        "iptables-nft-save -c",
        "iptables-legacy-save -c",
    ];
    for (i, c) in commands.iter().enumerate() {
        let script = format!("{c} 2>&1");
        let out = ok_stdout(&lab.node(&["sh", "-c", &script]));
        let body = if i % 2 == 0 {
            out
        } else {
            format!("# {c}\n\n```\n{out}\n```\n")
        };
        std::fs::write(
            cmd.join(netsnap_import::layouts::bugtool::file_name(c)),
            body,
        )
        .expect("bugtool file");
    }
    let resolv =
        std::fs::read_to_string(lab.host_root().join("etc/resolv.conf")).expect("resolv.conf");
    std::fs::write(
        cmd.join(netsnap_import::layouts::bugtool::file_name(
            "cat /etc/resolv.conf",
        )),
        resolv,
    )
    .expect("resolv");
    let out = lab.dir().join("cilium-bugtool.tar");
    run(
        Command::new("tar")
            .arg("-C")
            .arg(&top)
            .arg("-cf")
            .arg(&out)
            .arg("."),
        "tar",
    );
    out
}

fn import(input: PathBuf) -> Bundle {
    let limits = ReadLimits::default();
    let draft = netsnap_import::import(&[input], &limits).expect("import");
    netsnap_import::into_bundle(draft, "imported", &limits).expect("bundle")
}

fn unavailable(b: &Bundle) -> Vec<String> {
    b.manifest
        .sources
        .iter()
        .filter(|s| s.status == SourceStatus::Unavailable)
        .map(|s| {
            format!(
                "{}{}",
                s.name,
                s.netns
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Imports one tool's output and compares it with the direct capture.
fn check(direct: &Bundle, what: &str, input: PathBuf, lacks: &[&str], at_least: usize) -> Bundle {
    let imported = import(input);
    let missing = unavailable(&imported);
    for expected in lacks {
        assert!(
            missing.iter().any(|u| u == expected),
            "{what}: {expected} not listed unavailable: {missing:?}"
        );
    }
    let c = compare(direct, &imported);
    notice(&c.summary(what));
    if !c.uncovered.is_empty() {
        notice(&format!("{what}: not covered: {}", c.uncovered.join("; ")));
    }
    assert!(
        c.missing.is_empty(),
        "{what}: covered findings not found again:\n{}",
        c.missing.join("\n")
    );
    assert!(
        c.extra.is_empty(),
        "{what}: findings the direct capture does not have:\n{}",
        c.extra.join("\n")
    );
    assert!(
        c.matched.len() >= at_least,
        "{what}: too few findings compared: {:?}",
        c.matched
    );
    imported
}

/// The recogniser that made an imported bundle path, if it was imported.
fn recogniser(b: &Bundle, path: &str) -> Option<String> {
    let rec = b.manifest.source_at(path)?;
    Some(rec.imported_from.as_ref()?.recogniser.clone())
}

#[test]
fn other_tools_output_of_a_lab_node_gives_the_direct_captures_findings() {
    let Some(_env) = require_lab() else { return };
    assert!(
        Command::new("sos").arg("--help").output().is_ok(),
        "sos is not installed (scripts/test installs sosreport)"
    );
    let b = Lab::builder("imptools")
        .pods(3)
        .services(4)
        .cni(CniMode::Bridge);
    with_built_lab(b, |lab| {
        lab.fault_service_without_endpoints(1)?;
        lab.fault_mtu_mismatch(0)?;
        lab.fault_no_default_route(2)?;
        lab.fault_kube_rules_in_both_backends()?;
        let direct = collect_lab(lab, "direct", &[]);
        let direct = Bundle::open(&direct, &ReadLimits::default())?;
        let sos = check(
            &direct,
            "sos report",
            sos_report(lab),
            &["host/facts", "iptables-legacy-save"],
            3,
        );
        // sos 4.0 has nft as text only: converted to the JSON bundles hold.
        assert_eq!(
            recogniser(&sos, "netfilter/nft.json").as_deref(),
            Some("nft-list-ruleset")
        );
        // The kernel plugin's `dmesg` and the networking plugin's `bridge fdb show`.
        assert_eq!(recogniser(&sos, "host/kmsg.txt").as_deref(), Some("dmesg"));
        let neigh: netsnap_schema::model::NeighTable =
            sos.json("netns/root/neigh.json")?.expect("neigh.json");
        assert!(
            !neigh.fdb.is_empty(),
            "sos report: bridge fdb show not imported"
        );
        let hand = check(
            &direct,
            "hand recipe",
            hand_recipe(lab),
            &["host/facts", "host/cni"],
            5,
        );
        // The recipe's `dmesg` and `bridge -j fdb show` are read.
        assert_eq!(recogniser(&hand, "host/kmsg.txt").as_deref(), Some("dmesg"));
        let neigh: netsnap_schema::model::NeighTable =
            hand.json("netns/root/neigh.json")?.expect("neigh.json");
        assert!(!neigh.fdb.is_empty(), "hand recipe: fdb.json not imported");
        // The EKS tree has no links or pod netns and only the default iptables: of
        // this node's findings only the conntrack one is within its reach.
        let eks = check(
            &direct,
            "EKS log collector",
            eks_tree(lab),
            &[
                "netns/links (root)",
                "netns/addrs (root)",
                "netns/neigh (root)",
                "nft",
            ],
            1,
        );
        // bugtool lists routes of the main table only and has no conntrack table.
        let bugtool = check(
            &direct,
            "cilium bugtool",
            bugtool_archive(lab),
            &["conntrack/entries", "netns/sockets (root)", "nft"],
            2,
        );
        let routes = bugtool
            .manifest
            .source_at("netns/root/routes.json")
            .and_then(|r| r.note.clone());
        assert!(
            routes.is_some_and(|n| n.contains("the local table")),
            "bugtool's routes say what they lack"
        );
        let cni = |b: &Bundle| {
            b.paths()
                .filter(|p| p.starts_with("host/cni/"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(cni(&eks), cni(&direct), "the CNI configuration is imported");
        assert!(eks.file("host/sysctl.json").is_some() && eks.file("conntrack/stat.txt").is_some());
        Ok(())
    })
    .expect("lab");
}
