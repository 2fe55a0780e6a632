//! hv's control page ([`abi::CONTROL_PAGE_IPA`]), an emulated device: what a Linux
//! partition's user space tells hv (it cannot make hypercalls). A read of
//! [`abi::CONTROL_READY`] gives 1 once the partition reported ready; a write of
//! [`abi::CONTROL_READY_MAGIC`] there reports it. A write of [`abi::CONTROL_DOORBELL_MAGIC`]
//! at [`abi::CONTROL_DOORBELL`] rings the RT partition's doorbell; that word and the two
//! after it read the doorbells' counters. `rtctl load NAME` writes the app's name at
//! [`abi::CONTROL_LOAD_NAME`] and [`abi::CONTROL_LOAD_MAGIC`] at [`abi::CONTROL_LOAD`],
//! whose reads give the request's status ([`crate::app_load`] decides). Anything else is
//! refused (the arch side answers with an external abort).
//!
//! Portable and host-tested; the page is unmapped, so every access traps and comes here.

use crate::esr::DataAbort;
use crate::mmio_access::AccessWidth;
use crate::partition::PartitionState;

/// The outcome of one access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlAccess {
    /// Not an access the page accepts, and why.
    Refused(&'static str),
    /// A read: complete the load with this value.
    Read(u64),
    /// The partition is now ready (`first`: it was not before, so hv reports it).
    Ready { first: bool },
    /// Linux rang the RT partition's doorbell.
    Ring,
    /// Linux wrote word `which` (0 or 1) of a load request's app name.
    LoadName { which: usize, value: u64 },
    /// Linux asked for the load it named.
    Load,
    /// A read of the load request's status (the arch side answers it).
    LoadStatus,
}

/// The doorbells' counters the page reads (the board has doorbells).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DoorbellCounts {
    /// Rings hv took from Linux.
    pub rings: u64,
    /// Times hv raised the RT partition's line.
    pub raised: u64,
    /// Rings from the RT partition.
    pub rt_rings: u64,
}

/// The second word of a load request's name.
const LOAD_NAME_HIGH: u64 = abi::CONTROL_LOAD_NAME + 8;

const NO_DOORBELLS: &str = "control page: the board file names no doorbells ([channel.doorbells])";

