//! Finding the dumps in a pasted text: every maximal run of lines that fits one
//! format becomes a dump (the longest first); shell prompts, `$ command` lines and any
//! other text around them are left out and reported, never fatal. A last line cut in
//! the middle (the input ends without a newline and the line is not whole) is left out
//! and reported; the rest is analysed.

use crate::kind::{line_complete, scan, Fit, Kind, LINE_KINDS};

/// One dump found in a text.
#[derive(Debug, Clone)]
pub struct Dump {
    pub kind: Kind,
    /// The dump's lines, joined, with a final newline.
    pub text: String,
    /// 1-based first and last line in the input.
    pub lines: [u64; 2],
    /// The command of the nearest prompt line above it (`ip -6 route`), if any.
    pub command: Option<String>,
}

/// The dumps of a text and what was left out of it.
#[derive(Debug, Default)]
pub struct Found {
    pub dumps: Vec<Dump>,
    pub notes: Vec<String>,
}

const COMMANDS: [&str; 14] = [
    "iptables-save",
    "ip6tables-save",
    "iptables-nft-save",
    "iptables-legacy-save",
    "ip6tables-nft-save",
    "ip6tables-legacy-save",
    "nft",
    "ipvsadm",
    "conntrack",
    "ip",
    "cat",
    "sysctl",
    "sudo",
    "nsenter",
];

/// The command of a shell prompt line (`$ ip addr`, `root@node:~# iptables-save`,
/// `[root@n ~]# cat /etc/resolv.conf`), or `None` for any other line.
pub fn prompt_command(line: &str) -> Option<&str> {
    let t = line.trim_end();
    for marker in ["$ ", "# ", "> "] {
        let Some(p) = t.find(marker) else { continue };
        let (before, cmd) = (&t[..p], t[p + marker.len()..].trim());
        let word = cmd.split_whitespace().next().unwrap_or("");
        let known = COMMANDS.contains(&word);
        let host_prompt = !before.is_empty()
            && !before.contains(' ')
            && (before.contains('@') || before.ends_with(':') || before.ends_with('~'))
            || before.starts_with('[') && before.ends_with(']');
        if (before.is_empty() && known) || host_prompt {
            return Some(cmd);
        }
    }
    None
}

/// Splits `text` into dumps (see the module doc). `origin` names the input in notes.
pub fn find_dumps(text: &str, origin: &str) -> Found {
    let ends_with_newline = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let prompt: Vec<Option<&str>> = lines.iter().map(|l| prompt_command(l)).collect();
    let fits: Vec<(Kind, Vec<Fit>)> = LINE_KINDS.iter().map(|k| (*k, scan(*k, &lines))).collect();
    let mut claimed = vec![false; lines.len()];
    let mut found = Found::default();
    while let Some((kind, start, end)) = best_run(&fits, &lines, &prompt, &claimed) {
        claimed[start..=end].iter_mut().for_each(|c| *c = true);
        let mut end = end;
        if end + 1 == lines.len() && !ends_with_newline && !line_complete(kind, lines[end]) {
            found.notes.push(format!(
                "{origin} line {}: cut in the middle of the line (the input ends there); left out, the rest analysed",
                end + 1
            ));
            if end == start {
                continue;
            }
            end -= 1;
        }
        let command = prompt[..start]
            .iter()
            .rev()
            .find_map(|p| *p)
            .map(str::to_string);
        let mut body = lines[start..=end].join("\n");
        body.push('\n');
        found.dumps.push(Dump {
            kind: refine(kind, &lines[start..=end]),
            text: body,
            lines: [start as u64 + 1, end as u64 + 1],
            command,
        });
    }
    found.dumps.sort_by_key(|d| d.lines[0]);
    report_left_out(&lines, &prompt, &claimed, origin, &mut found.notes);
    found
}

/// The longest unclaimed run of one kind: lines that fit (blank lines inside allowed)
/// with at least one strong line, starting at a strong line.
fn best_run(
    fits: &[(Kind, Vec<Fit>)],
    lines: &[&str],
    prompt: &[Option<&str>],
    claimed: &[bool],
) -> Option<(Kind, usize, usize)> {
    let mut best: Option<(usize, Kind, usize, usize)> = None;
    for (kind, fit) in fits {
        let mut i = 0;
        while i < lines.len() {
            if claimed[i] || fit[i] != Fit::Strong || prompt[i].is_some() {
                i += 1;
                continue;
            }
            let (start, mut end, mut strong) = (i, i, 0);
            let mut j = i;
            while j < lines.len() && !claimed[j] && prompt[j].is_none() {
                match fit[j] {
                    Fit::Strong => {
                        strong += 1;
                        end = j;
                    }
                    Fit::Weak => end = j,
                    Fit::No if lines[j].trim().is_empty() => {}
                    Fit::No => break,
                }
                j += 1;
            }
            if best.is_none_or(|(s, ..)| strong > s) {
                best = Some((strong, *kind, start, end));
            }
            i = j.max(i + 1);
        }
    }
    best.map(|(_, k, s, e)| (k, s, e))
}

/// `ip link` and `ip addr` text look alike; addresses decide.
fn refine(kind: Kind, lines: &[&str]) -> Kind {
    match kind {
        Kind::IpAddr | Kind::IpLink => {
            let addr = lines.iter().any(|l| {
                let t = l.trim_start();
                l.starts_with(char::is_whitespace)
                    && (t.starts_with("inet ") || t.starts_with("inet6 "))
            });
            if addr {
                Kind::IpAddr
            } else {
                Kind::IpLink
            }
        }
        Kind::Ipvs
            if lines
                .iter()
                .any(|l| l.starts_with("Prot") && (l.contains("Conns") || l.contains("CPS"))) =>
        {
            Kind::IpvsadmStats
        }
        k => k,
    }
}

fn report_left_out(
    lines: &[&str],
    prompt: &[Option<&str>],
    claimed: &[bool],
    origin: &str,
    notes: &mut Vec<String>,
) {
    let mut i = 0;
    while i < lines.len() {
        if claimed[i] || lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        if let Some(cmd) = prompt[i] {
            notes.push(format!(
                "{origin} line {}: shell prompt `{cmd}` left out",
                i + 1
            ));
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && !claimed[i] && prompt[i].is_none() {
            i += 1;
        }
        let n = lines[start..i]
            .iter()
            .filter(|l| !l.trim().is_empty())
            .count();
        let at = if i == start + 1 {
            format!("line {i}")
        } else {
            format!("lines {}-{i}", start + 1)
        };
        notes.push(format!(
            "{origin} {at}: {n} line(s) of text that is no recognised dump left out (first: {:?})",
            excerpt(lines[start])
        ));
    }
}

fn excerpt(line: &str) -> String {
    line.chars().take(60).collect()
}
