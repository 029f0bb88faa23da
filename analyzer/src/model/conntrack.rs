//! Conntrack: table size and usage, summed per-CPU statistics, and flow aggregates
//! (DNAT flows per VIP → backend, SNAT flows per masquerade source → destination).

use super::services::{sockaddr, Protocol};
use super::Evidence;
use crate::sources::flows::{FlowProto, Flows};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Conntrack {
    /// The entries file was in the bundle.
    pub entries_present: bool,
    /// Entries in the file.
    pub entries: u64,
    /// Entries on the node when the collector capped the file.
    pub total_on_node: Option<u64>,
    pub count: Option<(u64, Evidence)>,
    pub max: Option<(u64, Evidence)>,
    pub buckets: Option<(u64, Evidence)>,
    /// `/proc/net/stat/nf_conntrack` columns summed over CPUs (`entries` taken once).
    pub stats: BTreeMap<String, u64>,
    pub stats_evidence: Option<Evidence>,
    /// `net.ipv4.ip_local_port_range`.
    pub port_range: Option<(u16, u16, Evidence)>,
    pub dnat: Vec<DnatFlows>,
    pub snat: Vec<SnatFlows>,
    /// Counter rates over the capture, when the collector took `--samples`.
    pub rates: Option<CounterRates>,
}

/// The conntrack counters of the first and last readings of `--samples`: what changed
/// while the capture ran, so saturation is a rate and not a total since boot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounterRates {
    /// Seconds between the two readings.
    pub seconds: f64,
    /// Readings with conntrack counters.
    pub readings: usize,
    pub first: BTreeMap<String, u64>,
    pub last: BTreeMap<String, u64>,
    /// `nf_conntrack_count` at the first and last reading.
    pub count: Option<(u64, u64)>,
    /// The last reading.
    pub evidence: Evidence,
}

/// The rates between the first and the last reading that have conntrack counters;
/// `None` with fewer than two, or no time between them.
pub fn rates_of(r: &crate::parse::samples::CounterReadings) -> Option<CounterRates> {
    let with: Vec<_> = r
        .readings
        .iter()
        .filter(|x| x.conntrack.is_some())
        .collect();
    let (first, last) = (with.first()?, with.last()?);
    let seconds = last.at_ms.checked_sub(first.at_ms)? as f64 / 1000.0;
    if with.len() < 2 || seconds <= 0.0 {
        return None;
    }
    let (a, b) = (first.conntrack.clone()?, last.conntrack.clone()?);
    let shown: Vec<String> = ["drop", "early_drop", "insert_failed", "entries"]
        .iter()
        .filter_map(|k| Some(format!("{k}={}", b.get(*k)?)))
        .collect();
    Some(CounterRates {
        seconds,
        readings: with.len(),
        count: first.conntrack_count.zip(last.conntrack_count),
        evidence: Evidence::new(
            netsnap_schema::layout::COUNTER_SAMPLES,
            Some(last.index),
            format!(
                "reading {} at +{} ms, summed over CPUs: {}",
                last.index,
                last.at_ms,
                shown.join(" ")
            ),
        ),
        first: a,
        last: b,
    })
}

impl CounterRates {
    /// How much `key` grew between the readings; `None` when it is missing or went
    /// down (a counter reset: no rate can be told).
    pub fn delta(&self, key: &str) -> Option<u64> {
        let (a, b) = (self.first.get(key)?, self.last.get(key)?);
        b.checked_sub(*a)
    }

    /// [`Self::delta`] per second.
    pub fn per_second(&self, delta: u64) -> f64 {
        delta as f64 / self.seconds
    }

    /// `over 10.0 s (5 readings)`.
    pub fn span(&self) -> String {
        format!("over {:.1} s ({} readings)", self.seconds, self.readings)
    }
}

/// Flows whose original destination was rewritten (a VIP) to a backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnatFlows {
    pub protocol: Protocol,
    pub vip: IpAddr,
    pub vport: u16,
    pub backend: IpAddr,
    pub backend_port: u16,
    pub flows: u64,
    pub unreplied: u64,
    /// The first entry in the file (evidence).
    pub first: Evidence,
}

impl DnatFlows {
    pub fn vip_string(&self) -> String {
        sockaddr(self.vip, self.vport)
    }
    pub fn backend_string(&self) -> String {
        sockaddr(self.backend, self.backend_port)
    }
}

/// Flows that were source-NATed to `snat_ip`, per destination.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnatFlows {
    pub protocol: Protocol,
    pub snat_ip: IpAddr,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub flows: u64,
    pub first: Evidence,
}

/// The parse stage's flow counts, with their first entry as evidence in `path`.
pub fn flows_from(flows: Flows, path: &str) -> (Vec<DnatFlows>, Vec<SnatFlows>) {
    let evidence = |(line, text): (usize, String)| Evidence::new(path, Some(line), text);
    let dnat = flows
        .dnat
        .into_par_iter()
        .map(|d| DnatFlows {
            protocol: protocol(d.protocol),
            vip: d.vip,
            vport: d.vport,
            backend: d.backend,
            backend_port: d.backend_port,
            flows: d.flows,
            unreplied: d.unreplied,
            first: evidence(d.first),
        })
        .collect();
    let snat = flows
        .snat
        .into_par_iter()
        .map(|s| SnatFlows {
            protocol: protocol(s.protocol),
            snat_ip: s.snat_ip,
            dst: s.dst,
            dst_port: s.dst_port,
            flows: s.flows,
            first: evidence(s.first),
        })
        .collect();
    (dnat, snat)
}

fn protocol(p: FlowProto) -> Protocol {
    match p {
        FlowProto::Tcp => Protocol::Tcp,
        FlowProto::Udp => Protocol::Udp,
        FlowProto::Sctp => Protocol::Sctp,
    }
}
