//! Threaded interrupt handlers on target: registration, the top half of a threaded line,
//! and each handler's thread.
//!
//! Owns the table of threaded lines (touched only with the kernel lock held) and the
//! deactivation that re-arms a line. The protocol itself is the portable
//! [`ThreadedLine`]; refusals (not an SPI, not the partition's, registered twice) come from
//! the device registry ([`super::devices::register`]).
//!
//! One-shot without touching the distributor: the top half drops the interrupt's
//! priority but leaves it active (EOImode = 1, see [`gic`]), so the GIC does not signal
//! the line again; the handler thread's return deactivates it. An edge arriving while it
//! is active makes it active and pending, delivered right after that deactivation. Only
//! the vCPU that acknowledged the interrupt can deactivate it (under hv it sits in that
//! vCPU's list register): a handler that returns on another vCPU asks that one, with the
//! reschedule SGI, to do it on its interrupt path ([`in_kernel_entry`]).
//!
//! The top half takes no lock: it notes the line in this vCPU's deferred set, and the
//! interrupt's one kernel entry wakes the handler threads ([`in_kernel_entry`]).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use guest_rt::interrupts::irq_registry::IrqError;
use guest_rt::interrupts::irq_thread::{Deactivate, ThreadedLine};
use guest_rt::{CpuMask, Priority, ThreadId, ThreadSpec};
use spin::Mutex;

use super::devices::{self, Ending};
use super::{gic, threads, vcpu_index, MAX_VCPUS};

/// The lines with handler threads. Locked only inside kernel entries (which already
/// exclude each other), so never contended.
static LINES: Mutex<Vec<ThreadedLine>> = Mutex::new(Vec::new());

/// Per vCPU: a threaded line's interrupt is still active on its interface although its
/// handler returned (on another vCPU); set before the SGI that asks it to deactivate.
static OWED: [AtomicBool; MAX_VCPUS] = [const { AtomicBool::new(false) }; MAX_VCPUS];

/// INTIDs the GIC can name (SPIs end at 1019): the deferred set's size in bits.
const INTIDS: usize = 1024;
/// Per vCPU: threaded lines whose top half ran here and whose threads the interrupt's
/// kernel entry must wake (bit n: INTID n), and which of those words are not zero (bit w:
/// word w), so the entry visits only those. Only their own vCPU touches them, with
/// interrupts masked.
static DEFERRED: [[AtomicU64; INTIDS / 64]; MAX_VCPUS] =
    [const { [const { AtomicU64::new(0) }; INTIDS / 64] }; MAX_VCPUS];
static DEFERRED_WORDS: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(0) }; MAX_VCPUS];

/// Registers `handler` for SPI `intid`, run by a new thread at `priority` (on any vCPU).
/// The line is enabled when this returns; each interrupt runs `handler` once in that
/// thread, and the line does not fire again until it returns.
pub fn register(intid: u32, priority: Priority, handler: fn(u32)) -> Result<ThreadId, IrqError> {
    register_on(intid, priority, CpuMask::from_bits(u64::MAX), handler)
}

/// As [`register`], with the handler thread kept to the vCPUs in `affinity` (e.g. the one
/// the line is routed to, so the wake-up and the deactivation never cross vCPUs).
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

/// A threaded line's top half (interrupts masked, acknowledged, priority not dropped
/// yet): note its thread's wake-up for the interrupt's kernel entry and leave the
/// interrupt active. The switch to that thread, if it is the most urgent here, happens in
/// that entry, on the interrupt's way out.
fn top_half(intid: u32) -> Ending {
    let me = vcpu_index();
    let n = intid as usize % INTIDS;
    DEFERRED[me][n / 64].fetch_or(1 << (n % 64), Ordering::Relaxed);
    DEFERRED_WORDS[me].fetch_or(1 << (n / 64), Ordering::Relaxed);
    Ending::LeaveActive
}

/// Whether a top half on this vCPU left a wake-up for the kernel entry.
pub fn deferred_here() -> bool {
    DEFERRED_WORDS[vcpu_index()].load(Ordering::Relaxed) != 0
}

/// Whether another vCPU asked this one to deactivate a line (see [`in_kernel_entry`]).
pub fn owed_here() -> bool {
    OWED[vcpu_index()].load(Ordering::Relaxed)
}

/// The threaded lines' part of an interrupt's kernel entry on `cpu` (kernel lock held):
/// wake the threads of the lines whose top halves ran here, and deactivate the lines
/// whose handlers returned on another vCPU while their interrupts were active here (on
/// the reschedule SGI they send). Two loads when there is nothing to do.
pub fn in_kernel_entry(k: &mut guest_rt::Kernel, cpu: guest_rt::CpuId) {
    let words = &DEFERRED_WORDS[cpu];
    let mut words = match words.load(Ordering::Relaxed) {
        0 => 0,
        _ => words.swap(0, Ordering::Relaxed),
    };
    while words != 0 {
        let word = words.trailing_zeros() as usize;
        words &= words - 1;
        let mut bits = DEFERRED[cpu][word].swap(0, Ordering::Relaxed);
        while bits != 0 {
            let intid = (word * 64) as u32 + bits.trailing_zeros();
            bits &= bits - 1;
            // Woken or (never, by the architecture) already active: either way the
            // interrupt stays active until the handler's pass ends.
            with_line(k, intid, |line, k| line.top_half(k, cpu));
        }
    }
    let owed = &OWED[cpu];
    if owed.load(Ordering::Relaxed) && owed.swap(false, Ordering::Acquire) {
        for line in LINES.lock().iter_mut() {
            if line.take_owed(cpu) {
                gic::deactivate_spi(line.intid());
            }
        }
    }
}

fn handler_thread(intid: u32, handler: fn(u32)) {
    loop {
        threads::wait(|k, cpu| with_line(k, intid, |line, k| line.wait(k, cpu)));
        handler(intid);
        // Under the kernel lock, interrupts masked: the thread cannot migrate between
        // learning where it runs and deactivating there.
        let owed_to = threads::with(|k, cpu| {
            with_line(k, intid, |line, _| match line.handled(cpu) {
                Deactivate::Here => {
                    gic::deactivate_spi(intid);
                    None
                }
                Deactivate::On(other) => Some(other),
                Deactivate::Nothing => None,
            })
        });
        if let Some(other) = owed_to {
            OWED[other].store(true, Ordering::Release);
            gic::send_sgi(threads::RESCHED_SGI, other);
        }
    }
}

/// (woken, handled) counts of a threaded line.
pub fn counts(intid: u32) -> (u64, u64) {
    threads::with(|k, _| with_line(k, intid, |line, _| line.counts()))
}
