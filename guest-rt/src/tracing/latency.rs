//! Wake-up latency statistics for the latency probe (the cyclictest of Bulkhead): every
//! period a thread sleeps to an absolute deadline and records how late it woke.
//!
//! Portable and allocation-free (a fixed histogram), so it can be updated from the probe's
//! hot loop without touching the allocator. Never reads a clock itself: callers pass
//! nanoseconds.

/// Buckets of 1 µs each up to [`LINEAR_US`]; then [`LOG_BUCKETS`] buckets doubling in
/// width (64-128 µs, 128-256 µs, ... up to [`OVERFLOW_US`], about 1 s); the last one,
/// [`OVERFLOW`], collects everything from there up (printed with a `+`).
pub const LINEAR_US: u64 = 64;
pub const LOG_BUCKETS: usize = 14;
pub const BUCKETS: usize = LINEAR_US as usize + LOG_BUCKETS + 1;
pub const OVERFLOW: usize = BUCKETS - 1;
pub const OVERFLOW_US: u64 = LINEAR_US << LOG_BUCKETS;
const BUCKET_NS: u64 = 1_000;

/// The bucket a latency of `ns` falls in.
pub fn bucket_of(ns: u64) -> usize {
    let us = ns / BUCKET_NS;
    if us < LINEAR_US {
        us as usize
    } else if us >= OVERFLOW_US {
        OVERFLOW
    } else {
        // us in [64 * 2^k, 64 * 2^(k+1)): k = log2(us / 64).
        LINEAR_US as usize + (us / LINEAR_US).ilog2() as usize
    }
}

/// Lower edge of bucket `i`, in µs.
pub fn bucket_floor_us(i: usize) -> u64 {
    if i < LINEAR_US as usize {
        i as u64
    } else {
        LINEAR_US << (i.min(OVERFLOW) - LINEAR_US as usize)
    }
}

