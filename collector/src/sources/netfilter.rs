//! iptables (both backends), nftables and ipset, run in the node netns.
//!
//! - `iptables-nft-save -c` / `ip6tables-nft-save -c` always (when nf_tables is loaded);
//! - the legacy savers only when `/proc/net/ip{,6}_tables_names` lists tables: reading
//!   that file never loads a module, while running the legacy tool could;
//! - nft: the tables are listed with one nf_tables netlink dump (NFT_MSG_GETTABLE: names
//!   only; `nft -j list tables` is the fallback, because nft ≤ 1.0.6 fetches every rule
//!   of every table to list them: 5 s and 310 MiB on a node with 5,000 services in
//!   iptables mode), then `nft -j list table <family> <name>` runs for each table
//!   iptables-nft does not manage, merged into one document. The iptables-nft tables
//!   are never dumped through nft (21 s on a big node, and they are in the saves);
//! - `ipset save` when the ip_set module is loaded.

use crate::deadline::{budgets, Deadline};
use crate::source::{io_reason, Captured};
use crate::sys::tools::{check_status, Tool, ToolError};
use crate::sys::Sys;
use netsnap_schema::registry::SourceId;
use netsnap_schema::{layout, SourceStatus, Spool};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::io::Write;

/// Which iptables flavour to save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Nft,
    Legacy,
}

pub struct SaveSpec {
    pub id: SourceId,
    pub path: &'static str,
    pub backend: Backend,
    pub v6: bool,
}

pub const SAVES: [SaveSpec; 4] = [
    SaveSpec {
        id: SourceId::IptablesNftSave,
        path: layout::IPTABLES_NFT_SAVE,
        backend: Backend::Nft,
        v6: false,
    },
    SaveSpec {
        id: SourceId::Ip6tablesNftSave,
        path: layout::IP6TABLES_NFT_SAVE,
        backend: Backend::Nft,
        v6: true,
    },
    SaveSpec {
        id: SourceId::IptablesLegacySave,
        path: layout::IPTABLES_LEGACY_SAVE,
        backend: Backend::Legacy,
        v6: false,
    },
    SaveSpec {
        id: SourceId::Ip6tablesLegacySave,
        path: layout::IP6TABLES_LEGACY_SAVE,
        backend: Backend::Legacy,
        v6: true,
    },
];

/// The saver for a backend: `iptables-nft-save`, else a plain `iptables-save` whose
/// `--version` names the same backend (older distributions ship only that).
fn find_saver(
    sys: &dyn Sys,
    spec: &SaveSpec,
    deadline: &Deadline,
) -> Result<(Tool, Option<String>), ToolError> {
    let fam = if spec.v6 { "ip6tables" } else { "iptables" };
    let (suffix, marker) = match spec.backend {
        Backend::Nft => ("nft", "nf_tables"),
        Backend::Legacy => ("legacy", "legacy"),
    };
    let specific = format!("{fam}-{suffix}-save");
    let first_err = match sys.find_tool(&specific) {
        Ok(t) => return Ok((t, None)),
        Err(e) => e,
    };
    let generic = format!("{fam}-save");
    if let Ok(t) = sys.find_tool(&generic) {
        if let Ok((_, out)) =
            sys.run_tool_capture(&t, &["--version"], deadline.budget(budgets::TOOL))
        {
            let v = String::from_utf8_lossy(&out);
            // iptables < 1.8 prints no backend at all: that is legacy.
            let is_nft = v.contains("nf_tables");
            let matches = match spec.backend {
                Backend::Nft => is_nft,
                Backend::Legacy => !is_nft,
            };
            if matches {
                let note = format!(
                    "{specific} not found; used {} ({})",
                    t.path.display(),
                    v.trim()
                );
                return Ok((t, Some(note)));
            }
            let _ = marker;
        }
    }
    Err(first_err)
}

