//! The EL1 virtual timer (CNTV): one-shot deadlines, woken by its interrupt (PPI from the
//! partition's DTB, forwarded by hv). No periodic tick.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use aarch64_cpu::asm::wfi;
use aarch64_cpu::registers::{
    Readable, Writeable, CNTFRQ_EL0, CNTVCT_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0, DAIF,
};
use guest_rt::time::clock::ClockConversion;
use log::warn;
use spin::Once;

use super::{vcpu_index, MAX_VCPUS};

/// Virtual timer INTID on every supported board unless the DTB says otherwise.
static INTID: AtomicU32 = AtomicU32::new(27);
static FIRED: [AtomicBool; MAX_VCPUS] = [const { AtomicBool::new(false) }; MAX_VCPUS];
static INTERRUPTS: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(0) }; MAX_VCPUS];
/// The counter's frequency as conversion factors, from CNTFRQ read once (the first
/// conversion on any vCPU): no conversion reads it or divides afterwards.
static CONVERSION: Once<ClockConversion> = Once::new();
/// Per vCPU: the deadline (ns) the timer is armed for, [`DISARMED`] when it is off. Only its
/// own vCPU touches it, with interrupts masked. Starts as [`UNKNOWN`] (the timer's reset
/// state is architecturally unknown), so the first programming always writes.
static ARMED_FOR: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(UNKNOWN) }; MAX_VCPUS];
const DISARMED: u64 = u64::MAX;
const UNKNOWN: u64 = u64::MAX - 1;
/// How late past its deadline a wake-up may be before the timer counts as broken.
const MISSING_AFTER_NS: u64 = 500_000_000;

pub fn set_intid(intid: u32) {
    INTID.store(intid, Ordering::Relaxed);
}

pub fn intid() -> u32 {
    INTID.load(Ordering::Relaxed)
}

pub fn now_ns() -> u64 {
    ticks_to_ns(CNTVCT_EL0.get())
}

fn conversion() -> &'static ClockConversion {
    CONVERSION.call_once(|| ClockConversion::new(CNTFRQ_EL0.get()))
}

/// The counter's raw value (for measuring intervals without converting each end).
pub fn now_ticks() -> u64 {
    CNTVCT_EL0.get()
}

pub fn ticks_to_ns(ticks: u64) -> u64 {
    conversion().ticks_to_ns(ticks)
}

/// The first counter value at or after `ns` (a timer set to it never fires early).
pub fn ns_to_ticks(ns: u64) -> u64 {
    conversion().ns_to_ticks(ns)
}

/// Arms this vCPU's timer for `deadline_ns` (off for `None`), touching the timer only when
/// that differs from what it is armed for: most kernel entries leave the deadline alone.
pub fn program(deadline_ns: Option<u64>) {
    let armed = &ARMED_FOR[vcpu_index()];
    let want = deadline_ns.unwrap_or(DISARMED);
    if armed.load(Ordering::Relaxed) == want {
        return;
    }
    armed.store(want, Ordering::Relaxed);
    match deadline_ns {
        Some(ns) => {
            CNTV_CVAL_EL0.set(ns_to_ticks(ns));
            CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
        }
        None => CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR),
    }
}

/// Timer interrupts taken on this vCPU.
pub fn interrupts() -> u64 {
    INTERRUPTS[vcpu_index()].load(Ordering::Relaxed)
}

/// Disarms the timer (its level output drops); the kernel re-arms it.
pub fn disarm() {
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
    let me = vcpu_index();
    ARMED_FOR[me].store(DISARMED, Ordering::Relaxed);
    INTERRUPTS[me].fetch_add(1, Ordering::Relaxed);
}

/// Top half: disarm the timer (its level output drops) and wake the sleeper.
pub fn on_interrupt() {
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
    let me = vcpu_index();
    ARMED_FOR[me].store(DISARMED, Ordering::Relaxed);
    INTERRUPTS[me].fetch_add(1, Ordering::Relaxed);
    FIRED[me].store(true, Ordering::Release);
}

/// Sleeps until the absolute virtual-counter time `deadline_ns`, waiting for the
/// interrupt with WFI. If the interrupt never comes, says so and returns (no silent hang).
pub fn sleep_until_ns(deadline_ns: u64) {
    let me = vcpu_index();
    FIRED[me].store(false, Ordering::Release);
    ARMED_FOR[me].store(deadline_ns, Ordering::Relaxed);
    CNTV_CVAL_EL0.set(ns_to_ticks(deadline_ns));
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    while !FIRED[me].load(Ordering::Acquire) {
        // WFI wakes on a pending interrupt even while PSTATE.I masks it; the interrupt is
        // then taken in the short unmasked window below.
        wfi();
        DAIF.write(DAIF::I::Unmasked);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        DAIF.write(DAIF::D::Masked + DAIF::A::Masked + DAIF::I::Masked + DAIF::F::Masked);
        if now_ns() > deadline_ns + MISSING_AFTER_NS && !FIRED[me].load(Ordering::Acquire) {
            warn!("virtual timer interrupt missing on vCPU {me}: woke by polling");
            CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
            ARMED_FOR[me].store(DISARMED, Ordering::Relaxed);
            return;
        }
    }
}

pub fn sleep_ns(ns: u64) {
    sleep_until_ns(now_ns() + ns);
}
