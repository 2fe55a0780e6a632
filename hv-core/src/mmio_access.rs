//! The shape of a trapped MMIO access every emulated device shares: its width, and why a
//! device model refused it. Portable; no device state lives here.

use core::fmt;

/// Width of a guest access, as the data abort syndrome gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessWidth {
    Byte,
    Half,
    Word,
    Double,
}

impl AccessWidth {
    /// From a size in bytes (`esr::DataAbort::size`).
    #[inline]
    pub fn from_bytes(bytes: u8) -> Option<Self> {
        match bytes {
            1 => Some(Self::Byte),
            2 => Some(Self::Half),
            4 => Some(Self::Word),
            8 => Some(Self::Double),
            _ => None,
        }
    }

    #[inline]
    pub fn bytes(self) -> u64 {
        match self {
            Self::Byte => 1,
            Self::Half => 2,
            Self::Word => 4,
            Self::Double => 8,
        }
    }

    #[inline]
    pub fn mask(self) -> u64 {
        match self {
            Self::Double => u64::MAX,
            w => (1 << (8 * w.bytes())) - 1,
        }
    }
}

/// Why an access was refused; the arch side turns this into a fault for the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    /// The register does not support this access size.
    BadWidth { offset: u64, width: AccessWidth },
    /// The offset is not a multiple of the access size.
    Misaligned { offset: u64, width: AccessWidth },
    /// The offset lies beyond the distributor frame.
    OutsideFrame { offset: u64 },
    /// hv asked on behalf of a vCPU the partition does not have (an hv bug).
    NoSuchVcpu { vcpu: usize },
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadWidth { offset, width } => {
                write!(f, "GICD {offset:#x}: {width:?} access not supported")
            }
            Self::Misaligned { offset, width } => {
                write!(f, "GICD {offset:#x}: misaligned {width:?} access")
            }
            Self::OutsideFrame { offset } => write!(f, "GICD {offset:#x}: outside the frame"),
            Self::NoSuchVcpu { vcpu } => write!(f, "vCPU {vcpu} is not in the partition"),
        }
    }
}
