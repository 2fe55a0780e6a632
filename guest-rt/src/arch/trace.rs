//! The latency tracer's measuring points ([`guest_rt::tracing::sections`] holds the
//! records): the kernel lock's holds and waits, the interrupts-masked sections, the
//! interrupt entry a wake-up came through. Each vCPU's records are its own, written only
//! by that vCPU with its interrupts masked; times are raw counter ticks, converted only
//! when read.
//!
//! Never takes a lock and never allocates: it runs inside the sections it measures. Built
//! without the `tracer` feature, every measuring point is empty.

use core::cell::UnsafeCell;
use core::panic::Location;

use aarch64_cpu::registers::{Readable, DAIF};
use guest_rt::tracing::sections::{Longest, Site, Trace, WakeUp};

use super::{timer, vcpu_index, MAX_VCPUS};

/// The kernel lock's waits on one vCPU since its last [`reset_lock_waits`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LockWaits {
    /// Kernel-lock acquisitions, and how many of them found it taken.
    pub taken: u64,
    pub contended: u64,
    pub wait_ticks: u64,
    pub shortest_ticks: u64,
    pub longest_ticks: u64,
    /// The most holds by other vCPUs that ended while one acquisition waited.
    pub most_holds_before: u64,
}

struct Vcpu {
    trace: Trace,
    held_since: u64,
    held_site: Site,
    /// 0: no masked section being timed.
    masked_since: u64,
    masked_site: Site,
    irq_at: u64,
    irq_lock_wait: u64,
    /// The wait of the latest acquisition (kept for the interrupt entry's wake-up split).
    last_wait: u64,
    waits: LockWaits,
}

struct PerVcpu([UnsafeCell<Vcpu>; MAX_VCPUS]);
// SAFETY: entry `i` is only reached by vCPU `i` with its interrupts masked (see `mine`), so
// no two contexts ever reach the same entry at once.
unsafe impl Sync for PerVcpu {}

static VCPUS: PerVcpu = PerVcpu(
    [const {
        UnsafeCell::new(Vcpu {
            trace: Trace::new(),
            held_since: 0,
            held_site: Site::Named("-"),
            masked_since: 0,
            masked_site: Site::Named("-"),
            irq_at: 0,
            irq_lock_wait: 0,
            last_wait: 0,
            waits: LockWaits {
                taken: 0,
                contended: 0,
                wait_ticks: 0,
                shortest_ticks: 0,
                longest_ticks: 0,
                most_holds_before: 0,
            },
        })
    }; MAX_VCPUS],
);

fn interrupts_masked() -> bool {
    DAIF.is_set(DAIF::I)
}

/// This vCPU's records, for a short access with interrupts masked.
#[inline]
fn mine<R>(f: impl FnOnce(&mut Vcpu) -> R) -> R {
    debug_assert!(
        interrupts_masked(),
        "the tracer is used with interrupts masked"
    );
    // SAFETY: only this vCPU reaches its entry, and with interrupts masked no other context
    // of this vCPU runs until `f` returns (`f` calls nothing that could switch).
    f(unsafe { &mut *VCPUS.0[vcpu_index()].get() })
}

/// The kernel lock was just taken at `site` after waiting `waited_ticks` behind
/// `holds_before` other holds.
#[inline]
pub fn lock_taken(site: &'static Location<'static>, waited_ticks: u64, holds_before: u64) {
    if !cfg!(feature = "tracer") {
        return;
    }
    let now = timer::now_ticks();
    mine(|v| {
        v.held_since = now;
        v.held_site = Site::Code(site);
        v.last_wait = waited_ticks;
        v.waits.taken += 1;
        if waited_ticks > 0 {
            v.waits.contended += 1;
            v.waits.shortest_ticks = match v.waits.contended {
                1 => waited_ticks,
                _ => v.waits.shortest_ticks.min(waited_ticks),
            };
            v.waits.wait_ticks += waited_ticks;
            v.waits.longest_ticks = v.waits.longest_ticks.max(waited_ticks);
            v.waits.most_holds_before = v.waits.most_holds_before.max(holds_before);
            v.trace.lock_wait.note(waited_ticks, Site::Code(site));
        }
    });
}

/// The kernel lock is about to be released on this vCPU (by whichever context holds it
/// here now: a switch hands it over).
#[inline]
pub fn lock_releasing() {
    if !cfg!(feature = "tracer") {
        return;
    }
    let now = timer::now_ticks();
    mine(|v| {
        let site = v.held_site;
        v.trace.lock_hold.note(now.wrapping_sub(v.held_since), site);
    });
}

/// Interrupts were unmasked and have just been masked at `site`.
#[inline]
pub fn masked(site: Site) {
    if !cfg!(feature = "tracer") {
        return;
    }
    let now = timer::now_ticks();
    mine(|v| {
        v.masked_since = now;
        v.masked_site = site;
    });
}

/// Interrupts are about to be unmasked (an IRQ mask dropped, a thread or the idle loop
/// starting, an interrupt returning).
#[inline]
pub fn unmasking() {
    if !cfg!(feature = "tracer") {
        return;
    }
    let now = timer::now_ticks();
    mine(|v| {
        if v.masked_since != 0 {
            let site = v.masked_site;
            v.trace.masked.note(now - v.masked_since, site);
            v.masked_since = 0;
        }
    });
}

/// An interrupt's first Rust code on this vCPU (interrupts masked by the exception).
#[inline]
pub fn interrupt_entered() {
    if !cfg!(feature = "tracer") {
        return;
    }
    let now = timer::now_ticks();
    mine(|v| {
        v.irq_at = now;
        v.irq_lock_wait = 0;
        if v.masked_since == 0 {
            v.masked_since = now;
            v.masked_site = Site::Named("interrupt");
        }
    });
}

/// The interrupt's kernel entry has the lock: its wait is part of the wake-up it causes.
#[inline]
pub fn interrupt_locked() {
    if !cfg!(feature = "tracer") {
        return;
    }
    mine(|v| v.irq_lock_wait = v.last_wait);
}

/// The latency probe woke at `woke_ns` for `deadline_ns`: keeps the wake-up, split at
/// the last interrupt entry, if it is this vCPU's longest.
pub fn woke(deadline_ns: u64, woke_ns: u64) {
    if !cfg!(feature = "tracer") {
        return;
    }
    let _masked = super::irqmask::IrqMasked::new();
    let (irq_at, lock_wait) = mine(|v| (v.irq_at, v.irq_lock_wait));
    let wake = WakeUp::split(
        deadline_ns,
        timer::ticks_to_ns(irq_at),
        timer::ticks_to_ns(lock_wait),
        woke_ns,
    );
    mine(|v| v.trace.note_wake(wake));
}

/// This vCPU's records, lock holds, waits and masked sections in nanoseconds.
pub fn read() -> Trace {
    let _masked = super::irqmask::IrqMasked::new();
    let mut t = mine(|v| v.trace);
    for l in [&mut t.lock_hold, &mut t.lock_wait, &mut t.masked] {
        *l = Longest {
            ticks: timer::ticks_to_ns(l.ticks),
            site: l.site,
        };
    }
    t
}

/// This vCPU's kernel-lock waits since the last reset, in ticks (the kernel bench's).
#[cfg(feature = "selftests")]
pub fn lock_waits() -> LockWaits {
    let _masked = super::irqmask::IrqMasked::new();
    mine(|v| v.waits)
}

#[cfg(feature = "selftests")]
pub fn reset_lock_waits() {
    let _masked = super::irqmask::IrqMasked::new();
    mine(|v| v.waits = LockWaits::default());
}
