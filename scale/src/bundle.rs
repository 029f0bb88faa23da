//! Writes a plan as a bundle through `netsnap_schema::BundleWriter`, and
//! `<bundle>.planted.json` beside it (never inside: the analyzer must not see it).

use crate::plan::{Plan, PlantedFault};
use crate::render::{conntrack, host, iptables, netns, nft};
use crate::spec::ProxyMode;
use crate::{time, ScaleError};
use netsnap_schema::layout::{self, NetnsFile};
use netsnap_schema::{BundleWriter, Manifest, SourceRecord, SourceStatus, Spool};
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Where to write.
#[derive(Clone, Debug)]
pub enum Output {
    /// A `.netsnap.tar.zst` archive at this path.
    Archive(PathBuf),
    /// An unpacked bundle in this directory (must not exist).
    Dir(PathBuf),
}

impl Output {
    pub fn path(&self) -> &Path {
        match self {
            Output::Archive(p) | Output::Dir(p) => p,
        }
    }

    /// `<name>.planted.json` beside the bundle (`.netsnap.tar.zst` dropped).
    pub fn planted_path(&self) -> PathBuf {
        let p = self.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bundle".into());
        let stem = name.strip_suffix(".netsnap.tar.zst").unwrap_or(&name);
        p.with_file_name(format!("{stem}.planted.json"))
    }
}

/// What `planted.json` says: the sizes asked for and built, and every planted fault.
#[derive(Clone, Debug, Serialize)]
pub struct Planted {
    pub generator: String,
    pub seed: u64,
    pub size: String,
    pub proxy: String,
    pub bundle: String,
    pub counts: Counts,
    pub faults: Vec<PlantedFault>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Service ports (`ns/name:port`).
    pub services: usize,
    pub services_with_endpoints: usize,
    /// Endpoints over all service ports.
    pub endpoints: usize,
    pub pods: usize,
    /// Every netns in the index (the node and the pods).
    pub netns: usize,
    /// Host veths on the bridge (a dangling one included).
    pub host_veths: usize,
    pub conntrack: u64,
}

impl Planted {
    pub fn of(plan: &Plan, bundle: &Path) -> Planted {
        Planted {
            generator: format!("netsnap-scale {}", env!("CARGO_PKG_VERSION")),
            seed: plan.spec.seed,
            size: plan.spec.label.clone(),
            proxy: plan.spec.proxy.as_str().into(),
            bundle: bundle
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            counts: Counts {
                services: plan.services.len(),
                services_with_endpoints: plan.services_with_endpoints(),
                endpoints: plan.endpoint_count(),
                pods: plan.pods.len(),
                netns: plan.pods.len() + 1,
                host_veths: plan.pods.len() + usize::from(plan.dangling.is_some()),
                conntrack: plan.spec.conntrack,
            },
            faults: plan.faults.clone(),
        }
    }
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Written {
    pub bundle: PathBuf,
    pub planted_path: PathBuf,
    pub planted: Planted,
    pub manifest: Manifest,
}

fn record(name: &str, path: &str) -> SourceRecord {
    let mut r = SourceRecord::new(name, SourceStatus::Ok);
    r.path = Some(path.to_string());
    r
}

fn unavailable(name: &str, why: &str) -> SourceRecord {
    SourceRecord::new(name, SourceStatus::Unavailable).with_error(why)
}

/// Streams one source into a spool through a buffer (the spool writes through).
fn spooled<F>(w: &BundleWriter, path: &str, render: F) -> Result<Spool, ScaleError>
where
    F: FnOnce(&mut BufWriter<&mut Spool>) -> std::io::Result<()>,
{
    let mut spool = w.spool();
    let io = |source| ScaleError::Render {
        path: path.to_string(),
        source,
    };
    {
        let mut buf = BufWriter::with_capacity(1 << 20, &mut spool);
        render(&mut buf).map_err(io)?;
        buf.flush().map_err(io)?;
    }
    Ok(spool)
}

fn to_vec<F>(path: &str, render: F) -> Result<Vec<u8>, ScaleError>
where
    F: FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
{
    let mut v = Vec::new();
    render(&mut v).map_err(|source| ScaleError::Render {
        path: path.to_string(),
        source,
    })?;
    Ok(v)
}

/// Writes the bundle and `planted.json`.
pub fn write(plan: &Plan, out: &Output) -> Result<Written, ScaleError> {
    let target = out.path();
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|source| ScaleError::Io {
        path: parent.display().to_string(),
        source,
    })?;
    // Large sources spill next to the output, never into a small /tmp.
    let mut w = BundleWriter::new(&parent);

