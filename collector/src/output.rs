//! Writing the bundle: `<out>.partial` created up front (so an unwritable directory
//! fails before a minute of capturing), fsynced, renamed into place; and the signal
//! path that guarantees no `.partial` is left behind on Ctrl-C/SIGTERM.
//!
//! The partial file is created, renamed and removed only under one lock; the signal
//! handler takes that lock, removes the file and exits *while holding it*, so the
//! main thread can never (re)create the file after the handler looked.
//!
//! Two collectors given the same `-o`: the `.partial` is `flock`ed from creation to
//! rename, so the second one fails cleanly instead of writing into the same inode
//! (which used to interleave both archives into a corrupt final file). A `.partial`
//! left by a collector that was SIGKILLed is unlocked and simply reused. The output
//! directory may be shared (`/tmp`): an existing `.partial` that is a symlink, not a
//! regular file, hard-linked or owned by someone else is refused, never written through.

use netsnap_schema::writer::partial_path;
use netsnap_schema::{BundleWriter, Manifest, WriteError};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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
    // The causes are part of the message and deliberately not `#[source]`s: `{:#}`
    // would print every level of the chain again (and WriteError repeats its own).
    #[error("cannot create {}: {}", .path.display(), io_text(.error))]
    Create { path: PathBuf, error: io::Error },
    #[error("writing the bundle to {}: {}", .path.display(), write_text(.error))]
    Write { path: PathBuf, error: WriteError },
    #[error("finishing {}: {}", .path.display(), io_text(.error))]
    Finish { path: PathBuf, error: io::Error },
    #[error("cannot create {}: another netsnap-collect is writing it (the file is locked); wait for it to finish or choose another -o", .path.display())]
    Busy { path: PathBuf },
    #[error("cannot create {}: {reason}; refusing to write through it", .path.display())]
    Unsafe { path: PathBuf, reason: String },
    #[error("interrupted")]
    Interrupted,
}

fn io_text(e: &io::Error) -> String {
    if crate::source::is_permission(e) {
        "permission denied".into()
    } else {
        e.to_string()
    }
}

fn write_text(e: &WriteError) -> String {
    match e {
        // The archive itself ("bundle") or one entry of it: the OS error says it all.
        WriteError::Output { path, source } if path == "bundle" => io_text(source),
        WriteError::Output { path, source } => format!("{path}: {}", io_text(source)),
        other => other.to_string(),
    }
}

/// Opens `partial` for writing, exclusively locked, empty, mode 0600; see the
/// module comment for why each check is there.
fn open_locked(partial: &Path) -> Result<File, OutputError> {
    let create = |error| OutputError::Create {
        path: partial.to_path_buf(),
        error,
    };
    let unsafe_file = |reason: &str| OutputError::Unsafe {
        path: partial.to_path_buf(),
        reason: reason.to_string(),
    };
    // Not even opened when it is a FIFO or device: opening those can block or act.
    if let Ok(m) = fs::symlink_metadata(partial) {
        if m.file_type().is_symlink() {
            return Err(unsafe_file("it exists and is a symbolic link"));
        }
        if !m.file_type().is_file() {
            return Err(unsafe_file("it exists and is not a regular file"));
        }
    }
    // A path swapped between our checks and the lock is re-opened; bounded.
    for _ in 0..8 {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o600)
            // No O_TRUNC: the file may be another collector's until we hold the lock.
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(partial)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => unsafe_file("it exists and is a symbolic link"),
                Some(libc::ENXIO) => unsafe_file("it exists and is not a regular file"),
                _ => create(e),
            })?;
        // SAFETY: flock(2)/fcntl(2) on an fd we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(OutputError::Busy {
                    path: partial.to_path_buf(),
                });
            }
            // No lock support (some network filesystems): carry on unlocked.
        }
        let meta = file.metadata().map_err(create)?;
        // The inode we locked must still be the one the path names: a collector that
        // finished renamed it to its final name meanwhile.
        match fs::symlink_metadata(partial) {
            Ok(m) if (m.dev(), m.ino()) == (meta.dev(), meta.ino()) => {}
            _ => continue,
        }
        if !meta.file_type().is_file() {
            return Err(unsafe_file("it exists and is not a regular file"));
        }
        if meta.nlink() != 1 {
            return Err(unsafe_file("it has other hard links"));
        }
        // SAFETY: geteuid(2) cannot fail.
        if meta.uid() != unsafe { libc::geteuid() } {
            return Err(unsafe_file("it exists and belongs to another user"));
        }
        // SAFETY: fcntl(2) on an fd we own; writes to regular files ignore O_NONBLOCK,
        // it is cleared anyway.
        unsafe {
            let fl = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
            if fl >= 0 {
                libc::fcntl(file.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
            }
        }
        // A stale partial (SIGKILLed collector) is reused from scratch.
        file.set_len(0).map_err(create)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(create)?;
        return Ok(file);
    }
    Err(OutputError::Busy {
        path: partial.to_path_buf(),
    })
}

