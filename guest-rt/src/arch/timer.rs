//! The EL1 virtual timer (CNTV), polled: interrupt delivery arrives with the vGIC.

use aarch64_cpu::registers::{
    Readable, Writeable, CNTFRQ_EL0, CNTVCT_EL0, CNTV_CTL_EL0, CNTV_TVAL_EL0,
};

pub fn now_ns() -> u64 {
    let freq = CNTFRQ_EL0.get().max(1);
    (u128::from(CNTVCT_EL0.get()) * 1_000_000_000 / u128::from(freq)) as u64
}

/// Arms the virtual timer `ns` from now (interrupt masked) and waits until it fires.
pub fn sleep_ns(ns: u64) {
    let ticks = (u128::from(ns) * u128::from(CNTFRQ_EL0.get()) / 1_000_000_000) as u64;
    CNTV_TVAL_EL0.set(ticks.min(u64::from(u32::MAX)));
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::SET);
    while !CNTV_CTL_EL0.is_set(CNTV_CTL_EL0::ISTATUS) {
        core::hint::spin_loop();
    }
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
}
