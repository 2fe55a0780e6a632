//! The system image's payload table: what `cargo xtask` appends after `hv` and what `hv`
//! validates at boot before it trusts a single byte of it.
//!
//! Layout (all little endian), starting at a 4 KiB boundary after `hv`'s own memory:
//!
//! ```text
//! header  (32 bytes): magic "BLKHDIMG", version u32, count u32, total_size u64,
//!                     table_crc u32 (CRC-32 of header with this field 0 and all entries),
//!                     reserved u32
//! entries (32 bytes each): kind u32, reserved u32, offset u64 (from the header),
//!                     size u64, crc u32 (CRC-32 of the payload), reserved u32
//! payloads, each at a 4 KiB aligned offset
//! ```
//!
//! A truncated, corrupt or incomplete table is a named [`ImageError`], never a jump into
//! garbage.

use alloc::vec::Vec;
use core::fmt;

pub const MAGIC: [u8; 8] = *b"BLKHDIMG";
pub const VERSION: u32 = 1;
pub const HEADER_SIZE: usize = 32;
pub const ENTRY_SIZE: usize = 32;
/// Payloads start on this alignment so they can be mapped in place.
pub const PAYLOAD_ALIGN: usize = 4096;
/// More entries than this is taken as corruption.
pub const MAX_PAYLOADS: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// The board's partition config ([`crate::config::Config::encode`]).
    Config,
    GuestRt,
    LinuxImage,
    Initramfs,
}

impl PayloadKind {
    pub const fn code(self) -> u32 {
        match self {
            Self::Config => 1,
            Self::GuestRt => 2,
            Self::LinuxImage => 3,
            Self::Initramfs => 4,
        }
    }

    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(Self::Config),
            2 => Some(Self::GuestRt),
            3 => Some(Self::LinuxImage),
            4 => Some(Self::Initramfs),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Config => "board config",
            Self::GuestRt => "guest-rt",
            Self::LinuxImage => "Linux Image",
            Self::Initramfs => "initramfs",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageError {
    Truncated {
        needed: u64,
        available: u64,
    },
    BadMagic,
    BadVersion(u32),
    TooManyPayloads(u32),
    TableChecksum {
        stored: u32,
        computed: u32,
    },
    UnknownKind(u32),
    DuplicatePayload(PayloadKind),
    PayloadOutOfBounds {
        kind: PayloadKind,
        offset: u64,
        size: u64,
    },
    PayloadChecksum {
        kind: PayloadKind,
        stored: u32,
        computed: u32,
    },
    Missing(PayloadKind),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => write!(
                f,
                "system image truncated: payload table needs {needed} bytes, {available} present"
            ),
            Self::BadMagic => write!(
                f,
                "no payload table after hv (bad magic): not a Bulkhead system image"
            ),
            Self::BadVersion(v) => write!(f, "payload table version {v}, this hv reads {VERSION}"),
            Self::TooManyPayloads(n) => {
                write!(f, "payload table claims {n} payloads (max {MAX_PAYLOADS})")
            }
            Self::TableChecksum { stored, computed } => write!(
                f,
                "payload table checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Self::UnknownKind(k) => write!(f, "payload table has an entry of unknown kind {k}"),
            Self::DuplicatePayload(k) => write!(f, "payload table has two {} payloads", k.name()),
            Self::PayloadOutOfBounds { kind, offset, size } => write!(
                f,
                "{} payload [{offset:#x}+{size:#x}] lies outside the image",
                kind.name()
            ),
            Self::PayloadChecksum {
                kind,
                stored,
                computed,
            } => write!(
                f,
                "{} payload is corrupt (CRC-32 stored {stored:#010x}, computed {computed:#010x})",
                kind.name()
            ),
            Self::Missing(k) => write!(f, "the system image has no {} payload", k.name()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: PayloadKind,
    pub offset: u64,
    pub size: u64,
    pub crc: u32,
}

/// A validated payload table over the bytes it describes.
#[derive(Debug)]
pub struct Payloads<'a> {
    bytes: &'a [u8],
    entries: Vec<Entry>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    (u64::from(u32_at(b, at + 4)) << 32) | u64::from(u32_at(b, at))
}

fn table_crc(table: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&table[..24]);
    hasher.update(&[0; 4]);
    hasher.update(&table[28..]);
    hasher.finalize()
}

/// Size of the whole image (table and payloads) claimed by a header, after checking the
/// magic and version. Lets `hv` bound the slice before calling [`Payloads::parse`].
pub fn claimed_size(header: &[u8]) -> Result<u64, ImageError> {
    if header.len() < HEADER_SIZE {
        return Err(ImageError::Truncated {
            needed: HEADER_SIZE as u64,
            available: header.len() as u64,
        });
    }
    if header[..8] != MAGIC {
        return Err(ImageError::BadMagic);
    }
    let version = u32_at(header, 8);
    if version != VERSION {
        return Err(ImageError::BadVersion(version));
    }
    Ok(u64_at(header, 16))
}

impl<'a> Payloads<'a> {
    /// Validates the table at the start of `bytes` and every payload's checksum.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ImageError> {
        let total = claimed_size(bytes)?;
        if total < HEADER_SIZE as u64 {
            // The header claims less than itself: nothing past it can be trusted.
            return Err(ImageError::Truncated {
                needed: HEADER_SIZE as u64,
                available: total,
            });
        }
        if total > bytes.len() as u64 {
            return Err(ImageError::Truncated {
                needed: total,
                available: bytes.len() as u64,
            });
        }
        let bytes = &bytes[..total as usize];
        let count = u32_at(bytes, 12);
        if count > MAX_PAYLOADS {
            return Err(ImageError::TooManyPayloads(count));
        }
        let table_len = HEADER_SIZE + count as usize * ENTRY_SIZE;
        if table_len > bytes.len() {
            return Err(ImageError::Truncated {
                needed: table_len as u64,
                available: bytes.len() as u64,
            });
        }
        let stored = u32_at(bytes, 24);
        let computed = table_crc(&bytes[..table_len]);
        if stored != computed {
            return Err(ImageError::TableChecksum { stored, computed });
        }
        let mut entries: Vec<Entry> = Vec::new();
        for i in 0..count as usize {
            let at = HEADER_SIZE + i * ENTRY_SIZE;
            let code = u32_at(bytes, at);
            let kind = PayloadKind::from_code(code).ok_or(ImageError::UnknownKind(code))?;
            let entry = Entry {
                kind,
                offset: u64_at(bytes, at + 8),
                size: u64_at(bytes, at + 16),
                crc: u32_at(bytes, at + 24),
            };
            if entries.iter().any(|e| e.kind == kind) {
                return Err(ImageError::DuplicatePayload(kind));
            }
            let end = entry.offset.checked_add(entry.size);
            if entry.offset < table_len as u64 || end.is_none_or(|end| end > total) {
                return Err(ImageError::PayloadOutOfBounds {
                    kind,
                    offset: entry.offset,
                    size: entry.size,
                });
            }
            let data = &bytes[entry.offset as usize..(entry.offset + entry.size) as usize];
            let computed = crc32fast::hash(data);
            if computed != entry.crc {
                return Err(ImageError::PayloadChecksum {
                    kind,
                    stored: entry.crc,
                    computed,
                });
            }
            entries.push(entry);
        }
        Ok(Self { bytes, entries })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn get(&self, kind: PayloadKind) -> Result<&'a [u8], ImageError> {
        let e = self
            .entries
            .iter()
            .find(|e| e.kind == kind)
            .ok_or(ImageError::Missing(kind))?;
        Ok(&self.bytes[e.offset as usize..(e.offset + e.size) as usize])
    }

