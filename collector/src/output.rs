//! Writing the bundle: `<out>.partial` created up front (so an unwritable directory
//! fails before a minute of capturing), fsynced, renamed into place; and the signal
//! path that guarantees no `.partial` is left behind on Ctrl-C/SIGTERM.
//!
//! The partial file is created, renamed and removed only under one lock; the signal
//! handler takes that lock, removes the file and exits *while holding it*, so the
//! main thread can never (re)create the file after the handler looked.

use netsnap_schema::writer::partial_path;
use netsnap_schema::{BundleWriter, Manifest, WriteError};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

struct OutState {
    partial: Option<PathBuf>,
    terminating: bool,
}

static STATE: Mutex<OutState> = Mutex::new(OutState {
    partial: None,
    terminating: false,
});

fn state() -> std::sync::MutexGuard<'static, OutState> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot create {}: {}", .path.display(), crate::source::io_reason("", .source).trim_end_matches(": "))]
    Create { path: PathBuf, source: io::Error },
    #[error("writing the bundle to {}: {source}", .path.display())]
    Write { path: PathBuf, source: WriteError },
    #[error("finishing {}: {source}", .path.display())]
    Finish { path: PathBuf, source: io::Error },
    #[error("interrupted")]
    Interrupted,
}

/// A bundle file being written: `<out>.partial` until [`PartialOutput::commit`].
pub struct PartialOutput {
    out: PathBuf,
    partial: PathBuf,
    file: Option<File>,
}

impl PartialOutput {
    /// Creates `<out>.partial` (mode 0600) now.
    pub fn create(out: &Path) -> Result<PartialOutput, OutputError> {
        let partial = partial_path(out);
        let mut st = state();
        if st.terminating {
            return Err(OutputError::Interrupted);
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|source| OutputError::Create {
                path: partial.clone(),
                source,
            })?;
        st.partial = Some(partial.clone());
        Ok(PartialOutput {
            out: out.to_path_buf(),
            partial,
            file: Some(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.out
    }

    /// Writes the archive, fsyncs and renames it into place.
    pub fn commit(
        mut self,
        writer: BundleWriter,
        manifest: Manifest,
    ) -> Result<(Manifest, u64), OutputError> {
        let file = self.file.take().ok_or(OutputError::Interrupted)?;
        let (manifest, file) =
            writer
                .write_archive_to(manifest, file)
                .map_err(|source| OutputError::Write {
                    path: self.out.clone(),
                    source,
                })?;
        let finish = |source| OutputError::Finish {
            path: self.out.clone(),
            source,
        };
        file.sync_all().map_err(finish)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        drop(file);
        {
            let mut st = state();
            if st.terminating {
                return Err(OutputError::Interrupted);
            }
            fs::rename(&self.partial, &self.out).map_err(finish)?;
            st.partial = None;
        }
        if let Some(dir) = self.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Persist the rename; the bundle is complete either way.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok((manifest, size))
    }
}

impl Drop for PartialOutput {
    fn drop(&mut self) {
        let mut st = state();
        if st.partial.as_deref() == Some(self.partial.as_path()) {
            let _ = fs::remove_file(&self.partial);
            st.partial = None;
        }
    }
}

/// Streams the archive to stdout (`-o -`).
pub fn write_stdout(
    writer: BundleWriter,
    manifest: Manifest,
) -> Result<(Manifest, u64), OutputError> {
    struct Counting<W> {
        inner: W,
        n: u64,
    }
    impl<W: Write> Write for Counting<W> {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let n = self.inner.write(b)?;
            self.n += n as u64;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }
    let out = Counting {
        inner: io::stdout().lock(),
        n: 0,
    };
    let (manifest, mut out) =
        writer
            .write_archive_to(manifest, out)
            .map_err(|source| OutputError::Write {
                path: PathBuf::from("-"),
                source,
            })?;
    out.flush().map_err(|source| OutputError::Finish {
        path: PathBuf::from("-"),
        source,
    })?;
    Ok((manifest, out.n))
}

/// Called from the signal thread: kill every tool, remove the partial file and exit
/// without returning (the lock stays held until the process is gone).
pub fn terminate(signal: i32) -> ! {
    let mut st = state();
    st.terminating = true;
    crate::tools::kill_all_children();
    if let Some(p) = st.partial.take() {
        let _ = fs::remove_file(&p);
    }
    let name = match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    };
    let msg = format!("netsnap-collect: interrupted by {name}; no bundle written\n");
    // SAFETY: write(2) and _exit(2) on a plain buffer; nothing else runs after this.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(128 + signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_is_removed_unless_committed() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("b.netsnap.tar.zst");
        {
            let p = PartialOutput::create(&out).unwrap();
            assert!(partial_path(&out).exists());
            drop(p);
        }
        assert!(!partial_path(&out).exists());
        let p = PartialOutput::create(&out).unwrap();
        let w = BundleWriter::new(t.path());
        let m = Manifest::new("0", "h", "k", "2026-01-01T00:00:00Z", 0);
        let (_, size) = p.commit(w, m).unwrap();
        assert!(size > 0);
        assert!(out.exists());
        assert!(!partial_path(&out).exists());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn unwritable_directory_is_a_clear_error() {
        let e = PartialOutput::create(Path::new("/proc/netsnap-test/x.tar.zst"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("cannot create /proc/netsnap-test/x.tar.zst.partial"),
            "{e}"
        );
    }
}
