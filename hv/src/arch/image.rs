//! Where hv sits in memory, from the linker script's symbols.

use platform::config::Region;

unsafe extern "C" {
    static __image_start: u8;
    static __hv_end: u8;
}

/// hv's own image in memory: code, data, BSS and stacks.
pub fn hv_region() -> Region {
    // Only the addresses of the linker-defined symbols are taken, never their contents.
    let start = core::ptr::addr_of!(__image_start) as u64;
    let end = core::ptr::addr_of!(__hv_end) as u64;
    Region::new(start, end - start)
}

/// Address of the payload table: the first 4 KiB boundary after hv's memory, where
/// `cargo xtask` places it.
pub fn payload_table_addr() -> u64 {
    let hv = hv_region();
    (hv.base + hv.size).next_multiple_of(4096)
}