/// Runs one iptables saver with counters into `spool`.
pub fn capture_save(sys: &dyn Sys, spec: &SaveSpec, spool: Spool, deadline: &Deadline) -> Captured {
    let name = spec.id.name();
    match spec.backend {
        Backend::Nft => {
            if !sys.module_present("nf_tables") {
                return Captured::unavailable(name, "nf_tables is not loaded (not loading it)");
            }
        }
        Backend::Legacy => match crate::sources::host::legacy_tables(spec.v6) {
            Ok(Some(t)) if !t.is_empty() => {}
            Ok(Some(_)) => {
                return Captured::unavailable(
                    name,
                    "no legacy tables in use (ip_tables_names is empty)",
                )
            }
            Ok(None) => {
                return Captured::unavailable(
                    name,
                    "legacy iptables not loaded (no ip_tables_names)",
                )
            }
            Err(e) => {
                let f = if spec.v6 {
                    "ip6_tables_names"
                } else {
                    "ip_tables_names"
                };
                return Captured::failed(
                    name,
                    io_reason(&format!("reading /proc/thread-self/net/{f}"), &e),
                );
            }
        },
    }
    let (tool, note) = match find_saver(sys, spec, deadline) {
        Ok(t) => t,
        Err(e @ ToolError::NotFound { .. }) => return Captured::unavailable(name, e.to_string()),
        Err(e) => return Captured::failed(name, e.reason()),
    };
    let (r, spool) = sys.run_tool(&tool, &["-c"], deadline.budget(budgets::TOOL), spool);
    let c = tool_result(name, spec.path, &tool, r, spool);
    match note {
        Some(n) => {
            let n = match &c.record.note {
                Some(old) => format!("{n}; {old}"),
                None => n,
            };
            c.with_note(n)
        }
        None => c,
    }
}

/// Turns a tool run into a record: ok (stderr kept as a note), failed with stderr,
/// or partial when a failing tool still printed something.
fn tool_result(
    name: &str,
    path: &str,
    tool: &Tool,
    r: Result<crate::sys::tools::RunOutput, ToolError>,
    spool: Option<Spool>,
) -> Captured {
    match r {
        Ok(out) => {
            let stderr = out.stderr.trim().to_string();
            match (check_status(tool, &out), spool) {
                (Ok(()), Some(spool)) => {
                    let c = Captured::spooled(name, path, SourceStatus::Ok, spool);
                    if stderr.is_empty() {
                        c
                    } else {
                        c.with_note(format!("stderr: {}", first_lines(&stderr, 3)))
                    }
                }
                (Err(e), Some(spool)) if !spool.is_empty() => {
                    Captured::spooled(name, path, SourceStatus::Partial, spool)
                        .with_error(e.reason())
                }
                (Err(e), _) => Captured::failed(name, e.reason()),
                (Ok(()), None) => Captured::failed(name, "tool output lost"),
            }
        }
        // Cut at the cap: what was kept is real output, say it is incomplete.
        Err(e @ ToolError::TooLarge { .. }) => match spool {
            Some(spool) if !spool.is_empty() => {
                let kept = format!("{}; the first {} bytes are kept", e.reason(), spool.len());
                Captured::spooled(name, path, SourceStatus::Partial, spool).with_error(kept)
            }
            _ => Captured::failed(name, e.reason()),
        },
        Err(e) => Captured::failed(name, e.reason()),
    }
}

fn first_lines(s: &str, n: usize) -> String {
    s.lines().take(n).collect::<Vec<_>>().join(" / ")
}

pub use netsnap_schema::layout::managed_by_iptables_nft;

#[derive(Deserialize)]
struct NftDoc<'a> {
    #[serde(borrow)]
    nftables: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct TableObj {
    table: TableRef,
}

#[derive(Deserialize)]
struct TableRef {
    family: String,
    name: String,
}

/// Tables in an `nft -j list tables` document.
pub fn parse_table_list(json: &[u8]) -> Result<Vec<(String, String)>, String> {
    let doc: NftDoc = serde_json::from_slice(json)
        .map_err(|e| format!("nft -j list tables printed invalid JSON: {e}"))?;
    Ok(doc
        .nftables
        .iter()
        .filter_map(|raw| serde_json::from_str::<TableObj>(raw.get()).ok())
        .map(|t| (t.table.family, t.table.name))
        .collect())
}

/// Appends the objects of one `nft -j list table` document (all but `metainfo`),
/// each preceded by a comma. Returns how many were appended.
pub fn append_objects<W: Write>(json: &[u8], out: &mut W) -> Result<usize, String> {
    let doc: NftDoc = serde_json::from_slice(json).map_err(|e| format!("invalid JSON: {e}"))?;
    write_objects(&doc, out)
}

