//! Virtual SGIs waiting for one vCPU: which SGI, from which vCPU of its partition.
//!
//! hv queues an SGI here when a guest sends it (a trapped GICD_SGIR or ICC_SGI1R_EL1
//! write, decoded by [`crate::vgic`]) and the target's CPU injects the queue into its list
//! registers at its next exit. Any CPU may push; only the target's CPU takes. Lock-free
//! and fixed-size: it is on the interrupt path.
//!
//! Limits, explicit: SGIs 0-15 from source vCPUs 0 to [`MAX_SOURCES`] - 1, which is every
//! vCPU a partition can have (one per CPU hv runs on) and what a GICv2 list register can
//! name (its 3-bit CPUID field). Anything outside is refused, never dropped silently (the
//! sender counts it in its CPU's statistics, [`crate::cpu_stats`]). Portable and host-tested; it never touches the GIC.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::layout::MAX_CPUS;

/// Source vCPUs a queue holds SGIs from.
pub const MAX_SOURCES: usize = MAX_CPUS;
/// SGIs per source (INTIDs 0-15).
const SGIS: usize = 16;
/// Sources per 64-bit word of the queue.
const SOURCES_PER_WORD: usize = 64 / SGIS;
const WORDS: usize = MAX_SOURCES.div_ceil(SOURCES_PER_WORD);

/// Why an SGI could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// INTID 16 or above is not an SGI.
    NotAnSgi(u32),
    /// The sending vCPU's index is at or above [`MAX_SOURCES`].
    SourceOutOfRange(usize),
}

/// The SGIs pending for one vCPU: bit `(source % 4) * 16 + intid` of word `source / 4`.
pub struct SgiQueue {
    words: [AtomicU64; WORDS],
}

impl Default for SgiQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl SgiQueue {
    pub const fn new() -> Self {
        Self {
            words: [const { AtomicU64::new(0) }; WORDS],
        }
    }

    /// Queues SGI `intid` from vCPU `source` (once: a second one before the first is
    /// taken merges with it, as on a GIC).
    #[inline]
    pub fn push(&self, source: usize, intid: u32) -> Result<(), Refused> {
        let refused = if intid as usize >= SGIS {
            Refused::NotAnSgi(intid)
        } else if source >= MAX_SOURCES {
            Refused::SourceOutOfRange(source)
        } else {
            let bit = (source % SOURCES_PER_WORD) * SGIS + intid as usize;
            self.words[source / SOURCES_PER_WORD].fetch_or(1 << bit, Ordering::AcqRel);
            return Ok(());
        };
        Err(refused)
    }

    /// Hands everything queued to `inject` as `(intid, source)` (lowest source and INTID
    /// first); what it refuses (false: no free list register) stays queued. True when
    /// something stayed.
    #[inline]
    pub fn drain(&self, mut inject: impl FnMut(u32, u32) -> bool) -> bool {
        // Sources 0-3 (every vCPU of a partition of up to 4) are the common case: that
        // word is swapped at once; the others are mostly empty, and a load is cheaper.
        let [first, others @ ..] = &self.words;
        let mut left = drain_word(first, 0, &mut inject);
        let mut source = SOURCES_PER_WORD as u32;
        for word in others {
            if word.load(Ordering::Acquire) != 0 {
                left |= drain_word(word, source, &mut inject);
            }
            source += SOURCES_PER_WORD as u32;
        }
        left
    }

    /// The SGIs queued from any source (bit n = INTID n): pending for the vCPU.
    #[inline]
    pub fn queued(&self) -> u32 {
        self.words.iter().fold(0, |sgis, word| {
            let mut bits = word.load(Ordering::Acquire);
            let mut mask = 0;
            while bits != 0 {
                mask |= bits as u32 & 0xffff;
                bits >>= SGIS;
            }
            sgis | mask
        })
    }

    /// Forgets everything queued (the vCPU restarts).
    pub fn clear(&self) {
        for word in &self.words {
            word.store(0, Ordering::Release);
        }
    }
}

/// [`SgiQueue::drain`] for one word, whose first source is `first_source`.
#[inline(always)]
fn drain_word(
    word: &AtomicU64,
    first_source: u32,
    inject: &mut impl FnMut(u32, u32) -> bool,
) -> bool {
    let mut pending = word.swap(0, Ordering::AcqRel);
    let mut left = 0;
    while pending != 0 {
        let bit = pending.trailing_zeros();
        pending &= pending - 1;
        if !inject(bit % SGIS as u32, first_source + bit / SGIS as u32) {
            left |= 1 << bit;
        }
    }
    if left != 0 {
        word.fetch_or(left, Ordering::AcqRel);
    }
    left != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Everything queued, injected into a list that takes all.
    fn take(q: &SgiQueue) -> Vec<(u32, u32)> {
        let mut taken = Vec::new();
        let left = q.drain(|intid, source| {
            taken.push((intid, source));
            true
        });
        assert!(!left);
        taken
    }

    #[test]
    fn queued_names_each_sgi_once_whatever_its_sources() {
        let q = SgiQueue::new();
        assert_eq!(q.queued(), 0);
        q.push(1, 3).unwrap();
        q.push(6, 3).unwrap();
        q.push(MAX_SOURCES - 1, 15).unwrap();
        assert_eq!(q.queued(), (1 << 3) | (1 << 15));
        take(&q);
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn sgis_come_back_by_source_then_intid() {
        let q = SgiQueue::new();
        q.push(1, 3).unwrap();
        q.push(0, 15).unwrap();
        q.push(0, 2).unwrap();
        let taken = take(&q);
        assert_eq!(taken, [(2, 0), (15, 0), (3, 1)]);
        assert!(take(&q).is_empty(), "draining empties the queue");
    }

    #[test]
    fn every_source_a_partition_can_have_is_queued() {
        // Sources 4-7 were dropped silently when the queue had room for 4.
        let q = SgiQueue::new();
        for source in 0..MAX_SOURCES {
            q.push(source, source as u32).unwrap();
        }
        let taken = take(&q);
        let expected: Vec<_> = (0..MAX_SOURCES as u32).map(|s| (s, s)).collect();
        assert_eq!(taken, expected);
    }

    #[test]
    fn out_of_range_sgis_are_refused() {
        let q = SgiQueue::new();
        assert_eq!(
            q.push(MAX_SOURCES, 1),
            Err(Refused::SourceOutOfRange(MAX_SOURCES))
        );
        assert_eq!(q.push(0, 16), Err(Refused::NotAnSgi(16)));
        assert!(take(&q).is_empty());
    }

    #[test]
    fn what_finds_no_list_register_stays_queued() {
        let q = SgiQueue::new();
        q.push(0, 1).unwrap();
        q.push(0, 2).unwrap();
        q.push(6, 3).unwrap();
        // Room for one: the first SGI goes, the others stay, in order.
        let mut room = 1;
        let left = q.drain(|_, _| {
            room -= 1;
            room >= 0
        });
        assert!(left);
        assert_eq!(take(&q), [(2, 0), (3, 6)]);
    }

    #[test]
    fn a_repeated_sgi_merges_and_clear_forgets() {
        let q = SgiQueue::new();
        q.push(5, 7).unwrap();
        q.push(5, 7).unwrap();
        assert_eq!(take(&q), [(7, 5)]);
        q.push(6, 1).unwrap();
        q.clear();
        assert!(take(&q).is_empty());
    }
}
