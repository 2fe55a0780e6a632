//! Telemetry, RT -> Linux, as locked per-CPU blocks with a sequence count.
//!
//! One block per RT CPU. Whichever RT thread holds that block's lock updates it (a thread
//! migrated mid-update writes the "wrong" CPU's block and the lock keeps it correct, as the
//! seed's locked per-CPU variables do); here the lock is the `&mut` of [`TelemetryWriter`],
//! which the RT kernel keeps in its locked per-CPU slot. The writer makes the count odd,
//! writes, makes it even: a fixed number of stores, never a load of anything Linux may
//! write (it keeps its count in its own memory). Linux copies the block and takes it only
//! if the count was even and unchanged across the copy; it retries, the writer never waits.

use crate::layout::Channel;
use crate::sync::{fence, Ordering};

/// Latency histogram buckets: 0 is < 1 us, bucket b is [2^(b-1), 2^b) us, the last is
/// everything from 2^(HISTOGRAM_BUCKETS-2) us up.
pub const HISTOGRAM_BUCKETS: usize = 16;
/// Words of one record (the block adds its sequence count).
pub const RECORD_WORDS: usize = 6 + HISTOGRAM_BUCKETS;

/// One RT CPU's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Telemetry {
    /// Periods of the CPU's periodic work done.
    pub periods: u64,
    /// Periods whose deadline passed before the work ran.
    pub missed: u64,
    pub last_latency_ns: u64,
    pub max_latency_ns: u64,
    /// The parameter version the CPU works with.
    pub params_version: u64,
    /// The control loop's measured value, in the setpoint's units (milli-degC).
    pub process_value: i64,
    pub histogram: [u64; HISTOGRAM_BUCKETS],
}

impl Telemetry {
    /// Counts one wake-up latency: last, max and its histogram bucket.
    pub fn record_latency(&mut self, ns: u64) {
        self.last_latency_ns = ns;
        self.max_latency_ns = self.max_latency_ns.max(ns);
        let bucket = Self::bucket(ns);
        self.histogram[bucket] = self.histogram[bucket].saturating_add(1);
    }

    pub fn bucket(ns: u64) -> usize {
        let us = ns / 1000;
        let b = (u64::BITS - us.leading_zeros()) as usize;
        b.min(HISTOGRAM_BUCKETS - 1)
    }

    /// Lower bound of bucket `b`, in microseconds.
    pub fn bucket_floor_us(b: usize) -> u64 {
        if b == 0 {
            0
        } else {
            1 << (b - 1)
        }
    }

    fn to_words(self) -> [u64; RECORD_WORDS] {
        let mut w = [0u64; RECORD_WORDS];
        w[..6].copy_from_slice(&[
            self.periods,
            self.missed,
            self.last_latency_ns,
            self.max_latency_ns,
            self.params_version,
            self.process_value as u64,
        ]);
        w[6..].copy_from_slice(&self.histogram);
        w
    }

    fn from_words(w: &[u64; RECORD_WORDS]) -> Self {
        let mut histogram = [0u64; HISTOGRAM_BUCKETS];
        histogram.copy_from_slice(&w[6..]);
        Telemetry {
            periods: w[0],
            missed: w[1],
            last_latency_ns: w[2],
            max_latency_ns: w[3],
            params_version: w[4],
            process_value: w[5] as i64,
            histogram,
        }
    }
}

fn record_words(channel: &Channel) -> usize {
    channel
        .layout
        .geometry
        .telemetry_words
        .saturating_sub(1)
        .min(RECORD_WORDS)
}

/// The RT side of one CPU's block; `&mut self` is the block's lock.
#[derive(Debug)]
pub struct TelemetryWriter {
    block: usize,
    seq: u64,
}

impl TelemetryWriter {
    /// The writer of RT CPU `cpu`'s block (None if the layout has no such CPU).
    pub fn new(channel: &Channel, cpu: usize) -> Option<Self> {
        (cpu < channel.layout.rt_cpus).then(|| Self {
            block: channel.layout.telemetry_block(cpu),
            seq: 0,
        })
    }

