//! The priority-ordered wait queue shared by every sleeping primitive
//! (rt-mutex, completion, semaphore, rwsem).
//!
//! Owns only the ordering: highest priority first, FIFO among equal
//! priorities (by a kernel-wide sequence number taken when the waiter was
//! queued). It never wakes anybody and never changes a thread's state; the
//! primitive that owns the queue decides who is granted what.

use alloc::vec::Vec;

use crate::scheduling::thread::{Priority, ThreadId};

/// One blocked thread. `prio` mirrors the thread's effective priority; the
/// kernel re-queues the waiter whenever that priority changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter<D> {
    pub tid: ThreadId,
    pub prio: Priority,
    pub seq: u64,
    /// Per-primitive detail, e.g. read or write for an rwsem.
    pub data: D,
}

impl<D> Waiter<D> {
    fn goes_before(&self, other: &Waiter<D>) -> bool {
        self.prio > other.prio || (self.prio == other.prio && self.seq < other.seq)
    }
}

/// Kept as a sorted vector: queues are short (bounded by the thread count),
/// and a vector keeps the order trivially inspectable by the invariant checks.
#[derive(Clone, Debug)]
pub struct WaitQueue<D> {
    waiters: Vec<Waiter<D>>,
}

impl<D> Default for WaitQueue<D> {
    fn default() -> Self {
        WaitQueue {
            waiters: Vec::new(),
        }
    }
}

impl<D: Copy> WaitQueue<D> {
    pub(crate) fn insert(&mut self, waiter: Waiter<D>) {
        let pos = self
            .waiters
            .iter()
            .position(|w| waiter.goes_before(w))
            .unwrap_or(self.waiters.len());
        self.waiters.insert(pos, waiter);
    }

    pub(crate) fn remove(&mut self, tid: ThreadId) -> Option<Waiter<D>> {
        let pos = self.waiters.iter().position(|w| w.tid == tid)?;
        Some(self.waiters.remove(pos))
    }

    pub(crate) fn pop_front(&mut self) -> Option<Waiter<D>> {
        (!self.waiters.is_empty()).then(|| self.waiters.remove(0))
    }

    /// Moves a waiter after a priority change. It takes a fresh sequence
    /// number, so it queues behind waiters already at its new priority.
    pub(crate) fn requeue(&mut self, tid: ThreadId, prio: Priority, seq: u64) -> bool {
        match self.remove(tid) {
            Some(mut w) => {
                w.prio = prio;
                w.seq = seq;
                self.insert(w);
                true
            }
            None => false,
        }
    }

    pub fn front(&self) -> Option<&Waiter<D>> {
        self.waiters.first()
    }

    pub fn top_priority(&self) -> Option<Priority> {
        self.front().map(|w| w.prio)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Waiter<D>> {
        self.waiters.iter()
    }

    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    pub fn contains(&self, tid: ThreadId) -> bool {
        self.waiters.iter().any(|w| w.tid == tid)
    }

    /// True if the queue is in priority order, FIFO among equals.
    pub fn is_ordered(&self) -> bool {
        self.waiters.windows(2).all(|p| p[0].goes_before(&p[1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(tid: u32, prio: u8, seq: u64) -> Waiter<()> {
        Waiter {
            tid: ThreadId(tid),
            prio: Priority::new(prio),
            seq,
            data: (),
        }
    }

    #[test]
    fn priority_order_then_fifo() {
        let mut q = WaitQueue::default();
        q.insert(w(1, 5, 1));
        q.insert(w(2, 9, 2));
        q.insert(w(3, 5, 3));
        q.insert(w(4, 9, 4));
        let order: Vec<u32> = q.iter().map(|w| w.tid.0).collect();
        assert_eq!(order, [2, 4, 1, 3]);
        assert!(q.is_ordered());
        // Lowering thread 2 sends it behind the existing priority-5 waiters.
        assert!(q.requeue(ThreadId(2), Priority::new(5), 5));
        let order: Vec<u32> = q.iter().map(|w| w.tid.0).collect();
        assert_eq!(order, [4, 1, 3, 2]);
        assert_eq!(q.pop_front().map(|w| w.tid), Some(ThreadId(4)));
        assert!(!q.requeue(ThreadId(4), Priority::new(1), 6));
    }
}
