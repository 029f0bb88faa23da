//! Name pseudonyms: hostnames, pod and namespace names, comment words, netns ids;
//! kube-proxy's chain hashes; UUIDs and 64-hex container ids.
//!
//! - A name becomes keyed base32 of HMAC(key, name) *of the same length*, lower case,
//!   written `r-…` when it has 7 characters or more (`payments` → `r-k3vq7x`, `ns1` →
//!   `qd4`): still a valid DNS label and Kubernetes name, and search lists keep their
//!   length (the analyzer's DNS002 counts characters). Leading allowlisted parts are
//!   kept (`coredns-5d78c9869d-x2b4k` → `coredns-r-…`), see [`crate::allowlist`].
//!   Names compare case-insensitively (DNS does), so `Web` and `web` share one.
//! - A kube-proxy hash (`KUBE-SVC-<16>`, nft `service-<8>-…`) is base32 of sha256 of
//!   names, so anyone can brute-force it from a guess: it becomes keyed base32 of the
//!   same length and alphabet.
//! - A UUID keeps its shape (version-4 form), separator and case; a 64-hex id too.
//!
//! Every kind is injective: a pseudonym already given to another original is never
//! reused (the HMAC is retried with a counter).

use crate::allowlist;
use crate::key::{Prf, RedactKey};
use std::collections::{BTreeMap, HashMap, HashSet};

const BASE32_LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const BASE32_UPPER: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub struct Names {
    name_prf: Prf,
    hash_prf: Prf,
    id_prf: Prf,
    /// Lower-cased original → pseudonym.
    names: HashMap<String, String>,
    names_taken: HashMap<String, String>,
    hashes: HashMap<String, String>,
    hashes_taken: HashMap<String, String>,
    /// Normalised (lower case, `-`) original → normalised pseudonym.
    ids: HashMap<String, String>,
    ids_taken: HashMap<String, String>,
    /// Every collected original, so that no pseudonym equals one.
    originals: HashSet<String>,
    /// Most `-` parts of any collected name (bounds the part-wise search).
    max_parts: usize,
}

/// Whether a word found in a structured place is a name to pseudonymise.
pub fn is_redactable(word: &str) -> bool {
    word.len() >= 2
        && !word.starts_with('-')
        && word.bytes().any(|b| b.is_ascii_alphabetic())
        && !is_hex_number(word)
        && !allowlist::is_allowlisted(word)
        && kube_chain_hash(word.as_bytes()).is_none()
}

fn is_hex_number(w: &str) -> bool {
    let lower = w.to_ascii_lowercase();
    lower
        .strip_prefix("0x")
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `KUBE-SVC-…`, `KUBE-SEP-…`, `KUBE-EXT-…`, `KUBE-FW-…`, `KUBE-SVL-…`, `KUBE-XLB-…`
/// followed by exactly 16 base32 characters: returns where the hash starts.
pub fn kube_chain_hash(w: &[u8]) -> Option<usize> {
    const KINDS: [&[u8]; 6] = [
        b"KUBE-SVC-",
        b"KUBE-SEP-",
        b"KUBE-EXT-",
        b"KUBE-FW-",
        b"KUBE-SVL-",
        b"KUBE-XLB-",
    ];
    let start = KINDS.iter().find(|k| w.starts_with(k))?.len();
    (w.len() == start + 16 && is_base32_upper(&w[start..])).then_some(start)
}

/// kube-proxy nftables names `<kind>-<8 base32>-<namespace>…`: returns the kind, the
/// hash and the rest (the namespace part of the word).
pub fn nft_chain(w: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    const KINDS: [&[u8]; 6] = [
        b"service",
        b"external",
        b"endpoint",
        b"firewall",
        b"affinity",
        b"local",
    ];
    let kind = *KINDS
        .iter()
        .find(|k| w.starts_with(k) && w.get(k.len()) == Some(&b'-'))?;
    let hash_start = kind.len() + 1;
    let hash = w.get(hash_start..hash_start + 8)?;
    let rest = w.get(hash_start + 9..)?;
    (is_base32_upper(hash) && w.get(hash_start + 8) == Some(&b'-') && !rest.is_empty())
        .then_some((kind, hash, rest))
}

fn is_base32_upper(h: &[u8]) -> bool {
    h.iter()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(b))
}

