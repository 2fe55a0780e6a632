//! hv's seal: a CRC-32 of its own code and read-only data, which `cargo xtask` writes into
//! the reserved words of hv's arm64 Image header and hv checks at boot (and xtask again
//! before it boots an image), so a flipped bit in hv is a named error, not a later fault.
//!
//! Layout (little endian), in the header's `res2`..`res4` words (Linux
//! `Documentation/arch/arm64/booting.rst`; boot loaders ignore them):
//!
//! ```text
//! 0x20 end        u32  end of the sealed bytes (hv's `__sealed_end`: text and .rodata)
//! 0x24 crc        u32  CRC-32 of bytes [0x40, end), relocated words as zeros
//! 0x28 magic      u32  "BHSL"
//! 0x2c table      u32  offset of the payload table ([`crate::image`])
//! 0x30 rela_start u32  hv's relocation table (`R_AARCH64_RELATIVE` entries, 24 bytes
//! 0x34 rela_end   u32  each: offset, type, addend), so xtask can check a file alone
//! ```
//!
//! The header itself (0x00..0x40) is not sealed: xtask patches `image_size` after sealing,
//! and a header a loader cannot use never reaches hv's check (xtask refuses it). hv checks
//! its bytes as loaded, after it relocated itself: the 8-byte words its relocations write
//! (a few pointer tables in read-only data) count as zeros on both sides, so the seal does
//! not depend on where hv was loaded.

use core::fmt;

pub const END_OFFSET: usize = 0x20;
pub const CRC_OFFSET: usize = 0x24;
pub const MAGIC_OFFSET: usize = 0x28;
pub const TABLE_OFFSET: usize = 0x2c;
pub const RELA_OFFSET: usize = 0x30;
/// One relocation entry (Elf64_Rela).
pub const RELA_SIZE: usize = 24;
/// First sealed byte: just past the Image header.
pub const SEALED_START: usize = 0x40;
pub const MAGIC: [u8; 4] = *b"BHSL";

/// A seal as read from a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seal {
    pub end: u64,
    pub crc: u32,
    pub table: u64,
    /// hv's relocation table, as offsets from the image start.
    pub rela: (u64, u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// Fewer bytes than an Image header.
    Truncated { len: usize },
    /// No seal magic: not assembled by `cargo xtask`.
    Unsealed,
    /// The sealed range is empty or runs past the image.
    BadEnd { end: u64, size: u64 },
    /// The bytes changed since xtask sealed them.
    Mismatch {
        stored: u32,
        computed: u32,
        end: u64,
    },
    /// Relocation offsets not in ascending order (the linker sorts them).
    UnsortedRelocations { at: u64 },
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { len } => {
                write!(f, "hv's image is {len} bytes, shorter than its header")
            }
            Self::Unsealed => write!(
                f,
                "hv's image carries no checksum (seal magic missing): not assembled by cargo xtask"
            ),
            Self::BadEnd { end, size } => write!(
                f,
                "hv's image checksum covers bytes up to {end:#x} of {size:#x}: corrupt header"
            ),
            Self::Mismatch {
                stored,
                computed,
                end,
            } => write!(
                f,
                "hv's own image fails its checksum: CRC-32 {computed:#010x} over bytes \
                 {SEALED_START:#x}..{end:#x}, sealed {stored:#010x} (hv is corrupt)"
            ),
            Self::UnsortedRelocations { at } => write!(
                f,
                "hv's relocations are not sorted (at {at:#x}): its checksum cannot be checked"
            ),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

fn put_u32(image: &mut [u8], at: usize, value: usize) {
    image[at..at + 4].copy_from_slice(&(value as u32).to_le_bytes());
}

/// The offsets an Elf64_Rela table (`rela`, whole entries) writes, in table order.
pub fn relocated_words(rela: &[u8]) -> impl Iterator<Item = u64> + '_ {
    rela.chunks_exact(RELA_SIZE).map(|e| {
        let mut w = [0; 8];
        w.copy_from_slice(&e[..8]);
        u64::from_le_bytes(w)
    })
}

/// CRC-32 of `image[SEALED_START..end]` with the 8-byte word at each of `relocations`
/// (ascending offsets; those outside the range are skipped) taken as zero.
pub fn crc(
    image: &[u8],
    end: usize,
    relocations: impl IntoIterator<Item = u64>,
) -> Result<u32, SealError> {
    let mut hasher = crc32fast::Hasher::new();
    let mut at = SEALED_START;
    for offset in relocations {
        let offset = offset as usize;
        if offset < SEALED_START || offset >= end {
            continue;
        }
        if offset < at {
            return Err(SealError::UnsortedRelocations { at: offset as u64 });
        }
        hasher.update(&image[at..offset]);
        let word_end = (offset + 8).min(end);
        hasher.update(&[0; 8][..word_end - offset]);
        at = word_end;
    }
    hasher.update(&image[at..end]);
    Ok(hasher.finalize())
}

