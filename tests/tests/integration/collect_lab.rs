//! `netsnap-collect` against a lab node with 20 pods and 50 services, checked against
//! ground truth read with `ip -d -j`, `iptables-save`, `conntrack` and /proc.
//!
//! Needs root (skipped with a visible reason otherwise; `NETSNAP_LAB=required` makes
//! a skip a failure).

use anyhow::{ensure, Context, Result};
use netsnap_schema::layout::{self, NetnsFile};
use netsnap_schema::model::{
    Addr, Link, NetnsIndex, PodIdentitySource, RouteTable, Socket, SocketProto,
};
use netsnap_schema::{Bundle, SourceStatus};
use netsnap_tests::collector::{self as c, RunOpts, TempDir};
use netsnap_tests::lab::{self, assert_no_leaks, require_lab, Lab};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

fn json<T: serde::de::DeserializeOwned>(b: &Bundle, path: &str) -> Result<T> {
    b.json::<T>(path)?
        .with_context(|| format!("{path} missing from the bundle"))
}

/// Bundle netns id of a netns file (by inode).
fn netns_id(index: &NetnsIndex, path: &std::path::Path) -> Result<String> {
    let ino = lab::netns::inode(path)?;
    index
        .netns
        .iter()
        .find(|n| n.inode == ino)
        .map(|n| n.id.clone())
        .with_context(|| format!("netns {} (inode {ino}) not in the index", path.display()))
}

/// Compares the bundle's links of one netns with `ip -d -j link show`.
fn check_links(netns: &str, links: &[Link]) -> Result<()> {
    let truth = c::ip_json(netns, &["-d", "link", "show"])?;
    let truth = truth.as_array().context("ip link json")?;
    ensure!(
        truth.len() == links.len(),
        "{netns}: {} links in the bundle, {} live",
        links.len(),
        truth.len()
    );
    let by_name: HashMap<&str, u64> = truth
        .iter()
        .filter_map(|l| Some((l["ifname"].as_str()?, l["ifindex"].as_u64()?)))
        .collect();
    for t in truth {
        let ifindex = t["ifindex"].as_u64().context("ifindex")? as u32;
        let l = links
            .iter()
            .find(|l| l.ifindex == ifindex)
            .with_context(|| format!("{netns}: ifindex {ifindex} missing"))?;
        let what = format!("{netns} {}", l.name);
        ensure!(
            Some(l.name.as_str()) == t["ifname"].as_str(),
            "{what}: name"
        );
        ensure!(
            Some(u64::from(l.mtu)) == t["mtu"].as_u64(),
            "{what}: mtu {} vs {}",
            l.mtu,
            t["mtu"]
        );
        let state = serde_json::to_value(l.state)?;
        ensure!(
            state.as_str().map(str::to_ascii_uppercase).as_deref() == t["operstate"].as_str(),
            "{what}: state {state} vs {}",
            t["operstate"]
        );
        if let Some(mac) = t["address"].as_str() {
            ensure!(
                l.mac.as_deref() == Some(mac),
                "{what}: mac {:?} vs {mac}",
                l.mac
            );
        }
        let master = t["master"]
            .as_str()
            .and_then(|m| by_name.get(m))
            .map(|i| *i as u32);
        ensure!(
            l.master == master,
            "{what}: master {:?} vs {master:?}",
            l.master
        );
        if let Some(peer) = t["link_index"].as_u64() {
            ensure!(
                l.link == Some(peer as u32),
                "{what}: link {:?} vs {peer}",
                l.link
            );
        }
        let nsid = t["link_netnsid"].as_i64().map(|n| n as i32);
        ensure!(
            l.link_netnsid == nsid,
            "{what}: link_netnsid {:?} vs {nsid:?}",
            l.link_netnsid
        );
        let kind = t["linkinfo"]["info_kind"].as_str();
        ensure!(
            l.kind.as_deref() == kind,
            "{what}: kind {:?} vs {kind:?}",
            l.kind
        );
        if let Some(h) = t["linkinfo"]["info_slave_data"]["hairpin"].as_bool() {
            let ours = l.bridge_port.as_ref().map(|p| p.hairpin);
            ensure!(ours == Some(h), "{what}: hairpin {ours:?} vs {h}");
        }
    }
    Ok(())
}

