//! Reading a bundle file ahead of the decompressor. The reader is one thread that
//! decompresses as it reads; each time it asks for bytes the kernel no longer holds
//! (a bundle just downloaded, or pages the page cache dropped since) it waits for the
//! disk with every parse thread idle behind it. Asked up front, the kernel reads the
//! whole compressed file while the first entries are decompressed.

use std::fs::File;

/// The most of a file asked for ahead: a big node's bundle is ~40 MB compressed; a
/// larger file is still read sequentially, its head ahead of time.
const AHEAD_AT_MOST: u64 = 256 << 20;

/// Tells the kernel `file` (of `len` bytes) is about to be read front to back, and
/// to start reading its first [`AHEAD_AT_MOST`] bytes now. Advice only: a kernel or
/// file system that ignores it leaves reading as it was.
pub(crate) fn read_ahead(file: &File, len: u64) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        let ahead = len.min(AHEAD_AT_MOST) as libc::off_t;
        // SAFETY: advice on an open descriptor; neither call touches memory, and an
        // error (an fd that is a pipe, say) only means no advice was taken.
        unsafe {
            libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_SEQUENTIAL);
            libc::posix_fadvise(fd, 0, ahead, libc::POSIX_FADV_WILLNEED);
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (file, len);
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    /// Pages of `file`'s first `len` bytes the page cache holds (mincore of a map),
    /// and how many pages they are (mincore reports one byte per system page: 4 KiB
    /// on x86-64, up to 64 KiB on aarch64).
    fn resident_pages(file: &File, len: usize) -> (usize, usize) {
        // SAFETY: sysconf only reads a system constant.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let pages = len.div_ceil(page);
        let mut vec = vec![0u8; pages];
        // SAFETY: a read-only shared map of an open file, unmapped before returning;
        // mincore writes one byte per page into `vec`, which holds `pages`.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            assert_eq!(libc::mincore(map, len, vec.as_mut_ptr()), 0);
            libc::munmap(map, len);
        }
        (vec.iter().filter(|&&b| b & 1 == 1).count(), pages)
    }

    /// A file whose pages were dropped from the cache is read in whole once advised,
    /// before anything reads it.
    #[test]
    fn an_advised_file_is_read_into_the_cache() {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let path = dir.path().join("bundle.tar.zst");
        let len = 8 << 20;
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![0x5a; len]).unwrap();
        f.sync_all().unwrap();
        let f = File::open(&path).unwrap();
        // SAFETY: advice on an open descriptor.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        let (before, pages) = resident_pages(&f, len);
        if before > pages / 2 {
            eprintln!("the file system kept {before}/{pages} pages cached (tmpfs?): not checked");
            return;
        }
        read_ahead(&f, len as u64);
        // WILLNEED starts the reads and returns; the pages arrive as the disk serves
        // them. Polled, not slept for: the check is that they all arrive, nothing
        // reading them.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut resident = before;
        while resident < pages && std::time::Instant::now() < deadline {
            std::thread::yield_now();
            resident = resident_pages(&f, len).0;
        }
        assert_eq!(
            resident, pages,
            "{before} of {pages} pages cached before the advice"
        );
    }
}
