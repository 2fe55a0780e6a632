//! High-resolution one-shot timers, one queue per CPU.
//!
//! Owns pending deadlines (wait timeouts and sleeps) ordered by expiry. There
//! is no periodic tick: the arch layer programs the CPU's one-shot timer with
//! [`crate::Kernel::next_deadline`] and calls [`crate::Kernel::expire`] when
//! it fires. A timer queue is one of the raw (non-preemptible) sections, so it
//! must never call out to anything that can block.

use alloc::collections::BTreeMap;

use crate::thread::{CpuId, ThreadId};

/// Monotonic time in nanoseconds (virtual in the simulator).
pub type Nanos = u64;

/// Locates an armed timer so it can be cancelled in O(log n).
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

/// Timers of one CPU, earliest first; equal deadlines fire in arming order.
#[derive(Debug, Default)]
pub struct TimerQueue {
    entries: BTreeMap<(Nanos, u64), TimerAction>,
}

impl TimerQueue {
    pub(crate) fn arm(&mut self, deadline: Nanos, seq: u64, action: TimerAction) {
        self.entries.insert((deadline, seq), action);
    }

    pub(crate) fn cancel(&mut self, deadline: Nanos, seq: u64) -> bool {
        self.entries.remove(&(deadline, seq)).is_some()
    }

    pub fn next_deadline(&self) -> Option<Nanos> {
        self.entries.keys().next().map(|&(deadline, _)| deadline)
    }

    pub(crate) fn pop_expired(&mut self, now: Nanos) -> Option<TimerAction> {
        let (&key, _) = self.entries.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.entries.remove(&key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn contains_action(&self, action: TimerAction) -> bool {
        self.entries.values().any(|&a| a == action)
    }
}
