//! iptables-save (both backends, and kube-proxy's restore input): names live in
//! `--comment` (kube-proxy's `ns/svc:port …`) and log prefixes. Rewriting itself is
//! the text rules (addresses, `KUBE-SVC-<hash>` chains, collected names).

use crate::text::words;

/// Options whose argument is free text chosen by whoever wrote the rule.
const TEXT_OPTIONS: [&str; 3] = ["--comment", "--log-prefix", "--nflog-prefix"];

/// Names in the comments and log prefixes of a save file.
pub(crate) fn collect(text: &[u8], found: &mut Vec<String>) {
    for line in text.split(|b| *b == b'\n') {
        let args = shell_words(line);
        for pair in args.windows(2) {
            if TEXT_OPTIONS.iter().any(|o| pair[0] == o.as_bytes()) {
                found.extend(words(&pair[1]));
            }
        }
    }
}

/// iptables-save's quoting: `"…"` with `\"` and `\\` escapes, else whitespace splits.
pub(crate) fn shell_words(line: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if line[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut word = Vec::new();
        if line[i] == b'"' {
            i += 1;
            while i < line.len() && line[i] != b'"' {
                if line[i] == b'\\' && i + 1 < line.len() {
                    i += 1;
                }
                word.push(line[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < line.len() && !line[i].is_ascii_whitespace() {
                word.push(line[i]);
                i += 1;
            }
        }
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_restore_input() {
        let mut found = Vec::new();
        collect(
            br#"[0:0] -A KUBE-SVC-X -m comment --comment "ns1/web:http -> 10.244.1.5:8080" -j KUBE-SEP-Y
-A KUBE-SERVICES -m comment --comment ns2/local:http -j X
-A X -m comment --comment "cali:say \"hi\" \\ to the \"host\"" -j LOG --log-prefix "drop-ns3 ""#,
            &mut found,
        );
        assert_eq!(found, ["ns1", "web", "ns2", "say", "hi", "drop-ns3"]);
    }
}
