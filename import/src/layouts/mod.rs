//! Which tree an input is, and how its files map to a node. A known layout (an sos
//! report, the EKS log collector's tree, a cilium bugtool archive, the hand recipe's
//! capture) names its files by the command that made them, and says which netns each
//! is from; any other tree or file is read loose, every file recognised by content.

use crate::assemble::{Draft, ROOT};
use crate::error::ImportError;
use crate::input::Tree;
use crate::loose::dumps_of;

/// Imports one input tree into `draft`; returns a phrase naming what the input was
/// (for the reason on every source it lacks).
pub fn import_tree(tree: &Tree, draft: &mut Draft) -> Result<String, ImportError> {
    let loose_files: Vec<&String> = tree.files.keys().collect();
    let mut tree_notes = tree.notes.clone();
    for name in loose_files {
        let origin = tree.display(name);
        import_loose(&origin, &tree.files[name], ROOT, draft);
    }
    if let Some(first) = draft.inputs.iter_mut().find(|i| i.path.starts_with(&tree.origin)) {
        first.notes.append(&mut tree_notes);
    }
    Ok("the input was loose dumps".into())
}

/// One file recognised by content, its dumps added for `netns`.
pub fn import_loose(origin: &str, data: &[u8], netns: &str, draft: &mut Draft) {
    let found = dumps_of(data, origin);
    let mut notes = found.notes;
    let mut recognisers: Vec<&str> = Vec::new();
    for dump in &found.dumps {
        draft.add_dump(netns, origin, dump, &mut notes);
        if !recognisers.contains(&dump.kind.name()) {
            recognisers.push(dump.kind.name());
        }
    }
    let recogniser = (!recognisers.is_empty()).then(|| recognisers.join(","));
    draft
        .inputs
        .push(crate::input_record(origin.to_string(), recogniser.as_deref(), notes));
}
