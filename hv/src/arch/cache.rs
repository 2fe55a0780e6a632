//! Cache maintenance for memory hv writes and another agent reads with caches off:
//! guest images and DTBs (a guest starts with its MMU and caches off), and what a
//! secondary CPU reads before its MMU is on.

use tock_registers::register_bitfields;
use tock_registers::LocalRegisterCopy;

// CTR_EL0 (Arm ARM D24.2.34), which aarch64-cpu does not declare.
register_bitfields! {u64,
    CTR_EL0 [
        /// log2 of the smallest data cache line, in 4-byte words.
        DminLine OFFSET(16) NUMBITS(4) [],
    ]
}

fn dcache_line() -> u64 {
    let raw: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {0}, ctr_el0", out(reg) raw, options(nomem, nostack)) };
    4 << LocalRegisterCopy::<u64, CTR_EL0::Register>::new(raw).read(CTR_EL0::DminLine)
}

/// Cleans and invalidates `[start, start + len)` to the point of coherency, and the
/// instruction caches of every CPU, so a CPU that starts with caches off reads what hv
/// wrote and later finds no stale line of it once its caches are on.
pub fn clean_for_guest(start: u64, len: u64) {
    let line = dcache_line();
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: cleaning and invalidating a line writes it back first: memory keeps its
        // contents.
        unsafe { core::arch::asm!("dc civac, {0}", in(reg) addr, options(nostack)) };
        addr += line;
    }
    // SAFETY: barriers and I-cache invalidation only order and discard cached state.
    unsafe { core::arch::asm!("dsb sy", "ic ialluis", "dsb sy", "isb", options(nostack)) };
}

/// Cleans `[start, start + len)` to the point of coherency (the lines stay valid), so an
/// agent reading memory with caches off sees what this CPU wrote.
pub fn clean_to_poc(start: u64, len: u64) {
    let line = dcache_line();
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: cleaning a line only writes it back to memory.
        unsafe { core::arch::asm!("dc cvac, {0}", in(reg) addr, options(nostack)) };
        addr += line;
    }
    // SAFETY: a barrier only orders the cleans before what follows.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}
