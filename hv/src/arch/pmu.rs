//! The PMU cycle counter as hv's own cost meter. Under QEMU `-icount shift=0` it advances
//! one per instruction, so differences are deterministic instruction counts (FACTS.md);
//! on hardware they are cycles. aarch64-cpu declares no PMU register, hence raw accesses.

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

/// The cycle counter (instructions under `-icount shift=0`).
pub fn count() -> u64 {
    let value: u64;
    // SAFETY: reading the cycle counter has no side effect.
    unsafe { core::arch::asm!("mrs {0}, pmccntr_el0", out(reg) value, options(nomem, nostack)) };
    value
}
