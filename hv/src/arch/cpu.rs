//! Small per-core facts and instructions: which CPU this is, time, waiting.

use aarch64_cpu::asm;
use aarch64_cpu::registers::{Readable, CNTFRQ_EL0, CNTPCT_EL0, MPIDR_EL1, TPIDR_EL2};

/// CPTR_EL2 (non-VHE layout, Arm ARM D24.2.34): RES1 bits [13:12] and [9:0] set, which
/// includes TZ (8, traps SVE: these cores have none); TFP (10), TTA (20), TAM (30) and
/// TCPAC (31) clear, so guests' FP/SIMD never trap. aarch64-cpu declares only TAM for this
/// register, hence the named value.
pub const CPTR_EL2_NO_TRAPS: u64 = 0x33ff;

/// Logical index of the running CPU (set in TPIDR_EL2 by the entry code).
pub fn index() -> usize {
    TPIDR_EL2.get() as usize
}

pub fn mpidr() -> u64 {
    MPIDR_EL1.get()
}

/// Physical counter ticks and their frequency.
pub fn ticks() -> u64 {
    CNTPCT_EL0.get()
}

pub fn tick_hz() -> u64 {
    CNTFRQ_EL0.get()
}

/// Wakes CPUs waiting in WFE. The barrier makes this CPU's earlier stores visible before
/// the event, so a woken CPU never re-reads stale state and sleeps again.
pub fn send_event() {
    asm::barrier::dsb(asm::barrier::ISH);
    asm::sev();
}

/// Sleeps until an event (`sev` from another CPU) or a spurious wake-up.
pub fn park_until_event() {
    asm::wfe();
}

/// Stops this CPU for good. WFI rather than WFE: nothing will ever signal it, and an
/// emulator (or the core's power management) can then really halt it instead of spinning.
pub fn park() -> ! {
    loop {
        asm::wfi();
    }
}
