//! The redaction map: original → pseudonym for every address, name, hash and id a
//! redaction saw. It is the key to reading a redacted bundle's findings back, so it
//! is written *beside* the redacted bundle (never inside it) and kept by whoever
//! redacted.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAP_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionMap {
    pub format_version: u32,
    /// [`crate::RedactKey::fingerprint`] of the key used.
    pub key_fingerprint: String,
    /// Addresses (IPv4 and IPv6, canonical text form).
    pub ips: BTreeMap<String, String>,
    /// Networks seen as `addr/len`.
    pub cidrs: BTreeMap<String, String>,
    /// Hardware addresses, lower-case colon form.
    pub macs: BTreeMap<String, String>,
    /// Names (lower-cased): hostnames, namespaces, pods, services, comment words,
    /// netns ids, search domains' labels.
    pub names: BTreeMap<String, String>,
    /// kube-proxy chain hashes.
    pub hashes: BTreeMap<String, String>,
    /// UUIDs and container ids.
    pub ids: BTreeMap<String, String>,
}

impl RedactionMap {
    /// Adds the entries of `other` (maps of several bundles redacted with one key).
    pub fn merge(&mut self, other: RedactionMap) {
        if self.key_fingerprint.is_empty() {
            self.key_fingerprint = other.key_fingerprint;
            self.format_version = other.format_version;
        }
        self.ips.extend(other.ips);
        self.cidrs.extend(other.cidrs);
        self.macs.extend(other.macs);
        self.names.extend(other.names);
        self.hashes.extend(other.hashes);
        self.ids.extend(other.ids);
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut v = serde_json::to_vec_pretty(self)?;
        v.push(b'\n');
        Ok(v)
    }

    pub fn from_json(data: &[u8]) -> Result<RedactionMap, serde_json::Error> {
        serde_json::from_slice(data)
    }

    /// Every (original, pseudonym) pair of every kind.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        [
            &self.ips,
            &self.cidrs,
            &self.macs,
            &self.names,
            &self.hashes,
            &self.ids,
        ]
        .into_iter()
        .flat_map(|m| m.iter().map(|(a, b)| (a.as_str(), b.as_str())))
    }
}
