//! A writer/reader adapter that hashes and counts every byte passing through it.

use sha2::{Digest, Sha256};
use std::io::{self, Write};

#[derive(Default, Clone)]
pub(crate) struct Hasher {
    sha: Sha256,
    bytes: u64,
}

impl Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.sha.update(data);
        self.bytes += data.len() as u64;
    }

    pub(crate) fn finish(self) -> (String, u64) {
        (hex::encode(self.sha.finalize()), self.bytes)
    }
}

/// Hex sha256 of a byte slice.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
