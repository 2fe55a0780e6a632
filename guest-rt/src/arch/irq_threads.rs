//! Threaded interrupt handlers on target: registration, the top half of a threaded line,
//! and each handler's thread.
//!
//! Owns the table of threaded lines (touched only with the kernel lock held) and the
//! masking of a line in the (emulated) distributor. The protocol itself is the portable
//! [`ThreadedLine`]; refusals (not an SPI, not the partition's, registered twice) come from
//! the device registry ([`super::devices::register`]).

use alloc::vec::Vec;

use guest_rt::irq_registry::IrqError;
use guest_rt::irq_thread::{ThreadedLine, TopHalf};
use guest_rt::{CpuMask, Priority, ThreadId, ThreadSpec};
use spin::Mutex;

use super::{devices, gic, threads};

/// The lines with handler threads. Locked only inside kernel entries (which already
/// exclude each other), so never contended.
static LINES: Mutex<Vec<ThreadedLine>> = Mutex::new(Vec::new());

/// Registers `handler` for SPI `intid`, run by a new thread at `priority` (on any vCPU).
/// The line is enabled when this returns; each interrupt runs `handler` once in that
/// thread, with the line masked until it returns.
pub fn register(intid: u32, priority: Priority, handler: fn(u32)) -> Result<ThreadId, IrqError> {
    register_on(intid, priority, CpuMask::from_bits(u64::MAX), handler)
}

/// As [`register`], with the handler thread kept to the vCPUs in `affinity` (e.g. the one
/// the line is routed to, so the wake-up never crosses vCPUs).
pub fn register_on(
    intid: u32,
    priority: Priority,
    affinity: CpuMask,
    handler: fn(u32),
) -> Result<ThreadId, IrqError> {
    devices::register(intid, top_half)?;
    threads::with(|k, _| LINES.lock().push(ThreadedLine::new(k, intid)));
    let spec = ThreadSpec {
        priority,
        ..ThreadSpec::fifo(0)
    }
    .on(affinity);
    let thread = threads::spawn(spec, move || handler_thread(intid, handler));
    gic::set_spi_enabled(intid, true);
    Ok(thread)
}

fn with_line<R>(
    k: &mut guest_rt::Kernel,
    intid: u32,
    f: impl FnOnce(&mut ThreadedLine, &mut guest_rt::Kernel) -> R,
) -> R {
    let mut lines = LINES.lock();
    let line = lines
        .iter_mut()
        .find(|l| l.intid() == intid)
        .expect("registered lines have a table entry");
    f(line, k)
}

/// A threaded line's top half (interrupts masked, acknowledged, not yet ended): mask the
/// line and wake its thread. The switch to that thread, if it is the most urgent here,
/// happens on the interrupt's way out.
fn top_half(intid: u32) {
    let action =
        threads::from_interrupt(|k, cpu| with_line(k, intid, |line, k| line.top_half(k, cpu)));
    if action == TopHalf::MaskAndWoken {
        gic::set_spi_enabled(intid, false);
    }
}

fn handler_thread(intid: u32, handler: fn(u32)) {
    loop {
        threads::wait(|k, cpu| with_line(k, intid, |line, k| line.wait(k, cpu)));
        handler(intid);
        if threads::with(|k, _| with_line(k, intid, |line, _| line.handled())) {
            gic::set_spi_enabled(intid, true);
        }
    }
}

/// (woken, handled) counts of a threaded line.
pub fn counts(intid: u32) -> (u64, u64) {
    threads::with(|k, _| with_line(k, intid, |line, _| line.counts()))
}
