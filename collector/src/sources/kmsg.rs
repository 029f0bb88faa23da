//! Kernel log lines that matter for node networking, from `/dev/kmsg`.
//!
//! `/dev/kmsg` opened non-blocking starts at the oldest record still in the ring
//! buffer; each `read` returns one record and `EAGAIN` marks the end. Reading it
//! consumes nothing (every opener has its own position).

use crate::source::{io_reason, Captured};
use netsnap_schema::registry::SourceId;
use netsnap_schema::{layout, SourceStatus};
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Instant;

/// Case-insensitive substrings that make a line relevant.
const KEYWORDS: [&str; 19] = [
    "conntrack",
    "netfilter",
    "nf_tables",
    "iptables",
    "ip_tables",
    "x_tables",
    "ip_vs",
    "ipvs",
    "neighbour",
    "neighbor",
    "arp_cache",
    "veth",
    "bridge",
    "br_netfilter",
    "cni0",
    "docker0",
    "vxlan",
    "flannel",
    "port ",
];

/// At most this many matching lines are kept (the newest).
const MAX_LINES: usize = 20_000;

/// Whether a log message is about networking that netsnap analyses.
pub fn relevant(msg: &str) -> bool {
    let lower = msg.to_ascii_lowercase();
    KEYWORDS.iter().any(|k| {
        if *k == "port " {
            // Bridge port state changes: "cni0: port 3(veth…) entered forwarding state".
            lower.contains("entered forwarding state")
                || lower.contains("entered disabled state")
                || lower.contains("entered blocking state")
        } else {
            lower.contains(k)
        }
    })
}

/// One `/dev/kmsg` record (`prio,seq,usec,flags;message\n KEY=val…`) as dmesg
/// prints it: `[   12.345678] message`. `None` for malformed records.
pub fn format_record(rec: &str) -> Option<String> {
    let (meta, rest) = rec.split_once(';')?;
    let msg = rest.lines().next().unwrap_or("");
    let mut fields = meta.split(',');
    let _prio = fields.next()?;
    let _seq = fields.next()?;
    let usec: u64 = fields.next()?.parse().ok()?;
    Some(format!(
        "[{:>5}.{:06}] {}",
        usec / 1_000_000,
        usec % 1_000_000,
        msg
    ))
}

pub fn capture(until: Instant) -> Captured {
    let path = "/dev/kmsg";
    let mut f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Captured::unavailable(SourceId::HostKmsg.name(), "no /dev/kmsg")
        }
        Err(e) => return Captured::failed(SourceId::HostKmsg.name(), io_reason(path, &e)),
    };
    let mut lines = std::collections::VecDeque::new();
    let mut dropped_old = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen = 0u64;
    let mut status = SourceStatus::Ok;
    let mut error = None;
    loop {
        if Instant::now() >= until {
            status = SourceStatus::Partial;
            error = Some("stopped at the deadline".to_string());
            break;
        }
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                seen += 1;
                let rec = String::from_utf8_lossy(&buf[..n]);
                if let Some(line) = format_record(&rec) {
                    if relevant(&line) {
                        lines.push_back(line);
                        if lines.len() > MAX_LINES {
                            lines.pop_front();
                            dropped_old += 1;
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // EPIPE: records were overwritten while reading; continue at the next.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if seen == 0 {
                    return Captured::failed(SourceId::HostKmsg.name(), io_reason(path, &e));
                }
                status = SourceStatus::Partial;
                error = Some(io_reason(path, &e));
                break;
            }
        }
    }
    let mut text = String::new();
    for l in &lines {
        text.push_str(l);
        text.push('\n');
    }
    let kept = lines.len() as u64;
    let mut c = Captured::bytes(
        SourceId::HostKmsg.name(),
        layout::HOST_KMSG,
        status,
        text.into_bytes(),
    )
    .with_note(format!("{kept} relevant of {seen} kernel log records"));
    if let Some(e) = error {
        c = c.with_error(e);
    }
    if dropped_old > 0 {
        c = c.truncated(kept, kept + dropped_old);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_formatted_like_dmesg() {
        let rec = "4,1234,5123456789,-;nf_conntrack: nf_conntrack: table full, dropping packet\n SUBSYSTEM=net\n";
        let line = format_record(rec).unwrap();
        assert_eq!(
            line,
            "[ 5123.456789] nf_conntrack: nf_conntrack: table full, dropping packet"
        );
        assert!(relevant(&line));
        assert!(format_record("garbage").is_none());
    }

    #[test]
    fn relevance() {
        assert!(relevant(
            "cni0: port 3(veth1234abcd) entered forwarding state"
        ));
        assert!(relevant("neighbour: arp_cache: neighbor table overflow!"));
        assert!(relevant("IPVS: Creating netns size=2048 id=1"));
        assert!(!relevant("EXT4-fs (vda): mounted filesystem"));
        assert!(!relevant("usb 1-1: new high-speed USB device"));
    }
}
