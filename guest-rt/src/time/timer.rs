//! High-resolution one-shot timers, one queue per CPU.
//!
//! Owns pending deadlines (wait timeouts and sleeps) ordered by expiry. There
//! is no periodic tick: the arch layer programs the CPU's one-shot timer with
//! [`crate::Kernel::next_deadline`] and calls [`crate::Kernel::expire`] when
//! it fires. A timer queue is one of the raw (non-preemptible) sections, so it
//! must never call out to anything that can block.

use alloc::vec::Vec;

use crate::scheduling::thread::{CpuId, ThreadId};

/// Monotonic time in nanoseconds (virtual in the simulator).
pub type Nanos = u64;

/// Locates an armed timer so it can be cancelled by a binary search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    pub cpu: CpuId,
    pub deadline: Nanos,
    pub seq: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerAction {
    /// End a timed wait with [`crate::WaitOutcome::TimedOut`].
    WaitTimeout(ThreadId),
    /// End a `sleep_until`.
    SleepEnd(ThreadId),
}

/// Room kept from the start, so arming never allocates until a CPU has more timers.
const INITIAL_CAPACITY: usize = 8;

/// Timers of one CPU, earliest first; equal deadlines fire in arming order.
///
/// A vector sorted latest first: the next timer is the last element, so
/// [`TimerQueue::next_deadline`] and expiry are O(1), arming and cancelling a binary search
/// plus a short move (a CPU has a handful of timers). Its capacity is kept, so once warm it
/// never allocates.
#[derive(Debug)]
pub struct TimerQueue {
    /// (deadline, arming sequence, action), descending by (deadline, sequence).
    entries: Vec<(Nanos, u64, TimerAction)>,
}

impl Default for TimerQueue {
    fn default() -> Self {
        TimerQueue {
            entries: Vec::with_capacity(INITIAL_CAPACITY),
        }
    }
}

impl TimerQueue {
    /// Index of key `(deadline, seq)` (Ok) or where it would go (Err).
    fn search(&self, deadline: Nanos, seq: u64) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|&(d, s, _)| (deadline, seq).cmp(&(d, s)))
    }

    pub(crate) fn arm(&mut self, deadline: Nanos, seq: u64, action: TimerAction) {
        match self.search(deadline, seq) {
            Ok(at) => self.entries[at].2 = action,
            Err(at) => self.entries.insert(at, (deadline, seq, action)),
        }
    }

    pub(crate) fn cancel(&mut self, deadline: Nanos, seq: u64) -> bool {
        match self.search(deadline, seq) {
            Ok(at) => {
                self.entries.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    pub fn next_deadline(&self) -> Option<Nanos> {
        self.entries.last().map(|&(deadline, _, _)| deadline)
    }

    pub(crate) fn pop_expired(&mut self, now: Nanos) -> Option<TimerAction> {
        match self.entries.last() {
            Some(&(deadline, _, _)) if deadline <= now => self.entries.pop().map(|e| e.2),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn contains_action(&self, action: TimerAction) -> bool {
        self.entries.iter().any(|&(_, _, a)| a == action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleep(t: u32) -> TimerAction {
        TimerAction::SleepEnd(ThreadId(t))
    }

    #[test]
    fn fires_earliest_first_and_equal_deadlines_in_arming_order() {
        let mut q = TimerQueue::default();
        q.arm(300, 1, sleep(1));
        q.arm(100, 2, sleep(2));
        q.arm(300, 3, sleep(3));
        q.arm(200, 4, sleep(4));
        q.arm(100, 5, sleep(5));
        assert_eq!(q.len(), 5);
        assert_eq!(q.next_deadline(), Some(100));
        assert_eq!(q.pop_expired(99), None);
        let fired: Vec<TimerAction> = core::iter::from_fn(|| q.pop_expired(300)).collect();
        assert_eq!(fired, [sleep(2), sleep(5), sleep(4), sleep(1), sleep(3)]);
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn cancel_removes_exactly_the_named_timer() {
        let mut q = TimerQueue::default();
        q.arm(100, 1, sleep(1));
        q.arm(100, 2, TimerAction::WaitTimeout(ThreadId(2)));
        q.arm(50, 3, sleep(3));
        assert!(q.cancel(100, 1));
        assert!(!q.cancel(100, 1), "already gone");
        assert!(!q.cancel(75, 9), "never armed");
        assert!(q.contains_action(TimerAction::WaitTimeout(ThreadId(2))));
        assert!(!q.contains_action(sleep(1)));
        assert!(q.cancel(50, 3));
        assert_eq!(q.next_deadline(), Some(100));
        assert_eq!(
            q.pop_expired(100),
            Some(TimerAction::WaitTimeout(ThreadId(2)))
        );
        assert!(q.is_empty());
    }

    #[test]
    fn matches_a_sorted_model() {
        // A deterministic pseudo-random mix of arms, cancels and expiries against a plain
        // list sorted on demand.
        let mut q = TimerQueue::default();
        let mut model: Vec<(Nanos, u64, TimerAction)> = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut now = 0;
        for seq in 0..2_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 4 {
                0 | 1 => {
                    let deadline = now + x % 1_000;
                    q.arm(deadline, seq, sleep(seq as u32));
                    model.push((deadline, seq, sleep(seq as u32)));
                }
                2 if !model.is_empty() => {
                    let (d, s, _) = model.remove((x as usize / 4) % model.len());
                    assert!(q.cancel(d, s));
                }
                _ => {
                    now += x % 300;
                    model.sort_by_key(|&(d, s, _)| (d, s));
                    let due = model.iter().take_while(|e| e.0 <= now).count();
                    let expected: Vec<TimerAction> = model.drain(..due).map(|e| e.2).collect();
                    let fired: Vec<TimerAction> =
                        core::iter::from_fn(|| q.pop_expired(now)).collect();
                    assert_eq!(fired, expected);
                }
            }
            assert_eq!(q.len(), model.len());
            assert_eq!(q.next_deadline(), model.iter().map(|e| e.0).min());
        }
    }
}
