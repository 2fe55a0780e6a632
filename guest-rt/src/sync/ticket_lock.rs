//! A fair spinlock: a ticket lock, FIFO among waiters. Serves the kernel lock (the "run
//! queue" raw section, one lock for every vCPU of the partition), so a vCPU that asks
//! waits for at most one hold by each other vCPU, however fast the others come back.
//!
//! Owns the two counters only; what the lock protects is the caller's (the runtime keeps
//! the kernel behind it). Never masks interrupts itself (the caller must, around the whole
//! hold: a holder interrupted into a handler that takes the lock would wait for itself)
//! and never sleeps. Release does not check who holds it: the runtime hands the lock
//! over across a context switch, and the incoming context releases it.

use core::sync::atomic::{AtomicU32, Ordering};

/// What one acquisition waited for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Waited {
    /// Turns of the spin loop (0: the lock was free).
    pub spins: u64,
    /// Holds by others that ended while this one waited (at most the number of other
    /// CPUs that asked before it).
    pub holds_before: u32,
}

#[derive(Debug)]
pub struct TicketLock {
    /// The next ticket to hand out.
    next: AtomicU32,
    /// The ticket allowed in (the current holder's, or the next one's when free).
    serving: AtomicU32,
}

impl Default for TicketLock {
    fn default() -> Self {
        Self::new()
    }
}

impl TicketLock {
    pub const fn new() -> TicketLock {
        TicketLock {
            next: AtomicU32::new(0),
            serving: AtomicU32::new(0),
        }
    }

    /// Takes a ticket and waits for it to be served. Counters wrap: 2^32 waiters at once
    /// would be needed to confuse them.
    #[inline]
    pub fn lock(&self) -> Waited {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let mut serving = self.serving.load(Ordering::Acquire);
        if serving == ticket {
            return Waited::default();
        }
        let first = serving;
        let mut spins = 0;
        while serving != ticket {
            core::hint::spin_loop();
            spins += 1;
            serving = self.serving.load(Ordering::Acquire);
        }
        Waited {
            spins,
            holds_before: ticket.wrapping_sub(first),
        }
    }

    /// Takes the lock only if it is free now.
    pub fn try_lock(&self) -> bool {
        let serving = self.serving.load(Ordering::Relaxed);
        self.next
            .compare_exchange(
                serving,
                serving.wrapping_add(1),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Ends the current hold: the next ticket is served.
    #[inline]
    pub fn unlock(&self) {
        // Only the holder writes `serving`, so a plain read-then-store is enough.
        let serving = self.serving.load(Ordering::Relaxed);
        self.serving
            .store(serving.wrapping_add(1), Ordering::Release);
    }

    /// Whether someone holds the lock or waits for it.
    pub fn is_locked(&self) -> bool {
        self.next.load(Ordering::Relaxed) != self.serving.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn free_lock_is_taken_without_waiting_and_released() {
        let l = TicketLock::new();
        assert_eq!(l.lock(), Waited::default());
        assert!(l.is_locked());
        assert!(!l.try_lock());
        l.unlock();
        assert!(!l.is_locked());
        assert!(l.try_lock());
        l.unlock();
    }

    #[test]
    fn counters_wrap() {
        let l = TicketLock {
            next: AtomicU32::new(u32::MAX),
            serving: AtomicU32::new(u32::MAX),
        };
        for _ in 0..3 {
            assert_eq!(l.lock().spins, 0);
            l.unlock();
        }
    }

    /// Threads increment a counter that is not atomic as a whole (a load and a store):
    /// any two holds overlapping would lose an update. Each wait is behind at most the
    /// other threads' holds.
    #[test]
    fn excludes_and_each_wait_is_behind_at_most_one_hold_per_other_thread() {
        // Few threads and rounds: host threads outnumbering the cores make a ticket lock
        // convoy (a preempted next-in-line stalls every hand-over), which only costs time.
        const THREADS: u32 = 3;
        const ROUNDS: u64 = 1_000;
        let lock = Arc::new(TicketLock::new());
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (lock, count) = (lock.clone(), count.clone());
                std::thread::spawn(move || {
                    let mut worst = 0;
                    for _ in 0..ROUNDS {
                        let w = lock.lock();
                        worst = worst.max(w.holds_before);
                        let v = count.load(Ordering::Relaxed);
                        count.store(v + 1, Ordering::Relaxed);
                        lock.unlock();
                    }
                    worst
                })
            })
            .collect();
        for h in handles {
            assert!(
                h.join().unwrap() < THREADS,
                "overtaken more than once per thread"
            );
        }
        assert_eq!(count.load(Ordering::Relaxed), u64::from(THREADS) * ROUNDS);
    }
}
