//! The PL031 real-time clock QEMU virt passes to the RT partition (its sample device):
//! register offsets and the few accesses the self-test and the benchmark make.
//!
//! Owns only register access to the device found in the DTB; never touches the
//! distributor (the line's setup belongs to [`super::gic`] and [`super::irq_threads`]).

use core::sync::atomic::{AtomicUsize, Ordering};

use super::devices;

/// The DTB compatible string of the device.
pub const COMPATIBLE: &str = "arm,pl031";

/// PL031 registers (Arm DDI 0224, 3.2): data, match, interrupt mask set/clear, interrupt
/// clear.
const RTC_DR: usize = 0x00;
const RTC_MR: usize = 0x04;
const RTC_IMSC: usize = 0x10;
const RTC_ICR: usize = 0x1c;

static BASE: AtomicUsize = AtomicUsize::new(0);

/// The passed-through RTC, if any: its INTID. Records its base for the accesses below.
pub fn find() -> Option<u32> {
    let dev = devices::find(COMPATIBLE)?;
    BASE.store(dev.region.base as usize, Ordering::Relaxed);
    dev.irqs.first().copied()
}

fn reg(offset: usize) -> *mut u32 {
    (BASE.load(Ordering::Relaxed) + offset) as *mut u32
}

/// Arms the match interrupt `seconds` from now (it fires when the counter reaches it).
pub fn fire_in(seconds: u32) {
    // SAFETY: the RTC is this partition's device ([`find`] recorded its base), mapped as
    // device memory.
    unsafe {
        let now = reg(RTC_DR).read_volatile();
        reg(RTC_MR).write_volatile(now.wrapping_add(seconds));
        reg(RTC_IMSC).write_volatile(1);
    }
}

/// Masks the device's interrupt output and clears its raw status: its line stays low.
pub fn silence() {
    // SAFETY: as for [`fire_in`].
    unsafe {
        reg(RTC_IMSC).write_volatile(0);
        reg(RTC_ICR).write_volatile(1);
    }
}

/// Clears the match interrupt (the device drops its line).
pub fn clear_interrupt() {
    // SAFETY: as for [`fire_in`].
    unsafe { reg(RTC_ICR).write_volatile(1) };
}