    // host/
    w.add_json(record("host/facts", layout::HOST_FACTS), &host::facts(plan))?;
    w.add_json(
        record("host/sysctl", layout::HOST_SYSCTL),
        &host::host_sysctl(plan),
    )?;
    w.add_bytes(
        record("host/resolv.conf", layout::HOST_RESOLV_CONF),
        host::host_resolv().as_bytes(),
    )?;
    w.add_record(unavailable(
        "host/kubelet-resolv.conf",
        "kubelet's resolvConf is /etc/resolv.conf (same as host/resolv.conf)",
    ))?;
    w.add_bytes(
        record("host/kmsg", layout::HOST_KMSG),
        netns::kmsg(plan).as_bytes(),
    )?;

    // netns/
    let mut index_rec = record("netns/index", layout::NETNS_INDEX);
    index_rec.note = Some(format!(
        "synthetic node from netsnap-scale (seed {}): {} netns",
        plan.spec.seed,
        plan.pods.len() + 1
    ));
    w.add_json(index_rec, &netns::index(plan))?;
    let macs = netns::node_macs(plan);
    let nsrec =
        |id: &str, f: NetnsFile| record(f.source_name(), &layout::netns_path(id, f)).in_netns(id);
    w.add_json(
        nsrec("root", NetnsFile::Links),
        &netns::root_links(plan, &macs),
    )?;
    w.add_json(
        nsrec("root", NetnsFile::Addrs),
        &netns::root_addrs(plan, &macs),
    )?;
    w.add_json(
        nsrec("root", NetnsFile::Routes),
        &netns::root_routes(plan, &macs),
    )?;
    w.add_json(
        nsrec("root", NetnsFile::Neigh),
        &netns::root_neigh(plan, &macs),
    )?;
    w.add_json(nsrec("root", NetnsFile::Sockets), &netns::root_sockets())?;
    w.add_json(nsrec("root", NetnsFile::Sysctl), &netns::root_sysctl(plan))?;
    w.add_bytes(
        nsrec("root", NetnsFile::ResolvConf),
        host::host_resolv().as_bytes(),
    )?;
    let pod_sysctl = netns::pod_sysctl();
    let pod_neigh = netns::pod_neigh(plan, &macs);
    for p in &plan.pods {
        let id = p.netns_id.as_str();
        w.add_json(nsrec(id, NetnsFile::Links), &netns::pod_links(p))?;
        w.add_json(nsrec(id, NetnsFile::Addrs), &netns::pod_addrs(plan, p))?;
        w.add_json(nsrec(id, NetnsFile::Routes), &netns::pod_routes(plan, p))?;
        w.add_json(nsrec(id, NetnsFile::Neigh), &pod_neigh)?;
        w.add_json(nsrec(id, NetnsFile::Sockets), &netns::pod_sockets(p))?;
        w.add_json(nsrec(id, NetnsFile::Sysctl), &pod_sysctl)?;
        let mut r = nsrec(id, NetnsFile::ResolvConf);
        r.note = Some(format!("from pid {}", p.pids[0]));
        w.add_bytes(r, host::pod_resolv(p).as_bytes())?;
    }

