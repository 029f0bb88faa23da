//! nftables chain priorities by name, shared by the analyzer (which reads `nft -j`
//! dumps that may name them) and the importer (which turns `nft list ruleset` text
//! into the numbers the collector's JSON holds).

/// A chain priority written as a number or a standard name with an optional `+ N` /
/// `- N` (nft(8) "PRIORITY"; the bridge family has its own values). `None` for a name
/// nft does not define.
pub fn nft_chain_priority(s: &str, family: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let (name, offset) = match s.find(['+', '-']) {
        Some(i) if i > 0 => {
            let n: i64 = s[i + 1..].trim().parse().ok()?;
            let n = if &s[i..=i] == "-" { -n } else { n };
            (s[..i].trim(), n)
        }
        _ => (s, 0),
    };
    let base = match (family == "bridge", name) {
        (false, "raw") => -300,
        (false, "mangle") => -150,
        (false, "dstnat") => -100,
        (false, "filter") => 0,
        (false, "security") => 50,
        (false, "srcnat") => 100,
        (true, "dstnat") => -300,
        (true, "filter") => -200,
        (true, "out") => 100,
        (true, "srcnat") => 300,
        _ => return None,
    };
    Some(base + offset)
}

#[cfg(test)]
mod tests {
    use super::nft_chain_priority;

    #[test]
    fn names_numbers_and_offsets() {
        assert_eq!(nft_chain_priority("-110", "ip"), Some(-110));
        assert_eq!(nft_chain_priority("dstnat", "ip"), Some(-100));
        assert_eq!(nft_chain_priority("dstnat", "bridge"), Some(-300));
        assert_eq!(nft_chain_priority("filter + 10", "inet"), Some(10));
        assert_eq!(nft_chain_priority("srcnat - 5", "ip6"), Some(95));
        assert_eq!(nft_chain_priority("nosuch", "ip"), None);
        assert_eq!(nft_chain_priority("filter + x", "ip"), None);
    }
}
