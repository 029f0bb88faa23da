//! MAC (and other link-layer) address pseudonyms.
//!
//! A unicast MAC becomes keyed random bytes with the first octet's multicast (I/G)
//! and locally-administered (U/L) bits of the original, so a veth stays "local" and a
//! NIC stays "universal". All-zero, broadcast and the protocol multicast prefixes
//! (01:00:5e IPv4, 33:33 IPv6, 01:80:c2 IEEE) are derived from public constants and
//! kept. Addresses of other lengths (IPoIB, EUI-64) get keyed bytes of the same length.

use crate::key::{Prf, RedactKey};
use std::collections::{HashMap, HashSet};

pub struct MacMapper {
    prf: Prf,
    map: HashMap<Vec<u8>, Vec<u8>>,
    used: HashSet<Vec<u8>>,
}

/// True for addresses kept unchanged.
pub fn is_kept(mac: &[u8]) -> bool {
    mac.iter().all(|b| *b == 0)
        || mac.iter().all(|b| *b == 0xff)
        || mac.starts_with(&[0x01, 0x00, 0x5e])
        || mac.starts_with(&[0x33, 0x33])
        || mac.starts_with(&[0x01, 0x80, 0xc2])
}

impl MacMapper {
    pub fn new(key: &RedactKey) -> MacMapper {
        MacMapper {
            prf: key.prf("mac"),
            map: HashMap::new(),
            used: HashSet::new(),
        }
    }

    /// The pseudonym of a hardware address of any length (1..=32 bytes).
    pub fn map(&mut self, mac: &[u8]) -> Vec<u8> {
        if mac.is_empty() || mac.len() > 32 || is_kept(mac) {
            return mac.to_vec();
        }
        if let Some(m) = self.map.get(mac) {
            return m.clone();
        }
        let mut counter: u32 = 0;
        let out = loop {
            let d = self.prf.digest(&[mac, &counter.to_be_bytes()]);
            let mut out = d[..mac.len()].to_vec();
            out[0] = (out[0] & !0x03) | (mac[0] & 0x03);
            // Never collide with another pseudonym or land on a kept address.
            if !is_kept(&out) && !self.used.contains(&out) {
                break out;
            }
            counter += 1;
        };
        self.used.insert(out.clone());
        self.map.insert(mac.to_vec(), out.clone());
        out
    }

    pub fn mapped(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.map.iter().map(|(a, b)| (a.as_slice(), b.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_group_and_local_bits() {
        let mut m = MacMapper::new(&RedactKey::from_bytes([9u8; 32]));
        let veth = [0x5e, 0x4a, 0x3b, 0x2e, 0x13, 0xa3];
        let out = m.map(&veth);
        assert_ne!(out, veth);
        assert_eq!(out[0] & 3, veth[0] & 3);
        assert_eq!(m.map(&veth), out);
        let nic = [0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e];
        assert_eq!(m.map(&nic)[0] & 3, 0);
        assert_eq!(m.map(&[0xff; 6]), vec![0xff; 6]);
        assert_eq!(
            m.map(&[0x33, 0x33, 0, 0, 0, 1]),
            vec![0x33, 0x33, 0, 0, 0, 1]
        );
    }
}