fn check_addrs(netns: &str, addrs: &[Addr]) -> Result<()> {
    let truth = c::ip_json(netns, &["addr", "show"])?;
    let mut want = BTreeSet::new();
    for l in truth.as_array().context("ip addr json")? {
        let ifindex = l["ifindex"].as_u64().unwrap_or(0) as u32;
        for a in l["addr_info"].as_array().into_iter().flatten() {
            want.insert((
                ifindex,
                a["family"].as_str().unwrap_or("").to_string(),
                a["local"].as_str().unwrap_or("").to_string(),
                a["prefixlen"].as_u64().unwrap_or(0) as u8,
            ));
        }
    }
    let got: BTreeSet<_> = addrs
        .iter()
        .map(|a| (a.ifindex, a.family.clone(), a.address.clone(), a.prefix_len))
        .collect();
    ensure!(
        got == want,
        "{netns}: addresses differ\nbundle: {got:?}\nlive:   {want:?}"
    );
    Ok(())
}

fn table_id(v: &Value) -> u32 {
    match v.as_str() {
        None | Some("main") => 254,
        Some("local") => 255,
        Some("default") => 253,
        Some(n) => n.parse().unwrap_or(0),
    }
}

fn check_routes(netns: &str, routes: &RouteTable, links: &[Link]) -> Result<()> {
    let name_to_index: HashMap<&str, u32> =
        links.iter().map(|l| (l.name.as_str(), l.ifindex)).collect();
    let mut want = BTreeSet::new();
    for (fam, full) in [("-4", 32), ("-6", 128)] {
        let truth = c::ip_json(netns, &[fam, "route", "show", "table", "all"])?;
        for r in truth.as_array().context("ip route json")? {
            let mut dst = r["dst"].as_str().unwrap_or("").to_string();
            if dst != "default" && !dst.contains('/') {
                dst = format!("{dst}/{full}");
            }
            if dst == "default" {
                dst = "default".into();
            }
            let kind = r["type"].as_str().unwrap_or("unicast").to_string();
            let dev = r["dev"]
                .as_str()
                .and_then(|d| name_to_index.get(d))
                .copied();
            let gw = r["gateway"].as_str().map(str::to_string);
            want.insert((table_id(&r["table"]), dst, kind, gw, dev));
        }
    }
    let got: BTreeSet<_> = routes
        .routes
        .iter()
        .map(|r| {
            // The kernel sends `0.0.0.0/0`-less defaults; ip prints "default" for /0.
            let dst = if r.dst.ends_with("/0") {
                "default".to_string()
            } else {
                r.dst.clone()
            };
            (r.table, dst, r.kind.clone(), r.gateway.clone(), r.oif)
        })
        .collect();
    ensure!(
        got == want,
        "{netns}: routes differ\nbundle only: {:?}\nlive only:   {:?}",
        got.difference(&want).collect::<Vec<_>>(),
        want.difference(&got).collect::<Vec<_>>()
    );
    let rules = c::ip_json(netns, &["-4", "rule", "show"])?;
    let v4_rules = routes.rules.iter().filter(|r| r.family == "inet").count();
    ensure!(
        rules.as_array().map(Vec::len) == Some(v4_rules),
        "{netns}: {v4_rules} IPv4 rules in the bundle, live {rules}"
    );
    Ok(())
}

/// Conntrack lines with the timeout column blanked (it counts down).
fn ct_normal(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let mut f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
            if f.len() > 4 {
                f[4] = "T".into();
            }
            f.join(" ")
        })
        .collect()
}

fn conntrack_count(lab: &Lab) -> Result<u64> {
    let out = lab.node(&["conntrack", "-C"]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("conntrack -C")
}

#[test]
fn collect_lab_node_matches_ground_truth() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    let lab = Lab::builder("collect")
        .pods(20)
        .services(50)
        .endpoints_per_service(2)
        .build()?;
    let fp = lab.footprint();
    let result = check_lab(&lab);
    lab.teardown()?;
    assert_no_leaks(&fp);
    result
}

