//! The latency tracer's records: per vCPU, the longest kernel-lock hold, the longest wait
//! for the kernel lock, the longest interrupts-masked section, each with where it
//! happened, and the longest wake-up of the latency probe split into its parts, the
//! largest of which is named as its cause.
//!
//! Plain data, portable and allocation-free: the runtime measures (in counter ticks, so
//! recording converts nothing) and keeps one [`Trace`] per vCPU, touched only by that vCPU
//! with interrupts masked; printing converts. Never reads a clock.

use core::fmt;
use core::panic::Location;

/// Where a section began: a named place, or the code that opened it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    Named(&'static str),
    Code(&'static Location<'static>),
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::Named(name) => f.write_str(name),
            Site::Code(at) => write!(f, "{}:{}", at.file(), at.line()),
        }
    }
}

/// The longest of a kind of section seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Longest {
    pub ticks: u64,
    pub site: Option<Site>,
}

impl Longest {
    /// Keeps `ticks` at `site` if it is the longest yet (the first of equal ones stays).
    #[inline]
    pub fn note(&mut self, ticks: u64, site: Site) {
        if ticks > self.ticks {
            self.ticks = ticks;
            self.site = Some(site);
        }
    }
}

/// The parts of a wake-up, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakePart {
    /// From the deadline to the interrupt's first instruction here (the timer, hv's
    /// injection, and under emulation the emulator's scheduling of this vCPU).
    Delivery,
    /// Waiting for the kernel lock in the interrupt's kernel entry.
    LockWait,
    /// The interrupt path and the kernel entry (expiry, scheduling, the switch) up to
    /// the thread running.
    Kernel,
}

impl WakePart {
    pub fn name(self) -> &'static str {
        match self {
            WakePart::Delivery => "interrupt delivery",
            WakePart::LockWait => "kernel lock wait",
            WakePart::Kernel => "interrupt path and kernel",
        }
    }
}

/// One wake-up, split into [`WakePart`]s (same unit as the runtime gives).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WakeUp {
    pub delivery: u64,
    pub lock_wait: u64,
    pub kernel: u64,
}

impl WakeUp {
    /// Splits a wake-up at `woke` for `deadline`, whose last interrupt entered at
    /// `irq_at` and waited `lock_wait` for the kernel lock. An interrupt that entered
    /// before the deadline (not this wake-up's) counts from the deadline.
    pub fn split(deadline: u64, irq_at: u64, lock_wait: u64, woke: u64) -> WakeUp {
        let entered = irq_at.clamp(deadline, woke.max(deadline));
        let after = woke.saturating_sub(entered);
        let lock_wait = lock_wait.min(after);
        WakeUp {
            delivery: entered - deadline,
            lock_wait,
            kernel: after - lock_wait,
        }
    }

    pub fn total(&self) -> u64 {
        self.delivery + self.lock_wait + self.kernel
    }

    /// The largest part (the earliest of equal ones).
    pub fn cause(&self) -> WakePart {
        let mut cause = (WakePart::Delivery, self.delivery);
        for part in [
            (WakePart::LockWait, self.lock_wait),
            (WakePart::Kernel, self.kernel),
        ] {
            if part.1 > cause.1 {
                cause = part;
            }
        }
        cause.0
    }
}

/// One vCPU's records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub lock_hold: Longest,
    pub lock_wait: Longest,
    pub masked: Longest,
    pub wake: WakeUp,
}

impl Trace {
    pub const fn new() -> Trace {
        Trace {
            lock_hold: Longest {
                ticks: 0,
                site: None,
            },
            lock_wait: Longest {
                ticks: 0,
                site: None,
            },
            masked: Longest {
                ticks: 0,
                site: None,
            },
            wake: WakeUp {
                delivery: 0,
                lock_wait: 0,
                kernel: 0,
            },
        }
    }

    /// Keeps `wake` if it is the longest wake-up yet.
    pub fn note_wake(&mut self, wake: WakeUp) {
        if wake.total() > self.wake.total() {
            self.wake = wake;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_longest_with_its_site() {
        let mut l = Longest::default();
        l.note(5, Site::Named("a"));
        l.note(3, Site::Named("b"));
        l.note(5, Site::Named("c"));
        assert_eq!((l.ticks, l.site), (5, Some(Site::Named("a"))));
        let here = Location::caller();
        l.note(9, Site::Code(here));
        assert_eq!(
            l.site.map(|s| alloc::format!("{s}")),
            Some(alloc::format!("{}:{}", here.file(), here.line()))
        );
    }

    #[test]
    fn a_wake_up_is_split_and_its_largest_part_named() {
        let w = WakeUp::split(1_000, 1_100, 30, 1_500);
        assert_eq!((w.delivery, w.lock_wait, w.kernel), (100, 30, 370));
        assert_eq!(w.total(), 500);
        assert_eq!(w.cause(), WakePart::Kernel);
        let late = WakeUp::split(1_000, 9_000, 0, 9_400);
        assert_eq!(late.cause(), WakePart::Delivery);
        assert_eq!(
            WakeUp::split(1_000, 1_000, 800, 1_500).cause(),
            WakePart::LockWait
        );
        // An interrupt from before the deadline is not this wake-up's.
        let w = WakeUp::split(1_000, 400, 0, 1_200);
        assert_eq!((w.delivery, w.kernel), (0, 200));
        // Early wake-ups (woke before the deadline) count as nothing.
        assert_eq!(WakeUp::split(1_000, 900, 0, 950).total(), 0);
    }

    #[test]
    fn the_longest_wake_up_is_kept() {
        let mut t = Trace::new();
        t.note_wake(WakeUp::split(0, 10, 0, 50));
        t.note_wake(WakeUp::split(0, 5, 0, 20));
        assert_eq!(t.wake.total(), 50);
    }
}
