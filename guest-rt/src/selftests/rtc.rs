//! The `spi` and `spi-cross` self-tests: a passed-through device's SPI (the PL031 RTC on
//! QEMU virt) reaches its threaded handler, on the acknowledging vCPU or on the other one.
//!
//! Each round waits on an event, the handler's completion, not on a length of time: on a
//! loaded host the interrupt may come late, never "too late". A lost interrupt leaves the
//! round's "waiting for its handler" line as the last word of the test, and the QEMU test
//! fails on its own patience with that line in the log.

use core::sync::atomic::{AtomicU32, Ordering};
use guest_rt::{CompletionId, CpuMask};
use spin::Once;

use crate::arch::console::print;

/// Handler runs so far (each completes [`HANDLED`] once).
static RTC_FIRED: AtomicU32 = AtomicU32::new(0);
static HANDLED: Once<CompletionId> = Once::new();

/// The RTC's threaded handler: clear the device's interrupt (the line drops), count it and
/// complete the waiting round.
fn rtc_interrupt(_intid: u32) {
    crate::arch::pl031::clear_interrupt();
    RTC_FIRED.fetch_add(1, Ordering::AcqRel);
    if let Some(&done) = HANDLED.get() {
        crate::arch::threads::with(|k, cpu| k.complete(cpu, done));
    }
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
    let done = *HANDLED.call_once(|| threads::with(|k, _| k.completion_create()));
    let start = timer::now_ns();
    for round in 1..=rounds {
        pl031::fire_in(1);
        print(format_args!(
            "spi-check: round {round} of {rounds}: RTC set to fire in 1 s, waiting for its handler"
        ));
        threads::wait(|k, cpu| k.wait_for_completion(cpu, done));
    }
    let received = RTC_FIRED.load(Ordering::Acquire);
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