/// Upper edge of bucket `i`, in µs (the overflow bucket's is unbounded: u64::MAX).
pub fn bucket_ceiling_us(i: usize) -> u64 {
    if i >= OVERFLOW {
        u64::MAX
    } else {
        bucket_floor_us(i + 1)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencyStats {
    /// Period of the probe (a wake-up this late or later means periods were missed).
    pub interval_ns: u64,
    pub samples: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    sum_ns: u128,
    /// Whole periods that passed without a wake-up.
    pub missed: u64,
    pub histogram: [u64; BUCKETS],
}

impl LatencyStats {
    pub const fn new(interval_ns: u64) -> Self {
        Self {
            interval_ns,
            samples: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            sum_ns: 0,
            missed: 0,
            histogram: [0; BUCKETS],
        }
    }

    /// Records one wake-up at `actual_ns` for the deadline `intended_ns`; returns the
    /// next deadline, skipping (and counting) the periods the wake-up came too late for.
    pub fn record(&mut self, intended_ns: u64, actual_ns: u64) -> u64 {
        let latency = actual_ns.saturating_sub(intended_ns);
        self.samples += 1;
        self.min_ns = self.min_ns.min(latency);
        self.max_ns = self.max_ns.max(latency);
        self.sum_ns += u128::from(latency);
        self.histogram[bucket_of(latency)] += 1;
        let interval = self.interval_ns.max(1);
        let late_periods = latency / interval;
        self.missed += late_periods;
        intended_ns + (late_periods + 1) * interval
    }

    pub fn avg_ns(&self) -> u64 {
        if self.samples == 0 {
            0
        } else {
            (self.sum_ns / u128::from(self.samples)) as u64
        }
    }

    /// Smallest latency bound (bucket upper edge, ns) that covers `percent` of samples;
    /// in the overflow bucket, the max.
    pub fn percentile_ns(&self, percent: u64) -> u64 {
        let wanted = (self.samples * percent).div_ceil(100);
        let mut seen = 0;
        for (i, &count) in self.histogram.iter().enumerate() {
            seen += count;
            if seen >= wanted && count > 0 {
                return match i {
                    OVERFLOW => self.max_ns,
                    _ => bucket_ceiling_us(i) * BUCKET_NS,
                };
            }
        }
        bucket_floor_us(OVERFLOW) * BUCKET_NS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_min_avg_max_and_histogram() {
        let mut s = LatencyStats::new(1_000_000);
        let mut deadline = 1_000_000;
        for late in [3_000u64, 1_500, 10_200] {
            let next = s.record(deadline, deadline + late);
            assert_eq!(next, deadline + 1_000_000);
            deadline = next;
        }
        assert_eq!(
            (s.samples, s.min_ns, s.max_ns, s.avg_ns()),
            (3, 1_500, 10_200, 4_900)
        );
        assert_eq!((s.histogram[1], s.histogram[3], s.histogram[10]), (1, 1, 1));
        assert_eq!(s.missed, 0);
        assert_eq!(s.percentile_ns(50), 4_000);
        assert_eq!(s.percentile_ns(100), 11_000);
    }

    #[test]
    fn a_late_wakeup_counts_missed_periods_and_skips_them() {
        let mut s = LatencyStats::new(1_000);
        // Woke 2.5 periods late: periods 1 and 2 were missed, the next deadline is +3.
        let next = s.record(10_000, 12_500);
        assert_eq!(s.missed, 2);
        assert_eq!(next, 13_000);
        assert_eq!(s.histogram[2], 1, "2.5 us is bucket 2");
        s.record(13_000, 13_000 + 200_000);
        assert_eq!(s.histogram[bucket_of(200_000)], 1, "a log bucket");
        assert_eq!(s.histogram[OVERFLOW], 0);
        s.record(0, 2_000_000_000);
        assert_eq!(s.histogram[OVERFLOW], 1, "overflow bucket");
    }

    #[test]
    fn buckets_are_linear_to_64_us_then_double_then_overflow() {
        assert_eq!(bucket_of(63_999), 63);
        assert_eq!(bucket_of(64_000), 64);
        assert_eq!(bucket_of(127_999), 64);
        assert_eq!(bucket_of(128_000), 65);
        assert_eq!(bucket_of(OVERFLOW_US * 1_000 - 1), OVERFLOW - 1);
        assert_eq!(bucket_of(OVERFLOW_US * 1_000), OVERFLOW);
        assert_eq!(bucket_of(u64::MAX), OVERFLOW);
        // Every latency lies within its bucket's edges, and the edges tile the range.
        for ns in (0..3_000_000u64).step_by(997).chain([u64::MAX / 2]) {
            let b = bucket_of(ns);
            assert!(bucket_floor_us(b) * 1_000 <= ns, "{ns} below bucket {b}");
            assert!(ns / 1_000 < bucket_ceiling_us(b), "{ns} above bucket {b}");
        }
        for b in 0..OVERFLOW {
            assert_eq!(bucket_ceiling_us(b), bucket_floor_us(b + 1));
        }
        assert_eq!(OVERFLOW_US, 1_048_576);
    }

    #[test]
    fn percentiles_read_log_buckets_and_the_overflow_as_the_max() {
        let mut s = LatencyStats::new(10_000_000_000);
        s.record(0, 100_000);
        assert_eq!(s.percentile_ns(99), 128_000);
        s.record(0, 5_000_000_000);
        s.record(0, 5_000_000_000);
        assert_eq!(s.percentile_ns(99), 5_000_000_000);
    }

    #[test]
    fn early_wakeups_count_as_zero_latency() {
        let mut s = LatencyStats::new(1_000);
        assert_eq!(s.record(5_000, 4_000), 6_000);
        assert_eq!((s.min_ns, s.max_ns, s.missed), (0, 0, 0));
        assert_eq!(LatencyStats::new(1).avg_ns(), 0);
    }
}
