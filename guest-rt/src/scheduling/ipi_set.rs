//! The reschedule IPIs the kernel has asked for and the arch layer has not sent yet.
//!
//! Owns only the pending (from, to) pairs, as one bit per pair: one target word per origin
//! CPU plus a word of origins that have any, so recording is an OR and draining costs one
//! step per pending IPI. The words are allocated once with the kernel, so the wake and
//! switch paths never allocate. Asking twice for the same pair before a drain yields it
//! once: a second SGI would only set the same pending reschedule again.

use alloc::vec::Vec;

use crate::scheduling::sched::KernelEvent;
use crate::scheduling::thread::CpuId;

#[derive(Clone, Debug)]
pub struct IpiSet {
    /// Per origin CPU: bit n = an IPI to CPU n is pending.
    targets: Vec<u64>,
    /// Bit n = `targets[n]` is not zero.
    origins: u64,
}

impl IpiSet {
    /// A set for CPUs `0..cpus` (at most 64).
    pub fn new(cpus: usize) -> IpiSet {
        assert!(cpus <= 64, "one bit per CPU");
        IpiSet {
            targets: alloc::vec![0; cpus],
            origins: 0,
        }
    }

    pub fn insert(&mut self, from: CpuId, to: CpuId) {
        self.targets[from] |= 1u64 << to;
        self.origins |= 1u64 << from;
    }

    pub fn is_empty(&self) -> bool {
        self.origins == 0
    }

    /// Yields and removes every pending IPI, by origin then target, lowest first. Whatever
    /// is not yet yielded when the iterator is dropped is discarded too.
    pub fn drain(&mut self) -> Drain<'_> {
        Drain {
            set: self,
            from: 0,
            word: 0,
        }
    }
}

/// See [`IpiSet::drain`].
pub struct Drain<'a> {
    set: &'a mut IpiSet,
    /// The origin whose targets `word` holds.
    from: CpuId,
    word: u64,
}

impl Iterator for Drain<'_> {
    type Item = KernelEvent;

    fn next(&mut self) -> Option<KernelEvent> {
        if self.word == 0 {
            if self.set.origins == 0 {
                return None;
            }
            self.from = self.set.origins.trailing_zeros() as CpuId;
            self.set.origins &= self.set.origins - 1;
            self.word = core::mem::take(&mut self.set.targets[self.from]);
        }
        let to = self.word.trailing_zeros() as CpuId;
        self.word &= self.word - 1;
        Some(KernelEvent::Ipi {
            from: self.from,
            to,
        })
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        while self.set.origins != 0 {
            let from = self.set.origins.trailing_zeros() as usize;
            self.set.origins &= self.set.origins - 1;
            self.set.targets[from] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipi(from: CpuId, to: CpuId) -> KernelEvent {
        KernelEvent::Ipi { from, to }
    }

    #[test]
    fn drains_each_pending_pair_once_in_cpu_order() {
        let mut set = IpiSet::new(64);
        assert!(set.is_empty());
        set.insert(3, 63);
        set.insert(0, 1);
        set.insert(3, 2);
        set.insert(0, 1);
        assert!(!set.is_empty());
        let sent: Vec<KernelEvent> = set.drain().collect();
        assert_eq!(sent, [ipi(0, 1), ipi(3, 2), ipi(3, 63)]);
        assert!(set.is_empty());
        assert_eq!(set.drain().count(), 0);
        // Reusable after a drain.
        set.insert(63, 0);
        assert_eq!(set.drain().collect::<Vec<_>>(), [ipi(63, 0)]);
    }

    #[test]
    fn dropping_a_drain_early_discards_the_rest() {
        let mut set = IpiSet::new(4);
        set.insert(0, 1);
        set.insert(0, 2);
        set.insert(2, 3);
        assert_eq!(set.drain().next(), Some(ipi(0, 1)));
        assert!(set.is_empty());
        assert_eq!(set.drain().count(), 0);
        set.insert(1, 0);
        assert_eq!(set.drain().collect::<Vec<_>>(), [ipi(1, 0)]);
    }
}
