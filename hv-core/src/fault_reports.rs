//! How hv reports a partition's stray accesses without letting a guest flood the console.
//!
//! Each partition (and each boot of it: a restart starts afresh) gets a token bucket:
//! [`BURST`] reports at once, then one more per [`REFILL_SECONDS`]; every fault is counted
//! whether it is reported or not, and the next report says how many went unreported
//! before it. Portable and host-tested; time comes in as counter ticks.

/// Reports a partition may make in a row.
pub const BURST: u32 = 16;
/// One more report is allowed per this many seconds.
pub const REFILL_SECONDS: u64 = 1;

/// What to do with one fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Report it; `unreported` faults since the last report were only counted.
    Report { unreported: u64 },
    /// Only count it.
    Count,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultReports {
    tokens: u32,
    /// Counter tick of the last refill.
    refilled_at: u64,
    total: u64,
    unreported: u64,
}

impl Default for FaultReports {
    fn default() -> Self {
        Self::new()
    }
}

impl FaultReports {
    pub const fn new() -> Self {
        Self {
            tokens: BURST,
            refilled_at: 0,
            total: 0,
            unreported: 0,
        }
    }

    /// A fault at counter tick `now` (`hz` ticks per second): report it or count it.
    pub fn note(&mut self, now: u64, hz: u64) -> Verdict {
        self.total += 1;
        let period = hz.saturating_mul(REFILL_SECONDS).max(1);
        if self.refilled_at == 0 {
            self.refilled_at = now;
        }
        let earned = now.saturating_sub(self.refilled_at) / period;
        if earned > 0 {
            self.tokens = self
                .tokens
                .saturating_add(u32::try_from(earned).unwrap_or(u32::MAX))
                .min(BURST);
            self.refilled_at += earned * period;
        }
        if self.tokens == 0 {
            self.unreported += 1;
            return Verdict::Count;
        }
        self.tokens -= 1;
        let unreported = core::mem::take(&mut self.unreported);
        Verdict::Report { unreported }
    }

    /// Every fault noted, reported or not.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 1000;

    #[test]
    fn a_burst_is_reported_then_faults_are_only_counted() {
        let mut f = FaultReports::new();
        for i in 0..BURST {
            assert_eq!(
                f.note(1 + u64::from(i), HZ),
                Verdict::Report { unreported: 0 }
            );
        }
        for _ in 0..100 {
            assert_eq!(f.note(50, HZ), Verdict::Count);
        }
        assert_eq!(f.total(), u64::from(BURST) + 100);
    }

    #[test]
    fn time_brings_reports_back_and_they_say_what_went_unreported() {
        let mut f = FaultReports::new();
        for _ in 0..BURST + 5 {
            f.note(1, HZ);
        }
        // One second later, one more report, naming the five only counted.
        assert_eq!(f.note(1 + HZ, HZ), Verdict::Report { unreported: 5 });
        assert_eq!(f.note(1 + HZ, HZ), Verdict::Count);
        // A long quiet spell refills the whole burst, no more.
        let later = 1 + 1000 * HZ;
        for _ in 0..BURST {
            assert!(matches!(f.note(later, HZ), Verdict::Report { .. }));
        }
        assert_eq!(f.note(later, HZ), Verdict::Count);
    }
}
