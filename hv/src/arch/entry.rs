//! The first instructions of `hv`: the arm64 Image header, self-relocation, stacks and the
//! jump into Rust, for the boot CPU and for secondaries.
//!
//! `hv` is linked at address 0 as a static PIE so the same Image runs wherever the loader
//! puts it (QEMU virt: 0x4008_0000, raspi4b and the Pi 4 firmware: 0x8_0000). Until the
//! `R_AARCH64_RELATIVE` relocations are applied, only PC-relative code may run here. This
//! module must never touch memory outside hv's own image.

use super::cpu::CPTR_EL2_NO_TRAPS;
use hv_core::layout::{MAX_CPUS, STACK_SIZE};

arm64_boot::image_header!(primary_entry);

/// Boot CPU entry: x0 = DTB physical address, EL2, MMU off. Anywhere but at EL2 the EL2
/// registers below do not exist (EL1) or nothing is set up (EL3): hv then only reports it
/// (`wrong_level`), on CPU 0's stack. At EL2 the early map goes on before any Rust code
/// (`mmu::boot_cpu_early_map` says why).
#[unsafe(naked)]
unsafe extern "C" fn primary_entry() -> ! {
    core::arch::naked_asm!(
        "mov    x19, x0",
        "bl     {relocate}",
        "bl     {clear_bss}",
        "mrs    x20, CurrentEL",
        "cmp    x20, #{el2}",
        "b.ne   8f",
        "mov    x0, #0",
        "bl     {common}",
        "mov    x0, x19",
        "bl     {early_map}",
        "mov    x0, x19",
        "b      {main}",
        "8:",
        "mov    x0, #0",
        "mov    x1, {stack_size}",
        "mov    x2, {max_cpus}",
        "bl     {enter_stack}",
        "mov    x0, x19",
        "mov    x1, x20",
        "b      {wrong_level}",
        relocate = sym arm64_boot::relocate,
        clear_bss = sym arm64_boot::clear_bss,
        el2 = const 2 << 2,
        common = sym cpu_common_setup,
        early_map = sym super::mmu::boot_cpu_early_map,
        main = sym crate::arch::boot::primary_main,
        stack_size = const STACK_SIZE,
        max_cpus = const MAX_CPUS,
        enter_stack = sym arm64_boot::enter_stack,
        wrong_level = sym super::wrong_level::report,
    )
}

/// Secondary CPU entry (PSCI CPU_ON or spin table): x0 = logical CPU index under PSCI,
/// undefined under the spin table, so the index is taken from MPIDR_EL1.Aff0 instead
/// (`boot` checks that Aff0 is the logical index on every supported board). The MMU and
/// caches go on first, before any store (`mmu::secondary_mmu_on` says why).
#[unsafe(naked)]
pub unsafe extern "C" fn secondary_entry() -> ! {
    core::arch::naked_asm!(
        "mrs    x0, mpidr_el1",
        "and    x0, x0, #0xff",
        "mov    x19, x0",
        "bl     {mmu_on}",
        "mov    x0, x19",
        "bl     {common}",
        "mov    x0, x19",
        "b      {main}",
        mmu_on = sym super::mmu::secondary_mmu_on,
        common = sym cpu_common_setup,
        main = sym crate::arch::boot::secondary_main,
    )
}

/// Per-CPU setup before Rust: x0 = CPU index. Sets TPIDR_EL2 to the index, stops FP/SIMD
/// from trapping (guests use them), installs the EL2 vectors, then switches to the CPU's
/// stack (parking a CPU that has none).
#[unsafe(naked)]
unsafe extern "C" fn cpu_common_setup() {
    core::arch::naked_asm!(
        "msr    tpidr_el2, x0",
        "mov    x2, {cptr}",
        "msr    cptr_el2, x2",
        "adrp   x1, {vectors}",
        "add    x1, x1, :lo12:{vectors}",
        "msr    vbar_el2, x1",
        "isb",
        "mov    x1, {stack_size}",
        "mov    x2, {max_cpus}",
        "b      {enter_stack}",
        max_cpus = const MAX_CPUS,
        cptr = const CPTR_EL2_NO_TRAPS,
        stack_size = const STACK_SIZE,
        vectors = sym super::exception::vectors,
        enter_stack = sym arm64_boot::enter_stack,
    )
}
