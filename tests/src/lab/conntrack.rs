//! Loading the node's conntrack table with `conntrack -R` (one generator for the
//! `conntrack-table-full` fault and for [`Lab::conntrack_fill`], the big node of
//! `scripts/bench`).
//!
//! Only the lab's node netns is written to. `net.netfilter.nf_conntrack_max` is never
//! changed: on current kernels it is read-only outside the init netns (and on old ones
//! writing it from a child netns changed the global value), so a fill above it fails
//! with the reason instead.

use super::model::Protocol;
use super::{cmd, netns, Lab};
use anyhow::{bail, ensure, Context, Result};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

/// Ephemeral source ports of the generated client flows (Linux's default range).
const SPORT_BASE: usize = 32768;
const SPORTS: usize = 60999 - 32768 + 1;

impl Lab {
    /// `net.netfilter.nf_conntrack_count` of the node netns.
    pub fn conntrack_count(&self) -> Result<usize> {
        netns::sysctl_get(&self.node_ns, "net/netfilter/nf_conntrack_count")?
            .parse()
            .context("nf_conntrack_count")
    }

    /// `net.netfilter.nf_conntrack_max` as the node netns sees it.
    pub fn conntrack_max(&self) -> Result<usize> {
        netns::sysctl_get(&self.node_ns, "net/netfilter/nf_conntrack_max")?
            .parse()
            .context("nf_conntrack_max")
    }

    /// Fills the node's conntrack table up to `total` entries with ASSURED client
    /// flows through the lab's services, as a busy node holds them: pod → service
    /// VIP:port, DNATed to one of the service's endpoints (reply tuple from the
    /// endpoint's target port), TCP `ESTABLISHED`, UDP `SEEN_REPLY`, spread evenly
    /// over the service ports and their endpoints, clients being the other pods.
    /// Timeouts are long (1 day) so the table stays put during a benchmark.
    /// `total` may not exceed `nf_conntrack_max` (see the module doc). Returns the
    /// count reached.
    pub fn conntrack_fill(&self, total: usize) -> Result<usize> {
        let max = self.conntrack_max()?;
        ensure!(
            total <= max,
            "--conntrack {total} exceeds nf_conntrack_max {max}; the lab does not raise it \
             (read-only outside the init netns on current kernels, and the root netns is \
             never changed)"
        );
        let flows: Vec<(Protocol, Ipv4Addr, u16, u16, Vec<Ipv4Addr>)> = self
            .services
            .iter()
            .filter(|s| !s.endpoints.is_empty())
            .map(|s| {
                let eps = s.endpoints.iter().map(|e| *e.ip()).collect();
                (s.protocol, s.cluster_ip, s.port, s.target_port, eps)
            })
            .collect();
        let clients: Vec<Ipv4Addr> = self
            .pods
            .iter()
            .filter(|p| !p.deleted)
            .map(|p| p.ip)
            .collect();
        ensure!(
            !flows.is_empty(),
            "no service with endpoints to fill conntrack with"
        );
        ensure!(
            clients.len() >= 2,
            "need at least two pods for client flows"
        );
        let have = self.conntrack_load(total, |k, buf| {
            // Flow k: service port k % S; its round r = k / S picks the endpoint
            // (round robin), the source port and, every SPORTS rounds, the next
            // client, so both tuples are unique.
            let (proto, vip, port, target, eps) = &flows[k % flows.len()];
            let round = k / flows.len();
            let ep = eps[round % eps.len()];
            let sport = SPORT_BASE + round % SPORTS;
            let mut c = (k % flows.len() + round / SPORTS) % clients.len();
            if clients[c] == ep {
                c = (c + 1) % clients.len(); // no hairpin flows: their reply is SNATed
            }
            let client = clients[c];
            let p = proto.lower();
            let state = match proto {
                Protocol::Tcp => " --state ESTABLISHED",
                Protocol::Udp => "",
            };
            let _ = writeln!(
                buf,
                "-I -p {p} -s {client} -d {vip} --sport {sport} --dport {port} \
                 -r {ep} -q {client} --reply-port-src {target} --reply-port-dst {sport}{state} \
                 -u SEEN_REPLY,ASSURED -t 86400"
            );
        })?;
        ensure!(
            have >= total,
            "conntrack count {have} did not reach {total}"
        );
        Ok(have)
    }

    /// Inserts entries with `conntrack -R` until the node's table holds `target`
    /// (at most 4 rounds: inserts past `nf_conntrack_max` or clashing with a live
    /// tuple fail, which is not checked, and the next round tops up). `line(k, buf)`
    /// appends the `conntrack -R` line of entry `k`; `k` counts across rounds, so
    /// each call must give a tuple of its own. Returns the count reached.
    pub(super) fn conntrack_load(
        &self,
        target: usize,
        mut line: impl FnMut(usize, &mut String),
    ) -> Result<usize> {
        let mut next = 0usize;
        for _round in 0..4 {
            let have = self.conntrack_count()?;
            if have >= target {
                return Ok(have);
            }
            let need = target - have;
            let mut buf = String::with_capacity(need * 170);
            for _ in 0..need {
                line(next, &mut buf);
                next += 1;
            }
            cmd::output_with(
                &mut netns::exec(&self.node_ns, &["conntrack", "-R", "-"]),
                Some(buf.as_bytes()),
                Duration::from_secs(600),
            )?;
        }
        let have = self.conntrack_count()?;
        if have == 0 && target > 0 {
            bail!("conntrack -R inserted nothing into {}", self.node_ns);
        }
        Ok(have)
    }
}
