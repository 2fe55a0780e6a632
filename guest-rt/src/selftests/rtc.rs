//! The `spi` and `spi-cross` self-tests: a passed-through device's SPI (the PL031 RTC on
//! QEMU virt) reaches its threaded handler, on the acknowledging vCPU or on the other one.

use core::sync::atomic::{AtomicBool, Ordering};
use guest_rt::CpuMask;

use crate::arch::console::print;

static RTC_FIRED: AtomicBool = AtomicBool::new(false);

/// The RTC's threaded handler: clear the device's interrupt (the line drops), flag it.
fn rtc_interrupt(_intid: u32) {
    crate::arch::pl031::clear_interrupt();
    RTC_FIRED.store(true, Ordering::Release);
}

/// Priority of the RTC's handler thread.
const RTC_HANDLER_PRIORITY: u8 = 70;

/// The `spi` self-test (a thread on vCPU 0): register the RTC's threaded handler, set its
/// line up through the emulated distributor (enable, priority, route to vCPU 0), let the
/// RTC fire one second later, and wait for the handler thread to have run.
pub fn spi_check() {
    rtc_check(None, 1);
}

/// The `spi-cross` self-test: as [`spi_check`], with the handler thread kept on vCPU 1
/// while the line is routed to vCPU 0, and three interrupts one after the other: each
/// must arrive, which needs every previous one deactivated by vCPU 0 for the handler
/// that ran on vCPU 1 (a one-shot line stays active until then).
pub fn spi_cross_check() {
    rtc_check(Some(1), 3);
}

/// Registers the RTC's threaded handler (on `handler_vcpu` only, if given), then lets the
/// RTC fire `rounds` times, one second apart, and reports what arrived.
fn rtc_check(handler_vcpu: Option<usize>, rounds: u32) {
    use crate::arch::{gic, irq_threads, pl031, threads, timer};
    let Some(intid) = pl031::find() else {
        print(format_args!(
            "spi-check: no PL031 passed through; nothing to test"
        ));
        return;
    };
    let prio = guest_rt::Priority::new(RTC_HANDLER_PRIORITY);
    let affinity = handler_vcpu.map_or(CpuMask::from_bits(u64::MAX), CpuMask::single);
    let refused = irq_threads::register_on(intid, prio, affinity, rtc_interrupt).err();
    let again = irq_threads::register(intid, prio, rtc_interrupt).err();
    let foreign = irq_threads::register(intid + 1, prio, rtc_interrupt).err();
    print(format_args!(
        "spi-check: register INTID {intid}: {refused:?}; again: {again:?}; INTID {}: {foreign:?}",
        intid + 1
    ));
    gic::set_up_spi(intid, 0, 0xa0, false);
    gic::set_spi_enabled(intid, true);
    let enabled = gic::spi_enabled(intid);
    let start = timer::now_ns();
    let mut received = 0;
    for _ in 0..rounds {
        RTC_FIRED.store(false, Ordering::Release);
        let round = timer::now_ns();
        pl031::fire_in(1);
        while !RTC_FIRED.load(Ordering::Acquire) && timer::now_ns() - round < 5_000_000_000 {
            threads::sleep_ns(10_000_000);
        }
        if RTC_FIRED.load(Ordering::Acquire) {
            received += 1;
        }
    }
    let (woken, handled) = irq_threads::counts(intid);
    let got = if received == rounds {
        "received"
    } else {
        "NOT received"
    };
    print(format_args!(
        "spi-check: INTID {intid} enabled in our distributor: {enabled}; RTC interrupt {got} \
         ({received} of {rounds}) after {} ms (handler thread woken {woken}, done {handled})",
        (timer::now_ns() - start) / 1_000_000
    ));
}
