//! What `netsnap redact` and `netsnap-collect --redact` do with files: the key file,
//! where the map goes (beside the output, never inside a bundle), and writing the
//! redacted bundle as an archive or a directory. Both binaries call these, so the
//! rules are the same everywhere.

use crate::error::RedactError;
use crate::key::RedactKey;
use crate::map::RedactionMap;
use crate::redact::Redactor;
use netsnap_schema::{Bundle, BundleWriter, Manifest, ReadLimits};
use std::fs::OpenOptions;
use std::io::{ErrorKind, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `<OUT>.map.json`, beside the output.
pub fn default_map_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".map.json");
    out.with_file_name(name)
}

/// Refuses a map path that is the output itself, inside the output directory, or
/// inside any bundle directory (one holding a `manifest.json`): the map reverses the
/// redaction and must never travel with the bundle.
pub fn check_map_path(map: &Path, out: &Path) -> Result<(), RedactError> {
    let refuse = |why: &str| RedactError::MapPlacement {
        path: map.display().to_string(),
        reason: why.to_string(),
    };
    let parent = match map.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = parent
        .canonicalize()
        .map_err(|e| refuse(&format!("its directory is not usable: {e}")))?;
    let out_abs = absolute(out);
    let map_abs = parent.join(map.file_name().unwrap_or_default());
    if map_abs == out_abs {
        return Err(refuse("it is the output itself"));
    }
    if parent.starts_with(&out_abs) {
        return Err(refuse("it is inside the output bundle directory"));
    }
    if let Some(bundle_dir) = parent
        .ancestors()
        .find(|d| d.join(netsnap_schema::manifest::MANIFEST_PATH).is_file())
    {
        return Err(refuse(&format!(
            "{} is a bundle directory",
            bundle_dir.display()
        )));
    }
    Ok(())
}

/// `path` made absolute (through its parent, which exists; the path itself may not).
fn absolute(path: &Path) -> PathBuf {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(p), Some(name)) => p.join(name),
        _ => path.to_path_buf(),
    }
}

/// Reads the key at `path`, or creates a new random one there (mode 0600) when the
/// file does not exist; the flag says it was created.
pub fn load_or_create_key(path: &Path) -> Result<(RedactKey, bool), RedactError> {
    match RedactKey::from_file(path) {
        Ok(key) => Ok((key, false)),
        Err(RedactError::KeyIo { source, .. }) if source.kind() == ErrorKind::NotFound => {
            let key = RedactKey::random()?;
            key.to_file(path)?;
            Ok((key, true))
        }
        Err(e) => Err(e),
    }
}

