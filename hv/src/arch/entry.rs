//! The first instructions of `hv`: the arm64 Image header, self-relocation, stacks and the
//! jump into Rust, for the boot CPU and for secondaries.
//!
//! `hv` is linked at address 0 as a static PIE so the same Image runs wherever the loader
//! puts it (QEMU virt: 0x4008_0000, raspi4b and the Pi 4 firmware: 0x8_0000). Until the
//! `R_AARCH64_RELATIVE` relocations are applied, only PC-relative code may run here. This
//! module must never touch memory outside hv's own image.

use core::arch::global_asm;

use super::cpu::CPTR_EL2_NO_TRAPS;
use crate::layout::{MAX_CPUS, STACK_SIZE};

// The header layout is the Linux arm64 boot protocol's (Documentation/arch/arm64/booting.rst):
// code0/code1, text_offset, image_size, flags, 3 reserved words, magic "ARM\x64" at 0x38.
// `image_size` is patched by `cargo xtask` once the payload table is appended.
global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    b       {primary}
    .long   0
    .quad   0x80000              // text_offset: RAM base + 512 KiB on every loader
    .quad   0                    // image_size: patched by xtask
    .quad   0xa                  // flags: little endian, 4 KiB pages, anywhere in RAM
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .long   0
"#,
    primary = sym primary_entry,
);

/// Boot CPU entry: x0 = DTB physical address, EL2, MMU off.
#[unsafe(naked)]
unsafe extern "C" fn primary_entry() -> ! {
    core::arch::naked_asm!(
        "mov    x19, x0",
        // Apply R_AARCH64_RELATIVE (1027) relocations: *(base + off) = base + addend.
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
        // Clear BSS (16-byte aligned by the linker script).
        "adrp   x2, __bss_start",
        "add    x2, x2, :lo12:__bss_start",
        "adrp   x3, __bss_end",
        "add    x3, x3, :lo12:__bss_end",
        "3:",
        "cmp    x2, x3",
        "b.hs   4f",
        "stp    xzr, xzr, [x2], #16",
        "b      3b",
        "4:",
        "mov    x0, #0",
        "bl     {common}",
        "mov    x0, x19",
        "b      {main}",
        common = sym cpu_common_setup,
        main = sym crate::boot::primary_main,
    )
}

/// Secondary CPU entry (PSCI CPU_ON or spin table): x0 = logical CPU index under PSCI,
/// undefined under the spin table, so the index is taken from MPIDR_EL1.Aff0 instead
/// (`boot` checks that Aff0 is the logical index on every supported board).
#[unsafe(naked)]
pub unsafe extern "C" fn secondary_entry() -> ! {
    core::arch::naked_asm!(
        "mrs    x0, mpidr_el1",
        "and    x0, x0, #0xff",
        "mov    x19, x0",
        "bl     {common}",
        "mov    x0, x19",
        "b      {main}",
        common = sym cpu_common_setup,
        main = sym crate::boot::secondary_main,
    )
}

/// Per-CPU setup before Rust: x0 = CPU index. Sets SP to the CPU's stack, TPIDR_EL2 to its
/// index, the EL2 vectors, and stops FP/SIMD from trapping (Rust code may use them).
/// Parks the CPU if its index has no stack.
#[unsafe(naked)]
unsafe extern "C" fn cpu_common_setup() {
    core::arch::naked_asm!(
        "cmp    x0, {max_cpus}",
        "b.hs   9f",
        "msr    tpidr_el2, x0",
        "mov    x2, {cptr}",
        "msr    cptr_el2, x2",
        "adrp   x1, __stacks_start",
        "add    x1, x1, :lo12:__stacks_start",
        "add    x2, x0, #1",
        "mov    x3, {stack_size}",
        "madd   x1, x2, x3, x1",
        "mov    sp, x1",
        "adrp   x1, {vectors}",
        "add    x1, x1, :lo12:{vectors}",
        "msr    vbar_el2, x1",
        "isb",
        "ret",
        "9:",
        "wfe",
        "b      9b",
        max_cpus = const MAX_CPUS,
        cptr = const CPTR_EL2_NO_TRAPS,
        stack_size = const STACK_SIZE,
        vectors = sym super::exception::vectors,
    )
}
