//! Which tree an input is, and how its files map to a node. A known layout (an sos
//! report, the EKS log collector's tree, a cilium bugtool archive, the hand recipe's
//! capture) names its files by the command that made them, and says which netns each
//! is from; any other tree or file is read loose, every file recognised by content.

use crate::assemble::{Draft, ROOT};
use crate::error::ImportError;
use crate::input::Tree;
use crate::kind::Kind;
use crate::loose::dumps_of;
use crate::paste::Dump;

pub mod bugtool;
pub mod eks;
pub mod hand_recipe;
pub mod sos;

/// Imports one input tree into `draft`; returns a phrase naming what the input was
/// (for the reason on every source it lacks).
pub fn import_tree(tree: &Tree, draft: &mut Draft) -> Result<String, ImportError> {
    let first_input = draft.inputs.len();
    let reason = if let Some(prefix) = sos::detect(tree) {
        sos::import(tree, &prefix, draft)
    } else if let Some(prefix) = bugtool::detect(tree) {
        bugtool::import(tree, &prefix, draft)
    } else if let Some(prefix) = eks::detect(tree) {
        eks::import(tree, &prefix, draft)
    } else if let Some(prefix) = hand_recipe::detect(tree) {
        hand_recipe::import(tree, &prefix, draft)
    } else {
        import_all_loose(tree, draft)
    };
    if let Some(first) = draft.inputs.get_mut(first_input) {
        first.notes.extend(tree.notes.iter().cloned());
    }
    Ok(reason)
}

/// Every file of a tree no layout claims, recognised by content.
fn import_all_loose(tree: &Tree, draft: &mut Draft) -> String {
    let loose_files: Vec<&String> = tree.files.keys().collect();
    for name in loose_files {
        let origin = tree.display(name);
        import_file(&origin, &tree.files[name], ROOT, None, draft);
    }
    "the input was loose dumps".into()
}

/// One file recognised by content, its dumps added for `netns`; `command` is what a
/// layout knows made the file (`ip -6 rule`), used where no prompt line says it.
pub fn import_file(
    origin: &str,
    data: &[u8],
    netns: &str,
    command: Option<&str>,
    draft: &mut Draft,
) {
    let mut found = dumps_of(data, origin);
    for d in &mut found.dumps {
        if d.command.is_none() {
            d.command = command.map(str::to_string);
        }
    }
    let mut notes = found.notes;
    let mut recognisers: Vec<&str> = Vec::new();
    for dump in &found.dumps {
        draft.add_dump(netns, origin, dump, &mut notes);
        if !recognisers.contains(&dump.kind.name()) {
            recognisers.push(dump.kind.name());
        }
    }
    // `ss` that lists no TCP/UDP socket (a node without listeners) still says so.
    let is_ss = command.is_some_and(|c| c.starts_with("ss "));
    if is_ss
        && !recognisers.contains(&Kind::Ss.name())
        && (data.is_empty() || String::from_utf8_lossy(data).contains("Netid State"))
    {
        let empty = Dump {
            kind: Kind::Ss,
            text: String::new(),
            lines: [1, 1],
            command: command.map(str::to_string),
        };
        draft.add_dump(netns, origin, &empty, &mut notes);
        recognisers.push(Kind::Ss.name());
    }
    let recogniser = (!recognisers.is_empty()).then(|| recognisers.join(","));
    draft.inputs.push(crate::input_record(
        origin.to_string(),
        recogniser.as_deref(),
        notes,
    ));
}