fn is_metainfo(raw: &RawValue) -> bool {
    raw.get().trim_start().starts_with("{\"metainfo\"")
}

fn write_objects<W: Write>(doc: &NftDoc, out: &mut W) -> Result<usize, String> {
    let mut n = 0;
    for raw in doc.nftables.iter().filter(|r| !is_metainfo(r)) {
        out.write_all(b",").map_err(|e| e.to_string())?;
        out.write_all(raw.get().as_bytes())
            .map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}

/// The `metainfo` object of a document, if any.
fn doc_metainfo(doc: &NftDoc) -> Option<String> {
    doc.nftables
        .iter()
        .find(|r| is_metainfo(r))
        .map(|r| r.get().to_string())
}

fn metainfo(json: &[u8]) -> Option<String> {
    doc_metainfo(&serde_json::from_slice(json).ok()?)
}

/// nf_tables family numbers (`NFPROTO_*`) as nft spells them.
fn nft_family(f: u8) -> Option<&'static str> {
    Some(match f {
        1 => "inet",
        2 => "ip",
        3 => "arp",
        5 => "netdev",
        7 => "bridge",
        10 => "ip6",
        _ => return None,
    })
}

/// The table of one NFT_MSG_NEWTABLE message of a dump (`body`: after the
/// `nlmsghdr`): (family, name).
pub fn table_of_message(body: &[u8]) -> Option<(String, String)> {
    const NFGENMSG: usize = 4;
    const NFTA_TABLE_NAME: u16 = 1;
    let family = nft_family(*body.first()?)?;
    let (_, v) =
        crate::sys::nldump::attrs(body.get(NFGENMSG..)?).find(|(t, _)| *t == NFTA_TABLE_NAME)?;
    let v = v.split(|b| *b == 0).next().unwrap_or_default();
    Some((family.to_string(), String::from_utf8_lossy(v).into_owned()))
}

/// Every nf_tables table of the calling thread's netns, from one NFT_MSG_GETTABLE
/// netlink dump (read-only; the kernel sends names, not rules).
fn dump_nft_tables(until: std::time::Instant) -> Result<Vec<(String, String)>, String> {
    use crate::sys::nldump::{self, DumpError};
    const NFNL_SUBSYS_NFTABLES: u16 = 10;
    const NFT_MSG_GETTABLE: u16 = 1;
    // nfgenmsg: NFPROTO_UNSPEC (every family), version 0, resource id 0.
    let req = nldump::request(
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE,
        &[0, 0, 0, 0],
    );
    for _attempt in 0..3 {
        let mut tables = Vec::new();
        let r = nldump::dump(
            netlink_sys::protocols::NETLINK_NETFILTER,
            &req,
            until,
            |_, body| tables.extend(table_of_message(body)),
        );
        match r {
            Ok(()) => return Ok(tables),
            Err(DumpError::Interrupted) => continue,
            Err(e) => return Err(format!("nf_tables table dump: {e}")),
        }
    }
    Err("nf_tables table dump: the ruleset kept changing (3 attempts)".into())
}

