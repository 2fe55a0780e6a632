//! The channel region as hv touches it: one slice of words over its physical memory
//! (identity-mapped non-cacheable by `boot`), handed to `hv_core::channel_setup`, which
//! zeroes it and writes the header and partition table at boot and writes them again at
//! each Linux restart, and to hv's statistics, which copy each CPU's block there. hv never
//! reads the region.

use log::info;
use spin::Once;

use alloc::vec::Vec;

use channel::hv_stats::{self, PartitionEntry};
use channel::{Channel, Layout, Region, Word};
use hv_core::partition::PartitionState;
use platform::config::Config;

static CHANNEL: Once<(&'static [Word], Layout, Vec<PartitionEntry>)> = Once::new();

/// Zeroes the board's channel and writes its header; a layout that does not fit the
/// region is a fatal boot error (the board file is wrong).
pub fn prepare(config: &Config) {
    let (Some(spec), Some(layout)) = (&config.channel, hv_core::channel_setup::layout_for(config))
    else {
        return;
    };
    let layout = layout.unwrap_or_else(|e| crate::fatal!("the channel {}: {e}", spec.ram));
    let base = spec.ram.base as usize;
    let words = (spec.ram.size / 8) as usize;
    // SAFETY: the region is the board's channel memory: inside the board's RAM, owned by
    // no partition and not hv's own (validated config), identity-mapped for hv by
    // `boot::setup_memory`, page aligned (so aligned for AtomicU64), and alive for ever.
    // Partitions write it concurrently once they run; atomics allow that, and hv never
    // makes a non-atomic reference to it.
    let region: &'static [Word] =
        unsafe { core::slice::from_raw_parts(base as *const Word, words) };
    let partitions = hv_core::channel_setup::partition_table(config);
    hv_core::channel_setup::prepare(region, layout, &partitions)
        .unwrap_or_else(|e| crate::fatal!("the channel {}: {e}", spec.ram));
    let channel = Channel::new(Region::new(region), layout)
        .unwrap_or_else(|e| crate::fatal!("the channel {}: {e}", spec.ram));
    super::stats::STATS.attach(channel);
    CHANNEL.call_once(|| (region, layout, partitions));
    info!(
        "channel {}: header written (layout version {}, {} RT CPUs, {} of {} KiB used)",
        spec.ram,
        channel::layout::LAYOUT_VERSION,
        layout.rt_cpus,
        (layout.end * 8).div_ceil(1024),
        spec.ram.size / 1024
    );
}

/// Writes a partition's run record (boots, fault restarts, state) for Linux to read. The
/// caller holds the partition's state lock, so two CPUs never write one record at once.
pub fn publish_run(state: &PartitionState) {
    if let Some((region, layout, _)) = CHANNEL.get() {
        // The layout fitted the region at boot: it still does.
        if let Ok(ch) = Channel::new(Region::new(region), *layout) {
            hv_stats::write_run(&ch, state.index, state.run_record());
        }
    }
}

/// Writes the header and partition table again (Linux restarts), if hv prepared a
/// channel, and has every CPU copy its whole statistics block there at its next update.
pub fn rewrite_header() {
    if let Some((region, layout, partitions)) = CHANNEL.get() {
        // The layout fitted the region at boot: it still does.
        let _ = hv_core::channel_setup::rewrite_header(region, *layout, partitions);
        super::stats::STATS.recopy();
        // Linux may have scribbled over the run records too.
        super::vcpu::publish_runs();
        info!("channel: header written again for Linux's restart");
    }
}
