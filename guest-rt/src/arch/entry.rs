//! guest-rt's first instructions: Image header, self-relocation (vCPU 0 only), FP/SIMD on,
//! a stack per vCPU, the EL1 vectors, then Rust.

use super::{MAX_VCPUS, STACK_SIZE};

arm64_boot::image_header!(boot_entry);

/// CPACR_EL1 with FPEN = 0b11: FP/SIMD usable at EL1 (Rust code may use them).
const CPACR_FP_ON: u64 = 0b11 << 20;

/// vCPU 0: x0 = DTB.
#[unsafe(naked)]
unsafe extern "C" fn boot_entry() -> ! {
    core::arch::naked_asm!(
        "mov    x19, x0",
        "bl     {relocate}",
        "bl     {clear_bss}",
        "mov    x0, #0",
        "bl     {common}",
        "mov    x0, x19",
        "b      {main}",
        relocate = sym arm64_boot::relocate,
        clear_bss = sym arm64_boot::clear_bss,
        common = sym vcpu_setup,
        main = sym super::boot::boot_main,
    )
}

/// Other vCPUs, started by PSCI CPU_ON: x0 = context id = vCPU index.
#[unsafe(naked)]
pub unsafe extern "C" fn secondary_entry() -> ! {
    core::arch::naked_asm!(
        "mov    x19, x0",
        "bl     {common}",
        "mov    x0, x19",
        "b      {main}",
        common = sym vcpu_setup,
        main = sym super::boot::secondary_main,
    )
}

/// x0 = vCPU index: TPIDR_EL1 = index, FP on, vectors, then the vCPU's stack (parking an
/// index without one).
#[unsafe(naked)]
unsafe extern "C" fn vcpu_setup() {
    core::arch::naked_asm!(
        "msr    tpidr_el1, x0",
        "mov    x2, {cpacr}",
        "msr    cpacr_el1, x2",
        "adrp   x1, {vectors}",
        "add    x1, x1, :lo12:{vectors}",
        "msr    vbar_el1, x1",
        "isb",
        "mov    x1, {stack}",
        "mov    x2, {max}",
        "b      {enter_stack}",
        max = const MAX_VCPUS,
        cpacr = const CPACR_FP_ON,
        stack = const STACK_SIZE,
        vectors = sym super::exception::vectors,
        enter_stack = sym arm64_boot::enter_stack,
    )
}