/// `netfilter/nft.json`: the ruleset minus the iptables-nft tables, as one
/// `{"nftables":[…]}` document in nft's own JSON schema (its `metainfo` first, from
/// the first table nft printed; empty when nft had nothing to dump).
pub fn capture_nft(sys: &dyn Sys, mut spool: Spool, deadline: &Deadline) -> Captured {
    let name = SourceId::NftJson.name();
    if !sys.module_present("nf_tables") {
        return Captured::unavailable(name, "nf_tables is not loaded (not loading it)");
    }
    let tool = sys.find_tool("nft");
    // The table list: from the kernel, else from `nft -j list tables`.
    let mut how = "table list from nf_tables netlink".to_string();
    let mut head = None;
    let tables =
        match dump_nft_tables(std::time::Instant::now() + deadline.budget(budgets::NETLINK_DUMP)) {
            Ok(t) => t,
            Err(netlink_err) => {
                let tool = match &tool {
                    Ok(t) => t,
                    Err(e) => return Captured::unavailable(name, e.to_string()),
                };
                let list = match sys.run_tool_capture(
                    tool,
                    &["-j", "list", "tables"],
                    deadline.budget(budgets::TOOL),
                ) {
                    Ok((out, json)) => match check_status(tool, &out) {
                        Ok(()) => json,
                        Err(e) => return Captured::failed(name, e.reason()),
                    },
                    Err(e) => return Captured::failed(name, e.reason()),
                };
                how = format!("table list from `nft -j list tables` ({netlink_err})");
                head = metainfo(&list);
                match parse_table_list(&list) {
                    Ok(t) => t,
                    Err(e) => return Captured::failed(name, e),
                }
            }
        };
    let (skipped, wanted): (Vec<_>, Vec<_>) = tables
        .into_iter()
        .partition(|(f, n)| managed_by_iptables_nft(f, n));
    let tool = match (tool, wanted.is_empty()) {
        (Ok(t), _) => Some(t),
        // Nothing to dump: nft is not needed.
        (Err(_), true) => None,
        (Err(e), false) => return Captured::unavailable(name, e.to_string()),
    };
    let mut errors = Vec::new();
    let mut dumped_any = false;
    // `{"nftables":[` and the metainfo go out before the first table's objects, so
    // the tables stream into the spool (a big kube-proxy table is never held twice).
    let mut started = false;
    let mut start = |spool: &mut Spool, head: Option<String>| -> std::io::Result<()> {
        if !started {
            started = true;
            spool.write_all(b"{\"nftables\":[")?;
            spool.write_all(head.as_deref().unwrap_or("{\"metainfo\":{}}").as_bytes())?;
        }
        Ok(())
    };
    if let Some(tool) = &tool {
        for (family, table) in &wanted {
            let args = ["-j", "list", "table", family.as_str(), table.as_str()];
            let json = match sys.run_tool_capture(tool, &args, deadline.budget(budgets::TOOL)) {
                Ok((out, json)) => match check_status(tool, &out) {
                    Ok(()) => json,
                    Err(e) => {
                        errors.push(format!("table {family} {table}: {}", e.reason()));
                        continue;
                    }
                },
                Err(e) => {
                    errors.push(format!("table {family} {table}: {}", e.reason()));
                    continue;
                }
            };
            let doc: NftDoc = match serde_json::from_slice(&json) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(format!("table {family} {table}: invalid JSON: {e}"));
                    continue;
                }
            };
            if let Err(e) = start(&mut spool, head.take().or_else(|| doc_metainfo(&doc))) {
                return Captured::failed(name, io_reason("writing nft.json", &e));
            }
            match write_objects(&doc, &mut spool) {
                Ok(_) => dumped_any = true,
                Err(e) => errors.push(format!("table {family} {table}: {e}")),
            }
        }
    }
    if !errors.is_empty() && !dumped_any {
        return Captured::failed(name, errors.join("; "));
    }
    let done = start(&mut spool, head).and_then(|()| spool.write_all(b"]}\n"));
    if let Err(e) = done {
        return Captured::failed(name, io_reason("writing nft.json", &e));
    }
    let status = if errors.is_empty() {
        SourceStatus::Ok
    } else {
        SourceStatus::Partial
    };
    let mut c = Captured::spooled(name, layout::NFT_JSON, status, spool);
    let dumped: Vec<String> = wanted.iter().map(|(f, n)| format!("{f} {n}")).collect();
    let left: Vec<String> = skipped.iter().map(|(f, n)| format!("{f} {n}")).collect();
    c = c.with_note(format!(
        "tables dumped: [{}]; left out (iptables-nft, see the saves): [{}]; {how}",
        dumped.join(", "),
        left.join(", ")
    ));
    if !errors.is_empty() {
        c = c.with_error(errors.join("; "));
    }
    c
}

