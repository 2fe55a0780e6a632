//! Stage-2 translation tables of one partition, built with `aarch64-paging`'s Stage2
//! regime: the partition's RAM and passed-through devices, identity-mapped (IPA = PA), or
//! a cache-coloured partition's RAM from scattered pages (`map_ram_at`), and nothing else.
//! Any other access by the partition faults to `hv`.
//!
//! Portable: the tables are built the same way on the host, where tests walk them.

use aarch64_paging::descriptor::PhysicalAddress;
use aarch64_paging::descriptor::Stage2Attributes as S2;
use aarch64_paging::idmap::IdTranslation;
use aarch64_paging::paging::{Constraints, MemoryRegion, Stage2};
use aarch64_paging::{MapError, Mapping};
use platform::config::Region;

/// IPA size: 39 bits (T0SZ = 25), starting the walk at level 1.
pub const IPA_BITS: u32 = 39;
pub const ROOT_LEVEL: usize = 1;

/// RAM: normal write-back, inner shareable, read/write/execute.
pub const RAM: S2 = S2::VALID
    .union(S2::ACCESS_FLAG)
    .union(S2::S2AP_ACCESS_RW)
    .union(S2::SH_INNER)
    .union(S2::MEMATTR_NORMAL_INNER_WB)
    .union(S2::MEMATTR_NORMAL_OUTER_WB);
/// Devices: Device-nGnRE, read/write, never executable.
pub const DEVICE: S2 = S2::VALID
    .union(S2::ACCESS_FLAG)
    .union(S2::S2AP_ACCESS_RW)
    .union(S2::MEMATTR_DEVICE_nGnRE)
    .union(S2::XN);

/// The inter-partition channel: Normal non-cacheable, never executable. Linux maps it
/// through `/dev/mem` as Device memory (non-cacheable); stage 2 makes the RT side's
/// cacheable stage 1 non-cacheable too, so the two sides never disagree about a cached
/// copy (on real hardware a mismatch would lose writes), and neither can run code from
/// what the other wrote.
pub const SHARED: S2 = S2::VALID
    .union(S2::ACCESS_FLAG)
    .union(S2::S2AP_ACCESS_RW)
    .union(S2::SH_INNER)
    .union(S2::MEMATTR_NORMAL_INNER_NC)
    .union(S2::MEMATTR_NORMAL_OUTER_NC)
    .union(S2::XN);

pub struct Stage2Tables {
    /// Tables in hv's identity-mapped heap (IdTranslation); the leaves may point anywhere.
    map: Mapping<IdTranslation<S2>, Stage2>,
}

impl Default for Stage2Tables {
    fn default() -> Self {
        Self::new()
    }
}

impl Stage2Tables {
    pub fn new() -> Self {
        Self {
            map: Mapping::new(IdTranslation::new(), ROOT_LEVEL, Stage2),
        }
    }

    fn range(region: Region) -> MemoryRegion {
        let start = (region.base & !0xfff) as usize;
        let end = (region.base + region.size).next_multiple_of(0x1000) as usize;
        MemoryRegion::new(start, end)
    }

    fn identity(&mut self, region: Region, flags: S2) -> Result<(), MapError> {
        let range = Self::range(region);
        let pa = PhysicalAddress(range.start().0);
        self.map.map_range(&range, pa, flags, Constraints::empty())
    }

    pub fn map_ram(&mut self, region: Region) -> Result<(), MapError> {
        self.identity(region, RAM)
    }

    /// RAM at IPA `ipa` backed by `size` bytes from PA `pa` (both page aligned): a
    /// cache-coloured partition's runs.
    pub fn map_ram_at(&mut self, ipa: u64, pa: u64, size: u64) -> Result<(), MapError> {
        let range = Self::range(Region::new(ipa, size));
        self.map.map_range(
            &range,
            PhysicalAddress(pa as usize),
            RAM,
            Constraints::empty(),
        )
    }

    pub fn map_device(&mut self, region: Region) -> Result<(), MapError> {
        self.identity(region, DEVICE)
    }

    pub fn map_shared(&mut self, region: Region) -> Result<(), MapError> {
        self.identity(region, SHARED)
    }

    /// Physical address of the root table (for VTTBR_EL2).
    pub fn root(&self) -> u64 {
        self.map.root_address().0 as u64
    }

