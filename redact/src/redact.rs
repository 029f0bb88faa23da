//! The bundle → bundle transform, in two phases so that "no original survives" holds
//! for every file: first every name is collected from the places that hold names
//! (netns index, host facts, manifest, iptables/ipset/nft comments and chain names,
//! resolv.conf search domains), then every entry is rewritten with its format's
//! rules *and* every collected name replaced wherever it appears as a word.

use crate::error::RedactError;
use crate::key::RedactKey;
use crate::map::RedactionMap;
use crate::pseudonyms::Pseudonyms;
use crate::sources;
use crate::text;
use netsnap_schema::registry::{self, Location};
use netsnap_schema::{Bundle, BundleWriter, Manifest};

/// Manifest option recording that (and with which key) a bundle was redacted.
pub const REDACTED_OPTION: &str = "redacted";

/// Redacts `bundle` into `out` and returns the manifest to write it with and the map
/// of every pseudonym (to be written beside the output, never inside it).
///
/// ```no_run
/// # use netsnap_redact::*;
/// # use netsnap_schema::*;
/// # fn f(bundle: &Bundle) -> Result<(), Box<dyn std::error::Error>> {
/// let key = RedactKey::random()?;
/// let mut out = BundleWriter::new("/tmp");
/// let (manifest, map) = redact(bundle, &key, &mut out)?;
/// out.write_archive(manifest, std::path::Path::new("/tmp/out.netsnap.tar.zst"))?;
/// std::fs::write("/tmp/out.netsnap.tar.zst.map.json", map.to_json()?)?;
/// # Ok(()) }
/// ```
pub fn redact(
    bundle: &Bundle,
    key: &RedactKey,
    out: &mut BundleWriter,
) -> Result<(Manifest, RedactionMap), RedactError> {
    let mut r = Redactor::new(key);
    r.collect(bundle);
    let manifest = r.redact_into(bundle, out)?;
    Ok((manifest, r.map()))
}

/// A redaction run. Collect from every bundle first (names found in one bundle are
/// then replaced in all of them), then redact each.
pub struct Redactor {
    p: Pseudonyms,
}

impl Redactor {
    pub fn new(key: &RedactKey) -> Redactor {
        Redactor {
            p: Pseudonyms::new(key),
        }
    }

    /// Phase 1: collects the names of one bundle.
    pub fn collect(&mut self, bundle: &Bundle) {
        let mut found = text::words(bundle.manifest.hostname.as_bytes());
        for path in bundle.paths() {
            if let Some(content) = bundle.file(path) {
                sources::collect(path, content, &mut found);
            }
        }
        self.p.names.insert_all(found.iter().map(String::as_str));
    }

    /// Adds a name to pseudonymise everywhere (e.g. a cluster name known to the
    /// caller); returns false for allowlisted or non-name words.
    pub fn add_name(&mut self, name: &str) -> bool {
        self.p.names.insert(name)
    }

    /// Phase 2: writes the redacted entries of `bundle` into `out` and returns the
    /// manifest to write it with.
    pub fn redact_into(
        &mut self,
        bundle: &Bundle,
        out: &mut BundleWriter,
    ) -> Result<Manifest, RedactError> {
        for record in &bundle.manifest.sources {
            let mut new = record.clone();
            new.path = record.path.as_deref().map(|p| self.rewrite_path(p));
            new.netns = record.netns.as_deref().map(|n| self.rewrite_text(n));
            new.error = record.error.as_deref().map(|e| self.rewrite_text(e));
            new.note = record.note.as_deref().map(|n| self.rewrite_text(n));
            // An imported bundle names the files it came from (host names, addresses).
            if let Some(from) = new.imported_from.as_mut() {
                from.path = self.rewrite_text(&from.path);
            }
            match (&record.path, &new.path) {
                (Some(path), Some(new_path)) => {
                    let content = bundle.file(path).unwrap_or_default();
                    let mut spool = out.spool();
                    sources::rewrite(&mut self.p, path, content, &mut spool).map_err(|source| {
                        RedactError::Spool {
                            path: new_path.clone(),
                            source,
                        }
                    })?;
                    out.add_spooled(new, spool)?;
                }
                _ => out.add_record(new)?,
            }
        }
        let mut manifest = bundle.manifest.clone();
        manifest.sources.clear();
        manifest.hostname = self.rewrite_text(&bundle.manifest.hostname);
        for input in manifest.import.iter_mut().flat_map(|i| i.inputs.iter_mut()) {
            input.path = text::rewrite_str(&mut self.p, &input.path);
            for note in input.notes.iter_mut() {
                *note = text::rewrite_str(&mut self.p, note);
            }
        }
        for value in manifest.options.values_mut() {
            *value = text::rewrite_str(&mut self.p, value);
        }
        manifest.options.insert(
            REDACTED_OPTION.into(),
            format!("netsnap-redact, key {}", self.p.fingerprint()),
        );
        Ok(manifest)
    }

    /// Rewrites any text with the pseudonyms of this run.
    pub fn rewrite_text(&mut self, text: &str) -> String {
        text::rewrite_str(&mut self.p, text)
    }

    /// Rewrites the content of one entry, given its original bundle path.
    pub fn rewrite_entry(&mut self, path: &str, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(content.len());
        // Writing into a Vec cannot fail.
        let _ = sources::rewrite(&mut self.p, path, content, &mut out);
        out
    }

    /// The redacted bundle path of an entry: the fixed parts of a registered
    /// source's location are kept, the netns id of a per-netns file and the file name
    /// of a directory source (`host/cni/<name>`) are rewritten as text. A path the
    /// registry does not know keeps the netns rule, the rest is rewritten as text.
    pub fn rewrite_path(&mut self, path: &str) -> String {
        let Some(found) = registry::locate(path) else {
            return self.rewrite_unknown_path(path);
        };
        let rewritten = match found.id.spec().location {
            Location::File(_) => None,
            Location::PerNetns(_) => found
                .netns
                .and_then(|id| found.id.netns_path(&self.rewrite_text(id))),
            Location::Dir(_) => found
                .file
                .and_then(|name| found.id.dir_path(&self.rewrite_text(name))),
        };
        rewritten.unwrap_or_else(|| path.to_string())
    }

    fn rewrite_unknown_path(&mut self, path: &str) -> String {
        if let Some(rest) = path.strip_prefix("netns/") {
            if let Some((id, file)) = rest.split_once('/') {
                return format!("netns/{}/{file}", self.rewrite_text(id));
            }
        }
        self.rewrite_text(path)
    }

    /// The map of every pseudonym given so far.
    pub fn map(&self) -> RedactionMap {
        self.p.map()
    }

    /// The pseudonyms themselves (address and name mappers), for callers that map
    /// values outside a bundle (e.g. findings).
    pub fn pseudonyms(&mut self) -> &mut Pseudonyms {
        &mut self.p
    }
}
