//! A tiny seeded PRNG (SplitMix64). Hand-rolled so that a seed gives the same bundle
//! whatever crate versions the workspace resolves: determinism is the point.

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// An independent stream for one part of the output, so that adding draws to
    /// one part never shifts another.
    pub fn fork(&self, label: &str) -> Rng {
        // FNV-1a of the label, mixed into the parent's state.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in label.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let mut r = Rng(self.0 ^ h);
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// `n` characters from `alphabet`.
    pub fn chars(&mut self, n: usize, alphabet: &[u8]) -> String {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize] as char)
            .collect()
    }

    pub fn hex(&mut self, n: usize) -> String {
        self.chars(n, b"0123456789abcdef")
    }

    /// A random (version 4) UUID, as Kubernetes uses for pod uids.
    pub fn uuid(&mut self) -> String {
        let v = |r: &mut Rng| r.hex(4);
        let variant = ["8", "9", "a", "b"][self.below(4) as usize];
        format!(
            "{}{}-{}-4{}-{variant}{}-{}{}{}",
            v(self),
            v(self),
            v(self),
            self.hex(3),
            self.hex(3),
            v(self),
            v(self),
            v(self)
        )
    }

    /// A locally administered unicast MAC, as veth and bridge devices get.
    pub fn mac(&mut self) -> [u8; 6] {
        let mut m = [0u8; 6];
        for b in &mut m {
            *b = self.below(256) as u8;
        }
        m[0] = (m[0] & 0xfe) | 0x02;
        m
    }
}

pub fn mac_string(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// The EUI-64 link-local IPv6 address the kernel derives from a MAC.
pub fn link_local(m: &[u8; 6]) -> String {
    let a = std::net::Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        (u16::from(m[0] ^ 0x02) << 8) | u16::from(m[1]),
        (u16::from(m[2]) << 8) | 0xff,
        0xfe00 | u16::from(m[3]),
        (u16::from(m[4]) << 8) | u16::from(m[5]),
    );
    a.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_forks_differ() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        let (mut x, mut y) = (a.fork("x"), a.fork("y"));
        assert_ne!(x.next_u64(), y.next_u64());
        assert!((0..1000).all(|_| a.below(10) < 10));
        assert_eq!(Rng::new(1).uuid().len(), 36);
    }

    #[test]
    fn link_local_is_eui64() {
        assert_eq!(
            link_local(&[0xae, 0x36, 0x95, 0xbf, 0x2b, 0xf2]),
            "fe80::ac36:95ff:febf:2bf2"
        );
    }
}