fn check_lab(lab: &Lab) -> Result<()> {
    let node_ns = lab.node_netns_name().to_string();
    let mut all_ns = vec![node_ns.clone()];
    all_ns.extend(lab.pods().iter().map(|p| p.netns_name.clone()));

    // Ground truth before (once IPv6 DAD is done: it adds routes by itself).
    c::wait_settled(&all_ns)?;
    let mut before = BTreeMap::new();
    for ns in &all_ns {
        before.insert(ns.clone(), c::netns_snapshot(ns)?);
    }
    let ipt_before = lab.iptables_save(false)?;
    let legacy_before = lab.iptables_save(true)?;
    let nft_before = c::sh(&["ip", "netns", "exec", &node_ns, "nft", "list", "ruleset"])?;
    let ct_before = conntrack_count(lab)?;

    let dir = TempDir::new("lab")?;
    let out = dir.path().join("lab.netsnap.tar.zst");
    let node_path = lab.node_netns_path();
    let args = [
        "--node-netns",
        node_path.to_str().context("path")?,
        "--host-root",
        lab.host_root().to_str().context("path")?,
        "-o",
        out.to_str().context("path")?,
    ];
    let run = c::run(
        &args,
        RunOpts {
            own_rss: true,
            ..Default::default()
        },
    )?;
    let ct_proc = c::sh(&[
        "ip",
        "netns",
        "exec",
        &node_ns,
        "cat",
        "/proc/net/nf_conntrack",
    ])?;
    let ct_after = conntrack_count(lab)?;
    ensure!(run.status.success(), "collector failed: {}", run.stderr);
    notice(&format!(
        "collect_lab: {} pods, {} service ports: capture took {:.3}s wall, peak RSS {} KiB",
        lab.pods().len(),
        lab.services().len(),
        run.wall.as_secs_f64(),
        run.max_rss_kib
    ));
    ensure!(run.wall.as_secs() < 10, "capture took {:?}", run.wall);
    ensure!(
        run.stderr.contains("netns/links"),
        "no summary on stderr: {}",
        run.stderr
    );

    // Read-only: nothing changed.
    for ns in &all_ns {
        let after = c::netns_snapshot(ns)?;
        for (k, v) in &before[ns] {
            ensure!(
                after.get(k) == Some(v),
                "{ns}: {k} changed during the capture:\nbefore: {v}\nafter:  {}",
                after.get(k).cloned().unwrap_or_default()
            );
        }
    }
    ensure!(
        c::normalize_iptables_save(&lab.iptables_save(false)?)
            == c::normalize_iptables_save(&ipt_before),
        "iptables-nft rules changed"
    );
    ensure!(
        c::normalize_iptables_save(&lab.iptables_save(true)?)
            == c::normalize_iptables_save(&legacy_before),
        "iptables-legacy rules changed"
    );
    ensure!(
        c::sh(&["ip", "netns", "exec", &node_ns, "nft", "list", "ruleset"])?
            .replace(char::is_numeric, "")
            == nft_before.replace(char::is_numeric, ""),
        "nft ruleset changed"
    );
    ensure!(
        ct_after.abs_diff(ct_before) <= 2,
        "conntrack count {ct_before} -> {ct_after}"
    );

    let b = c::open_bundle(&out)?;
    // Every source is accounted for; none failed.
    for r in &b.manifest.sources {
        ensure!(r.status != SourceStatus::Failed, "failed source: {r:?}");
        if r.status == SourceStatus::Partial {
            // This sandbox's pid 1 hides its netns even from root.
            ensure!(r.name == "netns/index", "partial source: {r:?}");
        }
    }
    let index: NetnsIndex = json(&b, layout::NETNS_INDEX)?;
    let root = index
        .netns
        .iter()
        .find(|n| n.is_root)
        .context("no root netns")?;
    ensure!(root.id == "root" && root.inode == lab::netns::inode(&node_path)?);

    // Every pod: identity, hostname, resolv.conf, sockets, links, addrs, routes.
    let node_links: Vec<Link> = json(&b, &layout::netns_path("root", NetnsFile::Links))?;
    for p in lab.pods() {
        let id = netns_id(&index, &p.netns_path)?;
        let e = index.netns.iter().find(|n| n.id == id).context("entry")?;
        let pod = e
            .pod
            .as_ref()
            .with_context(|| format!("{}: no pod identity", p.name))?;
        ensure!(
            pod.namespace.as_deref() == Some(p.namespace.as_str()),
            "{}: namespace",
            p.name
        );
        ensure!(
            pod.name.as_deref() == Some(p.name.as_str()),
            "{}: name {:?}",
            p.name,
            pod.name
        );
        ensure!(
            pod.uid.as_deref() == Some(p.uid.as_str()),
            "{}: uid",
            p.name
        );
        ensure!(
            pod.source == PodIdentitySource::CgroupAndPodLogs,
            "{}: source {:?}",
            p.name,
            pod.source
        );
        ensure!(
            e.hostname.as_deref() == Some(p.hostname.as_str()),
            "{}: hostname {:?}",
            p.name,
            e.hostname
        );
        ensure!(
            e.pids.contains(&p.pid),
            "{}: pid {} not listed",
            p.name,
            p.pid
        );

        let resolv = b
            .text(&layout::netns_path(&id, NetnsFile::ResolvConf))
            .with_context(|| format!("{}: no resolv.conf", p.name))?;
        ensure!(
            resolv == p.resolv_conf,
            "{}: resolv.conf is not the pod's own:\n{resolv}",
            p.name
        );

        let sockets: Vec<Socket> = json(&b, &layout::netns_path(&id, NetnsFile::Sockets))?;
        for port in &p.listen_ports {
            ensure!(
                sockets
                    .iter()
                    .any(|s| matches!(s.proto, SocketProto::Tcp | SocketProto::Tcp6)
                        && s.port == *port),
                "{}: TCP listener {port} missing",
                p.name
            );
        }
        for port in &p.udp_ports {
            ensure!(
                sockets
                    .iter()
                    .any(|s| matches!(s.proto, SocketProto::Udp | SocketProto::Udp6)
                        && s.port == *port),
                "{}: UDP socket {port} missing",
                p.name
            );
        }

        let links: Vec<Link> = json(&b, &layout::netns_path(&id, NetnsFile::Links))?;
        check_links(&p.netns_name, &links)?;
        check_addrs(
            &p.netns_name,
            &json::<Vec<Addr>>(&b, &layout::netns_path(&id, NetnsFile::Addrs))?,
        )?;
        check_routes(
            &p.netns_name,
            &json(&b, &layout::netns_path(&id, NetnsFile::Routes))?,
            &links,
        )?;

        // Veth pairing from bundle data alone, by (netns, ifindex): the host veth's
        // peer is (nsid → netns, ifindex) and must be this pod's eth0.
        let host = node_links
            .iter()
            .find(|l| l.name == p.host_veth)
            .with_context(|| format!("host veth {} missing", p.host_veth))?;
        let peer_ns = index
            .netns
            .iter()
            .find(|n| n.nsid.is_some() && n.nsid == host.link_netnsid)
            .with_context(|| {
                format!(
                    "{}: no netns with nsid {:?}",
                    p.host_veth, host.link_netnsid
                )
            })?;
        ensure!(
            peer_ns.id == id,
            "{}: peer netns {} is not {}'s ({id})",
            p.host_veth,
            peer_ns.id,
            p.name
        );
        let peer = links
            .iter()
            .find(|l| Some(l.ifindex) == host.link)
            .with_context(|| {
                format!("{}: peer ifindex {:?} not in {id}", p.host_veth, host.link)
            })?;
        ensure!(
            peer.name == "eth0",
            "{}: peer is {}",
            p.host_veth,
            peer.name
        );
        ensure!(
            peer.link == Some(host.ifindex),
            "{}: eth0 does not point back",
            p.name
        );
    }

    // The node: links (mtu, master, hairpin, peers), addrs, routes, sysctls.
    check_links(&node_ns, &node_links)?;
    check_addrs(
        &node_ns,
        &json::<Vec<Addr>>(&b, &layout::netns_path("root", NetnsFile::Addrs))?,
    )?;
    check_routes(
        &node_ns,
        &json(&b, &layout::netns_path("root", NetnsFile::Routes))?,
        &node_links,
    )?;
    let sysctl: BTreeMap<String, String> =
        json(&b, &layout::netns_path("root", NetnsFile::Sysctl))?;
    for key in ["net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"] {
        let live = lab::netns::sysctl_get(&node_ns, key)?;
        let ours = sysctl
            .get(&key.replace('/', "."))
            .cloned()
            .unwrap_or_default();
        ensure!(ours == live.trim(), "{key}: {ours} vs {live}");
    }

    // iptables: the capture equals a live save apart from counters.
    let saved = b
        .text(layout::IPTABLES_NFT_SAVE)
        .context("no iptables-nft-save")?;
    ensure!(
        saved.contains("[0:0]") || saved.contains("] -A"),
        "saved without counters"
    );
    ensure!(
        c::normalize_iptables_save(&saved) == c::normalize_iptables_save(&ipt_before),
        "iptables-nft-save differs from the live rules"
    );
    ensure!(saved.contains("KUBE-SERVICES") && saved.contains("KUBE-SEP-"));

    // Conntrack: the count matches `conntrack -C`, and the entries are exactly the
    // /proc view (rendered from ctnetlink).
    let ct = b
        .text(layout::CONNTRACK_ENTRIES)
        .context("no conntrack entries")?;
    let n = ct.lines().count() as u64;
    ensure!(
        n + 2 >= ct_before.min(ct_after) && n <= ct_before.max(ct_after) + 2,
        "{n} conntrack entries captured, conntrack -C said {ct_before}/{ct_after}"
    );
    ensure!(ct.contains("dst=10.96."), "no service VIP in conntrack");
    let ours = ct_normal(&ct);
    let proc = ct_normal(&ct_proc);
    ensure!(
        ours.symmetric_difference(&proc).count() <= 4,
        "ctnetlink rendering differs from /proc:\nours only: {:?}\nproc only: {:?}",
        ours.difference(&proc).take(3).collect::<Vec<_>>(),
        proc.difference(&ours).take(3).collect::<Vec<_>>()
    );
    let rec = c::record(&b, "conntrack/entries").context("record")?;
    ensure!(rec.truncated.is_none(), "truncated without a cap: {rec:?}");

    // -o - streams the same kind of bundle to stdout.
    let run = c::run(
        &[
            "--node-netns",
            node_path.to_str().context("path")?,
            "--host-root",
            lab.host_root().to_str().context("path")?,
            "-o",
            "-",
            "-q",
            "--only",
            "netns,conntrack",
        ],
        RunOpts::default(),
    )?;
    ensure!(run.status.success(), "-o - failed: {}", run.stderr);
    ensure!(run.stderr.is_empty(), "-q printed: {}", run.stderr);
    let streamed = dir.path().join("streamed.tar.zst");
    std::fs::write(&streamed, &run.stdout)?;
    let s = c::open_bundle(&streamed)?;
    ensure!(s.file(layout::NETNS_INDEX).is_some() && s.file(layout::CONNTRACK_ENTRIES).is_some());
    ensure!(c::record(&s, "iptables-nft-save").map(|r| r.status) == Some(SourceStatus::Skipped));
    Ok(())
}

