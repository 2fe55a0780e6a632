//! What guest-rt reads from its partition's DTB beyond the board model
//! ([`platform::dtb::BoardInfo`]): the blob's length from its header, the devices hv passes
//! through (children of the root with a `reg` and SPI `interrupts`), the physical
//! MPIDRs hv lists for an exit-less partition, and the inter-partition channel's region
//! (the `bulkhead,channel` child of `/reserved-memory`).
//!
//! Owns parsing only, on bytes it is handed: it never maps, touches or registers a
//! device, and never reads memory by address (the runtime turns hv's pointer into bytes,
//! bounded by [`blob_len`]). Malformed input yields "nothing found", never a panic: the
//! blob is checked by [`platform::dtb::strip_nops`] before the `fdt` crate walks it.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use platform::config::Region;

/// The magic number every DTB header starts with (Devicetree Specification v0.4, 5.2).
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// The largest DTB guest-rt accepts from hv (its own are a few KiB).
pub const MAX_DTB_LEN: usize = 2 << 20;
/// Bytes of the header [`blob_len`] needs: `magic` and `totalsize`.
pub const HEADER_LEN: usize = 8;

/// Why a header is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    BadMagic(u32),
    /// `totalsize` is shorter than a header or larger than [`MAX_DTB_LEN`].
    BadSize(usize),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic(m) => write!(f, "bad magic {m:#010x}"),
            Self::BadSize(s) => write!(f, "implausible size {s} bytes"),
        }
    }
}

/// The blob's total length, from its first [`HEADER_LEN`] bytes.
pub fn blob_len(header: &[u8; HEADER_LEN]) -> Result<usize, HeaderError> {
    let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if magic != FDT_MAGIC {
        return Err(HeaderError::BadMagic(magic));
    }
    if !(HEADER_LEN..=MAX_DTB_LEN).contains(&size) {
        return Err(HeaderError::BadSize(size));
    }
    Ok(size)
}

/// A device hv passes through to the partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its first `compatible` string.
    pub compatible: String,
    /// Its first `reg` range (identity-mapped by hv).
    pub region: Region,
    /// INTIDs of its SPIs.
    pub irqs: Vec<u32>,
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The DTB, checked and walkable, or `None` if it is not a well-formed one.
fn checked(dtb: &[u8]) -> Option<Vec<u8>> {
    platform::dtb::strip_nops(dtb).ok()
}

/// The devices passed through: the root's children with a `compatible` (its first
/// string), a sized `reg`
/// and at least one SPI in `interrupts` (three cells each: `<0 n flags>` is INTID n + 32;
/// PPIs and other specifiers are skipped).
pub fn passed_through(dtb: &[u8]) -> Vec<Device> {
    let Some(clean) = checked(dtb) else {
        return Vec::new();
    };
    let Ok(fdt) = fdt::Fdt::new(&clean) else {
        return Vec::new();
    };
    let Some(root) = fdt.find_node("/") else {
        return Vec::new();
    };
    root.children()
        .filter_map(|node| {
            // Read by hand: `fdt`'s `Compatible::first` panics on a string with no NUL.
            let raw = node.property("compatible")?.value;
            let first = raw.split(|&b| b == 0).next().filter(|f| !f.is_empty())?;
            let compatible = core::str::from_utf8(first).ok()?.into();
            let reg = node.reg()?.next()?;
            let cells = node.property("interrupts")?.value;
            let irqs: Vec<u32> = cells
                .chunks_exact(12)
                .filter(|c| be32(&c[0..4]) == 0)
                .filter_map(|c| be32(&c[4..8]).checked_add(32))
                .collect();
            Some(Device {
                compatible,
                region: Region::new(reg.starting_address as u64, reg.size? as u64),
                irqs,
            })
        })
        .filter(|d| !d.irqs.is_empty())
        .collect()
}

/// INTIDs of the SPIs the partition owns (its devices').
pub fn owned_spis(devices: &[Device]) -> Vec<u32> {
    devices
        .iter()
        .flat_map(|d| d.irqs.iter().copied())
        .collect()
}

/// Physical MPIDRs of our vCPUs' CPUs, which hv lists (`bulkhead,physical-mpidr`, 64
/// bits, under each `/cpus` child) only for exit-less partitions: their SGIs go straight
/// to the physical GIC. Empty otherwise.
pub fn physical_mpidrs(dtb: &[u8]) -> Vec<u64> {
    let Some(clean) = checked(dtb) else {
        return Vec::new();
    };
    let Ok(fdt) = fdt::Fdt::new(&clean) else {
        return Vec::new();
    };
    let Some(cpus) = fdt.find_node("/cpus") else {
        return Vec::new();
    };
    cpus.children()
        .filter_map(|cpu| {
            let v = cpu.property("bulkhead,physical-mpidr")?.value;
            Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
        })
        .collect()
}

/// The `compatible` of the channel's `/reserved-memory` child.
pub const CHANNEL_COMPATIBLE: &str = "bulkhead,channel";

