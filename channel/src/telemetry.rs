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
/// Words of the control loop's figures ([`ControlFigures`]).
pub const CONTROL_WORDS: usize = 8;
/// Words of one record (the block adds its sequence count): the counts, the histogram,
/// then the control loop's figures; well inside a 64-word block.
pub const RECORD_WORDS: usize = 6 + HISTOGRAM_BUCKETS + CONTROL_WORDS;

/// What publishes a CPU's block (word 5), so a reader knows which fields mean something.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Publisher {
    /// Periodic work without a control loop (the latency probe).
    #[default]
    Probe,
    /// The control loop (`rt.app=control`): [`Telemetry::control`] is filled in.
    Control,
    /// A value this side does not know (a newer RT side, or garbage).
    Unknown(u64),
}

impl Publisher {
    fn word(self) -> u64 {
        match self {
            Publisher::Probe => 0,
            Publisher::Control => 1,
            Publisher::Unknown(w) => w,
        }
    }

    fn from_word(w: u64) -> Self {
        match w {
            0 => Publisher::Probe,
            1 => Publisher::Control,
            w => Publisher::Unknown(w),
        }
    }
}

/// The watchdog's state as telemetry carries it (the `control` crate's codes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WatchdogCode {
    #[default]
    Armed,
    /// Tripped: the loop missed its deadline too many times in a row (or stalled).
    TrippedMisses,
    /// Tripped: the plant's speed left its envelope.
    TrippedSpeed,
    /// Tripped: the plant's current left its envelope.
    TrippedCurrent,
    Unknown(u64),
}

impl WatchdogCode {
    pub fn from_word(w: u64) -> Self {
        match w {
            0 => Self::Armed,
            1 => Self::TrippedMisses,
            2 => Self::TrippedSpeed,
            3 => Self::TrippedCurrent,
            w => Self::Unknown(w),
        }
    }

    pub fn word(self) -> u64 {
        match self {
            Self::Armed => 0,
            Self::TrippedMisses => 1,
            Self::TrippedSpeed => 2,
            Self::TrippedCurrent => 3,
            Self::Unknown(w) => w,
        }
    }

    /// A short name for text and JSON: `armed`, `tripped-misses`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::Armed => "armed",
            Self::TrippedMisses => "tripped-misses",
            Self::TrippedSpeed => "tripped-speed",
            Self::TrippedCurrent => "tripped-current",
            Self::Unknown(_) => "unknown",
        }
    }
}

/// The control loop's figures of its last period (floats carried by their bits).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ControlFigures {
    /// The set-point the controller followed, rad/s.
    pub setpoint: f64,
    /// The speed sampled at the period's release, rad/s.
    pub measurement: f64,
    /// The commanded armature voltage, V (0 in the safe state).
    pub effort: f64,
    /// The armature current, A.
    pub current: f64,
    /// The load torque in force, N*m.
    pub disturbance: f64,
    pub watchdog: WatchdogCode,
    /// Deadline misses in a row.
    pub consecutive_misses: u64,
    /// FNV-1a over every period's record so far (the `control` crate's fingerprint):
    /// equal runs under deterministic time give equal values.
    pub fingerprint: u64,
}

/// One RT CPU's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Telemetry {
    /// Periods of the CPU's periodic work done.
    pub periods: u64,
    /// Periods whose deadline passed before the work ran.
    pub missed: u64,
    pub last_latency_ns: u64,
    pub max_latency_ns: u64,
    /// The parameter version the CPU works with.
    pub params_version: u64,
    pub publisher: Publisher,
    pub histogram: [u64; HISTOGRAM_BUCKETS],
    /// Meaningful when [`Telemetry::publisher`] is [`Publisher::Control`].
    pub control: ControlFigures,
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
            self.publisher.word(),
        ]);
        let h = 6 + HISTOGRAM_BUCKETS;
        w[6..h].copy_from_slice(&self.histogram);
        let c = &self.control;
        w[h..].copy_from_slice(&[
            c.setpoint.to_bits(),
            c.measurement.to_bits(),
            c.effort.to_bits(),
            c.current.to_bits(),
            c.disturbance.to_bits(),
            c.watchdog.word(),
            c.consecutive_misses,
            c.fingerprint,
        ]);
        w
    }

    fn from_words(w: &[u64; RECORD_WORDS]) -> Self {
        let mut histogram = [0u64; HISTOGRAM_BUCKETS];
        let h = 6 + HISTOGRAM_BUCKETS;
        histogram.copy_from_slice(&w[6..h]);
        Telemetry {
            periods: w[0],
            missed: w[1],
            last_latency_ns: w[2],
            max_latency_ns: w[3],
            params_version: w[4],
            publisher: Publisher::from_word(w[5]),
            histogram,
            control: ControlFigures {
                setpoint: f64::from_bits(w[h]),
                measurement: f64::from_bits(w[h + 1]),
                effort: f64::from_bits(w[h + 2]),
                current: f64::from_bits(w[h + 3]),
                disturbance: f64::from_bits(w[h + 4]),
                watchdog: WatchdogCode::from_word(w[h + 5]),
                consecutive_misses: w[h + 6],
                fingerprint: w[h + 7],
            },
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
            publisher: Publisher::Control,
            control: ControlFigures {
                setpoint: 1.5,
                measurement: -0.25,
                effort: f64::NAN,
                watchdog: WatchdogCode::TrippedSpeed,
                fingerprint: u64::MAX,
                ..ControlFigures::default()
            },
            ..Telemetry::default()
        };
        for ns in [500, 1_500, 3_000, 90_000_000] {
            t.record_latency(ns);
        }
        writer.publish(&ch, &t);
        writer.publish(&ch, &t);
        let (updates, back) = read_telemetry(&ch, 1, 4).unwrap();
        assert_eq!(updates, 2);
        // NaN != NaN: compare the words.
        assert_eq!(back.to_words(), t.to_words());
        assert_eq!(back.publisher, Publisher::Control);
        assert_eq!(back.control.watchdog.name(), "tripped-speed");
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
