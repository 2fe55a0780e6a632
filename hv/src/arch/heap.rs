//! hv's heap: a buddy allocator fed first by a small boot arena in BSS (enough to read
//! the payload table and the DTB), then by the rest of hv's reserved RAM.

use core::sync::atomic::{AtomicBool, Ordering};

use buddy_system_allocator::LockedHeap;
use platform::config::Region;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

const BOOT_ARENA: usize = 256 * 1024;

#[repr(C, align(4096))]
struct Arena([u8; BOOT_ARENA]);

static mut ARENA: Arena = Arena([0; BOOT_ARENA]);
/// Set once the arena is the allocator's: handing it over twice would give out memory
/// that is already in use.
static ARENA_GIVEN: AtomicBool = AtomicBool::new(false);

/// Hands the boot arena to the allocator (the boot CPU, before any allocation). Only the
/// first call does anything: safe to call again.
pub fn init_boot_arena() {
    if ARENA_GIVEN.swap(true, Ordering::AcqRel) {
        return;
    }
    let start = core::ptr::addr_of_mut!(ARENA) as usize;
    // SAFETY: the arena is static memory of exactly BOOT_ARENA bytes that nothing but
    // the allocator uses, and it is handed over once (`ARENA_GIVEN`). `add_to_heap` adds
    // it to whatever the heap holds instead of resetting the heap as `init` would.
    unsafe { HEAP.lock().add_to_heap(start, start + BOOT_ARENA) };
}

/// Adds `region` to the heap.
///
/// # Safety
/// The region must be RAM that nothing else uses, now or later.
pub unsafe fn add(region: Region) {
    // SAFETY: forwarded from the caller.
    unsafe {
        HEAP.lock()
            .add_to_heap(region.base as usize, (region.base + region.size) as usize)
    };
}

pub fn total_bytes() -> usize {
    HEAP.lock().stats_total_bytes()
}
