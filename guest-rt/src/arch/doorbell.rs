//! The doorbells on the RT side: Linux's rings arrive on the SPI hv names in our DTB
//! (`/hypervisor/doorbell`), served by a threaded handler that counts them and says so;
//! [`ring_linux`] rings Linux's (a hypercall that returns at once: hv only sets a flag and
//! kicks a Linux CPU, so nothing here waits for Linux).
//!
//! Owns the line's handler and the counts; what a doorbell means is the app's (the latency
//! probe rings Linux when it takes a new parameter version).

use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::{CpuMask, Priority};
use log::{info, warn};

use super::{devices, gic, hvc, irq_threads, timer};

/// The handler thread's priority: below the latency probe's, so a doorbell storm cannot
/// delay a wake-up (it only ever competes for what the probe leaves).
pub const PRIORITY: u8 = 70;
/// The line's priority at the GIC.
const GIC_PRIORITY: u8 = 0xa0;
/// Every doorbell up to this many is reported, then the first after a quiet spell.
const LOUD_FIRST: u64 = 4;
/// A doorbell after this long without one starts a new burst and is reported.
const QUIET_NS: u64 = 100_000_000;

static TAKEN: AtomicU64 = AtomicU64::new(0);
static LAST_NS: AtomicU64 = AtomicU64::new(0);
static RANG: AtomicU64 = AtomicU64::new(0);

/// Sets the doorbell's line up (edge-triggered, routed to vCPU 0) with its handler
/// thread on vCPU 0. Run once by vCPU 0; nothing without a doorbell in our DTB.
pub fn init() {
    let Some(intid) = devices::doorbell() else {
        return;
    };
    gic::set_up_spi(intid, 0, GIC_PRIORITY, true);
    match irq_threads::register_on(intid, Priority::new(PRIORITY), CpuMask::single(0), taken) {
        Ok(_) => info!("doorbell: Linux's rings arrive on INTID {intid}"),
        Err(why) => warn!("doorbell: INTID {intid} refused ({why:?}): no doorbell from Linux"),
    }
}

/// The handler thread's body: one call per interrupt, however many rings it stands for.
fn taken(_intid: u32) {
    let now = timer::now_ns();
    let n = TAKEN.fetch_add(1, Ordering::Relaxed) + 1;
    let quiet = now.saturating_sub(LAST_NS.swap(now, Ordering::Relaxed)) >= QUIET_NS;
    if n <= LOUD_FIRST || quiet {
        info!("doorbell: rung by Linux, {n} taken (at {now} ns)");
    }
}

/// Doorbell interrupts taken so far.
pub fn taken_count() -> u64 {
    TAKEN.load(Ordering::Relaxed)
}

/// Rings Linux's doorbell; false if hv has none for us.
pub fn ring_linux() -> bool {
    let r = hvc::call(abi::HVC_DOORBELL_RING, &[]);
    let ok = r[0] == abi::SMCCC_SUCCESS as u64;
    RANG.fetch_add(u64::from(ok), Ordering::Relaxed);
    ok
}

/// Times this partition rang Linux.
pub fn rang_count() -> u64 {
    RANG.load(Ordering::Relaxed)
}
