//! `ipset save`: kube-proxy (IPVS mode) and CNIs put `ns/svc:port` in entry comments.

use super::iptables::shell_words;
use crate::text::words;

pub(crate) fn collect(text: &[u8], found: &mut Vec<String>) {
    for line in text.split(|b| *b == b'\n') {
        let args = shell_words(line);
        if args.first().map(Vec::as_slice) != Some(b"add") {
            continue;
        }
        for pair in args.windows(2) {
            if pair[0] == b"comment" {
                found.extend(words(&pair[1]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn entry_comments() {
        let mut found = Vec::new();
        super::collect(
            b"create KUBE-LOOP-BACK hash:ip,port,ip family inet comment bucketsize 12\nadd KUBE-LOOP-BACK 10.244.1.5,tcp:8080,10.244.1.5 comment \"ns1/web:http\"\n",
            &mut found,
        );
        assert_eq!(found, ["ns1", "web"]);
    }
}