    /// Writes `t` into the block: `2 + RECORD_WORDS` stores and two fences, no load.
    pub fn publish(&mut self, channel: &Channel, t: &Telemetry) {
        let region = channel.region;
        let words = t.to_words();
        self.seq = self.seq.wrapping_add(1) | 1;
        region.store(self.block, self.seq, Ordering::Relaxed);
        // Readers that see any new field see the odd count (pairs with their acquire fence).
        fence(Ordering::Release);
        region.copy_in(self.block + 1, &words[..record_words(channel)]);
        self.seq = self.seq.wrapping_add(1);
        region.store(self.block, self.seq, Ordering::Release);
    }
}

/// Why Linux got no consistent copy of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TelemetryError {
    NoSuchCpu,
    /// The writer was mid-update on every try.
    Busy,
    /// Nothing was ever written (count 0).
    NeverWritten,
}

/// One consistent copy of RT CPU `cpu`'s block (Linux), trying up to `tries` times.
pub fn read_telemetry(
    channel: &Channel,
    cpu: usize,
    tries: usize,
) -> Result<(u64, Telemetry), TelemetryError> {
    if cpu >= channel.layout.rt_cpus {
        return Err(TelemetryError::NoSuchCpu);
    }
    let region = channel.region;
    let block = channel.layout.telemetry_block(cpu);
    for _ in 0..tries {
        let before = region.load(block, Ordering::Acquire);
        if before == 0 {
            return Err(TelemetryError::NeverWritten);
        }
        if before & 1 == 1 {
            continue;
        }
        let mut words = [0u64; RECORD_WORDS];
        region.copy_out(block + 1, &mut words[..record_words(channel)]);
        fence(Ordering::Acquire);
        if region.load(block, Ordering::Relaxed) == before {
            return Ok((before / 2, Telemetry::from_words(&words)));
        }
    }
    Err(TelemetryError::Busy)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::layout::Layout;
    use crate::region::{testing::zeroed, Region};

    #[test]
    fn a_published_block_reads_back_with_its_update_count() {
        let words = zeroed(8192);
        let ch = Channel::new(Region::new(&words), Layout::new(8192, 2).unwrap()).unwrap();
        assert_eq!(read_telemetry(&ch, 1, 4), Err(TelemetryError::NeverWritten));
        assert_eq!(read_telemetry(&ch, 2, 4), Err(TelemetryError::NoSuchCpu));
        let mut writer = TelemetryWriter::new(&ch, 1).unwrap();
        let mut t = Telemetry {
            periods: 10,
            params_version: 3,
            process_value: -1500,
            ..Telemetry::default()
        };
        for ns in [500, 1_500, 3_000, 90_000_000] {
            t.record_latency(ns);
        }
        writer.publish(&ch, &t);
        writer.publish(&ch, &t);
        assert_eq!(read_telemetry(&ch, 1, 4), Ok((2, t)));
        assert_eq!(t.max_latency_ns, 90_000_000);
        assert_eq!(t.histogram[..3], [1, 1, 1]);
        assert_eq!(t.histogram[HISTOGRAM_BUCKETS - 1], 1);
        assert_eq!(read_telemetry(&ch, 0, 4), Err(TelemetryError::NeverWritten));
    }

    #[test]
    fn a_block_mid_update_is_busy_not_torn() {
        let words = zeroed(8192);
        let ch = Channel::new(Region::new(&words), Layout::new(8192, 1).unwrap()).unwrap();
        let block = ch.layout.telemetry_block(0);
        ch.region.store(block, 3, Ordering::Relaxed);
        assert_eq!(read_telemetry(&ch, 0, 4), Err(TelemetryError::Busy));
    }

    #[test]
    fn buckets_are_powers_of_two_microseconds() {
        assert_eq!(Telemetry::bucket(999), 0);
        assert_eq!(Telemetry::bucket(1_000), 1);
        assert_eq!(Telemetry::bucket(1_999), 1);
        assert_eq!(Telemetry::bucket(2_000), 2);
        assert_eq!(Telemetry::bucket(u64::MAX), HISTOGRAM_BUCKETS - 1);
        for b in 1..HISTOGRAM_BUCKETS {
            assert_eq!(Telemetry::bucket(Telemetry::bucket_floor_us(b) * 1000), b);
        }
    }
}