    /// The attributes `ipa` is mapped with, if it is mapped.
    #[cfg(test)]
    pub fn lookup(&self, ipa: u64) -> Option<S2> {
        let page = (ipa & !0xfff) as usize;
        let mut found = None;
        self.map
            .walk_range(
                &MemoryRegion::new(page, page + 0x1000),
                &mut |_, desc, _| {
                    let flags = desc.flags();
                    if flags.contains(S2::VALID)
                        && (flags.contains(S2::TABLE_OR_PAGE) || found.is_none())
                    {
                        found = Some(flags);
                    }
                    Ok(())
                },
            )
            .ok()?;
        found
    }

    /// The physical address `ipa` translates to, if it is mapped.
    #[cfg(test)]
    pub fn translate(&self, ipa: u64) -> Option<u64> {
        let page = (ipa & !0xfff) as usize;
        let mut found = None;
        self.map
            .walk_range(
                &MemoryRegion::new(page, page + 0x1000),
                &mut |_, desc, level| {
                    let flags = desc.flags();
                    let leaf = level == 3 || !flags.contains(S2::TABLE_OR_PAGE);
                    if flags.contains(S2::VALID) && leaf {
                        // 4 KiB granule: 1 GiB at level 1, 2 MiB at 2, 4 KiB at 3.
                        let granule = 1u64 << (12 + 9 * (3 - level));
                        found = Some(desc.output_address().0 as u64 + ipa % granule);
                    }
                    Ok(())
                },
            )
            .ok()?;
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_ram_and_devices_and_nothing_else() {
        let mut t = Stage2Tables::new();
        t.map_ram(Region::new(0x4200_0000, 0x600_0000)).unwrap();
        t.map_device(Region::new(0x0900_0000, 0x1000)).unwrap();
        let ram = t.lookup(0x4200_0000).expect("RAM start mapped");
        assert!(ram.contains(S2::S2AP_ACCESS_RW | S2::MEMATTR_NORMAL_INNER_WB));
        assert!(!ram.contains(S2::XN));
        assert!(t.lookup(0x47ff_f000).is_some(), "RAM end mapped");
        let dev = t.lookup(0x0900_0000).expect("device mapped");
        assert!(dev.contains(S2::XN));
        assert!(!dev.contains(S2::MEMATTR_NORMAL_INNER_WB));
        // hv's RAM, the page after the partition and the next device page are not.
        assert!(t.lookup(0x4008_0000).is_none());
        assert!(t.lookup(0x4800_0000).is_none());
        assert!(t.lookup(0x0900_1000).is_none());
        assert!(
            t.lookup(0x0800_0000).is_none(),
            "GIC distributor not mapped"
        );
        assert_ne!(t.root(), 0);
    }

    #[test]
    fn the_channel_is_non_cacheable_and_never_executable() {
        let mut t = Stage2Tables::new();
        t.map_ram(Region::new(0x4200_0000, 0x600_0000)).unwrap();
        t.map_shared(Region::new(0xaa00_0000, 0x20_0000)).unwrap();
        let shared = t.lookup(0xaa1f_f000).expect("channel mapped");
        assert!(shared.contains(S2::XN | S2::S2AP_ACCESS_RW));
        assert!(shared.contains(S2::MEMATTR_NORMAL_INNER_NC | S2::MEMATTR_NORMAL_OUTER_NC));
        assert!(!shared.contains(S2::MEMATTR_NORMAL_INNER_WB));
        assert!(t.lookup(0xaa20_0000).is_none());
    }

    #[test]
    fn identity_ram_translates_to_itself_and_runs_to_their_pages() {
        let mut t = Stage2Tables::new();
        t.map_ram(Region::new(0x4200_0000, 0x600_0000)).unwrap();
        assert_eq!(t.translate(0x4212_3456), Some(0x4212_3456));
        // A coloured partition: contiguous IPA, scattered PA.
        t.map_ram_at(0x0400_0000, 0x0400_0000, 0x4000).unwrap();
        t.map_ram_at(0x0400_4000, 0x0401_0000, 0x4000).unwrap();
        assert_eq!(t.translate(0x0400_3ff8), Some(0x0400_3ff8));
        assert_eq!(t.translate(0x0400_4010), Some(0x0401_0010));
        assert_eq!(t.translate(0x0400_8000), None);
        assert!(t.lookup(0x0400_4000).unwrap().contains(RAM));
    }
}
