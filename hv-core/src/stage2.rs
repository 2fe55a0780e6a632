//! Stage-2 translation tables of one partition, built with `aarch64-paging`'s Stage2
//! regime: the partition's RAM and passed-through devices, identity-mapped (IPA = PA), or
//! a cache-coloured partition's RAM from scattered pages (`map_ram_at`), and nothing else.
//! Any other access by the partition faults to `hv`.
//!
//! Only a partition's own RAM is executable: the channel, passed-through devices and the
//! GICv2 CPU interface frame are execute-never, and what hv emulates (distributor,
//! redistributors, console UART, control page) is not mapped at all.
//! [`Stage2Tables::for_partition`] builds a partition's whole map from a
//! [`PartitionMap`], so the boot path and the tests build the same thing.
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

/// Everything one partition's stage 2 maps.
#[derive(Clone, Copy, Debug)]
pub struct PartitionMap<'a> {
    /// Its RAM (the only executable memory), identity-mapped unless `ram_runs` is given.
    pub ram: &'a [Region],
    /// A cache-coloured partition's RAM instead: runs of (IPA, PA, size).
    pub ram_runs: &'a [crate::cache_colour::Run],
    /// The inter-partition channel.
    pub channel: Option<Region>,
    /// Passed-through devices (named, for the error).
    pub devices: &'a [(&'a str, Region)],
    /// GICv2: the frame the partition uses as its GICC (GICV, or the physical GICC with
    /// exit-less delivery).
    pub gicc: Option<Region>,
}

/// What could not be mapped: the region's role (`RAM`, `the channel`, a device's name,
/// `GICC`), the region and why.
#[derive(Clone, Debug)]
pub struct MapFailure<'a> {
    pub what: &'a str,
    pub region: Region,
    pub error: MapError,
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

    /// The whole stage 2 of one partition: RAM executable, everything else execute-never.
    pub fn for_partition<'a>(map: &PartitionMap<'a>) -> Result<Self, MapFailure<'a>> {
        let mut tables = Self::new();
        let fail = |what, region| {
            move |error| MapFailure {
                what,
                region,
                error,
            }
        };
        if map.ram_runs.is_empty() {
            for &region in map.ram {
                tables.map_ram(region).map_err(fail("RAM", region))?;
            }
        }
        for run in map.ram_runs {
            let region = Region::new(run.ipa, run.size);
            tables
                .map_ram_at(run.ipa, run.pa, run.size)
                .map_err(fail("RAM", region))?;
        }
        if let Some(channel) = map.channel {
            tables
                .map_shared(channel)
                .map_err(fail("the channel", channel))?;
        }
        for &(name, region) in map.devices {
            tables.map_device(region).map_err(fail(name, region))?;
        }
        if let Some(gicc) = map.gicc {
            tables.map_device(gicc).map_err(fail("GICC", gicc))?;
        }
        Ok(tables)
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

    /// Every mapped page (or block) as (start IPA, end IPA, attributes).
    #[cfg(test)]
    fn mappings(&self) -> alloc::vec::Vec<(usize, usize, S2)> {
        let mut out = alloc::vec::Vec::new();
        let all = MemoryRegion::new(0, 1 << IPA_BITS);
        self.map
            .walk_range(&all, &mut |range, desc, level| {
                let flags = desc.flags();
                // A leaf: a level-3 page, or a block (no TABLE bit) above it.
                let leaf = level == 3 || !flags.contains(S2::TABLE_OR_PAGE);
                if flags.contains(S2::VALID) && leaf {
                    out.push((range.start().0, range.end().0, flags));
                }
                Ok(())
            })
            .unwrap();
        out
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

    /// A virt-like partition: RAM, the channel, a passed-through UART and RTC, GICV.
    fn virt_like<'a>(ram: &'a [Region], devices: &'a [(&'a str, Region)]) -> PartitionMap<'a> {
        PartitionMap {
            ram,
            ram_runs: &[],
            channel: Some(Region::new(0x7e00_0000, 0x20_0000)),
            devices,
            gicc: Some(Region::new(0x0804_0000, 0x2000)),
        }
    }

    #[test]
    fn only_the_partitions_ram_is_executable() {
        let ram = [Region::new(0x4200_0000, 0x600_0000)];
        let devices = [
            ("uart", Region::new(0x0900_0000, 0x1000)),
            ("rtc", Region::new(0x0901_0000, 0x1000)),
        ];
        let t = Stage2Tables::for_partition(&virt_like(&ram, &devices)).unwrap();
        let maps = t.mappings();
        assert!(!maps.is_empty());
        let in_ram = |start: usize| ram.iter().any(|r| r.contains_addr(start as u64));
        for &(start, end, flags) in &maps {
            assert_eq!(
                flags.contains(S2::XN),
                !in_ram(start),
                "{start:#x}..{end:#x}: {flags:?}"
            );
        }
        // Each region is there, with its kind.
        assert!(t.lookup(0x7e1f_f000).unwrap().contains(S2::XN));
        assert!(t.lookup(0x0804_1000).unwrap().contains(S2::XN));
        assert!(!t.lookup(0x4200_0000).unwrap().contains(S2::XN));
    }

    #[test]
    fn a_failed_mapping_names_its_region() {
        let ram = [Region::new(0x4200_0000, 0x600_0000)];
        // An IPA beyond the 39-bit space.
        let devices = [("far", Region::new(1 << 40, 0x1000))];
        let failure = Stage2Tables::for_partition(&virt_like(&ram, &devices))
            .err()
            .expect("refused");
        assert_eq!(failure.what, "far");
    }

    mod random {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever the layout (disjoint pages of RAM, devices, channel), a page is
            /// executable exactly when it is the partition's RAM.
            #[test]
            fn executable_exactly_where_ram_is(
                slots in proptest::collection::vec(0u8..4, 1..24),
            ) {
                // Slot i is the 2 MiB at 0x4000_0000 + i * 2 MiB; 0 = unmapped, 1 = RAM,
                // 2 = device, 3 = the channel (the first such slot).
                let base = |i: usize| 0x4000_0000 + (i as u64) * 0x20_0000;
                let ram: alloc::vec::Vec<Region> = slots.iter().enumerate()
                    .filter(|(_, &k)| k == 1).map(|(i, _)| Region::new(base(i), 0x20_0000)).collect();
                let devices: alloc::vec::Vec<(&str, Region)> = slots.iter().enumerate()
                    .filter(|(_, &k)| k == 2).map(|(i, _)| ("dev", Region::new(base(i), 0x1000))).collect();
                let channel = slots.iter().position(|&k| k == 3).map(|i| Region::new(base(i), 0x20_0000));
                let map = PartitionMap { ram: &ram, ram_runs: &[], channel, devices: &devices, gicc: None };
                let t = Stage2Tables::for_partition(&map).unwrap();
                for (i, &kind) in slots.iter().enumerate() {
                    let found = t.lookup(base(i));
                    let is_channel = channel.is_some_and(|c| c.base == base(i));
                    match kind {
                        0 => prop_assert!(found.is_none()),
                        1 => prop_assert!(!found.unwrap().contains(S2::XN)),
                        3 if !is_channel => prop_assert!(found.is_none()),
                        _ => prop_assert!(found.unwrap().contains(S2::XN)),
                    }
                }
            }
        }
    }
}
