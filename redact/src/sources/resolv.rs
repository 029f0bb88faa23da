//! resolv.conf (node, kubelet's, every pod's): `search` and `domain` carry the
//! namespace (`<ns>.svc.cluster.local`) and the organisation's domains.

use crate::text::words;

pub(crate) fn collect(text: &[u8], found: &mut Vec<String>) {
    for line in text.split(|b| *b == b'\n') {
        let mut fields = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|f| !f.is_empty());
        if matches!(fields.next(), Some(b"search") | Some(b"domain")) {
            for domain in fields {
                found.extend(words(domain));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn search_domains() {
        let mut found = Vec::new();
        super::collect(
            b"# c\nsearch ns1.svc.cluster.local svc.cluster.local cluster.local corp.example\ndomain a-b.example\nnameserver 10.96.0.10\n",
            &mut found,
        );
        assert_eq!(found, ["ns1", "corp", "example", "a-b", "example"]);
    }
}
