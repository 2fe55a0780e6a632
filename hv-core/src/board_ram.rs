//! The RAM hv takes from the firmware's DTB, by the rules the board file states.
//!
//! The firmware, not the board file, knows how much RAM a board has: a Pi 4's reports low
//! RAM up to 0x3b40_0000 with the default `gpu_mem` (QEMU raspi4b: 0x3c00_0000), more with
//! a smaller `gpu_mem`, and RAM from 0x4000_0000 only on its 2, 4 and 8 GB models. So the
//! board file gives hv, the channel and each partition fixed RAM that must be there, and
//! may give a partition `dtb_ram` windows in which it takes whatever RAM the DTB reports.
//! [`assign`] applies these rules to the DTB's `/memory` and firmware reservations:
//!
//! * `fixed-ram-reported`: hv's RAM, the channel and every partition's `ram` lie inside
//!   RAM the DTB reports (adjacent reported ranges count as one);
//! * `fixed-ram-not-reserved`: neither the channel nor a partition's `ram` overlaps a
//!   firmware reservation (`/memreserve/`, `/reserved-memory` with `reg`): a guest's DTB
//!   does not carry them, so it would overwrite them. hv's own RAM may hold them (the Pi's
//!   spin-table page): hv keeps them out of its heap;
//! * `dtb-ram`: a partition takes, inside each of its windows, every reported range less
//!   the reservations, in whole pages (nothing, on a board that has none there).
//!
//! Every refusal names its rule, what it refused and what the DTB reported. Arithmetic on
//! ranges only: this module never reads or writes the memory it talks about.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use platform::config::{Config, Region, PAGE_SIZE};

/// A rule of [`assign`] (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    FixedRamReported,
    FixedRamNotReserved,
}

impl Rule {
    /// The rule's name as the board file's docs and hv's messages spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::FixedRamReported => "fixed-ram-reported",
            Self::FixedRamNotReserved => "fixed-ram-not-reserved",
        }
    }
}

/// Fixed RAM a rule refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub rule: Rule,
    /// `hv`, `the channel` or `partition `NAME``.
    pub owner: String,
    pub region: Region,
    /// What the DTB reported: its RAM for `fixed-ram-reported`, the reservation hit for
    /// `fixed-ram-not-reserved`.
    pub dtb: Vec<Region>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |regions: &[Region]| {
            let parts: Vec<String> = regions.iter().map(|r| alloc::format!("{r}")).collect();
            if parts.is_empty() {
                String::from("nothing")
            } else {
                parts.join(" ")
            }
        };
        match self.rule {
            Rule::FixedRamReported => write!(
                f,
                "rule `{}`: {} RAM {} is not RAM the DTB reports (it reports {})",
                self.rule.name(),
                self.owner,
                self.region,
                list(&self.dtb)
            ),
            Rule::FixedRamNotReserved => write!(
                f,
                "rule `{}`: {} RAM {} overlaps what the firmware reserved: {}",
                self.rule.name(),
                self.owner,
                self.region,
                list(&self.dtb)
            ),
        }
    }
}

/// RAM a partition took from the DTB inside one of its windows (rule `dtb-ram`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    /// Index of the partition in the config.
    pub partition: usize,
    pub window: Region,
    /// Possibly empty: the board has no RAM there.
    pub regions: Vec<Region>,
}

/// What [`assign`] decided: the RAM each partition takes beyond its fixed RAM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    pub taken: Vec<Taken>,
}

impl Assignment {
    /// Appends the taken RAM to the partitions' `ram` (after their fixed RAM, so the first
    /// range, where a guest's image and DTB go, stays the board file's).
    pub fn apply(&self, config: &mut Config) {
        for t in &self.taken {
            if let Some(p) = config.partitions.get_mut(t.partition) {
                p.ram.extend_from_slice(&t.regions);
            }
        }
    }
}

/// `regions` sorted, with overlapping or touching ranges merged.
pub fn coalesce(regions: &[Region]) -> Vec<Region> {
    let mut sorted: Vec<Region> = regions
        .iter()
        .copied()
        .filter(|r| r.size > 0 && r.end().is_some())
        .collect();
    sorted.sort_by_key(|r| r.base);
    let mut out: Vec<Region> = Vec::new();
    for r in sorted {
        let end = r.end().expect("filtered: no wrapping range");
        match out.last_mut() {
            Some(last) if r.base <= last.end().expect("no wrapping range") => {
                let last_end = last.end().expect("no wrapping range");
                last.size = last_end.max(end) - last.base;
            }
            _ => out.push(r),
        }
    }
    out
}