/// A bundle file being written: `<out>.partial` until [`PartialOutput::commit`].
pub struct PartialOutput {
    out: PathBuf,
    partial: PathBuf,
    file: Option<File>,
    /// A duplicate of the file's descriptor: keeps the `flock` until this value is
    /// gone (after `Drop` removed the file), even when the writer dropped `file`.
    _lock: Option<File>,
}

impl PartialOutput {
    /// Creates `<out>.partial` (mode 0600) now.
    pub fn create(out: &Path) -> Result<PartialOutput, OutputError> {
        let partial = partial_path(out);
        let mut st = state();
        if st.terminating {
            return Err(OutputError::Interrupted);
        }
        let file = open_locked(&partial)?;
        st.partial = Some(partial.clone());
        Ok(PartialOutput {
            out: out.to_path_buf(),
            partial,
            _lock: file.try_clone().ok(),
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
                .map_err(|error| OutputError::Write {
                    path: self.out.clone(),
                    error,
                })?;
        let finish = |error| OutputError::Finish {
            path: self.out.clone(),
            error,
        };
        file.sync_all().map_err(finish)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        {
            let mut st = state();
            if st.terminating {
                return Err(OutputError::Interrupted);
            }
            // Renamed while still locked: nobody else can have started on this inode.
            fs::rename(&self.partial, &self.out).map_err(finish)?;
            st.partial = None;
        }
        drop(file);
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
            .map_err(|error| OutputError::Write {
                path: PathBuf::from("-"),
                error,
            })?;
    out.flush().map_err(|error| OutputError::Finish {
        path: PathBuf::from("-"),
        error,
    })?;
    Ok((manifest, out.n))
}

/// Called from the signal thread: kill every tool, remove the partial file and exit
/// without returning (the lock stays held until the process is gone).
pub fn terminate(signal: i32) -> ! {
    let mut st = state();
    st.terminating = true;
    crate::sys::tools::kill_all_children();
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

    /// One partial output per process is tracked (for the signal path): tests that
    /// create them must not overlap.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[test]
    fn partial_is_removed_unless_committed() {
        let _s = serial();
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
    fn a_second_writer_of_the_same_output_fails_cleanly() {
        // Regression: both used to write into the same `.partial` inode.
        let _s = serial();
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("b.netsnap.tar.zst");
        let first = PartialOutput::create(&out).unwrap();
        let e = PartialOutput::create(&out).err().unwrap();
        assert!(matches!(e, OutputError::Busy { .. }), "{e}");
        assert!(e.to_string().contains("another netsnap-collect"), "{e}");
        // The loser must not have removed the winner's file.
        assert!(partial_path(&out).exists());
        let w = BundleWriter::new(t.path());
        let m = Manifest::new("0", "h", "k", "2026-01-01T00:00:00Z", 0);
        first.commit(w, m).unwrap();
        assert!(out.exists() && !partial_path(&out).exists());
    }

    #[test]
    fn a_stale_partial_is_reused_from_scratch() {
        let _s = serial();
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("b.netsnap.tar.zst");
        // Left by a SIGKILLed run: unlocked, ours, with old content and a wide mode.
        fs::write(partial_path(&out), vec![7u8; 4096]).unwrap();
        fs::set_permissions(partial_path(&out), fs::Permissions::from_mode(0o644)).unwrap();
        let p = PartialOutput::create(&out).unwrap();
        let meta = fs::metadata(partial_path(&out)).unwrap();
        assert_eq!(meta.len(), 0);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        drop(p);
        assert!(!partial_path(&out).exists());
    }

    #[test]
    fn a_planted_partial_is_never_written_through() {
        let _s = serial();
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("b.netsnap.tar.zst");
        let victim = t.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, partial_path(&out)).unwrap();
        let e = PartialOutput::create(&out).err().unwrap().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        fs::remove_file(partial_path(&out)).unwrap();

        // A hard link to someone's file.
        fs::hard_link(&victim, partial_path(&out)).unwrap();
        let e = PartialOutput::create(&out).err().unwrap().to_string();
        assert!(e.contains("hard links"), "{e}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        fs::remove_file(partial_path(&out)).unwrap();

        // A FIFO: opening it for writing would block forever.
        nix::unistd::mkfifo(&partial_path(&out), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = PartialOutput::create(&out).err().unwrap().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn errors_are_said_once() {
        // main prints `{:#}`: no cause may be repeated by an error chain.
        let e = OutputError::Write {
            path: "/o/b.tar.zst".into(),
            error: WriteError::Output {
                path: "bundle".into(),
                source: io::Error::from_raw_os_error(libc::ENOSPC),
            },
        };
        let text = format!("{:#}", anyhow::Error::new(e));
        assert_eq!(
            text,
            "writing the bundle to /o/b.tar.zst: No space left on device (os error 28)"
        );
        let e = OutputError::Create {
            path: "/o/b.partial".into(),
            error: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(
            format!("{:#}", anyhow::Error::new(e)),
            "cannot create /o/b.partial: permission denied"
        );
    }

    #[test]
    fn unwritable_directory_is_a_clear_error() {
        let _s = serial();
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
