//! Wake-up latency statistics for the latency probe (the cyclictest of Bulkhead): every
//! period a thread sleeps to an absolute deadline and records how late it woke.
//!
//! Portable and allocation-free (a fixed histogram), so it can be updated from the probe's
//! hot loop without touching the allocator. Never reads a clock itself: callers pass
//! nanoseconds.

/// Histogram buckets of 1 µs each; the last one collects everything at or above it.
pub const BUCKETS: usize = 64;
const BUCKET_NS: u64 = 1_000;

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
        let bucket = ((latency / BUCKET_NS) as usize).min(BUCKETS - 1);
        self.histogram[bucket] += 1;
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

    /// Smallest latency bound (bucket upper edge, ns) that covers `percent` of samples.
    pub fn percentile_ns(&self, percent: u64) -> u64 {
        let wanted = (self.samples * percent).div_ceil(100);
        let mut seen = 0;
        for (i, &count) in self.histogram.iter().enumerate() {
            seen += count;
            if seen >= wanted && count > 0 {
                return (i as u64 + 1) * BUCKET_NS;
            }
        }
        BUCKETS as u64 * BUCKET_NS
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
        assert_eq!(s.histogram[BUCKETS - 1], 0, "2.5 us is bucket 2");
        s.record(13_000, 13_000 + 200_000);
        assert_eq!(s.histogram[BUCKETS - 1], 1, "overflow bucket");
    }

    #[test]
    fn early_wakeups_count_as_zero_latency() {
        let mut s = LatencyStats::new(1_000);
        assert_eq!(s.record(5_000, 4_000), 6_000);
        assert_eq!((s.min_ns, s.max_ns, s.missed), (0, 0, 0));
        assert_eq!(LatencyStats::new(1).avg_ns(), 0);
    }
}
