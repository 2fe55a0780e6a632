//! The PMU cycle counter as hv's own cost meter. Under QEMU `-icount shift=0` it advances
//! one per instruction, so differences are deterministic instruction counts (FACTS.md);
//! on hardware they are cycles. aarch64-cpu declares no PMU register, hence raw accesses.
//!
//! The PMU and the debug hardware are hv's: [`trap_guest_access`] programs MDCR_EL2 so a
//! guest's every PMU and debug register access traps, and hv answers it read-as-zero,
//! write-ignored (DESIGN.md, "Behaviour"). So Linux's boot-time PMU and debug writes
//! (PMUSERENR_EL0, OSLAR_EL1, MDSCR_EL1, breakpoint resets) reach nothing, and no guest
//! can reset or stop the cycle counter hv measures itself with.

/// PMCR_EL0.E: enable the counters.
const PMCR_E: u64 = 1;
/// PMCNTENSET_EL0.C: enable the cycle counter.
const PMCNTEN_C: u64 = 1 << 31;
/// PMCCFILTR_EL0.NSH: also count at EL2 (EL0/EL1 counting stays on).
const PMCCFILTR_NSH: u64 = 1 << 27;

/// Starts this CPU's cycle counter, counting at EL2 too.
pub fn init() {
    // SAFETY: enabling the cycle counter has no effect beyond the PMU's own state.
    unsafe {
        core::arch::asm!(
            "mrs {t}, pmcr_el0",
            "orr {t}, {t}, {e}",
            "msr pmcr_el0, {t}",
            "msr pmccfiltr_el0, {f}",
            "msr pmcntenset_el0, {c}",
            "isb",
            t = out(reg) _,
            e = in(reg) PMCR_E,
            f = in(reg) PMCCFILTR_NSH,
            c = in(reg) PMCNTEN_C,
            options(nostack)
        );
    }
}

/// Makes this CPU's guest PMU and debug register accesses trap to hv (MDCR_EL2): TPM and
/// TPMCR (every PMU register, PMCR_EL0 included), TDA, TDOSA and TDRA (breakpoints and
/// watchpoints, the OS lock and power-down registers, the debug ROM address). HPMN keeps
/// its reset value, every event counter (PMCR_EL0.N): with TPM set the split between EL1
/// and EL2 counters never shows. TDE stays clear: debug exceptions are not routed here.
pub fn trap_guest_access() {
    use aarch64_cpu::registers::{Writeable, MDCR_EL2};
    MDCR_EL2.write(
        MDCR_EL2::TPM::SET
            + MDCR_EL2::TPMCR::SET
            + MDCR_EL2::TDA::SET
            + MDCR_EL2::TDOSA::SET
            + MDCR_EL2::TDRA::SET
            + MDCR_EL2::HPMN.val(event_counters()),
    );
}

/// PMCR_EL0.N [15:11]: how many event counters the PMU has.
fn event_counters() -> u64 {
    let pmcr: u64;
    // SAFETY: reading PMCR_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {0}, pmcr_el0", out(reg) pmcr, options(nomem, nostack)) };
    (pmcr >> 11) & 0x1f
}

/// The cycle counter (instructions under `-icount shift=0`).
pub fn count() -> u64 {
    let value: u64;
    // SAFETY: reading the cycle counter has no side effect.
    unsafe { core::arch::asm!("mrs {0}, pmccntr_el0", out(reg) value, options(nomem, nostack)) };
    value
}