    // netfilter/
    let spool = spooled(&w, layout::IPTABLES_NFT_SAVE, |b| {
        iptables::write_v4(plan, b)
    })?;
    w.add_spooled(
        record("iptables-nft-save", layout::IPTABLES_NFT_SAVE),
        spool,
    )?;
    let v6 = to_vec(layout::IP6TABLES_NFT_SAVE, |b| iptables::write_v6(plan, b))?;
    w.add_bytes(
        record("ip6tables-nft-save", layout::IP6TABLES_NFT_SAVE),
        &v6,
    )?;
    let legacy = "no legacy tables in use (ip_tables_names is empty)";
    w.add_record(unavailable("iptables-legacy-save", legacy))?;
    w.add_record(unavailable("ip6tables-legacy-save", legacy))?;
    w.add_record(unavailable("ipset", "no ipset sets on this node"))?;
    let mut nft_rec = record("nft", layout::NFT_JSON);
    let left_out = "left out (iptables-nft, see the saves): [ip filter, ip nat, ip mangle, ip6 filter, ip6 nat, ip6 mangle]";
    let spool = match plan.spec.proxy {
        ProxyMode::Iptables => {
            nft_rec.note = Some(format!("tables dumped: []; {left_out}"));
            spooled(&w, layout::NFT_JSON, |b| nft::write_empty(b))?
        }
        ProxyMode::Nftables => {
            nft_rec.note = Some(format!("tables dumped: [ip kube-proxy]; {left_out}"));
            spooled(&w, layout::NFT_JSON, |b| nft::write_kube_proxy(plan, b))?
        }
    };
    w.add_spooled(nft_rec, spool)?;

    // ipvs/
    let no_ipvs = "no IPVS on this node (ip_vs is not loaded)";
    for name in ["ipvs", "ipvs/conn", "ipvs/stats"] {
        w.add_record(unavailable(name, no_ipvs))?;
    }

    // conntrack/
    let spool = spooled(&w, layout::CONNTRACK_ENTRIES, |b| conntrack::write(plan, b))?;
    let mut ct_rec = record("conntrack/entries", layout::CONNTRACK_ENTRIES);
    ct_rec.note = Some("via /proc/net/nf_conntrack".into());
    w.add_spooled(ct_rec, spool)?;
    w.add_bytes(
        record("conntrack/stat", layout::CONNTRACK_STAT),
        host::conntrack_stat(plan).as_bytes(),
    )?;
    w.add_json(
        record("conntrack/sysctl", layout::CONNTRACK_SYSCTL),
        &host::conntrack_sysctl(plan),
    )?;

    let mut manifest = Manifest::new(
        env!("CARGO_PKG_VERSION"),
        &plan.spec.hostname,
        host::KERNEL,
        &time::rfc3339(time::CAPTURED_AT_UNIX),
        time::CAPTURED_AT_UNIX,
    );
    manifest.duration_ms = 1_000 + plan.spec.conntrack / 1_000;
    for (k, v) in [
        (
            "synthetic",
            format!("netsnap-scale {}", env!("CARGO_PKG_VERSION")),
        ),
        ("seed", plan.spec.seed.to_string()),
        ("size", plan.spec.label.clone()),
        ("proxy", plan.spec.proxy.as_str().to_string()),
        ("services", plan.spec.services.to_string()),
        ("endpoints", plan.spec.endpoints.to_string()),
        ("pods", plan.spec.pods.to_string()),
        ("conntrack", plan.spec.conntrack.to_string()),
        ("faults", plan.spec.faults.to_string()),
    ] {
        manifest.options.insert(k.into(), v);
    }
    if let Some(i) = plan.spec.node_index {
        manifest.options.insert("node_index".into(), i.to_string());
    }

    let manifest = match out {
        Output::Archive(path) => w.write_archive(manifest, path)?,
        Output::Dir(path) => w.write_dir(manifest, path)?,
    };

    let planted = Planted::of(plan, target);
    let planted_path = out.planted_path();
    let mut json = serde_json::to_vec_pretty(&planted).map_err(ScaleError::Json)?;
    json.push(b'\n');
    std::fs::write(&planted_path, json).map_err(|source| ScaleError::Io {
        path: planted_path.display().to_string(),
        source,
    })?;
    Ok(Written {
        bundle: target.to_path_buf(),
        planted_path,
        planted,
        manifest,
    })
}
