//! The redaction key: one secret that every pseudonym is derived from, so one key
//! gives the same pseudonyms across all bundles of a cluster.

use crate::error::RedactError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// Key length in bytes (256 bits).
pub const KEY_BYTES: usize = 32;

/// Secret from which all pseudonyms are derived. Stored as 64 hex digits and a newline.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactKey {
    bytes: [u8; KEY_BYTES],
}

impl RedactKey {
    /// A fresh key from the operating system's random source.
    pub fn random() -> Result<RedactKey, RedactError> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| RedactError::Random(e.to_string()))?;
        Ok(RedactKey { bytes })
    }

    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> RedactKey {
        RedactKey { bytes }
    }

    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<RedactKey, String> {
        let raw = hex::decode(text.trim()).map_err(|e| format!("not hex: {e}"))?;
        let bytes: [u8; KEY_BYTES] = raw
            .try_into()
            .map_err(|v: Vec<u8>| format!("{} bytes, expected {KEY_BYTES}", v.len()))?;
        Ok(RedactKey { bytes })
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// Reads a key written by [`RedactKey::to_file`].
    pub fn from_file(path: &Path) -> Result<RedactKey, RedactError> {
        let shown = path.display().to_string();
        let text = fs::read_to_string(path).map_err(|source| RedactError::KeyIo {
            path: shown.clone(),
            source,
        })?;
        RedactKey::from_hex(&text).map_err(|reason| RedactError::KeyFormat {
            path: shown,
            reason,
        })
    }

    /// Writes the key with mode 0600; never overwrites an existing file (a lost key
    /// means pseudonyms of earlier bundles can no longer be matched).
    pub fn to_file(&self, path: &Path) -> Result<(), RedactError> {
        let shown = path.display().to_string();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| match source.kind() {
                ErrorKind::AlreadyExists => RedactError::KeyExists {
                    path: shown.clone(),
                },
                _ => RedactError::KeyIo {
                    path: shown.clone(),
                    source,
                },
            })?;
        writeln!(file, "{}", self.to_hex())
            .and_then(|()| file.sync_all())
            .map_err(|source| RedactError::KeyIo {
                path: shown,
                source,
            })
    }

    /// A short public identifier of the key (not the key): bundles redacted with the
    /// same key show the same fingerprint.
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.prf("fingerprint").digest(&[])[..8])
    }

    /// A keyed pseudo-random function for one purpose; purposes never share outputs.
    pub(crate) fn prf(&self, purpose: &str) -> Prf {
        let mut derive = new_mac(&self.bytes);
        derive.update(b"netsnap-redact/v1/");
        derive.update(purpose.as_bytes());
        let subkey = derive.finalize().into_bytes();
        Prf {
            mac: new_mac(&subkey),
        }
    }
}

impl fmt::Debug for RedactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret itself.
        write!(f, "RedactKey({})", self.fingerprint())
    }
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail; keep a fallback anyway.
    <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()))
}

/// HMAC-SHA256 under a derived subkey, with the key schedule done once.
#[derive(Clone)]
pub(crate) struct Prf {
    mac: HmacSha256,
}

impl Prf {
    /// HMAC of the concatenation of `parts` (callers use fixed-size parts or a
    /// single variable one, so concatenation is unambiguous).
    pub(crate) fn digest(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_debug_hides_secret() {
        let k = RedactKey::from_bytes([7u8; KEY_BYTES]);
        let back = RedactKey::from_hex(&format!(" {}\n", k.to_hex())).unwrap();
        assert_eq!(k, back);
        assert!(!format!("{k:?}").contains(&k.to_hex()));
        assert!(RedactKey::from_hex("abcd").is_err());
        assert!(RedactKey::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn purposes_are_independent() {
        let k = RedactKey::from_bytes([1u8; KEY_BYTES]);
        assert_ne!(k.prf("a").digest(&[b"x"]), k.prf("b").digest(&[b"x"]));
        assert_eq!(k.prf("a").digest(&[b"x"]), k.prf("a").digest(&[b"x"]));
    }
}
