//! The checksum a parameter version and the layout header carry: FNV-1a (64-bit) over the
//! words' little-endian bytes. It detects accidents (a torn or scribbled slot), not
//! malice: the RT side range-checks every accepted value anyway.
//!
//! FNV-1a: offset basis 0xcbf29ce484222325, prime 0x100000001b3 (Fowler, Noll, Vo).

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// A running checksum.
#[derive(Clone, Copy)]
pub struct Fnv64(u64);

impl Fnv64 {
    pub const fn new() -> Self {
        Self(OFFSET_BASIS)
    }

    pub const fn bytes(mut self, bytes: &[u8]) -> Self {
        let mut i = 0;
        while i < bytes.len() {
            self.0 ^= bytes[i] as u64;
            self.0 = self.0.wrapping_mul(PRIME);
            i += 1;
        }
        self
    }

    pub const fn word(self, word: u64) -> Self {
        self.bytes(&word.to_le_bytes())
    }

    pub fn words(self, words: &[u64]) -> Self {
        words.iter().fold(self, |h, &w| h.word(w))
    }

    pub const fn finish(self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_fnv1a_64_vectors() {
        // Test vectors from the FNV reference (isthe.com/chongo/tech/comp/fnv).
        assert_eq!(Fnv64::new().finish(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv64::new().bytes(b"a").finish(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            Fnv64::new().bytes(b"foobar").finish(),
            0x8594_4171_f739_67e8
        );
    }

    #[test]
    fn word_order_matters() {
        assert_ne!(
            Fnv64::new().words(&[1, 2]).finish(),
            Fnv64::new().words(&[2, 1]).finish()
        );
    }
}
