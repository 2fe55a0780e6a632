//! Where hv sits in memory, from the linker script's symbols.

use platform::config::Region;

unsafe extern "C" {
    static __image_start: u8;
    static __image_end: u8;
    static __stacks_start: u8;
    static __rela_start: u8;
    static __rela_end: u8;
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

/// Checks hv's code and read-only data against the seal `cargo xtask` wrote into its Image
/// header ([`platform::hv_seal`]): a flipped bit in hv is named here, at boot, before it
/// runs the code it would corrupt. Called once the console can report.
pub fn check_own_image() -> Result<(), platform::hv_seal::SealError> {
    use platform::hv_seal;
    let hv = hv_region();
    // SAFETY: hv's image starts with its 64-byte Image header, loaded with it and never
    // written at run time.
    let header =
        unsafe { core::slice::from_raw_parts(hv.base as *const u8, hv_seal::SEALED_START) };
    let seal = hv_seal::read(header, hv.size)?;
    // SAFETY: `read` bounded the sealed range by hv's image; text and read-only data are
    // never written after the loader put them there (no relocation lies in them).
    let sealed = unsafe { core::slice::from_raw_parts(hv.base as *const u8, seal.end as usize) };
    // SAFETY: hv's relocation table lies between these linker symbols, loaded with the
    // image and only read (by `arm64_boot::relocate` and here).
    let rela = unsafe {
        let start = core::ptr::addr_of!(__rela_start);
        let end = core::ptr::addr_of!(__rela_end);
        core::slice::from_raw_parts(start, end as usize - start as usize)
    };
    hv_seal::check(sealed, &seal, hv_seal::relocated_words(rela))
}

/// Address of the payload table: the first 4 KiB boundary after hv's memory, where
/// `cargo xtask` places it.
pub fn payload_table_addr() -> u64 {
    let hv = hv_region();
    (hv.base + hv.size).next_multiple_of(4096)
}
