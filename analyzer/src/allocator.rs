//! `netsnap`'s allocator: mimalloc for the small objects, glibc's malloc for the big
//! buffers.
//!
//! An analysis makes and frees millions of small objects on several threads (parsed
//! rules, the model, the trace engine's branches); mimalloc does that with less CPU
//! than glibc's malloc: 100 medium bundles as one cluster ~14.4 → ~10.4 s, the large
//! bundle 7.5 → 6.4 × the zstd floor without the matrix, 17.7 → 15.5 × with it
//! (docs/performance.md). Big buffers (a bundle's entries, made at their announced
//! size when the address space allows and else grown by doubling; conntrack tables)
//! stay with glibc, which maps them on their own and grows them in place (`mremap`):
//! mimalloc copies a grown huge block into a new one, and under the hostile corpus's
//! 512 MiB address-space limit a 100 MB entry then no longer fit.

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout, System};
#[cfg(all(target_os = "linux", target_env = "gnu"))]
use std::ffi::c_int;

/// From this size on, a block is glibc's.
const BIG: usize = 1 << 20;

/// From this size on, glibc maps a block on its own (its own ceiling for the
/// threshold it otherwise moves by itself).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MAP_ON_THEIR_OWN: c_int = 32 << 20;

/// Sends each allocation to mimalloc or glibc by its size, so a block is always
/// freed (and grown) by the allocator that made it: `dealloc` and `realloc` are given
/// the size the block was made with.
pub struct Split;

fn is_big(size: usize) -> bool {
    size >= BIG
}

// SAFETY: every method forwards to the allocator that owns the block by its size (the
// layout Rust passes back is the one the block was made or last grown with); a block
// that crosses the threshold when grown or shrunk is moved: allocated in the new
// owner, copied, freed in the old one.
unsafe impl GlobalAlloc for Split {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_big(layout.size()) {
            unsafe { System.alloc(layout) }
        } else {
            unsafe { MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_big(layout.size()) {
            unsafe { System.alloc_zeroed(layout) }
        } else {
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_big(layout.size()) {
            unsafe { System.dealloc(ptr, layout) }
        } else {
            unsafe { MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (is_big(layout.size()), is_big(new_size)) {
            (true, true) => unsafe { System.realloc(ptr, layout, new_size) },
            (false, false) => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: the caller guarantees new_size, rounded up to the alignment,
                // does not overflow isize (GlobalAlloc::realloc's contract).
                let new_layout =
                    unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                moved
            }
        }
    }
}

/// Called first thing in `main`, before any thread starts.
///
/// Freed small blocks go back to the kernel after 100 ms instead of mimalloc's 10: the
/// analysis frees and allocates again in bursts (a stage's temporaries, then the next
/// stage's), and pages given back too early are faulted in and zeroed again. Measured
/// while mimalloc still served every block: large bundle without the matrix 1.57 →
/// 1.46 s, 100 medium nodes as one cluster ~10.4 → 9.8 s (docs/performance.md).
///
/// glibc keeps one arena for the big buffers instead of one per thread: each thread's
/// arena reserves 64 MiB of address space, which beside mimalloc's own segments put
/// the hostile corpus's 1,000,000-netns index over its 512 MiB address-space limit
/// (it needed 600). Only blocks of 1 MiB and more reach glibc, so the shared arena's
/// lock is not contended.
///
/// glibc also keeps what is freed in its heap (blocks below [`MAP_ON_THEIR_OWN`])
/// instead of giving the heap's top back whenever it grows past twice the last
/// block's size: the conntrack table's 4 MiB pieces, a few alive at a time, otherwise
/// give the top back and fault it in again piece after piece (~24k of the large
/// bundle's ~115k page faults). Blocks from [`MAP_ON_THEIR_OWN`] on are still mapped
/// on their own and unmapped when freed.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a glibc tunable; any value is accepted or refused
    // (returns 0).
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MAP_ON_THEIR_OWN);
        libc::mallopt(libc::M_TRIM_THRESHOLD, c_int::MAX);
    }
    // mimalloc v2's `mi_option_purge_delay` (include/mimalloc.h); the -sys crate
    // names only some of the options.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: a version query and an option store; mimalloc reads the option when it
    // next decides to purge, so setting it while running is allowed.
    unsafe {
        if libmimalloc_sys::mi_version() / 10_000 == 2 {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, 100);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks grown and shrunk across the threshold keep their bytes and end with the
    /// allocator that owns their size.
    #[test]
    fn blocks_crossing_the_threshold_keep_their_bytes() {
        let a = Split;
        for align in [1, 8, 64, 4096] {
            for (from, to) in [
                (100, BIG + 5),
                (BIG + 5, 100),
                (BIG, BIG * 3),
                (BIG - 1, BIG),
            ] {
                let layout = Layout::from_size_align(from, align).unwrap();
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    for i in 0..from {
                        *p.add(i) = (i % 251) as u8;
                    }
                    let q = a.realloc(p, layout, to);
                    assert!(!q.is_null());
                    assert_eq!(q as usize % align, 0, "{from} → {to}, align {align}");
                    for i in 0..from.min(to) {
                        assert_eq!(*q.add(i), (i % 251) as u8, "{from} → {to} at {i}");
                    }
                    a.dealloc(q, Layout::from_size_align(to, align).unwrap());
                }
            }
        }
        let z = Layout::from_size_align(BIG * 2, 16).unwrap();
        unsafe {
            let p = a.alloc_zeroed(z);
            assert!(std::slice::from_raw_parts(p, z.size())
                .iter()
                .all(|&b| b == 0));
            a.dealloc(p, z);
        }
    }
}
