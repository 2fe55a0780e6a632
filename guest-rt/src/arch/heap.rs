//! guest-rt's heap: a buddy allocator over an arena in BSS.

use buddy_system_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

const ARENA: usize = 1 << 20;

#[repr(C, align(4096))]
struct Arena([u8; ARENA]);

static mut MEMORY: Arena = Arena([0; ARENA]);

/// Called once by vCPU 0 before any allocation.
pub fn init() {
    let start = core::ptr::addr_of_mut!(MEMORY) as usize;
    // SAFETY: the arena is static memory used by nothing but this allocator.
    unsafe { HEAP.lock().init(start, ARENA) };
}
