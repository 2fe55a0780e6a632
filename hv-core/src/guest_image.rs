//! Where a guest's arm64 Image goes in its partition's RAM, and where its DTB goes.
//!
//! Both `guest-rt` and Linux are arm64 Images (Linux boot protocol: header with
//! `text_offset` and `image_size`, entered at its first byte with x0 = DTB), so one rule
//! places both: the Image at the first RAM region's base + `text_offset`, the DTB in the
//! last 2 MiB of that region. Portable and host-tested.

use core::fmt;

use platform::config::Region;

const MAGIC_OFFSET: usize = 0x38;
const MAGIC: &[u8; 4] = b"ARM\x64";
/// Room kept for the DTB at the end of the region (the boot protocol's 2 MiB limit).
pub const DTB_ROOM: u64 = 2 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Where the Image's bytes are copied (and entered).
    pub load: u64,
    /// Memory the Image claims from `load` (`image_size`, at least the file size).
    pub size: u64,
    pub dtb: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    TooShort(usize),
    NoMagic,
    /// The region's base is not 2 MiB aligned, as the boot protocol requires.
    MisalignedRam(u64),
    /// `text_offset` is not page aligned.
    MisalignedOffset(u64),
    DoesNotFit {
        needed: u64,
        available: u64,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort(n) => write!(f, "{n} bytes is too short for an arm64 Image"),
            Self::NoMagic => write!(f, "no arm64 Image magic (ARM\\x64) at offset 0x38"),
            Self::MisalignedRam(base) => write!(f, "partition RAM at {base:#x} is not 2 MiB aligned"),
            Self::MisalignedOffset(offset) => {
                write!(f, "text_offset {offset:#x} in the Image header is not 4 KiB aligned")
            }
            Self::DoesNotFit { needed, available } => write!(
                f,
                "the Image needs {needed:#x} bytes of RAM (with its DTB), the partition has {available:#x}"
            ),
        }
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

pub fn place(image: &[u8], ram: Region) -> Result<Placement, ImageError> {
    if image.len() < 64 {
        return Err(ImageError::TooShort(image.len()));
    }
    if &image[MAGIC_OFFSET..MAGIC_OFFSET + 4] != MAGIC {
        return Err(ImageError::NoMagic);
    }
    if !ram.base.is_multiple_of(2 << 20) {
        return Err(ImageError::MisalignedRam(ram.base));
    }
    // The protocol: text_offset is only meaningful when image_size is non-zero.
    let (text_offset, image_size) = match le64(image, 16) {
        0 => (0x8_0000, 0),
        size => (le64(image, 8), size),
    };
    if text_offset % 4096 != 0 {
        return Err(ImageError::MisalignedOffset(text_offset));
    }
    let size = image_size.max(image.len() as u64);
    // Header fields are untrusted: a wrapped sum must not pass the size check.
    let needed = text_offset
        .checked_add(size)
        .and_then(|n| n.checked_add(DTB_ROOM))
        .unwrap_or(u64::MAX);
    if needed > ram.size {
        return Err(ImageError::DoesNotFit {
            needed,
            available: ram.size,
        });
    }
    Ok(Placement {
        load: ram.base + text_offset,
        size,
        dtb: ram.base + ram.size - DTB_ROOM,
    })
}

/// Where the initramfs goes: as high as it fits below the DTB, 2 MiB aligned, above the
/// Image's memory (Linux finds it through `/chosen/linux,initrd-*`).
pub fn place_initrd(image: Placement, size: u64) -> Result<Region, ImageError> {
    let image_end = image.load.saturating_add(image.size);
    let base = image.dtb.checked_sub(size).map(|b| b & !((2 << 20) - 1));
    match base {
        Some(base) if size > 0 && base >= image_end => Ok(Region::new(base, size)),
        _ => Err(ImageError::DoesNotFit {
            needed: image.size.saturating_add(size).saturating_add(DTB_ROOM),
            available: image.dtb.saturating_sub(image.load) + DTB_ROOM,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(text_offset: u64, image_size: u64, len: usize) -> alloc::vec::Vec<u8> {
        let mut b = alloc::vec![0u8; len];
        b[8..16].copy_from_slice(&text_offset.to_le_bytes());
        b[16..24].copy_from_slice(&image_size.to_le_bytes());
        b[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(MAGIC);
        b
    }

    #[test]
    fn places_image_at_text_offset_and_dtb_at_the_end() {
        let ram = Region::new(0x4200_0000, 0x600_0000);
        let p = place(&image(0x8_0000, 0x10_0000, 4096), ram).unwrap();
        assert_eq!(
            p,
            Placement {
                load: 0x4208_0000,
                size: 0x10_0000,
                dtb: 0x47e0_0000
            }
        );
    }

    #[test]
    fn zero_image_size_means_legacy_offset() {
        let ram = Region::new(0x4000_0000, 0x1000_0000);
        let p = place(&image(0x1234, 0, 8192), ram).unwrap();
        assert_eq!((p.load, p.size), (0x4008_0000, 8192));
    }

    #[test]
    fn refuses_garbage_misaligned_ram_and_images_that_do_not_fit() {
        let ram = Region::new(0x4200_0000, 0x40_0000);
        assert_eq!(place(&[0; 10], ram), Err(ImageError::TooShort(10)));
        assert_eq!(place(&[0; 4096], ram), Err(ImageError::NoMagic));
        assert_eq!(
            place(&image(0, 0x1000, 4096), Region::new(0x4210_0000, 0x40_0000)),
            Err(ImageError::MisalignedRam(0x4210_0000))
        );
        assert!(matches!(
            place(&image(0x8_0000, 0x30_0000, 4096), ram),
            Err(ImageError::DoesNotFit { .. })
        ));
    }

    #[test]
    fn hostile_header_values_cannot_wrap_past_the_size_check() {
        let ram = Region::new(0x4200_0000, 0x600_0000);
        // text_offset + image_size would wrap to a small number without checked arithmetic.
        let wrap = u64::MAX - 0xfff;
        assert!(matches!(
            place(&image(wrap, 0x2000, 4096), ram),
            Err(ImageError::DoesNotFit {
                needed: u64::MAX,
                ..
            })
        ));
        assert!(matches!(
            place(&image(0x1000, u64::MAX - 0x800, 4096), ram),
            Err(ImageError::DoesNotFit {
                needed: u64::MAX,
                ..
            })
        ));
        assert_eq!(
            place(&image(0x8_0010, 0x1000, 4096), ram),
            Err(ImageError::MisalignedOffset(0x8_0010))
        );
    }

    #[test]
    fn the_initrd_goes_high_below_the_dtb_and_never_over_the_image() {
        let ram = Region::new(0x5000_0000, 0x1000_0000);
        let p = place(&image(0, 0x200_0000, 4096), ram).unwrap();
        let initrd = place_initrd(p, 0x21_0000).unwrap();
        assert_eq!(initrd, Region::new(0x5fa0_0000, 0x21_0000));
        assert!(initrd.end().unwrap() <= p.dtb);
        assert!(matches!(
            place_initrd(p, 0xe00_0001),
            Err(ImageError::DoesNotFit { .. })
        ));
        assert!(place_initrd(p, u64::MAX).is_err(), "no wrap-around");
        assert!(place_initrd(p, 0).is_err(), "an empty initramfs is refused");
    }
}
