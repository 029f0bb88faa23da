//! IPVS tables, raw kernel text from the node netns (`/proc/thread-self/net/ip_vs*`).
//! Reading these files never loads `ip_vs`: they exist only when it is loaded.

use crate::source::{io_reason, Captured};
use crate::sys::procfs::{copy_lines_capped, read_capped, thread_net};
use netsnap_schema::registry::SourceId;
use netsnap_schema::{layout, SourceStatus, Spool};
use std::io::{self, BufWriter, Write};

const NOT_LOADED: &str = "no IPVS on this node (ip_vs is not loaded)";

fn read_small(name: &str, file: &str, path: &str) -> Captured {
    let p = thread_net(file);
    match read_capped(&p, 64 << 20) {
        Ok(text) => Captured::bytes(name, path, SourceStatus::Ok, text.into_bytes()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Captured::unavailable(name, NOT_LOADED),
        Err(e) => Captured::failed(name, io_reason(&p.display().to_string(), &e)),
    }
}

pub fn capture_services() -> Captured {
    read_small(SourceId::Ipvs.name(), "ip_vs", layout::IPVS)
}

pub fn capture_stats() -> Captured {
    read_small(
        SourceId::IpvsStats.name(),
        "ip_vs_stats",
        layout::IPVS_STATS,
    )
}

/// The connection table can be as large as conntrack: capped like it.
pub fn capture_conn(mut spool: Spool, limit: u64) -> Captured {
    let p = thread_net("ip_vs_conn");
    let f = match std::fs::File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Captured::unavailable(SourceId::IpvsConn.name(), NOT_LOADED)
        }
        Err(e) => {
            return Captured::failed(
                SourceId::IpvsConn.name(),
                io_reason(&p.display().to_string(), &e),
            )
        }
    };
    let r = {
        let mut w = BufWriter::with_capacity(256 * 1024, &mut spool);
        copy_lines_capped(f, &mut w, 1, limit).and_then(|n| w.flush().map(|_| n))
    };
    match r {
        Ok(n) => {
            let c = Captured::spooled(
                SourceId::IpvsConn.name(),
                layout::IPVS_CONN,
                SourceStatus::Ok,
                spool,
            );
            if n.kept < n.total {
                c.truncated(n.kept, n.total)
            } else {
                c
            }
        }
        Err(e) => Captured::failed(
            SourceId::IpvsConn.name(),
            io_reason(&p.display().to_string(), &e),
        ),
    }
}