    /// Length of the table and payloads.
    pub fn total_size(&self) -> usize {
        self.bytes.len()
    }
}

/// Builds a payload table followed by its payloads (host side, used by `cargo xtask`).
pub fn build(payloads: &[(PayloadKind, &[u8])]) -> Vec<u8> {
    let table_len = HEADER_SIZE + payloads.len() * ENTRY_SIZE;
    let mut offsets = Vec::with_capacity(payloads.len());
    let mut cursor = table_len;
    for (_, data) in payloads {
        cursor = cursor.next_multiple_of(PAYLOAD_ALIGN);
        offsets.push(cursor);
        cursor += data.len();
    }
    let total = cursor;
    let mut out = alloc::vec![0u8; total];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(payloads.len() as u32).to_le_bytes());
    out[16..24].copy_from_slice(&(total as u64).to_le_bytes());
    for (i, ((kind, data), &offset)) in payloads.iter().zip(&offsets).enumerate() {
        let at = HEADER_SIZE + i * ENTRY_SIZE;
        out[at..at + 4].copy_from_slice(&kind.code().to_le_bytes());
        out[at + 8..at + 16].copy_from_slice(&(offset as u64).to_le_bytes());
        out[at + 16..at + 24].copy_from_slice(&(data.len() as u64).to_le_bytes());
        out[at + 24..at + 28].copy_from_slice(&crc32fast::hash(data).to_le_bytes());
        out[offset..offset + data.len()].copy_from_slice(data);
    }
    let crc = table_crc(&out[..table_len]);
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    out
}
