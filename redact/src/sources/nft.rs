//! nft's JSON ruleset: names live in kube-proxy's chain, map and set names
//! (`service-<hash>-ns/svc/proto/port`, `endpoint-<hash>-…__ip/port`) and in
//! comments (`"comment": "ns1/empty:http"`). Rewriting is the JSON rules.

use crate::names::nft_chain;
use crate::text::words;

pub(crate) fn collect(json: &[u8], found: &mut Vec<String>) {
    super::json::for_each_string(json, |key, s| {
        if key == Some("comment") || nft_chain(s.as_bytes()).is_some() {
            found.extend(words(s.as_bytes()));
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn chain_names_and_comments() {
        let mut found = Vec::new();
        super::collect(
            br#"{"nftables": [{"chain": {"name": "endpoint-5OJB2KTY-ns1/web/tcp/http__10.244.1.5/8080"}}, {"elem": {"comment": "ns2/empty:http"}}, {"set": {"comment": "Active ClusterIPs"}}]}"#,
            &mut found,
        );
        assert_eq!(found, ["ns1", "web", "ns2", "empty"]);
    }
}
