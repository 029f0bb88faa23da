//! `netsnap analyze` on what is not a netsnap bundle (an sos report, a support
//! archive, pasted dumps): those inputs are imported together, in memory, as one node
//! (netsnap-import), and that node is analysed like a bundle.

use netsnap_import::ImportError;
use netsnap_schema::manifest::MANIFEST_PATH;
use netsnap_schema::{Bundle, ReadLimits};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A netsnap bundle: named `*.netsnap.tar.zst` (whatever it holds: the bundle reader
/// says what is wrong with it), a directory with a manifest, or a zstd-compressed tar
/// whose first entry is the manifest. Anything else is an import input.
pub fn is_bundle(path: &Path) -> bool {
    if path.to_string_lossy().ends_with(".netsnap.tar.zst") {
        return true;
    }
    if path.is_dir() {
        return path.join(MANIFEST_PATH).is_file();
    }
    let Ok(file) = std::fs::File::open(path) else {
        // Let the bundle reader report what is wrong with it.
        return true;
    };
    let Ok(mut decoder) = zstd_first_block(file) else {
        return false;
    };
    let mut header = [0u8; 512];
    if decoder.read_exact(&mut header).is_err() {
        return false;
    }
    header.starts_with(format!("{MANIFEST_PATH}\0").as_bytes())
}

fn zstd_first_block(file: std::fs::File) -> std::io::Result<impl Read> {
    let mut magic = [0u8; 4];
    let mut f = std::io::BufReader::new(file);
    f.read_exact(&mut magic)?;
    if magic != [0x28, 0xb5, 0x2f, 0xfd] {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    zstd::Decoder::new(std::io::Cursor::new(magic).chain(f))
}

/// Splits the paths into bundles and import inputs, in their order.
pub fn split(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    paths.iter().cloned().partition(|p| is_bundle(p))
}

/// Imports `inputs` as one node and returns it as a verified in-memory bundle, with
/// the import's notes (prompts, text around dumps, inputs not recognised).
pub fn import(
    inputs: &[PathBuf],
    limits: &ReadLimits,
) -> Result<(Bundle, Vec<String>), ImportError> {
    let draft = netsnap_import::import(inputs, limits)?;
    let notes: Vec<String> = draft.inputs.iter().flat_map(|i| i.notes.clone()).collect();
    let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    let origin = format!("imported: {}", names.join(" "));
    Ok((netsnap_import::into_bundle(draft, &origin, limits)?, notes))
}