fn base32(d: &[u8], n: usize, alphabet: &[u8; 32]) -> String {
    // 5 bits per character from the front of the digest (n <= 51 for 32 bytes).
    (0..n)
        .map(|i| {
            let bit = i * 5;
            let word =
                (u16::from(d[bit / 8]) << 8) | u16::from(d.get(bit / 8 + 1).copied().unwrap_or(0));
            let idx = (word >> (11 - (bit % 8))) & 0x1f;
            char::from(alphabet[usize::from(idx)])
        })
        .collect()
}

impl Names {
    pub fn new(key: &RedactKey) -> Names {
        Names {
            name_prf: key.prf("name"),
            hash_prf: key.prf("kube-hash"),
            id_prf: key.prf("id"),
            names: HashMap::new(),
            names_taken: HashMap::new(),
            hashes: HashMap::new(),
            hashes_taken: HashMap::new(),
            ids: HashMap::new(),
            ids_taken: HashMap::new(),
            originals: HashSet::new(),
            max_parts: 1,
        }
    }

    /// Adds a collected name; returns false when it is not one to pseudonymise.
    pub fn insert(&mut self, word: &str) -> bool {
        self.insert_all([word]) == 1
    }

    /// Adds collected names (all registered before any pseudonym is chosen, so no
    /// pseudonym equals another original); returns how many are names to pseudonymise.
    pub fn insert_all<'w>(&mut self, words: impl IntoIterator<Item = &'w str>) -> usize {
        let mut new: Vec<String> = Vec::new();
        let mut count = 0;
        for word in words {
            if !is_redactable(word) {
                continue;
            }
            count += 1;
            let lower = word.to_ascii_lowercase();
            if !self.names.contains_key(&lower) && self.originals.insert(lower.clone()) {
                new.push(lower);
            }
        }
        // Sorted, so the assignment does not depend on the order names were found.
        new.sort();
        for lower in new {
            let pseudo = self.pseudonym(&lower);
            self.max_parts = self.max_parts.max(lower.split('-').count());
            self.names_taken.insert(pseudo.clone(), lower.clone());
            self.names.insert(lower, pseudo);
        }
        count
    }

    /// The pseudonym of a collected name, given lower-cased.
    pub fn get(&self, lower: &str) -> Option<&str> {
        self.names.get(lower).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub(crate) fn max_parts(&self) -> usize {
        self.max_parts
    }

    /// Same length as the original (search-list limits and column widths depend on
    /// it): `r-` and random base32 when there is room for 5 random characters,
    /// otherwise random characters starting with a letter. Allowlisted leading parts
    /// are kept. After 64 collisions at one length the pseudonym grows by one.
    fn pseudonym(&self, lower: &str) -> String {
        let keep = allowlist::allowed_prefix_parts(lower);
        let prefix = if keep > 0 {
            let cut = lower
                .match_indices('-')
                .nth(keep - 1)
                .map_or(lower.len(), |(i, _)| i);
            &lower[..cut]
        } else {
            ""
        };
        let rest_len = if prefix.is_empty() {
            lower.len()
        } else {
            lower.len().saturating_sub(prefix.len() + 1).max(1)
        };
        let mut counter: u32 = 0;
        loop {
            // Keyed on the whole name, so `svc-0` and `coredns-0` do not share a suffix.
            let d = self
                .name_prf
                .digest(&[lower.as_bytes(), &[0xff], &counter.to_be_bytes()]);
            let len = (rest_len + (counter / 64) as usize).min(40);
            let body = if len >= 7 {
                format!("r-{}", base32(&d, len - 2, BASE32_LOWER))
            } else {
                let first = char::from(BASE32_LOWER[usize::from(d[31] % 26)]);
                format!("{first}{}", base32(&d, len - 1, BASE32_LOWER))
            };
            let candidate = if prefix.is_empty() {
                body
            } else {
                format!("{prefix}-{body}")
            };
            let taken = self
                .names_taken
                .get(&candidate)
                .is_some_and(|owner| owner != lower);
            if !taken
                && !self.originals.contains(&candidate)
                && !allowlist::is_allowlisted(&candidate)
            {
                return candidate;
            }
            counter += 1;
        }
    }

    /// A keyed pseudo-hash of the same length and alphabet as a kube-proxy hash.
    pub fn chain_hash(&mut self, hash: &str) -> String {
        if let Some(h) = self.hashes.get(hash) {
            return h.clone();
        }
        let mut counter: u32 = 0;
        let out = loop {
            let d = self
                .hash_prf
                .digest(&[hash.as_bytes(), &[0xff], &counter.to_be_bytes()]);
            let cand = base32(&d, hash.len().min(51), BASE32_UPPER);
            if !self.hashes_taken.contains_key(&cand) && cand != hash {
                break cand;
            }
            counter += 1;
        };
        self.hashes_taken.insert(out.clone(), hash.to_string());
        self.hashes.insert(hash.to_string(), out.clone());
        out
    }

    /// A UUID's pseudonym, in the same separator and case.
    pub fn uuid(&mut self, uuid: &str) -> String {
        let upper = uuid.bytes().any(|b| b.is_ascii_uppercase());
        let sep = if uuid.contains('_') { '_' } else { '-' };
        let norm = uuid.to_ascii_lowercase().replace('_', "-");
        let pseudo = self.id(&norm, |d| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&d[..16]);
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let h = hex::encode(b);
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        });
        let out = pseudo.replace('-', &sep.to_string());
        if upper {
            out.to_ascii_uppercase()
        } else {
            out
        }
    }

    /// A 64-hex id's pseudonym (container ids), in the same case.
    pub fn hex_id(&mut self, id: &str) -> String {
        let upper = id.bytes().any(|b| b.is_ascii_uppercase());
        let out = self.id(&id.to_ascii_lowercase(), |d: &[u8; 32]| hex::encode(d));
        if upper {
            out.to_ascii_uppercase()
        } else {
            out
        }
    }

    fn id(&mut self, norm: &str, shape: impl Fn(&[u8; 32]) -> String) -> String {
        if let Some(p) = self.ids.get(norm) {
            return p.clone();
        }
        let mut counter: u32 = 0;
        let out = loop {
            let d = self
                .id_prf
                .digest(&[norm.as_bytes(), &[0xff], &counter.to_be_bytes()]);
            let cand = shape(&d);
            if !self.ids_taken.contains_key(&cand) {
                break cand;
            }
            counter += 1;
        };
        self.ids_taken.insert(out.clone(), norm.to_string());
        self.ids.insert(norm.to_string(), out.clone());
        out
    }

    pub fn names_map(&self) -> BTreeMap<String, String> {
        self.names
            .iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect()
    }

    pub fn hashes_map(&self) -> BTreeMap<String, String> {
        self.hashes
            .iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect()
    }

    pub fn ids_map(&self) -> BTreeMap<String, String> {
        self.ids
            .iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names::new(&RedactKey::from_bytes([5u8; 32]))
    }

    #[test]
    fn name_pseudonyms() {
        let mut n = names();
        assert!(n.insert("ns1"));
        assert!(!n.insert("kube-system"));
        assert!(!n.insert("8080"));
        assert!(!n.insert("0x4000"));
        assert!(n.insert("coredns-5d78c9869d-x2b4k"));
        let p = n.get("ns1").unwrap().to_string();
        assert_eq!(p.len(), 3, "{p}");
        assert_ne!(p, "ns1");
        assert!(n.insert("payments-api"));
        let q = n.get("payments-api").unwrap();
        assert!(q.starts_with("r-") && q.len() == 12, "{q}");
        assert!(n
            .get("coredns-5d78c9869d-x2b4k")
            .unwrap()
            .starts_with("coredns-r-"));
        assert!(n.insert("NS1"));
        assert_eq!(n.get("ns1").unwrap(), p);
    }

    #[test]
    fn kube_hashes_keep_shape() {
        let mut n = names();
        assert_eq!(kube_chain_hash(b"KUBE-SVC-ULMVA6XWHSNOAJN6"), Some(9));
        assert_eq!(kube_chain_hash(b"KUBE-SERVICES"), None);
        let h = n.chain_hash("ULMVA6XWHSNOAJN6");
        assert_eq!(h.len(), 16);
        assert!(is_base32_upper(h.as_bytes()));
        assert_eq!(n.chain_hash("ULMVA6XWHSNOAJN6"), h);
        let (kind, hash, rest) = nft_chain(b"endpoint-5OJB2KTY-ns1").unwrap();
        assert_eq!(
            (kind, hash, rest),
            (&b"endpoint"[..], &b"5OJB2KTY"[..], &b"ns1"[..])
        );
        assert!(nft_chain(b"service-endpoints-check").is_none());
    }

    #[test]
    fn uuids_keep_shape_and_separator() {
        let mut n = names();
        let a = n.uuid("79311748-fc2f-4cf7-8b5e-990b2d4a229c");
        let b = n.uuid("79311748_FC2F_4CF7_8B5E_990B2D4A229C");
        assert_eq!(a.len(), 36);
        assert_eq!(b, a.replace('-', "_").to_ascii_uppercase());
        assert_ne!(a, "79311748-fc2f-4cf7-8b5e-990b2d4a229c");
    }
}
