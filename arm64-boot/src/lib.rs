//! The first instructions every Bulkhead binary (`hv`, `guest-rt`) shares: the arm64 Image
//! header, and self-relocation for a static PIE linked at address 0.
//!
//! Both binaries are loaded at addresses only known at run time (QEMU puts `hv` at its RAM
//! base plus `text_offset`; `hv` puts guests at the start of their partition's RAM), so they
//! apply their own `R_AARCH64_RELATIVE` relocations before any Rust code runs. The functions here
//! use only PC-relative addressing and scratch registers: no stack, no data, no Rust.
//!
//! The linker script of each binary must define `__image_start`, `__rela_start`,
//! `__rela_end`, `__bss_start` and `__bss_end` (16-byte aligned), `__stacks_start`, and
//! keep `.text.head` first.
#![no_std]

/// Emits the arm64 Image header (Linux `Documentation/arch/arm64/booting.rst`): a branch to
/// `$entry`, `text_offset` 0x80000, `image_size` (0 here, patched by `cargo xtask` once the
/// image is assembled), flags (little endian, 4 KiB pages, anywhere in RAM) and the
/// "ARM\x64" magic at 0x38.
#[macro_export]
macro_rules! image_header {
    ($entry:path) => {
        core::arch::global_asm!(
            r#"
            .section .text.head, "ax"
            .global _start
        _start:
            b       {entry}
            .long   0
            .quad   0x80000
            .quad   0
            .quad   0xa
            .quad   0, 0, 0
            .ascii  "ARM\x64"
            .long   0
            "#,
            entry = sym $entry,
        );
    };
}

/// Offset of `image_size` in the header (patched by the image assembler).
pub const IMAGE_SIZE_OFFSET: usize = 16;
/// Offset of the "ARM\x64" magic.
pub const IMAGE_MAGIC_OFFSET: usize = 0x38;
/// `text_offset` written by [`image_header!`].
pub const TEXT_OFFSET: u64 = 0x8_0000;

/// Applies every `R_AARCH64_RELATIVE` (type 1027) relocation:
/// `*(base + offset) = base + addend`, with `base` the run-time address of `__image_start`.
/// Clobbers x1-x6; uses no stack.
///
/// # Safety
/// Call once, from the entry code, before any Rust code of the image runs.
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
pub unsafe extern "C" fn relocate() {
    core::arch::naked_asm!(
        "adrp   x1, __image_start",
        "add    x1, x1, :lo12:__image_start",
        "adrp   x2, __rela_start",
        "add    x2, x2, :lo12:__rela_start",
        "adrp   x3, __rela_end",
        "add    x3, x3, :lo12:__rela_end",
        "1:",
        "cmp    x2, x3",
        "b.hs   2f",
        "ldp    x4, x5, [x2], #16",
        "ldr    x6, [x2], #8",
        "cmp    x5, #1027",
        "b.ne   1b",
        "add    x6, x6, x1",
        "str    x6, [x1, x4]",
        "b      1b",
        "2:",
        "ret",
    )
}

/// Zeroes `[__bss_start, __bss_end)`. Clobbers x2-x3; uses no stack.
///
/// # Safety
/// Call once, from the entry code, before any Rust code of the image runs.
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
pub unsafe extern "C" fn clear_bss() {
    core::arch::naked_asm!(
        "adrp   x2, __bss_start",
        "add    x2, x2, :lo12:__bss_start",
        "adrp   x3, __bss_end",
        "add    x3, x3, :lo12:__bss_end",
        "1:",
        "cmp    x2, x3",
        "b.hs   2f",
        "stp    xzr, xzr, [x2], #16",
        "b      1b",
        "2:",
        "ret",
    )
}

/// Switches to the stack of CPU `x0` among `x2` stacks of `x1` bytes each from
/// `__stacks_start` (the stack grows down from the end of its slot) and returns; parks the
/// CPU (WFE loop) if `x0 >= x2`, since it has no stack. Keeps x0; clobbers x3-x4.
/// Meant as the tail call of a binary's per-CPU setup (`b`, so x30 still returns to the
/// entry code).
///
/// # Safety
/// Call from entry code only, before anything lives on the current stack.
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
pub unsafe extern "C" fn enter_stack() {
    core::arch::naked_asm!(
        "cmp    x0, x2",
        "b.hs   9f",
        "adrp   x3, __stacks_start",
        "add    x3, x3, :lo12:__stacks_start",
        "add    x4, x0, #1",
        "madd   x3, x4, x1, x3",
        "mov    sp, x3",
        "ret",
        "9:",
        "wfe",
        "b      9b",
    )
}
