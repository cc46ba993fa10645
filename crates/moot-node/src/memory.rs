//! Giving memory back to the system once a node is idle.
//!
//! glibc's allocator keeps what the program freed in its arenas (one per thread that
//! allocated, up to 8 per core) and returns pages to the system only from the top of a heap, so
//! a node that took in a hub (a full sync peaks at ~200 MB) stays at its peak for as long as it
//! runs even after it dropped its caches. `malloc_trim(0)` walks every arena and gives back
//! every free page. Elsewhere (musl, macOS, Windows) the allocators return memory themselves
//! and [`give_back`] does nothing.

/// Asks the allocator to return its free pages to the system; true if it gave any back. It
/// locks each arena in turn while it walks it (a few ms on a node holding a large hub): call it
/// from a blocking thread once arrivals have settled, not on every allocation-heavy step.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn give_back() -> bool {
    // SAFETY: `malloc_trim` takes no pointer and touches only the allocator's own state, under
    // the allocator's locks (it is safe to call from any thread at any time, as `malloc` is).
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Asks the allocator to return its free pages to the system (nothing to do off glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back() -> bool {
    false
}

/// Bytes the allocator has handed out and not had back (its arenas' blocks in use and its
/// blocks with pages of their own): the live heap, a diagnostic of where a node's resident
/// memory goes. `None` off glibc. (`mallinfo2` needs glibc 2.33 or later; only this
/// diagnostic uses it.)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn heap_in_use() -> Option<usize> {
    // SAFETY: `mallinfo2` takes no pointer and returns a struct by value, read under the
    // allocator's own locks.
    let info = unsafe { libc::mallinfo2() };
    Some(info.uordblks.saturating_add(info.hblkhd))
}

/// The live heap (unknown off glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn heap_in_use() -> Option<usize> {
    None
}

/// Blocks of at least this many bytes get pages of their own (see [`tune`]). 128 KiB rather
/// than 256: the checking threads' buffers of a batch (512 decoded ops, ~160 KB) then go back
/// to the system when freed instead of raising each thread's heap to its own high-water mark.
/// On W the receiver's peak is ~2.7 MB lower (medians of six runs), its converge within 1%.
pub const MMAP_THRESHOLD: usize = 128 * 1024;

/// Sets the allocator up for a long-running node; true if it took the setting. glibc serves
/// a block of at least [`MMAP_THRESHOLD`] bytes from pages of its own: growing it remaps its
/// pages instead of copying them, and freeing it gives them back at once. Left to itself,
/// glibc raises that threshold to 32 MB the first time such a block is freed, and from then
/// on the node's large tables (an index of 131,000 ops, grown by doubling) are grown by copying
/// inside its heap, old and new resident together, leaving holes the heap keeps. On workload W
/// this lowers the receiver's idle RSS by about 8 MB and its peak by about 5 MB, at no cost in
/// time (docs/BENCHMARKS.md). Process-wide; elsewhere than glibc it does nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune() -> bool {
    let threshold = libc::c_int::try_from(MMAP_THRESHOLD).unwrap_or(libc::c_int::MAX);
    // SAFETY: `mallopt` takes no pointer and sets a parameter of the allocator under its own
    // lock (safe to call from any thread at any time).
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) == 1 }
}

/// Sets the allocator up for a long-running node (nothing to do off glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() -> bool {
    false
}

#[cfg(test)]
mod tests {
    /// The allocator tests that free large amounts take turns (they read process-wide counts).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// After a large block is freed below a live one, trimming gives pages back (glibc).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_freed_burst_is_given_back() {
        // Many small blocks (below the mmap threshold, so they come from an arena), freed but
        // for one at the top that pins the heap: only a trim returns the pages below it.
        let _turn = TURN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut blocks: Vec<Vec<u8>> = (0..4_096).map(|i| vec![i as u8; 4_000]).collect();
        let pin = vec![1u8; 4_000];
        blocks.clear();
        blocks.shrink_to_fit();
        assert!(super::give_back(), "16 MB freed and nothing given back");
        assert_eq!(pin[0], 1);
    }

    /// The live heap counts a block while it is held and not after it is freed.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_live_heap_counts_what_is_held() {
        let _turn = TURN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // 64 MiB, against what the other tests of this binary may allocate or free meanwhile
        // (a few MB at most).
        const BLOCK: usize = 64 << 20;
        const SLACK: usize = 16 << 20;
        let before = super::heap_in_use().unwrap_or(0);
        let block = vec![7u8; BLOCK];
        let held = super::heap_in_use().unwrap_or(0);
        assert!(held >= before + BLOCK - SLACK, "{before} -> {held}");
        assert_eq!(block[0], 7);
        drop(block);
        let after = super::heap_in_use().unwrap_or(usize::MAX);
        assert!(after + BLOCK - SLACK <= held, "{held} -> {after}");
    }

    /// glibc takes the setting (it refuses a threshold above its 32 MB maximum).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_allocator_takes_the_node_setting() {
        assert!(super::tune(), "mallopt refused the mmap threshold");
    }
}