/// The inter-partition channel's region, if hv names one (a `/reserved-memory` child
/// whose `compatible` is [`CHANNEL_COMPATIBLE`], with a sized `reg`).
pub fn channel(dtb: &[u8]) -> Option<Region> {
    let clean = checked(dtb)?;
    let fdt = fdt::Fdt::new(&clean).ok()?;
    let reserved = fdt.find_node("/reserved-memory")?;
    let found = reserved.children().find_map(|node| {
        let raw = node.property("compatible")?.value;
        let first = raw.split(|&b| b == 0).next()?;
        if first != CHANNEL_COMPATIBLE.as_bytes() {
            return None;
        }
        let reg = node.reg()?.next()?;
        Some(Region::new(reg.starting_address as u64, reg.size? as u64))
    });
    found
}

/// The `compatible` of hv's doorbell node (`/hypervisor/doorbell`).
pub const DOORBELL_COMPATIBLE: &str = "bulkhead,doorbell";

/// The SPI (INTID) Linux's doorbell rings raise, if hv names one: the first SPI in the
/// `interrupts` of the `/hypervisor` child whose `compatible` is [`DOORBELL_COMPATIBLE`].
pub fn doorbell(dtb: &[u8]) -> Option<u32> {
    let clean = checked(dtb)?;
    let fdt = fdt::Fdt::new(&clean).ok()?;
    let hyp = fdt.find_node("/hypervisor")?;
    let found = hyp.children().find_map(|node| {
        let raw = node.property("compatible")?.value;
        if raw.split(|&b| b == 0).next()? != DOORBELL_COMPATIBLE.as_bytes() {
            return None;
        }
        let cells = node.property("interrupts")?.value;
        cells
            .chunks_exact(12)
            .find(|c| be32(&c[0..4]) == 0)
            .and_then(|c| be32(&c[4..8]).checked_add(32))
            .filter(|intid| (32..1020).contains(intid))
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;
    use vm_fdt::FdtWriter;

    /// A partition-like DTB: `devices` as (name, compatible, base, size, interrupt cells)
    /// at the root, and `mpidrs` as `bulkhead,physical-mpidr` of one CPU each.
    fn dtb(devices: &[(&str, &str, u64, u64, Vec<u32>)], mpidrs: &[u64]) -> Vec<u8> {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_string("compatible", "bulkhead,partition")
            .unwrap();
        let cpus = w.begin_node("cpus").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 0).unwrap();
        for (i, &m) in mpidrs.iter().enumerate() {
            let cpu = w.begin_node(&format!("cpu@{i}")).unwrap();
            w.property_u32("reg", i as u32).unwrap();
            w.property_u64("bulkhead,physical-mpidr", m).unwrap();
            w.end_node(cpu).unwrap();
        }
        w.end_node(cpus).unwrap();
        for (name, compatible, base, size, irqs) in devices {
            let node = w.begin_node(&format!("{name}@{base:x}")).unwrap();
            w.property_string("compatible", compatible).unwrap();
            w.property_array_u64("reg", &[*base, *size]).unwrap();
            w.property_array_u32("interrupts", irqs).unwrap();
            w.end_node(node).unwrap();
        }
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    /// A DTB with `/reserved-memory` children (name, compatible, base, size).
    fn reserved(children: &[(&str, &str, u64, u64)]) -> Vec<u8> {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        let res = w.begin_node("reserved-memory").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        for (name, compatible, base, size) in children {
            let node = w.begin_node(&format!("{name}@{base:x}")).unwrap();
            w.property_string("compatible", compatible).unwrap();
            w.property_array_u64("reg", &[*base, *size]).unwrap();
            w.property_null("no-map").unwrap();
            w.end_node(node).unwrap();
        }
        w.end_node(res).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn finds_the_channel_among_reserved_regions_only() {
        let blob = reserved(&[
            ("other", "vendor,other", 0x1000_0000, 0x1000),
            (
                "bulkhead-channel",
                CHANNEL_COMPATIBLE,
                0xaa00_0000,
                0x20_0000,
            ),
        ]);
        assert_eq!(channel(&blob), Some(Region::new(0xaa00_0000, 0x20_0000)));
        let none = reserved(&[("other", "vendor,other", 0x1000_0000, 0x1000)]);
        assert_eq!(channel(&none), None);
        assert_eq!(channel(&dtb(&[], &[])), None);
        assert_eq!(channel(b"not a dtb"), None);
    }

    /// A DTB with a `/hypervisor` node holding `children` (compatible, interrupt cells).
    fn hypervisor(children: &[(&str, Vec<u32>)]) -> Vec<u8> {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        let hyp = w.begin_node("hypervisor").unwrap();
        w.property_string("compatible", "bulkhead,hypervisor")
            .unwrap();
        for (i, (compatible, cells)) in children.iter().enumerate() {
            let node = w.begin_node(&format!("child{i}")).unwrap();
            w.property_string("compatible", compatible).unwrap();
            w.property_array_u32("interrupts", cells).unwrap();
            w.end_node(node).unwrap();
        }
        w.end_node(hyp).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn finds_the_doorbells_spi_under_the_hypervisor_node_only() {
        let blob = hypervisor(&[
            ("vendor,other", vec![0, 10, 1]),
            (DOORBELL_COMPATIBLE, vec![0, 64, 1]),
        ]);
        assert_eq!(doorbell(&blob), Some(96));
        assert_eq!(
            doorbell(&hypervisor(&[("vendor,other", vec![0, 64, 1])])),
            None
        );
        // A PPI or an SPI number past the architecture's is no doorbell.
        assert_eq!(
            doorbell(&hypervisor(&[(DOORBELL_COMPATIBLE, vec![1, 5, 1])])),
            None
        );
        assert_eq!(
            doorbell(&hypervisor(&[(DOORBELL_COMPATIBLE, vec![0, 2000, 1])])),
            None
        );
        assert_eq!(doorbell(&dtb(&[], &[])), None);
        assert_eq!(doorbell(b"garbage"), None);
    }

    #[test]
    fn header_gives_the_length_or_a_reason() {
        let blob = dtb(&[], &[]);
        let header: [u8; 8] = blob[..8].try_into().unwrap();
        assert_eq!(blob_len(&header), Ok(blob.len()));
        let mut bad = header;
        bad[0] = 0;
        assert!(matches!(blob_len(&bad), Err(HeaderError::BadMagic(_))));
        let mut huge = header;
        huge[4..8].copy_from_slice(&(MAX_DTB_LEN as u32 + 1).to_be_bytes());
        assert_eq!(blob_len(&huge), Err(HeaderError::BadSize(MAX_DTB_LEN + 1)));
        let mut tiny = header;
        tiny[4..8].copy_from_slice(&4u32.to_be_bytes());
        assert_eq!(blob_len(&tiny), Err(HeaderError::BadSize(4)));
    }

    #[test]
    fn finds_a_passed_through_device_and_its_spis_only() {
        let blob = dtb(
            &[
                // SPI 2 (INTID 34) level, then a PPI that is not the device's line.
                (
                    "pl031",
                    "arm,pl031",
                    0x901_0000,
                    0x1000,
                    vec![0, 2, 4, 1, 5, 4],
                ),
                // Only a PPI: not a passed-through device.
                ("timer", "arm,timer", 0x1000, 0x10, vec![1, 11, 4]),
            ],
            &[],
        );
        let devices = passed_through(&blob);
        assert_eq!(
            devices,
            vec![Device {
                compatible: "arm,pl031".into(),
                region: Region::new(0x901_0000, 0x1000),
                irqs: vec![34],
            }]
        );
        assert_eq!(owned_spis(&devices), vec![34]);
    }

    #[test]
    fn physical_mpidrs_are_listed_per_cpu_or_absent() {
        assert_eq!(physical_mpidrs(&dtb(&[], &[2, 3])), vec![2, 3]);
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.end_node(root).unwrap();
        assert!(physical_mpidrs(&w.finish().unwrap()).is_empty());
    }

    #[test]
    fn an_spi_number_that_would_overflow_is_skipped() {
        let blob = dtb(&[("d", "x,y", 0x1000, 0x1000, vec![0, u32::MAX, 4])], &[]);
        assert!(passed_through(&blob).is_empty());
    }

    proptest! {
        /// Whatever hv wrote, the devices read back are the ones with SPIs, in order.
        #[test]
        fn devices_round_trip(
            devs in proptest::collection::vec(
                (0u64..1 << 40, 1u64..1 << 20, proptest::collection::vec((0u32..2, 0u32..988), 0..4)),
                0..6,
            ),
        ) {
            let specs: Vec<(String, u64, u64, Vec<u32>)> = devs
                .iter()
                .enumerate()
                .map(|(i, (base, size, irqs))| {
                    let cells = irqs.iter().flat_map(|&(kind, n)| [kind, n, 4]).collect();
                    (format!("dev{i}"), *base, *size, cells)
                })
                .collect();
            let nodes: Vec<(&str, &str, u64, u64, Vec<u32>)> = specs
                .iter()
                .map(|(name, base, size, cells)| (name.as_str(), "test,dev", *base, *size, cells.clone()))
                .collect();
            let found = passed_through(&dtb(&nodes, &[]));
            let expected: Vec<Device> = devs
                .iter()
                .filter_map(|(base, size, irqs)| {
                    let spis: Vec<u32> = irqs.iter().filter(|(k, _)| *k == 0).map(|(_, n)| n + 32).collect();
                    (!spis.is_empty()).then(|| Device {
                        compatible: "test,dev".into(),
                        region: Region::new(*base, *size),
                        irqs: spis,
                    })
                })
                .collect();
            prop_assert_eq!(found, expected);
        }

        /// Arbitrary bytes (or a real DTB with bytes flipped) never panic the reader.
        #[test]
        fn malformed_blobs_find_nothing_or_something_but_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        ) {
            let _ = passed_through(&bytes);
            let _ = physical_mpidrs(&bytes);
            let mut real = dtb(&[("pl031", "arm,pl031", 0x901_0000, 0x1000, vec![0, 2, 4])], &[2, 3]);
            for (at, v) in flips {
                let len = real.len();
                real[at % len] ^= v;
            }
            let _ = passed_through(&real);
            let _ = physical_mpidrs(&real);
        }
    }
}
