//! The set of non-empty priority levels of a run queue, one bit per level.
//!
//! Owns only the bits: the most urgent level is one leading-zeros count, and walking the
//! non-empty levels costs one step per set bit, not one per level. It never holds threads
//! (that is [`crate::scheduling::sched::RunQueue`]) and never decides anything.

use crate::scheduling::thread::Priority;

/// Bit `n` set = level `n` has queued threads. [`Priority::LEVELS`] fits in 128 bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrioBitmap(u128);

const _: () = assert!(Priority::LEVELS <= 128, "one bit per level");

impl PrioBitmap {
    pub fn set(&mut self, prio: Priority) {
        self.0 |= 1u128 << prio.index();
    }

    pub fn clear(&mut self, prio: Priority) {
        self.0 &= !(1u128 << prio.index());
    }

    pub fn contains(self, prio: Priority) -> bool {
        self.0 & (1u128 << prio.index()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The most urgent level in the set.
    pub fn highest(self) -> Option<Priority> {
        (self.0 != 0).then(|| Priority::new((127 - self.0.leading_zeros()) as u8))
    }

    /// Only the levels strictly above `floor` (all of them for `None`).
    pub fn above(self, floor: Option<Priority>) -> PrioBitmap {
        match floor {
            None => self,
            // Levels <= 99, so the shift never reaches 128.
            Some(p) => PrioBitmap(self.0 & !((2u128 << p.index()) - 1)),
        }
    }

    /// The levels in the set, most urgent first.
    pub fn iter_desc(self) -> impl Iterator<Item = Priority> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            let top = PrioBitmap(bits).highest()?;
            bits &= !(1u128 << top.index());
            Some(top)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitmap(levels: &[u8]) -> PrioBitmap {
        let mut b = PrioBitmap::default();
        for &l in levels {
            b.set(Priority::new(l));
        }
        b
    }

    fn levels(b: PrioBitmap) -> Vec<u8> {
        b.iter_desc().map(Priority::get).collect()
    }

    #[test]
    fn highest_is_the_most_urgent_set_level() {
        assert_eq!(PrioBitmap::default().highest(), None);
        assert!(PrioBitmap::default().is_empty());
        let mut b = bitmap(&[0, 42, 99]);
        assert_eq!(b.highest(), Some(Priority::MAX));
        b.clear(Priority::MAX);
        assert_eq!(b.highest(), Some(Priority::new(42)));
        b.clear(Priority::new(42));
        assert_eq!(b.highest(), Some(Priority::MIN));
        assert!(b.contains(Priority::MIN) && !b.contains(Priority::new(42)));
        b.clear(Priority::MIN);
        assert!(b.is_empty());
    }

    #[test]
    fn iterates_set_levels_most_urgent_first() {
        assert_eq!(levels(bitmap(&[3, 99, 0, 57, 3])), [99, 57, 3, 0]);
        assert_eq!(levels(PrioBitmap::default()), Vec::<u8>::new());
    }

    #[test]
    fn above_keeps_only_strictly_higher_levels() {
        let b = bitmap(&[0, 10, 11, 99]);
        assert_eq!(levels(b.above(None)), [99, 11, 10, 0]);
        assert_eq!(levels(b.above(Some(Priority::new(10)))), [99, 11]);
        assert_eq!(levels(b.above(Some(Priority::MIN))), [99, 11, 10]);
        assert_eq!(levels(b.above(Some(Priority::MAX))), Vec::<u8>::new());
    }

    #[test]
    fn matches_a_plain_set_for_every_level() {
        // Each single level round-trips, and the top of a prefix set is its last level.
        let mut b = PrioBitmap::default();
        for l in 0..Priority::LEVELS as u8 {
            let p = Priority::new(l);
            assert!(!b.contains(p));
            b.set(p);
            assert_eq!(b.highest(), Some(p));
            assert_eq!(b.iter_desc().count(), usize::from(l) + 1);
        }
    }
}
