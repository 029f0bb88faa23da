//! `netsnap import`: the support bundles and pasted dumps people already have (an
//! sos report, the EKS log collector's tree, a `cilium-dbg bugtool` archive, loose
//! `iptables-save`/`conntrack -L`/`ip addr`/… output) turned into a format-v1 bundle,
//! so the analyzer runs its usual checks on them with the usual honesty: every entry
//! records where it came from, and every source the input lacks is `unavailable`.
//!
//! Pipeline: [`input`] reads each path into memory (archives through the bundle
//! reader's walk and limits), [`layouts`] map known trees (sos, EKS, bugtool, the
//! hand recipe) file by file, [`loose`] and [`paste`] find dumps in any other file by
//! content, [`assemble`] puts each dump where the collector would have written it.

pub mod assemble;
pub mod convert;
pub mod error;
pub mod input;
pub mod iproute;
pub mod kind;
pub mod layouts;
pub mod listings;
pub mod loose;
pub mod nft_text;
pub mod paste;

pub use assemble::Draft;
pub use error::ImportError;

use netsnap_schema::{Bundle, BundleWriter, ImportedInput, ReadLimits};
use std::path::{Path, PathBuf};

/// Reads every input and assembles one node from them.
pub fn import(paths: &[PathBuf], limits: &ReadLimits) -> Result<Draft, ImportError> {
    import_trees(
        paths
            .iter()
            .map(|path| Ok((input::read_input(path, limits)?, mtime(path)))),
    )
}

/// Assembles one node from inputs as they are read (each with its modification time,
/// Unix seconds): the first input that cannot be read stops the import, and each tree
/// is dropped once its layout has taken what it wants.
pub fn import_trees(
    trees: impl IntoIterator<Item = Result<(input::Tree, u64), ImportError>>,
) -> Result<Draft, ImportError> {
    let mut draft = Draft::default();
    let mut reasons = Vec::new();
    for read in trees {
        let (tree, modified) = read?;
        draft.captured_unix = draft.captured_unix.max(modified);
        let reason = layouts::import_tree(&tree, &mut draft)?;
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    if draft.is_empty() {
        let notes: Vec<String> = draft.inputs.iter().flat_map(|i| i.notes.clone()).collect();
        return Err(ImportError::Nothing(format!(
            "no input held a recognised dump ({})",
            notes.join("; ")
        )));
    }
    draft.infer_nsids();
    draft.unavailable_reason = reasons.join("; ");
    Ok(draft)
}

fn mtime(path: &Path) -> u64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The records of the files of one input (path, recogniser, notes), for the manifest.
pub fn input_record(path: String, recogniser: Option<&str>, notes: Vec<String>) -> ImportedInput {
    ImportedInput {
        path,
        recogniser: recogniser.map(str::to_string),
        notes,
    }
}

/// Writes the node as a `.tar.zst` bundle (via `.partial`, mode 0600).
pub fn write_archive(draft: Draft, out: &Path) -> Result<netsnap_schema::Manifest, ImportError> {
    let spool = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut writer = BundleWriter::new(spool);
    let manifest = draft.write(&mut writer)?;
    Ok(writer.write_archive(manifest, out)?)
}

/// Writes the node as an unpacked bundle directory (which must not exist).
pub fn write_dir(draft: Draft, dir: &Path) -> Result<netsnap_schema::Manifest, ImportError> {
    let spool = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut writer = BundleWriter::new(spool);
    let manifest = draft.write(&mut writer)?;
    Ok(writer.write_dir(manifest, dir)?)
}

/// The node as a verified in-memory bundle (`netsnap analyze FILE…` on dumps): written
/// to memory and read back through the bundle reader, so it is checked like any other.
pub fn into_bundle(draft: Draft, origin: &str, limits: &ReadLimits) -> Result<Bundle, ImportError> {
    let mut writer = BundleWriter::new(std::env::temp_dir());
    let manifest = draft.write(&mut writer)?;
    let (_, bytes) = writer.write_archive_to(manifest, Vec::new())?;
    Ok(Bundle::from_archive(bytes.as_slice(), origin, limits)?)
}