/// `from` less every range of `holes`, in order.
fn subtract(from: Region, holes: &[Region]) -> Vec<Region> {
    let mut pieces = alloc::vec![from];
    for hole in holes {
        let (Some(hole_end), true) = (hole.end(), hole.size > 0) else {
            continue;
        };
        pieces = pieces
            .into_iter()
            .flat_map(|p| {
                let end = p.end().expect("pieces never wrap");
                let mut out = Vec::new();
                if !p.overlaps(hole) {
                    out.push(p);
                    return out;
                }
                if hole.base > p.base {
                    out.push(Region::new(p.base, hole.base - p.base));
                }
                if hole_end < end {
                    out.push(Region::new(hole_end, end - hole_end));
                }
                out
            })
            .collect();
    }
    pieces
}

/// `r` shrunk to whole pages, if any page is left.
fn whole_pages(r: Region) -> Option<Region> {
    let start = r.base.checked_next_multiple_of(PAGE_SIZE)?;
    let end = r.end()? & !(PAGE_SIZE - 1);
    (end > start).then(|| Region::new(start, end - start))
}

/// Applies the board file's RAM rules to the RAM the DTB reports (`memory`) and what the
/// firmware reserved (`reserved`). `config` is validated (no two owners overlap, windows
/// included). Returns every refusal, not just the first.
pub fn assign(
    config: &Config,
    memory: &[Region],
    reserved: &[Region],
) -> Result<Assignment, Vec<Refusal>> {
    let reported = coalesce(memory);
    let reserved = coalesce(reserved);
    let mut fixed: Vec<(String, Region, bool)> =
        alloc::vec![(String::from("hv"), config.hv.ram, true)];
    if let Some(channel) = &config.channel {
        fixed.push((String::from("the channel"), channel.ram, false));
    }
    for p in &config.partitions {
        for r in &p.ram {
            fixed.push((alloc::format!("partition `{}`", p.name), *r, false));
        }
    }
    let mut refusals = Vec::new();
    for (owner, region, may_hold_reservations) in fixed {
        if !reported.iter().any(|m| m.contains(&region)) {
            refusals.push(Refusal {
                rule: Rule::FixedRamReported,
                owner: owner.clone(),
                region,
                dtb: reported.clone(),
            });
        }
        let hit: Vec<Region> = reserved
            .iter()
            .copied()
            .filter(|r| r.overlaps(&region))
            .collect();
        if !may_hold_reservations && !hit.is_empty() {
            refusals.push(Refusal {
                rule: Rule::FixedRamNotReserved,
                owner,
                region,
                dtb: hit,
            });
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    let mut assignment = Assignment::default();
    for (index, p) in config.partitions.iter().enumerate() {
        for window in &p.dtb_ram {
            let regions = reported
                .iter()
                .filter_map(|m| intersection(*m, *window))
                .flat_map(|r| subtract(r, &reserved))
                .filter_map(whole_pages)
                .collect();
            assignment.taken.push(Taken {
                partition: index,
                window: *window,
                regions,
            });
        }
    }
    Ok(assignment)
}

fn intersection(a: Region, b: Region) -> Option<Region> {
    let start = a.base.max(b.base);
    let end = a.end()?.min(b.end()?);
    (end > start).then(|| Region::new(start, end - start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::dtb::BoardInfo;
    use vm_fdt::{FdtReserveEntry, FdtWriter};

    fn board(name: &str) -> Config {
        let path = alloc::format!(
            "{}/../platform/boards/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        Config::from_toml(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A Pi-4-shaped DTB (root #address-cells 2, #size-cells 1) with `memory` in
    /// `/memory@0`, the firmware's armstub page in `/memreserve/` and `extra` in
    /// `/reserved-memory`: what `BoardInfo::parse` then reads is what hv would.
    fn pi_dtb(memory: &[Region], extra: &[Region]) -> BoardInfo {
        let mut fdt =
            FdtWriter::new_with_mem_reserv(&[FdtReserveEntry::new(0, 0x1000).unwrap()]).unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_string("compatible", "raspberrypi,4-model-b")
            .unwrap();
        fdt.property_u32("#address-cells", 2).unwrap();
        fdt.property_u32("#size-cells", 1).unwrap();
        let cpus = fdt.begin_node("cpus").unwrap();
        fdt.property_u32("#address-cells", 1).unwrap();
        fdt.property_u32("#size-cells", 0).unwrap();
        let cpu = fdt.begin_node("cpu@0").unwrap();
        fdt.property_string("device_type", "cpu").unwrap();
        fdt.property_u32("reg", 0).unwrap();
        fdt.end_node(cpu).unwrap();
        fdt.end_node(cpus).unwrap();
        let cells = |regions: &[Region]| -> Vec<u32> {
            regions
                .iter()
                .flat_map(|r| [(r.base >> 32) as u32, r.base as u32, r.size as u32])
                .collect()
        };
        let mem = fdt.begin_node("memory@0").unwrap();
        fdt.property_string("device_type", "memory").unwrap();
        fdt.property_array_u32("reg", &cells(memory)).unwrap();
        fdt.end_node(mem).unwrap();
        let rsv = fdt.begin_node("reserved-memory").unwrap();
        fdt.property_u32("#address-cells", 2).unwrap();
        fdt.property_u32("#size-cells", 1).unwrap();
        fdt.property_null("ranges").unwrap();
        // A pool with only a size (Linux's CMA): nothing fixed, nothing reserved.
        let cma = fdt.begin_node("linux,cma").unwrap();
        fdt.property_u32("size", 0x400_0000).unwrap();
        fdt.end_node(cma).unwrap();
        for r in extra {
            let node = fdt.begin_node(&alloc::format!("fw@{:x}", r.base)).unwrap();
            fdt.property_array_u32("reg", &cells(&[*r])).unwrap();
            fdt.end_node(node).unwrap();
        }
        fdt.end_node(rsv).unwrap();
        fdt.end_node(root).unwrap();
        BoardInfo::parse(&fdt.finish().unwrap()).unwrap()
    }

    const QEMU_LOW: Region = Region::new(0, 0x3c00_0000);
    const PI_LOW: Region = Region::new(0, 0x3b40_0000);
    /// 4 GB model: from 1 GiB up to the peripherals at 0xfc00_0000.
    const PI_4G_HIGH: Region = Region::new(0x4000_0000, 0xbc00_0000);
    /// 8 GB model: also 4 GiB above 4 GiB, in two reg entries (#size-cells = 1).
    const PI_8G_TOP: [Region; 2] = [
        Region::new(0x1_0000_0000, 0x8000_0000),
        Region::new(0x1_8000_0000, 0x8000_0000),
    ];

    fn linux_extra(config: &Config, a: &Assignment) -> Vec<Region> {
        let linux = config
            .partitions
            .iter()
            .position(|p| p.name == "linux")
            .unwrap();
        a.taken
            .iter()
            .filter(|t| t.partition == linux)
            .flat_map(|t| t.regions.clone())
            .collect()
    }

    #[test]
    fn the_dtb_reports_memory_and_reservations() {
        let dtb = pi_dtb(
            &[PI_LOW, PI_4G_HIGH],
            &[Region::new(0x4000_0000, 0x10_0000)],
        );
        assert_eq!(dtb.memory, [PI_LOW, PI_4G_HIGH]);
        assert_eq!(
            dtb.reserved,
            [Region::new(0, 0x1000), Region::new(0x4000_0000, 0x10_0000)]
        );
    }

    #[test]
    fn rpi4_fits_qemu_raspi4b_and_takes_its_extra_low_ram() {
        let config = board("rpi4");
        let dtb = pi_dtb(&[QEMU_LOW], &[]);
        let a = assign(&config, &dtb.memory, &dtb.reserved).unwrap();
        assert_eq!(
            linux_extra(&config, &a),
            [Region::new(0x3b40_0000, 0xc0_0000)]
        );
    }

    #[test]
    fn rpi4_fits_a_real_1gb_pi_and_takes_nothing_more() {
        let config = board("rpi4");
        let dtb = pi_dtb(&[PI_LOW], &[]);
        let a = assign(&config, &dtb.memory, &dtb.reserved).unwrap();
        assert_eq!(linux_extra(&config, &a), []);
        let mut applied = config.clone();
        a.apply(&mut applied);
        assert_eq!(applied, config, "nothing taken, nothing changed");
    }

    #[test]
    fn rpi4_on_a_4gb_and_an_8gb_pi_gives_linux_the_high_ram() {
        let config = board("rpi4");
        let dtb = pi_dtb(&[PI_LOW, PI_4G_HIGH], &[]);
        let a = assign(&config, &dtb.memory, &dtb.reserved).unwrap();
        assert_eq!(linux_extra(&config, &a), [PI_4G_HIGH]);

        let mut eight = alloc::vec![PI_LOW, PI_4G_HIGH];
        eight.extend(PI_8G_TOP);
        let dtb = pi_dtb(&eight, &[]);
        let a = assign(&config, &dtb.memory, &dtb.reserved).unwrap();
        // The two touching reg entries above 4 GiB are one range.
        assert_eq!(
            linux_extra(&config, &a),
            [PI_4G_HIGH, Region::new(0x1_0000_0000, 0x1_0000_0000)]
        );
        let mut applied = config.clone();
        a.apply(&mut applied);
        let linux = applied.partition("linux").unwrap();
        assert_eq!(linux.ram[0], config.partition("linux").unwrap().ram[0]);
        assert_eq!(linux.ram.len(), 3);
    }

    #[test]
    fn reservations_are_cut_out_of_the_taken_ram_in_whole_pages() {
        let config = board("rpi4");
        let hole = Region::new(0x8000_0800, 0x1000);
        let dtb = pi_dtb(&[PI_LOW, PI_4G_HIGH], &[hole]);
        let a = assign(&config, &dtb.memory, &dtb.reserved).unwrap();
        assert_eq!(
            linux_extra(&config, &a),
            [
                Region::new(0x4000_0000, 0x4000_0000),
                Region::new(0x8000_2000, 0xfc00_0000 - 0x8000_2000),
            ]
        );
    }

    #[test]
    fn the_old_rpi4_map_is_refused_on_a_real_pi_naming_the_rule_and_owner() {
        // The map before this rule: partitions and channel up to QEMU's 0x3c00_0000.
        let mut config = board("rpi4");
        let linux = config
            .partitions
            .iter_mut()
            .find(|p| p.name == "linux")
            .unwrap();
        linux.ram = alloc::vec![Region::new(0x0a00_0000, 0x31e0_0000)];
        linux.dtb_ram.clear();
        config.channel.as_mut().unwrap().ram = Region::new(0x3be0_0000, 0x20_0000);
        let dtb = pi_dtb(&[PI_LOW, PI_4G_HIGH], &[]);
        let refusals = assign(&config, &dtb.memory, &dtb.reserved).unwrap_err();
        let owners: Vec<&str> = refusals.iter().map(|r| r.owner.as_str()).collect();
        assert_eq!(owners, ["the channel", "partition `linux`"]);
        assert!(refusals.iter().all(|r| r.rule == Rule::FixedRamReported));
        let text = refusals[0].to_string();
        assert_eq!(
            text,
            "rule `fixed-ram-reported`: the channel RAM [0x3be00000..0x3c000000) is not RAM \
             the DTB reports (it reports [0x0..0x3b400000) [0x40000000..0xfc000000))"
        );
        // Under QEMU's 0x3c00_0000 the same map fits.
        let dtb = pi_dtb(&[QEMU_LOW], &[]);
        assert!(assign(&config, &dtb.memory, &dtb.reserved).is_ok());
    }

    #[test]
    fn a_reservation_in_a_partition_or_the_channel_is_refused_but_hv_may_hold_one() {
        let config = board("rpi4");
        let in_rt = Region::new(0x0500_0000, 0x1000);
        let in_channel = Region::new(0x3b30_0000, 0x1000);
        let dtb = pi_dtb(&[PI_LOW], &[in_rt, in_channel]);
        // The armstub's page 0..0x1000 sits in hv's RAM: no refusal for it.
        let refusals = assign(&config, &dtb.memory, &dtb.reserved).unwrap_err();
        assert_eq!(refusals.len(), 2, "{refusals:?}");
        assert_eq!(refusals[0].rule, Rule::FixedRamNotReserved);
        assert_eq!(refusals[0].owner, "the channel");
        assert_eq!(refusals[0].dtb, [in_channel]);
        assert_eq!(refusals[1].owner, "partition `rt`");
        assert!(refusals[1].to_string().starts_with(
            "rule `fixed-ram-not-reserved`: partition `rt` RAM [0x4000000..0xa000000) overlaps"
        ));
    }

    #[test]
    fn virt_boards_take_their_ram_as_before() {
        for name in ["virt", "virt-gicv2"] {
            let config = board(name);
            let memory = [Region::new(0x4000_0000, 0x8000_0000)];
            let a = assign(&config, &memory, &[]).unwrap();
            assert_eq!(a, Assignment::default(), "{name}: no dtb_ram windows");
            let small = [Region::new(0x4000_0000, 0x4000_0000)];
            let refusals = assign(&config, &small, &[]).unwrap_err();
            assert!(
                refusals.iter().any(|r| r.owner == "partition `linux`"),
                "{name}: {refusals:?}"
            );
        }
    }

    #[test]
    fn coalesce_merges_touching_and_overlapping_ranges() {
        let merged = coalesce(&[
            Region::new(0x3000, 0x1000),
            Region::new(0, 0x1000),
            Region::new(0x1000, 0x800),
            Region::new(0x1400, 0x1000),
            Region::new(0x9000, 0),
        ]);
        assert_eq!(
            merged,
            [Region::new(0, 0x2400), Region::new(0x3000, 0x1000)]
        );
    }
}
