//! hv's control page ([`abi::CONTROL_PAGE_IPA`]), an emulated device: the ready doorbell a
//! Linux partition's user space rings (it cannot make hypercalls). A read of
//! [`abi::CONTROL_READY`] gives 1 once the partition reported ready; a write of
//! [`abi::CONTROL_READY_MAGIC`] there reports it. Anything else is refused (the arch side
//! answers with an external abort).
//!
//! Portable and host-tested; the page is unmapped, so every access traps and comes here.

use crate::esr::DataAbort;
use crate::mmio_access::AccessWidth;
use crate::partition::PartitionState;

/// The outcome of one access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlAccess {
    /// Not an access the page accepts.
    Refused,
    /// A read: complete the load with this value.
    Read(u64),
    /// The partition is now ready (`first`: it was not before, so hv reports it).
    Ready { first: bool },
}

/// A guest access `da` at `offset` in the page; `stored` is the register a store writes.
pub fn access(
    state: &mut PartitionState,
    offset: u64,
    da: DataAbort,
    stored: u64,
) -> ControlAccess {
    match (offset, da.write) {
        (abi::CONTROL_READY, true) => {
            // Only the bytes the store wrote count (a 32-bit `devmem` write).
            let Some(width) = AccessWidth::from_bytes(da.size) else {
                return ControlAccess::Refused;
            };
            if stored & width.mask() != u64::from(abi::CONTROL_READY_MAGIC) {
                return ControlAccess::Refused;
            }
            ControlAccess::Ready {
                first: state.mark_all_ready(),
            }
        }
        (abi::CONTROL_READY, false) => ControlAccess::Read(u64::from(state.all_ready())),
        _ => ControlAccess::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esr::Esr;
    use crate::partition::fixtures;
    use platform::config::{PartitionKind, Region};

    fn linux() -> PartitionState {
        let ram = Region::new(0x4000_0000, 0x1000_0000);
        let mut state = fixtures::state(0, PartitionKind::Linux, &[0, 1], ram);
        state.boot(0x4008_0000, 0x4fe0_0000);
        state
    }

    /// A lower-EL data abort of `size_log2` via x1.
    fn abort(size_log2: u64, write: bool) -> DataAbort {
        Esr((0x24 << 26) | (1 << 24) | (size_log2 << 22) | (1 << 16) | (u64::from(write) << 6))
            .data_abort()
            .unwrap()
    }

    const MAGIC: u64 = abi::CONTROL_READY_MAGIC as u64;

    #[test]
    fn the_magic_word_reports_ready_once() {
        let mut p = linux();
        assert_eq!(
            access(&mut p, 0, abort(2, false), 0),
            ControlAccess::Read(0)
        );
        assert_eq!(
            access(&mut p, 0, abort(2, true), MAGIC),
            ControlAccess::Ready { first: true }
        );
        assert_eq!(
            access(&mut p, 0, abort(2, false), 0),
            ControlAccess::Read(1)
        );
        assert_eq!(
            access(&mut p, 0, abort(2, true), MAGIC),
            ControlAccess::Ready { first: false }
        );
    }

    #[test]
    fn only_the_stored_bytes_count() {
        let mut p = linux();
        // A 32-bit store of a register whose top half is not zero still carries the magic.
        assert_eq!(
            access(&mut p, 0, abort(2, true), 0xffff_ffff_0000_0000 | MAGIC),
            ControlAccess::Ready { first: true }
        );
        // A byte store cannot carry it.
        let mut p = linux();
        assert_eq!(
            access(&mut p, 0, abort(0, true), MAGIC),
            ControlAccess::Refused
        );
        assert!(!p.all_ready());
    }

    #[test]
    fn other_values_and_offsets_are_refused() {
        let mut p = linux();
        assert_eq!(access(&mut p, 0, abort(2, true), 1), ControlAccess::Refused);
        assert_eq!(
            access(&mut p, 8, abort(2, false), 0),
            ControlAccess::Refused
        );
        assert_eq!(
            access(&mut p, 8, abort(2, true), MAGIC),
            ControlAccess::Refused
        );
        assert!(!p.all_ready());
    }
}