/// Writes the map as JSON with mode 0600; never overwrites a file.
pub fn write_map(map: &RedactionMap, path: &Path) -> Result<(), RedactError> {
    let io = |source| RedactError::MapIo {
        path: path.display().to_string(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(&map.to_json()?)
        .and_then(|()| f.sync_all())
        .map_err(io)
}

/// Whether `out` names an archive (`*.tar.zst`) rather than a bundle directory.
pub fn is_archive_path(out: &Path) -> bool {
    out.to_string_lossy().ends_with(".tar.zst")
}

/// Redacts `bundle` into `out` (an archive when it ends in `.tar.zst`, else a new
/// directory) and then writes the map to `map` (checked first with
/// [`check_map_path`]). `spool_dir` holds the writer's unnamed temporary files.
pub fn redact_to_path(
    bundle: &Bundle,
    key: &RedactKey,
    out: &Path,
    map: &Path,
    spool_dir: &Path,
) -> Result<(Manifest, RedactionMap), RedactError> {
    check_map_path(map, out)?;
    if out.exists() {
        return Err(RedactError::OutputExists(out.display().to_string()));
    }
    if map.exists() {
        return Err(RedactError::OutputExists(map.display().to_string()));
    }
    let mut r = Redactor::new(key);
    r.collect(bundle);
    let mut w = BundleWriter::new(spool_dir);
    let manifest = r.redact_into(bundle, &mut w)?;
    let manifest = if is_archive_path(out) {
        w.write_archive(manifest, out)?
    } else {
        w.write_dir(manifest, out)?
    };
    let m = r.map();
    write_map(&m, map)?;
    Ok((manifest, m))
}

/// For the collector's `--redact`: the captured sources go only into an unnamed
/// temporary file in `spool_dir` (nothing unredacted is ever visible on disk), are
/// read back with the safe reader, and come out as a writer of the redacted bundle
/// and its manifest, for the collector's own output path (`.partial` + rename, or
/// stdout), plus the map to write beside the output.
pub fn redact_writer(
    writer: BundleWriter,
    manifest: Manifest,
    key: &RedactKey,
    spool_dir: &Path,
) -> Result<(BundleWriter, Manifest, RedactionMap), RedactError> {
    let spool = |source| RedactError::Spool {
        path: "(unredacted capture)".into(),
        source,
    };
    let file = tempfile::tempfile_in(spool_dir).map_err(spool)?;
    let (_, mut file) = writer.write_archive_to(manifest, file)?;
    file.seek(SeekFrom::Start(0)).map_err(spool)?;
    let bundle = Bundle::from_archive(
        std::io::BufReader::new(file),
        "(capture)",
        &ReadLimits::default(),
    )?;
    let mut r = Redactor::new(key);
    r.collect(&bundle);
    let mut out = BundleWriter::new(spool_dir);
    let manifest = r.redact_into(&bundle, &mut out)?;
    Ok((out, manifest, r.map()))
}

/// The default bundle file name of a redacted capture: the layout's
/// `<hostname>-<time>.netsnap.tar.zst` with the hostname's pseudonym, so the file
/// name does not give the node away (and nodes of a cluster still get distinct names).
pub fn redacted_file_name(key: &RedactKey, hostname: &str, compact_utc: &str) -> String {
    netsnap_schema::layout::bundle_file_name(&redacted_host_name(key, hostname), compact_utc)
}

/// The pseudonym of a host (or node) name under `key`: each of its words replaced,
/// as in the bundles redacted with that key.
pub fn redacted_host_name(key: &RedactKey, hostname: &str) -> String {
    let mut r = Redactor::new(key);
    for word in crate::text::words(hostname.as_bytes()) {
        r.add_name(&word);
    }
    r.rewrite_text(hostname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_beside_never_inside() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("node.netsnap.tar.zst");
        let map = default_map_path(&out);
        assert_eq!(map, dir.path().join("node.netsnap.tar.zst.map.json"));
        assert!(check_map_path(&map, &out).is_ok());
        assert!(check_map_path(&out, &out).is_err());

        let bundle_dir = dir.path().join("bundle");
        std::fs::create_dir(&bundle_dir).unwrap();
        std::fs::write(bundle_dir.join("manifest.json"), b"{}").unwrap();
        assert!(check_map_path(&bundle_dir.join("map.json"), &out).is_err());
        std::fs::create_dir(bundle_dir.join("netns")).unwrap();
        assert!(check_map_path(&bundle_dir.join("netns/map.json"), &out).is_err());
        let out_dir = dir.path().join("redacted");
        std::fs::create_dir(&out_dir).unwrap();
        assert!(check_map_path(&out_dir.join("m.json"), &out_dir).is_err());
        assert!(check_map_path(&default_map_path(&out_dir), &out_dir).is_ok());
    }

    #[test]
    fn redacted_file_name_hides_the_hostname() {
        let key = RedactKey::from_bytes([8; 32]);
        let name = redacted_file_name(&key, "node-7.corp.example", "20261121T000000Z");
        assert!(
            name.ends_with("-20261121T000000Z.netsnap.tar.zst"),
            "{name}"
        );
        assert!(!name.contains("corp") && !name.contains("node-7"), "{name}");
        assert_eq!(
            name,
            redacted_file_name(&key, "node-7.corp.example", "20261121T000000Z")
        );
    }

    #[test]
    fn key_is_created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cluster.key");
        let (k1, created) = load_or_create_key(&p).unwrap();
        assert!(created);
        let (k2, created) = load_or_create_key(&p).unwrap();
        assert!(!created);
        assert_eq!(k1, k2);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(k1.to_file(&p), Err(RedactError::KeyExists { .. })));
    }
}
