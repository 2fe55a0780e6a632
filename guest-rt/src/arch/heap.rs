//! guest-rt's heap: a buddy allocator over an arena in BSS, used with interrupts masked.
//!
//! The kernel allocates inside its own raw section (interrupts masked), and threads
//! allocate with interrupts open: if a thread could be interrupted or preempted while
//! holding the allocator's spinlock, the kernel entry of that interrupt (or the preempting
//! thread) would spin on it for ever. So every allocation is a short raw section.

use core::alloc::{GlobalAlloc, Layout};

use buddy_system_allocator::LockedHeap;

use super::irqmask::IrqMasked;

struct MaskedHeap(LockedHeap<32>);

// SAFETY: delegates to a correct allocator; masking interrupts around it changes no result.
unsafe impl GlobalAlloc for MaskedHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _masked = IrqMasked::new();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _masked = IrqMasked::new();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static HEAP: MaskedHeap = MaskedHeap(LockedHeap::empty());

/// Room for the kernel's tables and every thread's stack.
const ARENA: usize = 2 << 20;

#[repr(C, align(4096))]
struct Arena([u8; ARENA]);

static mut MEMORY: Arena = Arena([0; ARENA]);

/// Called once by vCPU 0 before any allocation.
pub fn init() {
    let start = core::ptr::addr_of_mut!(MEMORY) as usize;
    // SAFETY: the arena is static memory used by nothing but this allocator.
    unsafe { HEAP.0.lock().init(start, ARENA) };
}
