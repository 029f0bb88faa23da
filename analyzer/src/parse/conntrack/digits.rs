//! Runs of decimal digits read eight bytes at a time. A table's numbers (address
//! octets, ports, timeouts) are one to six digits long and their lengths vary line by
//! line, so a loop that stops at the first non-digit mispredicted its exit on nearly
//! every number; here the run's length comes from a bit mask and its value from three
//! multiplications, with no branch that depends on the digits.

const EACH_BYTE_0: u64 = u64::from_le_bytes([b'0'; 8]);
/// Added to a byte, sets its high bit from `:` (0x3a) up to 0xb9.
const EACH_BYTE_46: u64 = u64::from_le_bytes([0x46; 8]);
const EACH_BYTE_80: u64 = u64::from_le_bytes([0x80; 8]);

/// The digits `b` starts with, when `b` holds at least eight bytes and the run is
/// shorter than eight: its length (0 to 7) and its value. `None` when `b` is shorter
/// or its first eight bytes are all digits (the caller then reads byte by byte).
///
/// A byte is a digit when neither `byte - '0'` nor `byte + 0x46` sets its high bit.
/// Bytes below the first non-digit neither borrow nor carry, so that byte's flag is
/// exact and the lowest flag is the run's end; what lies above it is shifted out.
#[inline]
pub(super) fn digit_run(b: &[u8]) -> Option<(usize, u64)> {
    let eight = <[u8; 8]>::try_from(b.get(..8)?).ok()?;
    let x = u64::from_le_bytes(eight);
    let values = x.wrapping_sub(EACH_BYTE_0);
    let not_digit = (values | x.wrapping_add(EACH_BYTE_46)) & EACH_BYTE_80;
    let len = (not_digit.trailing_zeros() / 8) as usize;
    if len == 8 {
        return None;
    }
    // The run's digits to the top bytes (the first digit, the most significant, in the
    // lowest of them), zeros below: the eight-digit number with leading zeros.
    let digits = match len {
        0 => 0,
        _ => values << (8 * (8 - len)),
    };
    Some((len, eight_digits(digits)))
}

/// The value of eight digit values, one per byte, the first (most significant) in
/// the lowest byte: pairs, then quads, then the whole.
#[inline]
fn eight_digits(digits: u64) -> u64 {
    const LOW_BYTES: u64 = 0x0000_00ff_0000_00ff;
    const TIMES_100_AND_1E6: u64 = 100 + (1_000_000 << 32);
    const TIMES_1_AND_1E4: u64 = 1 + (10_000 << 32);
    // Byte i becomes 10 × digit i + digit i+1 (at most 99: nothing carries).
    let pairs = digits.wrapping_mul(10).wrapping_add(digits >> 8);
    let first = (pairs & LOW_BYTES).wrapping_mul(TIMES_100_AND_1E6);
    let second = ((pairs >> 16) & LOW_BYTES).wrapping_mul(TIMES_1_AND_1E4);
    first.wrapping_add(second) >> 32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The run and value a byte-by-byte reader finds.
    fn reference(b: &[u8]) -> Option<(usize, u64)> {
        if b.len() < 8 {
            return None;
        }
        let len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if len >= 8 {
            return None;
        }
        let value = b[..len]
            .iter()
            .fold(0u64, |v, c| v * 10 + u64::from(c - b'0'));
        Some((len, value))
    }

    /// Every byte value right after runs of every length, and random bytes around the
    /// digits and the bytes nearest to them in the bit tricks.
    #[test]
    fn reads_what_a_byte_reader_reads() {
        for len in 0..=9 {
            for after in 0..=255u8 {
                let mut b: Vec<u8> = (0..len).map(|i| b"9876543210"[i % 10]).collect();
                b.push(after);
                b.extend_from_slice(b"1234567");
                assert_eq!(digit_run(&b), reference(&b), "{b:?}");
            }
        }
        const BYTES: [u8; 12] = [
            b'0', b'1', b'5', b'9', b'/', b':', 0x00, 0x80, 0xb0, 0xb9, 0xba, 0xff,
        ];
        let mut seed = 0x853c_49e6_748f_ea9bu64;
        for case in 0..300_000 {
            let b = crate::parse::conntrack::tests::random_bytes(&mut seed, &BYTES, case % 12);
            assert_eq!(digit_run(&b), reference(&b), "{b:?}");
        }
    }

    #[test]
    fn values_of_every_length() {
        assert_eq!(digit_run(b"0 xxxxxx"), Some((1, 0)));
        assert_eq!(digit_run(b"65535 xx"), Some((5, 65535)));
        assert_eq!(digit_run(b"9999999x"), Some((7, 9_999_999)));
        assert_eq!(digit_run(b"00000012 "), None);
        assert_eq!(digit_run(b"x1234567"), Some((0, 0)));
        assert_eq!(digit_run(b"123"), None);
    }
}