/// Writes the seal of `image[SEALED_START..end]` (see [`crc`]) and the table offset into
/// its header. `end` is clamped to the image.
pub fn write(
    image: &mut [u8],
    end: usize,
    table: usize,
    rela: (usize, usize),
) -> Result<(), SealError> {
    let end = end.clamp(SEALED_START, image.len());
    let relocations = image.get(rela.0..rela.1).unwrap_or_default();
    let crc = crc(image, end, relocated_words(relocations))?;
    put_u32(image, END_OFFSET, end);
    image[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
    image[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(&MAGIC);
    put_u32(image, TABLE_OFFSET, table);
    put_u32(image, RELA_OFFSET, rela.0);
    put_u32(image, RELA_OFFSET + 4, rela.1);
    Ok(())
}

/// The seal in `header` (at least the 64-byte Image header), checked against `size`, the
/// bytes the image has (hv: its loaded image; xtask: the file).
pub fn read(header: &[u8], size: u64) -> Result<Seal, SealError> {
    if header.len() < SEALED_START {
        return Err(SealError::Truncated { len: header.len() });
    }
    if header[MAGIC_OFFSET..MAGIC_OFFSET + 4] != MAGIC {
        return Err(SealError::Unsealed);
    }
    let end = u32_at(header, END_OFFSET);
    if end <= SEALED_START as u64 || end > size {
        return Err(SealError::BadEnd { end, size });
    }
    Ok(Seal {
        end,
        crc: u32_at(header, CRC_OFFSET) as u32,
        table: u32_at(header, TABLE_OFFSET),
        rela: (u32_at(header, RELA_OFFSET), u32_at(header, RELA_OFFSET + 4)),
    })
}

/// Checks `sealed` (the image from its start up to at least `seal.end`) against `seal`,
/// the words at `relocations` taken as zero (see [`crc`]).
pub fn check(
    sealed: &[u8],
    seal: &Seal,
    relocations: impl IntoIterator<Item = u64>,
) -> Result<(), SealError> {
    let end = seal.end as usize;
    if sealed.len() < end {
        return Err(SealError::BadEnd {
            end: seal.end,
            size: sealed.len() as u64,
        });
    }
    let computed = crc(sealed, end, relocations)?;
    if computed == seal.crc {
        Ok(())
    } else {
        Err(SealError::Mismatch {
            stored: seal.crc,
            computed,
            end: seal.end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Relocation table at 0x2800 (past the sealed bytes) naming 0x100 and 0x1ff8.
    fn sealed(len: usize, end: usize) -> alloc::vec::Vec<u8> {
        let mut image: alloc::vec::Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        for (i, offset) in [0x100u64, 0x1ff8].into_iter().enumerate() {
            let at = 0x2800 + i * RELA_SIZE;
            image[at..at + 8].copy_from_slice(&offset.to_le_bytes());
        }
        write(&mut image, end, len, (0x2800, 0x2800 + 2 * RELA_SIZE)).unwrap();
        image
    }

    #[test]
    fn a_sealed_image_checks_and_its_header_may_change() {
        let mut image = sealed(0x3000, 0x2000);
        let seal = read(&image, image.len() as u64).unwrap();
        assert_eq!(
            (seal.end, seal.table, seal.rela),
            (0x2000, 0x3000, (0x2800, 0x2830))
        );
        check(&image, &seal, [0x100, 0x1ff8]).unwrap();
        // image_size (0x10) is patched after sealing; bytes past the end are data; the
        // relocated words are whatever the relocation wrote.
        image[0x10] ^= 0xff;
        image[0x2000] ^= 1;
        image[0x100..0x108].copy_from_slice(&0x4008_1234u64.to_le_bytes());
        check(&image, &read(&image, 0x3000).unwrap(), [0x100, 0x1ff8]).unwrap();
        // Without the relocation, that word is checked.
        assert!(check(&image, &seal, [0x1ff8]).is_err());
        assert_eq!(
            check(&image, &seal, [0x1ff8, 0x100]),
            Err(SealError::UnsortedRelocations { at: 0x100 })
        );
    }

    #[test]
    fn header_errors_are_named() {
        assert_eq!(read(&[0; 8], 8), Err(SealError::Truncated { len: 8 }));
        assert_eq!(read(&[0; 0x40], 0x40), Err(SealError::Unsealed));
        let image = sealed(0x3000, 0x2000);
        assert_eq!(
            read(&image, 0x1000),
            Err(SealError::BadEnd {
                end: 0x2000,
                size: 0x1000
            })
        );
        let message = alloc::format!("{}", SealError::Unsealed);
        assert!(message.contains("no checksum"), "{message}");
    }

    proptest! {
        /// Any single flipped bit in the sealed bytes is a mismatch naming the checksum.
        #[test]
        fn every_flipped_bit_is_caught(at in SEALED_START..0x2000usize, bit in 0u8..8) {
            let mut image = sealed(0x3000, 0x2000);
            image[at] ^= 1 << bit;
            let seal = read(&image, 0x3000).unwrap();
            let holes = [0x100u64, 0x1ff8];
            let in_hole = holes.iter().any(|&h| (h as usize..h as usize + 8).contains(&at));
            prop_assume!(!in_hole);
            let err = check(&image, &seal, holes).unwrap_err();
            let mismatch = matches!(err, SealError::Mismatch { .. });
            prop_assert!(mismatch);
            let message = alloc::format!("{err}");
            prop_assert!(message.contains("fails its checksum"), "{}", message);
        }
    }
}
