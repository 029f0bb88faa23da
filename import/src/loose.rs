//! One loose file (or one member of a tree no layout claims): JSON dumps (`nft -j`,
//! `ip -j`) are taken whole, with any prompt before and text after reported; every
//! other text is split into dumps by [`crate::paste`].

use crate::kind::Kind;
use crate::paste::{find_dumps, prompt_command, Dump, Found};
use serde_json::Value;

/// The dumps of one input file's content; `origin` names it in notes.
pub fn dumps_of(data: &[u8], origin: &str) -> Found {
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) if data[..e.valid_up_to()].contains(&0) || data.contains(&0) => {
            return Found {
                dumps: Vec::new(),
                notes: vec![format!(
                    "{origin}: binary content, not a text dump; left out"
                )],
            }
        }
        Err(_) => return dumps_of_text(&String::from_utf8_lossy(data), origin, true),
    };
    dumps_of_text(text, origin, false)
}

/// What iptables-nft prints on stderr when legacy tables exist; tools that capture
/// stdout and stderr together (sos) can splice it into the middle of a rule.
const LEGACY_WARNING: &str =
    "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them";

/// Takes the legacy-tables warning out of the middle of a line (rejoining the line
/// it split) and reports it: it also says legacy tables exist on the node.
fn unsplice_warning(text: &str, origin: &str, notes: &mut Vec<String>) -> Option<String> {
    let at = text.find(LEGACY_WARNING)?;
    let line = text[..at].matches('\n').count() + 1;
    let mid_line = at > 0 && !text[..at].ends_with('\n');
    let mut end = at + LEGACY_WARNING.len();
    if mid_line && text[end..].starts_with('\n') {
        end += 1;
    }
    notes.push(format!(
        "{origin} line {line}: iptables' stderr warning that iptables-legacy tables are present{}; the node has legacy tables, which this input does not hold",
        if mid_line { " was spliced into the line; removed and the line rejoined" } else { "" }
    ));
    Some(format!("{}{}", &text[..at], &text[end..]))
}

fn dumps_of_text(text: &str, origin: &str, lossy: bool) -> Found {
    let mut notes = Vec::new();
    let repaired = unsplice_warning(text, origin, &mut notes);
    let text = repaired.as_deref().unwrap_or(text);
    let mut found = json_dump(text, origin).unwrap_or_else(|| find_dumps(text, origin));
    found.notes.splice(0..0, notes);
    if lossy {
        found
            .notes
            .push(format!("{origin}: not valid UTF-8; invalid bytes replaced"));
    }
    if found.dumps.is_empty() && !text.trim().is_empty() {
        found
            .notes
            .push(format!("{origin}: no recognised dump in it"));
    }
    found
}

/// A JSON value starting at the first line that is not a prompt or blank.
fn json_dump(text: &str, origin: &str) -> Option<Found> {
    let mut offset = 0;
    let mut notes = Vec::new();
    let mut command = None;
    let mut line_no = 1u64;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.is_empty() {
        } else if let Some(cmd) = prompt_command(line) {
            notes.push(format!(
                "{origin} line {line_no}: shell prompt `{cmd}` left out"
            ));
            command = Some(cmd.to_string());
        } else if crate::listings::dmesg_message(t).is_some() {
            // `[  901.551090] message` is dmesg, not a JSON array.
            return None;
        } else if t.starts_with('{') || t.starts_with('[') {
            break;
        } else {
            return None;
        }
        offset += line.len();
        line_no += 1;
    }
    let rest = &text[offset..];
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
    let value = match stream.next()? {
        Ok(v) => v,
        Err(e) => {
            notes.push(format!(
                "{origin} line {}: JSON that does not parse ({e}); left out",
                line_no + e.line() as u64 - 1
            ));
            return Some(Found {
                dumps: Vec::new(),
                notes,
            });
        }
    };
    let end = stream.byte_offset();
    let body = &rest[..end];
    let last_line = line_no + body.matches('\n').count() as u64;
    let trailing = rest[end..].trim();
    if !trailing.is_empty() {
        notes.push(format!(
            "{origin} after line {last_line}: {} line(s) of text after the JSON left out",
            trailing.lines().count()
        ));
    }
    let kind = if value.get("nftables").is_some() {
        Kind::NftJson
    } else {
        Kind::IpJson
    };
    let mut body = body.to_string();
    body.push('\n');
    Some(Found {
        dumps: vec![Dump {
            kind,
            text: body,
            lines: [line_no, last_line],
            command,
        }],
        notes,
    })
}
