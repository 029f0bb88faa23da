//! Everything one redaction run has mapped, under one key: addresses, hardware
//! addresses, names, hashes and ids. Shared by every source rewriter so that one
//! original gets one pseudonym in every file.

use crate::ip::IpMapper;
use crate::key::RedactKey;
use crate::mac::MacMapper;
use crate::map::RedactionMap;
use crate::names::Names;
use std::collections::BTreeMap;

pub struct Pseudonyms {
    pub ips: IpMapper,
    pub macs: MacMapper,
    pub names: Names,
    /// Networks written as `addr/len`, original → pseudonym.
    pub(crate) cidrs: BTreeMap<String, String>,
    fingerprint: String,
}

impl Pseudonyms {
    pub fn new(key: &RedactKey) -> Pseudonyms {
        Pseudonyms {
            ips: IpMapper::new(key),
            macs: MacMapper::new(key),
            names: Names::new(key),
            cidrs: BTreeMap::new(),
            fingerprint: key.fingerprint(),
        }
    }

    /// The map of every pseudonym given so far (to be written beside the output).
    pub fn map(&self) -> RedactionMap {
        let mut ips = BTreeMap::new();
        for (a, b) in self.ips.mapped() {
            ips.insert(a.to_string(), b.to_string());
        }
        let macs = self
            .macs
            .mapped()
            .map(|(a, b)| (colon_hex(a), colon_hex(b)))
            .collect();
        RedactionMap {
            format_version: crate::map::MAP_FORMAT_VERSION,
            key_fingerprint: self.fingerprint.clone(),
            ips,
            cidrs: self.cidrs.clone(),
            macs,
            names: self.names.names_map(),
            hashes: self.names.hashes_map(),
            ids: self.names.ids_map(),
        }
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

pub(crate) fn colon_hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
