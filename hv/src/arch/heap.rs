//! hv's heap: a buddy allocator fed first by a small boot arena in BSS (enough to read
//! the payload table and the DTB), then by the rest of hv's reserved RAM.

use buddy_system_allocator::LockedHeap;
use platform::config::Region;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

const BOOT_ARENA: usize = 256 * 1024;

#[repr(C, align(4096))]
struct Arena([u8; BOOT_ARENA]);

static mut ARENA: Arena = Arena([0; BOOT_ARENA]);

/// Hands the boot arena to the allocator. Called once, by the boot CPU, before any
/// allocation.
pub fn init_boot_arena() {
    let start = core::ptr::addr_of_mut!(ARENA) as usize;
    // SAFETY: the arena is unused static memory of exactly BOOT_ARENA bytes.
    unsafe { HEAP.lock().init(start, BOOT_ARENA) };
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
