//! `collect --redact`: every node's bundle is pseudonymised here, on the machine that
//! runs kubectl, with one key for the whole cluster (the same address or name gets
//! the same pseudonym on every node, so the cluster analysis still joins them). The
//! unredacted stream only ever lives in an unnamed temporary file; node names in
//! file names and in collection.json are pseudonyms too. Each bundle's map
//! (pseudonym → original) is written beside it, as `netsnap-collect --redact` does.

use anyhow::Result;
use netsnap_redact::{RedactKey, Redactor};
use netsnap_schema::Bundle;
use std::path::Path;

pub struct Redaction {
    key: RedactKey,
}

impl Redaction {
    /// `--redact-key FILE` (created when missing), else a random key for this run.
    pub fn new(key_file: Option<&Path>) -> Result<(Redaction, Option<String>)> {
        Ok(match key_file {
            Some(p) => {
                let (key, created) = netsnap_redact::load_or_create_key(p)?;
                let note = created.then(|| format!("new redaction key written to {}", p.display()));
                (Redaction { key }, note)
            }
            None => (
                Redaction {
                    key: RedactKey::random()?,
                },
                None,
            ),
        })
    }

    /// The pseudonym of a node name (what files and records show).
    pub fn shown(&self, node: &str) -> String {
        netsnap_redact::redacted_host_name(&self.key, node)
    }

    /// `text` with the given names (node, pod) replaced by their pseudonyms.
    pub fn scrub(&self, text: &str, names: &[&str]) -> String {
        let mut r = Redactor::new(&self.key);
        for n in names {
            r.add_name(n);
            // Multi-word names are known word by word, as in the bundles.
            for w in n.split(|c: char| !c.is_ascii_alphanumeric()) {
                r.add_name(w);
            }
        }
        r.rewrite_text(text)
    }

    /// Writes `DIR/<pseudonym>.netsnap.tar.zst` and its map beside it; returns the
    /// file name and the bundle's (redacted) hostname.
    pub fn write(&self, bundle: &Bundle, node: &str, dir: &Path) -> Result<(String, String)> {
        let name = format!("{}.netsnap.tar.zst", self.shown(node));
        let out = dir.join(&name);
        let map = netsnap_redact::default_map_path(&out);
        let (manifest, _) =
            netsnap_redact::files::redact_to_path(bundle, &self.key, &out, &map, dir)?;
        Ok((name, manifest.hostname))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_one_pseudonym_per_node() {
        let (r, note) = Redaction::new(None).unwrap();
        assert!(note.is_none());
        let a = r.shown("worker-1.prod.example");
        assert_ne!(a, "worker-1.prod.example");
        assert_eq!(a, r.shown("worker-1.prod.example"));
        crate::targets::check_node_name(&a.to_ascii_lowercase()).unwrap();
        let s = r.scrub(
            "pod netsnap-x on worker-1.prod.example failed",
            &["worker-1.prod.example", "netsnap-x"],
        );
        assert!(!s.contains("worker-1"), "{s}");
    }
}
