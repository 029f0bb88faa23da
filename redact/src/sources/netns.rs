//! The netns index, host facts and manifest: pod identities (namespace, name,
//! hostname), netns ids and the names in discovery paths (`/run/netns/<name>`,
//! runtime netns paths), the node's hostname.

use crate::text::words;

/// Keys whose string values are names (or paths ending in one).
const NAME_KEYS: [&str; 5] = ["id", "hostname", "namespace", "name", "path"];

/// Names in `netns/index.json` (and `host/facts.json`, which has `hostname`).
pub(crate) fn collect(json: &[u8], found: &mut Vec<String>) {
    super::json::for_each_string(json, |key, s| {
        if !key.is_some_and(|k| NAME_KEYS.contains(&k)) {
            return;
        }
        // Only the last component of a path names something.
        let s = match key {
            Some("path") => s.rsplit('/').next().unwrap_or(s),
            _ => s,
        };
        if !is_inode_id(s) {
            found.extend(words(s.as_bytes()));
        }
    });
}

/// `ino-<inode>`: the collector's id for a netns without a name.
fn is_inode_id(s: &str) -> bool {
    s.strip_prefix("ino-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn pod_identities_and_paths() {
        let mut found = Vec::new();
        super::collect(
            br#"{"netns": [{"id": "root", "found_by": [{"via": "node", "path": "/proc/1/ns/net"}]},
            {"id": "ino-4026532245", "hostname": "web-0", "found_by": [{"via": "run_netns", "path": "/run/netns/nsm-demo.pod0"}],
             "pod": {"namespace": "shop", "name": "web-0", "uid": "79311748-fc2f-4cf7-8b5e-990b2d4a229c", "source": "crictl"}}]}"#,
            &mut found,
        );
        found.sort();
        assert_eq!(found, ["nsm-demo", "pod0", "shop", "web-0", "web-0"]);
    }
}