/// `host/cni`: every regular file of `<host-root>/etc/cni/net.d` kept byte-identical,
/// a symlink followed inside the host root only, a subdirectory ignored.
#[test]
fn collect_cni_configuration_from_the_host_root() -> Result<()> {
    let Some(_env) = require_lab() else {
        return Ok(());
    };
    let lab = Lab::builder("cni")
        .pods(1)
        .services(1)
        .endpoints_per_service(1)
        .build()?;
    let fp = lab.footprint();
    let result = check_cni(&lab);
    lab.teardown()?;
    assert_no_leaks(&fp);
    result
}

fn check_cni(lab: &Lab) -> Result<()> {
    use std::os::unix::fs::symlink;
    let dir = TempDir::new("cni")?;
    let root = dir.path().join("host");
    std::fs::create_dir(&root)?;
    c::copy_host_root(lab.host_root(), &root)?;
    let net_d = root.join("etc/cni/net.d");
    std::fs::create_dir_all(net_d.join("multus.d"))?;
    let plain: &[u8] = b"{\"cniVersion\":\"0.4.0\",\"name\":\"a\"}\xff";
    let list: &[u8] = b"{\n  \"cniVersion\": \"1.0.0\",\n  \"name\": \"kindnet\",\n  \"plugins\": [{\"type\": \"ptp\"}]\n}\n";
    std::fs::write(net_d.join("05-a.conf"), plain)?;
    std::fs::write(net_d.join("10-kindnet.conflist"), list)?;
    std::fs::write(net_d.join("multus.d/00-inner.conf"), b"{}")?;
    // Absolute: resolved inside the host root, to the file beside it.
    symlink(
        "/etc/cni/net.d/10-kindnet.conflist",
        net_d.join("20-link.conf"),
    )?;
    // Points at a real file outside the host root: never read through.
    let outside = dir.path().join("outside.conf");
    std::fs::write(&outside, b"{\"secret\":true}")?;
    symlink(&outside, net_d.join("30-escape.conf"))?;

    let out = dir.path().join("cni.netsnap.tar.zst");
    let node_path = lab.node_netns_path();
    let args = [
        "--node-netns",
        node_path.to_str().context("path")?,
        "--host-root",
        root.to_str().context("path")?,
        "--only",
        "host/cni",
        "-o",
        out.to_str().context("path")?,
    ];
    let run = c::run(&args, RunOpts::default())?;
    ensure!(run.status.success(), "collector failed: {}", run.stderr);
    let b = c::open_bundle(&out)?;
    ensure!(
        b.file("host/cni/05-a.conf") == Some(plain),
        "05-a.conf differs"
    );
    ensure!(
        b.file("host/cni/10-kindnet.conflist") == Some(list),
        "conflist differs"
    );
    ensure!(
        b.file("host/cni/20-link.conf") == Some(list),
        "symlink not followed"
    );
    ensure!(
        b.file("host/cni/30-escape.conf").is_none(),
        "symlink left the host root"
    );
    let cni: Vec<_> = b
        .manifest
        .sources
        .iter()
        .filter(|r| r.name == "host/cni")
        .collect();
    let kept: Vec<&str> = cni.iter().filter_map(|r| r.path.as_deref()).collect();
    ensure!(
        kept == [
            "host/cni/05-a.conf",
            "host/cni/10-kindnet.conflist",
            "host/cni/20-link.conf",
        ],
        "host/cni files: {kept:?}"
    );
    ensure!(
        cni.iter()
            .filter(|r| r.path.is_some())
            .all(|r| r.status == SourceStatus::Ok),
        "{cni:?}"
    );
    let refused: Vec<_> = cni.iter().filter(|r| r.path.is_none()).collect();
    ensure!(
        refused.len() == 1
            && refused[0].status == SourceStatus::Partial
            && refused[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("30-escape.conf")),
        "{refused:?}"
    );
    ensure!(
        !b.manifest
            .sources
            .iter()
            .any(|r| r.path.as_deref().is_some_and(|p| p.contains("multus"))),
        "a subdirectory was captured"
    );
    ensure!(
        run.stderr.contains("host/cni"),
        "no host/cni in the summary"
    );

    // No directory: one record that says so.
    std::fs::remove_dir_all(root.join("etc/cni"))?;
    let out2 = dir.path().join("none.netsnap.tar.zst");
    let mut args2 = args;
    args2[7] = out2.to_str().context("path")?;
    let run = c::run(&args2, RunOpts::default())?;
    ensure!(run.status.success(), "collector failed: {}", run.stderr);
    let b = c::open_bundle(&out2)?;
    let r = c::record(&b, "host/cni").context("no host/cni record")?;
    ensure!(
        r.status == SourceStatus::Unavailable
            && r.error.as_deref() == Some("/etc/cni/net.d does not exist"),
        "{r:?}"
    );
    Ok(())
}