/// A guest access `da` at `offset` in the page; `stored` is the register a store writes;
/// `doorbells` the counters, if the board has doorbells.
pub fn access(
    state: &mut PartitionState,
    offset: u64,
    da: DataAbort,
    stored: u64,
    doorbells: Option<DoorbellCounts>,
) -> ControlAccess {
    let Some(width) = AccessWidth::from_bytes(da.size) else {
        return ControlAccess::Refused("control page: access of an unknown size");
    };
    // Only the bytes a store wrote count (a 32-bit `devmem` write); a load of a counter
    // gets its low bytes.
    let stored = stored & width.mask();
    let counter = |pick: fn(DoorbellCounts) -> u64| match doorbells {
        Some(counts) => ControlAccess::Read(pick(counts) & width.mask()),
        None => ControlAccess::Refused(NO_DOORBELLS),
    };
    match (offset, da.write) {
        (abi::CONTROL_DOORBELL, true) => match doorbells {
            None => ControlAccess::Refused(NO_DOORBELLS),
            Some(_) if stored != u64::from(abi::CONTROL_DOORBELL_MAGIC) => ControlAccess::Refused(
                "control page: only the doorbell magic (0x52494e47) may be written at 0x8",
            ),
            Some(_) => ControlAccess::Ring,
        },
        (abi::CONTROL_DOORBELL, false) => counter(|c| c.rings),
        (abi::CONTROL_DOORBELL_RAISED, false) => counter(|c| c.raised),
        (abi::CONTROL_RT_RINGS, false) => counter(|c| c.rt_rings),
        (abi::CONTROL_READY, true) => {
            if stored != u64::from(abi::CONTROL_READY_MAGIC) {
                return ControlAccess::Refused(
                    "control page: only the ready magic (0x52454459) may be written at 0x0",
                );
            }
            ControlAccess::Ready {
                first: state.mark_all_ready(),
            }
        }
        (abi::CONTROL_READY, false) => ControlAccess::Read(u64::from(state.all_ready())),
        (abi::CONTROL_LOAD_NAME | LOAD_NAME_HIGH, true) if width == AccessWidth::Double => {
            ControlAccess::LoadName {
                which: usize::from(offset == LOAD_NAME_HIGH),
                value: stored,
            }
        }
        (abi::CONTROL_LOAD_NAME | LOAD_NAME_HIGH, true) => {
            ControlAccess::Refused("control page: the load name words take 64-bit stores")
        }
        (abi::CONTROL_LOAD_NAME | LOAD_NAME_HIGH, false) => {
            ControlAccess::Refused("control page: the load name words are write-only")
        }
        (abi::CONTROL_LOAD, true) if stored == u64::from(abi::CONTROL_LOAD_MAGIC) => {
            ControlAccess::Load
        }
        (abi::CONTROL_LOAD, true) => ControlAccess::Refused(
            "control page: only the load magic (0x4c4f4144) may be written at 0x30",
        ),
        (abi::CONTROL_LOAD, false) if width == AccessWidth::Double => ControlAccess::LoadStatus,
        (abi::CONTROL_LOAD, false) => {
            ControlAccess::Refused("control page: the load status is a 64-bit word")
        }
        (abi::CONTROL_DOORBELL_RAISED | abi::CONTROL_RT_RINGS, true) => {
            ControlAccess::Refused("control page: the doorbell counters are read-only")
        }
        _ => ControlAccess::Refused("control page: no register at this offset"),
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
            access(&mut p, 0, abort(2, false), 0, None),
            ControlAccess::Read(0)
        );
        assert_eq!(
            access(&mut p, 0, abort(2, true), MAGIC, None),
            ControlAccess::Ready { first: true }
        );
        assert_eq!(
            access(&mut p, 0, abort(2, false), 0, None),
            ControlAccess::Read(1)
        );
        assert_eq!(
            access(&mut p, 0, abort(2, true), MAGIC, None),
            ControlAccess::Ready { first: false }
        );
    }

    #[test]
    fn only_the_stored_bytes_count() {
        let mut p = linux();
        // A 32-bit store of a register whose top half is not zero still carries the magic.
        assert_eq!(
            access(
                &mut p,
                0,
                abort(2, true),
                0xffff_ffff_0000_0000 | MAGIC,
                None
            ),
            ControlAccess::Ready { first: true }
        );
        // A byte store cannot carry it.
        let mut p = linux();
        assert!(matches!(
            access(&mut p, 0, abort(0, true), MAGIC, None),
            ControlAccess::Refused(why) if why.contains("ready magic")
        ));
        assert!(!p.all_ready());
    }

    #[test]
    fn other_values_and_offsets_are_refused() {
        let mut p = linux();
        assert!(matches!(
            access(&mut p, 0, abort(2, true), 1, None),
            ControlAccess::Refused(why) if why.contains("ready magic")
        ));
        for write in [false, true] {
            assert!(matches!(
                access(&mut p, 0x40, abort(2, write), MAGIC, None),
                ControlAccess::Refused(why) if why.contains("no register")
            ));
        }
        assert!(!p.all_ready());
    }

    const RING: u64 = abi::CONTROL_DOORBELL_MAGIC as u64;
    const COUNTS: DoorbellCounts = DoorbellCounts {
        rings: 0x1_0000_0007,
        raised: 5,
        rt_rings: 3,
    };

    #[test]
    fn the_doorbell_word_rings_with_its_magic_only() {
        let mut p = linux();
        assert_eq!(
            access(&mut p, 8, abort(2, true), RING, Some(COUNTS)),
            ControlAccess::Ring
        );
        assert_eq!(
            access(
                &mut p,
                8,
                abort(2, true),
                0xdead_0000_0000_0000 | RING,
                Some(COUNTS)
            ),
            ControlAccess::Ring,
            "a 32-bit store of a wider register"
        );
        for bad in [0, MAGIC, RING + 1] {
            assert!(matches!(
                access(&mut p, 8, abort(2, true), bad, Some(COUNTS)),
                ControlAccess::Refused(why) if why.contains("doorbell magic")
            ));
        }
        assert!(matches!(
            access(&mut p, 8, abort(1, true), RING, Some(COUNTS)),
            ControlAccess::Refused(why) if why.contains("doorbell magic")
        ));
        assert!(!p.all_ready(), "ringing is not reporting ready");
    }

    #[test]
    fn the_counters_read_back_in_the_loads_width() {
        let mut p = linux();
        assert_eq!(
            access(&mut p, 8, abort(3, false), 0, Some(COUNTS)),
            ControlAccess::Read(0x1_0000_0007)
        );
        assert_eq!(
            access(&mut p, 8, abort(2, false), 0, Some(COUNTS)),
            ControlAccess::Read(7)
        );
        assert_eq!(
            access(&mut p, 0x10, abort(2, false), 0, Some(COUNTS)),
            ControlAccess::Read(5)
        );
        assert_eq!(
            access(&mut p, 0x18, abort(2, false), 0, Some(COUNTS)),
            ControlAccess::Read(3)
        );
        for offset in [0x10, 0x18] {
            assert!(matches!(
                access(&mut p, offset, abort(2, true), RING, Some(COUNTS)),
                ControlAccess::Refused(why) if why.contains("read-only")
            ));
        }
    }

    #[test]
    fn a_load_request_takes_its_name_in_64_bit_words_and_its_magic() {
        let mut p = linux();
        assert_eq!(
            access(&mut p, 0x20, abort(3, true), 0x1234, None),
            ControlAccess::LoadName {
                which: 0,
                value: 0x1234
            }
        );
        assert_eq!(
            access(&mut p, 0x28, abort(3, true), 7, None),
            ControlAccess::LoadName { which: 1, value: 7 }
        );
        for (offset, size, write, part) in [
            (0x20, 2, true, "64-bit stores"),
            (0x28, 3, false, "write-only"),
            (0x30, 2, false, "64-bit word"),
        ] {
            assert!(matches!(
                access(&mut p, offset, abort(size, write), 0, None),
                ControlAccess::Refused(why) if why.contains(part)
            ));
        }
        let load = u64::from(abi::CONTROL_LOAD_MAGIC);
        assert_eq!(
            access(&mut p, 0x30, abort(2, true), load, None),
            ControlAccess::Load
        );
        assert!(matches!(
            access(&mut p, 0x30, abort(2, true), RING, None),
            ControlAccess::Refused(why) if why.contains("load magic")
        ));
        assert_eq!(
            access(&mut p, 0x30, abort(3, false), 0, None),
            ControlAccess::LoadStatus
        );
    }

    #[test]
    fn without_doorbells_the_words_are_refused_by_name() {
        let mut p = linux();
        for (offset, write) in [(8, true), (8, false), (0x10, false), (0x18, false)] {
            assert!(matches!(
                access(&mut p, offset, abort(2, write), RING, None),
                ControlAccess::Refused(why) if why.contains("[channel.doorbells]")
            ));
        }
    }
}
