//! Where hv sits in memory, from the linker script's symbols.

use platform::config::Region;

unsafe extern "C" {
    static __image_start: u8;
    static __image_end: u8;
    static __stacks_start: u8;
}

/// Initial stack pointer of CPU `cpu` (stacks grow down from the end of its slot).
pub fn stack_top(cpu: usize) -> u64 {
    core::ptr::addr_of!(__stacks_start) as u64 + ((cpu + 1) * hv_core::layout::STACK_SIZE) as u64
}

/// hv's own image in memory: code, data, BSS and stacks.
pub fn hv_region() -> Region {
    // Only the addresses of the linker-defined symbols are taken, never their contents.
    let start = core::ptr::addr_of!(__image_start) as u64;
    let end = core::ptr::addr_of!(__image_end) as u64;
    Region::new(start, end - start)
}

/// Address of the payload table: the first 4 KiB boundary after hv's memory, where
/// `cargo xtask` places it.
pub fn payload_table_addr() -> u64 {
    let hv = hv_region();
    (hv.base + hv.size).next_multiple_of(4096)
}
