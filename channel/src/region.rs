//! The shared region as the protocol sees it: a slice of 64-bit words that both partitions
//! access at the same time, and that the other side may overwrite with anything at any time.
//!
//! It owns the one rule of access: single-copy-atomic 64-bit loads and stores only, never a
//! read-modify-write (Linux maps the `no-map` region through `/dev/mem` as Device memory,
//! where exclusive or atomic RMW instructions are not guaranteed to work), and never a plain
//! non-atomic access (the other side's writes would be a data race). It never panics: an
//! index past the end reads as 0 and writes nowhere (the layout keeps every index in range;
//! this is the backstop, checked in debug builds).

use crate::sync::{AtomicU64, Ordering};

/// One word of the shared region.
pub type Word = AtomicU64;

/// The shared words, borrowed. Building one needs no unsafe code: whoever maps the memory
/// (hv, guest-rt, `rtctl`) turns its mapping into `&[Word]` in its own small unsafe layer.
#[derive(Clone, Copy)]
pub struct Region<'a> {
    words: &'a [Word],
}

impl<'a> Region<'a> {
    pub fn new(words: &'a [Word]) -> Self {
        Self { words }
    }

    /// Length in 64-bit words.
    #[inline]
    pub fn len_words(&self) -> usize {
        self.words.len()
    }

    #[inline]
    pub(crate) fn load(&self, at: usize, order: Ordering) -> u64 {
        debug_assert!(
            at < self.words.len(),
            "channel load at word {at} out of range"
        );
        self.words.get(at).map_or(0, |w| w.load(order))
    }

    #[inline]
    pub(crate) fn store(&self, at: usize, value: u64, order: Ordering) {
        debug_assert!(
            at < self.words.len(),
            "channel store at word {at} out of range"
        );
        if let Some(w) = self.words.get(at) {
            w.store(value, order);
        }
    }

    /// Relaxed loads of `out.len()` words from `at`.
    #[inline]
    pub(crate) fn copy_out(&self, at: usize, out: &mut [u64]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.load(at + i, Ordering::Relaxed);
        }
    }

    /// Relaxed stores of `words` from `at`.
    #[inline]
    pub(crate) fn copy_in(&self, at: usize, words: &[u64]) {
        for (i, &w) in words.iter().enumerate() {
            self.store(at + i, w, Ordering::Relaxed);
        }
    }
}

#[cfg(all(test, not(loom)))]
pub(crate) mod testing {
    use super::Word;

    /// A zeroed region of `words` words, for host tests.
    pub fn zeroed(words: usize) -> Vec<Word> {
        (0..words).map(|_| Word::new(0)).collect()
    }
}
