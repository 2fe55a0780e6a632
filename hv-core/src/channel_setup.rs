//! The inter-partition channel as hv prepares it: which layout the board's config implies,
//! the region zeroed and the header and hv's partition table written before either
//! partition runs, and both written again when Linux restarts (Linux may have scribbled
//! over them).
//!
//! hv only writes here: it never reads what the partitions wrote, so nothing in the region
//! can steer hv. Mapping the memory (and its attributes) is the arch side's.

use alloc::vec::Vec;

use channel::hv_stats::{self, PartitionEntry};
use channel::{Channel, Layout, LayoutError, Region, Word};
use platform::config::{Config, PartitionKind};

/// The layout of the board's channel: its region's size, the RT partition's CPU count.
/// None if the board keeps no channel or runs no RT partition.
pub fn layout_for(config: &Config) -> Option<Result<Layout, LayoutError>> {
    let channel = config.channel.as_ref()?;
    let rt = config
        .partitions
        .iter()
        .find(|p| p.kind == PartitionKind::Rt)?;
    Some(Layout::new((channel.ram.size / 8) as usize, rt.cpus.len()))
}

/// hv's partition table for the channel: each partition's kind, physical CPUs and name.
pub fn partition_table(config: &Config) -> Vec<PartitionEntry> {
    config
        .partitions
        .iter()
        .map(|p| {
            let kind = match p.kind {
                PartitionKind::Linux => hv_stats::PartitionKind::Linux,
                PartitionKind::Rt => hv_stats::PartitionKind::Rt,
            };
            let cpus = p
                .cpus
                .iter()
                .filter(|&&c| c < 64)
                .fold(0u64, |m, &c| m | 1 << c);
            PartitionEntry::new(kind, cpus, &p.name)
        })
        .collect()
}

/// At boot: every word zeroed (a Pi's RAM is not), then the partition table and the
/// header (magic last).
pub fn prepare(
    words: &[Word],
    layout: Layout,
    partitions: &[PartitionEntry],
) -> Result<(), LayoutError> {
    for w in words {
        w.store(0, core::sync::atomic::Ordering::Relaxed);
    }
    rewrite_header(words, layout, partitions)
}

/// The partition table and the header, written again (a Linux restart): the other areas
/// keep what the RT side and hv are publishing, and the RT side, which trusts only its
/// own layout, never notices.
pub fn rewrite_header(
    words: &[Word],
    layout: Layout,
    partitions: &[PartitionEntry],
) -> Result<(), LayoutError> {
    let channel = Channel::new(Region::new(words), layout)?;
    hv_stats::write_partitions(&channel, partitions);
    channel.write_header();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering;

    fn virt() -> Config {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../platform/boards/virt.toml"
        ))
        .unwrap();
        Config::from_toml(&text).unwrap()
    }

    fn region(words: usize) -> Vec<Word> {
        (0..words).map(|_| Word::new(0xdead_beef)).collect()
    }

    #[test]
    fn the_virt_layout_is_two_mib_for_two_rt_cpus() {
        let layout = layout_for(&virt()).unwrap().unwrap();
        assert_eq!(layout.region_words, 2 * 1024 * 1024 / 8);
        assert_eq!(layout.rt_cpus, 2);
    }

    #[test]
    fn no_channel_or_no_rt_partition_means_no_layout() {
        let mut c = virt();
        c.partitions.retain(|p| p.kind != PartitionKind::Rt);
        assert!(layout_for(&c).is_none());
        let mut c = virt();
        c.channel = None;
        assert!(layout_for(&c).is_none());
    }

    #[test]
    fn prepare_zeroes_garbage_and_leaves_a_header_linux_accepts() {
        let layout = Layout::new(8192, 2).unwrap();
        let words = region(8192);
        prepare(&words, layout, &partition_table(&virt())).unwrap();
        let linux = Channel::from_header(Region::new(&words)).unwrap();
        assert_eq!(*linux.layout(), layout);
        let header = channel::layout::HEADER_FIELDS;
        let table = layout.hv_partitions..layout.hv_stats;
        assert!(words[header..]
            .iter()
            .enumerate()
            .all(|(i, w)| table.contains(&(header + i)) || w.load(Ordering::Relaxed) == 0));
        let found = hv_stats::read_partitions(&linux);
        let names: Vec<_> = found
            .iter()
            .flatten()
            .map(|e| (e.name_bytes(), e.cpus))
            .collect();
        assert_eq!(names, [(&b"linux"[..], 0b0011), (&b"rt"[..], 0b1100)]);
    }

    #[test]
    fn a_scribbled_header_is_rewritten_and_the_rest_left_alone() {
        let layout = Layout::new(8192, 2).unwrap();
        let words = region(8192);
        prepare(&words, layout, &partition_table(&virt())).unwrap();
        let telemetry = layout.telemetry_block(1);
        words[telemetry].store(42, Ordering::Relaxed);
        for w in &words[..channel::layout::HEADER_FIELDS] {
            w.store(0x5a5a_5a5a, Ordering::Relaxed);
        }
        assert!(Channel::from_header(Region::new(&words)).is_err());
        rewrite_header(&words, layout, &[]).unwrap();
        assert!(Channel::from_header(Region::new(&words)).is_ok());
        assert_eq!(words[telemetry].load(Ordering::Relaxed), 42);
    }

    #[test]
    fn a_region_smaller_than_its_layout_is_refused() {
        let layout = Layout::new(8192, 2).unwrap();
        assert!(matches!(
            prepare(&region(100), layout, &[]),
            Err(LayoutError::TooSmall { .. })
        ));
    }
}
