//! `host/cni/<file name>`: every regular file of the node's CNI configuration
//! directory (`<host-root>/etc/cni/net.d`, one level, sorted by name), raw. Kubelet
//! uses the first one in lexical order, so all of them matter.
//!
//! One record per file. A symlink is followed only when it resolves inside the host
//! root; one that leaves it is refused, never read. The directory missing or empty
//! makes one `unavailable` record; a file that cannot be read is a `partial` record
//! of the source, without content, with the reason.

use crate::source::{io_reason, printable, Captured};
use crate::sys::{HostDirEntry, Sys};
use netsnap_schema::registry::SourceId;
use netsnap_schema::SourceStatus;
use std::io;
use std::path::Path;

/// The directory, inside the host root.
pub const CNI_DIR: &str = "/etc/cni/net.d";

/// Largest file kept (a CNI configuration is a few KiB).
pub const MAX_FILE: u64 = 1 << 20;

/// Most files kept: a directory filled by mistake must not fill the bundle.
pub const MAX_FILES: usize = 256;

/// Every file of the CNI directory, one record each.
pub fn capture(sys: &dyn Sys) -> Vec<Captured> {
    let name = SourceId::HostCni.name();
    let entries = match sys.read_host_dir(Path::new(CNI_DIR)) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return vec![Captured::unavailable(
                name,
                format!("{CNI_DIR} does not exist"),
            )]
        }
        Err(e) => return vec![Captured::failed(name, io_reason(CNI_DIR, &e))],
    };
    let files: Vec<&HostDirEntry> = entries
        .iter()
        .filter(|e| e.is_file || e.refused.is_some())
        .collect();
    if files.is_empty() {
        return vec![Captured::unavailable(
            name,
            format!("{CNI_DIR} holds no configuration file"),
        )];
    }
    let mut out: Vec<Captured> = files.iter().take(MAX_FILES).map(|e| file(sys, e)).collect();
    if files.len() > MAX_FILES {
        let left = files.len() - MAX_FILES;
        out.push(Captured::new_partial(
            name,
            format!("{left} more file(s) in {CNI_DIR} not kept (at most {MAX_FILES})"),
        ));
    }
    out
}

fn file(sys: &dyn Sys, entry: &HostDirEntry) -> Captured {
    let name = SourceId::HostCni.name();
    let shown = format!("{CNI_DIR}/{}", printable(&entry.name));
    // The name becomes a bundle path and reaches terminals: keep it plain.
    if entry
        .name
        .chars()
        .any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER)
    {
        return Captured::new_partial(
            name,
            format!("{shown}: file name not kept (control characters or not UTF-8)"),
        );
    }
    if let Some(reason) = &entry.refused {
        return Captured::new_partial(name, format!("{shown}: {reason}"));
    }
    let Some(path) = SourceId::HostCni.dir_path(&entry.name) else {
        return Captured::failed(name, "host/cni is not a directory source");
    };
    let inner = Path::new(CNI_DIR).join(&entry.name);
    // One byte over the cap tells a file of exactly the cap from a larger one.
    match sys.read_host_file(&inner, MAX_FILE + 1) {
        Ok(mut bytes) if bytes.len() as u64 > MAX_FILE => {
            bytes.truncate(MAX_FILE as usize);
            Captured::bytes(name, path, SourceStatus::Partial, bytes).with_error(format!(
                "{shown}: larger than {MAX_FILE} bytes; the first {MAX_FILE} are kept"
            ))
        }
        Ok(bytes) => Captured::bytes(name, path, SourceStatus::Ok, bytes).with_note(shown),
        Err(e) => Captured::new_partial(name, io_reason(&shown, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::FakeSys;

    #[test]
    fn every_file_in_name_order_byte_identical() {
        let sys = FakeSys::default()
            .host_file("/etc/cni/net.d/20-b.conf", b"{\"b\":1}\n")
            .host_file("/etc/cni/net.d/10-a.conflist", b"{\"a\":\xff}")
            .host_dir_entry("/etc/cni/net.d", "sub", false);
        let got = capture(&sys);
        let paths: Vec<_> = got.iter().map(|c| c.record.path.clone()).collect();
        assert_eq!(
            paths,
            [
                Some("host/cni/10-a.conflist".to_string()),
                Some("host/cni/20-b.conf".to_string())
            ]
        );
        assert!(got.iter().all(|c| c.record.status == SourceStatus::Ok));
        assert!(got.iter().all(|c| c.record.name == "host/cni"));
        assert_eq!(got[0].content_bytes(), Some(&b"{\"a\":\xff}"[..]));
    }

    #[test]
    fn missing_directory_is_unavailable() {
        let got = capture(&FakeSys::default());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].record.status, SourceStatus::Unavailable);
        assert!(got[0]
            .record
            .error
            .as_deref()
            .unwrap()
            .contains("does not exist"));
        let empty = FakeSys::default().host_dir_entry("/etc/cni/net.d", "sub", false);
        assert_eq!(capture(&empty)[0].record.status, SourceStatus::Unavailable);
    }

    #[test]
    fn unreadable_refused_and_oversized_files_are_partial() {
        let big = vec![b'x'; MAX_FILE as usize + 10];
        let sys = FakeSys::default()
            .host_file("/etc/cni/net.d/10-ok.conf", b"{}")
            .host_file_error("/etc/cni/net.d/20-secret.conf", libc::EACCES)
            .host_symlink_refused(
                "/etc/cni/net.d/30-escape.conf",
                "symlink leaves the host root",
            )
            .host_file("/etc/cni/net.d/40-big.conf", &big)
            .host_file("/etc/cni/net.d/50-\x1b[2J.conf", b"{}");
        let got = capture(&sys);
        let status: Vec<_> = got.iter().map(|c| c.record.status).collect();
        use SourceStatus::{Ok, Partial};
        assert_eq!(status, [Ok, Partial, Partial, Partial, Partial]);
        let err = |i: usize| got[i].record.error.clone().unwrap_or_default();
        assert!(err(1).starts_with("permission denied: /etc/cni/net.d/20-secret.conf"));
        assert!(got[1].record.path.is_none() && got[2].record.path.is_none());
        assert!(err(2).contains("leaves the host root"), "{}", err(2));
        assert_eq!(
            got[3].content_bytes().map(<[u8]>::len),
            Some(MAX_FILE as usize)
        );
        assert!(err(3).contains("larger than"));
        assert!(got[4].record.path.is_none());
        assert!(
            err(4).contains("50-\\x1b[2J.conf: file name not kept"),
            "{}",
            err(4)
        );
    }
}