/// `netfilter/ipset.txt`.
pub fn capture_ipset(sys: &dyn Sys, spool: Spool, deadline: &Deadline) -> Captured {
    let name = SourceId::Ipset.name();
    if !sys.module_present("ip_set") {
        return Captured::unavailable(name, "ip_set is not loaded (no ipsets; not loading it)");
    }
    let tool = match sys.find_tool("ipset") {
        Ok(t) => t,
        Err(e) => return Captured::unavailable(name, e.to_string()),
    };
    let (r, spool) = sys.run_tool(&tool, &["save"], deadline.budget(budgets::TOOL), spool);
    tool_result(name, layout::IPSET, &tool, r, spool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_cut_at_the_cap_is_partial_and_says_so() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("usr/sbin");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("iptables-nft-save");
        std::fs::write(&p, "#!/bin/sh\nexec yes ':KUBE-SERVICES - [0:0]'\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tool = crate::sys::tools::Tools::new(t.path())
            .find("iptables-nft-save")
            .unwrap();
        let spool = Spool::new_in(t.path());
        let (r, spool) =
            tool.run_capped(&["-c"], std::time::Duration::from_secs(30), spool, 1 << 20);
        let c = tool_result(
            "iptables-nft-save",
            layout::IPTABLES_NFT_SAVE,
            &tool,
            r,
            spool,
        );
        assert_eq!(
            c.record.status,
            SourceStatus::Partial,
            "{:?}",
            c.record.error
        );
        let e = c.record.error.unwrap();
        assert!(
            e.contains("printed more than 1 MiB and was killed; the first 1048576 bytes are kept"),
            "{e}"
        );
    }

    #[test]
    fn table_names_from_a_netlink_dump() {
        // nfgenmsg (family ip6), NFTA_TABLE_NAME "kube-proxy\0", NFTA_TABLE_FLAGS.
        let mut body = vec![10, 0, 0, 0, 15, 0, 1, 0];
        body.extend(b"kube-proxy\0\0");
        body.extend([8, 0, 2, 0, 0, 0, 0, 0]);
        assert_eq!(
            table_of_message(&body),
            Some(("ip6".into(), "kube-proxy".into()))
        );
        // An unknown family or no name: no table.
        assert_eq!(
            table_of_message(&[99, 0, 0, 0, 8, 0, 1, 0, b'x', 0, 0, 0]),
            None
        );
        assert_eq!(table_of_message(&[2, 0, 0, 0]), None);
    }

    #[test]
    fn managed_tables() {
        assert!(managed_by_iptables_nft("ip", "nat"));
        assert!(managed_by_iptables_nft("ip6", "filter"));
        assert!(!managed_by_iptables_nft("ip", "kube-proxy"));
        assert!(!managed_by_iptables_nft("inet", "filter"));
        assert!(managed_by_iptables_nft("bridge", "filter"));
    }

    #[test]
    fn merge_documents() {
        let tables = br#"{"nftables": [{"metainfo": {"version": "1.1.3", "json_schema_version": 1}}, {"table": {"family": "ip", "name": "filter", "handle": 1}}, {"table": {"family": "ip", "name": "kube-proxy", "handle": 2}}]}"#;
        let t = parse_table_list(tables).unwrap();
        assert_eq!(
            t,
            vec![
                ("ip".into(), "filter".into()),
                ("ip".into(), "kube-proxy".into())
            ]
        );
        let one = br#"{"nftables": [{"metainfo": {"version": "1.1.3"}}, {"table": {"family": "ip", "name": "kube-proxy", "handle": 2}}, {"chain": {"family": "ip", "table": "kube-proxy", "name": "services", "handle": 3}}]}"#;
        let mut out = Vec::new();
        assert_eq!(append_objects(one, &mut out).unwrap(), 2);
        let doc = format!(
            "{{\"nftables\":[{}{}]}}",
            metainfo(tables).unwrap(),
            String::from_utf8(out).unwrap()
        );
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let arr = v["nftables"].as_array().unwrap();
        assert_eq!(arr.len(), 3);
        assert_eq!(arr[1]["table"]["name"], "kube-proxy");
        let e = append_objects(b"not json", &mut Vec::new()).unwrap_err();
        assert!(e.starts_with("invalid JSON: "), "{e}");
        let e = parse_table_list(b"\x00\xff garbage").unwrap_err();
        assert!(e.contains("invalid JSON"), "{e}");
        // Nesting far past serde_json's limit is an error, not a stack overflow.
        let deep = format!("{{\"nftables\":{}", "[".repeat(100_000));
        assert!(parse_table_list(deep.as_bytes()).is_err());
    }
}
