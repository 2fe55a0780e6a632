//! The Linux -> RT doorbell's rate limit: when a ring from Linux may raise the RT
//! partition's doorbell line, and when a ring that came too soon is delivered.
//!
//! Coalescing itself is the GIC's: hv makes the line pending, and a pending line that is
//! made pending again stays one interrupt until the RT vCPU acknowledges it. This state
//! machine bounds what is left: at most one raise per `min_interval` (the board file's
//! `min_interval_us`), a ring inside the interval held (never lost) and raised when the
//! interval is over, at the next ring or tick ([`LinuxToRt::due`]). So a Linux that rings
//! a million times costs the RT vCPU at most 1 + elapsed / interval interrupts.
//!
//! Portable and host-tested; times are in whatever counter ticks the caller passes. It
//! only ever runs on Linux's CPUs (the RT side never takes its lock).

/// The state of the RT partition's doorbell as Linux's rings drive it.
#[derive(Clone, Debug)]
pub struct LinuxToRt {
    interval: u64,
    last_raise: Option<u64>,
    held: bool,
    rings: u64,
    raised: u64,
}

impl LinuxToRt {
    /// A doorbell raised at most once per `interval` ticks.
    pub const fn new(interval: u64) -> Self {
        Self {
            interval,
            last_raise: None,
            held: false,
            rings: 0,
            raised: 0,
        }
    }

    fn open(&self, now: u64) -> bool {
        self.last_raise
            .is_none_or(|last| now.wrapping_sub(last) >= self.interval)
    }

    fn raise(&mut self, now: u64) -> bool {
        self.last_raise = Some(now);
        self.held = false;
        self.raised += 1;
        true
    }

    /// Linux rang at `now`: true if hv raises the line now; false if the ring is held
    /// until the interval since the last raise is over.
    pub fn ring(&mut self, now: u64) -> bool {
        self.rings += 1;
        if self.open(now) {
            self.raise(now)
        } else {
            self.held = true;
            false
        }
    }

    /// A tick at `now`: true if a held ring is due and hv raises the line now.
    pub fn due(&mut self, now: u64) -> bool {
        self.held && self.open(now) && self.raise(now)
    }

    /// Whether a ring waits for the interval to end.
    pub fn held(&self) -> bool {
        self.held
    }

    /// Rings Linux made.
    pub fn rings(&self) -> u64 {
        self.rings
    }

    /// Times the line was raised.
    pub fn raised(&self) -> u64 {
        self.raised
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_first_ring_raises_at_once_and_a_quick_second_waits() {
        let mut d = LinuxToRt::new(100);
        assert!(d.ring(1_000));
        assert!(!d.ring(1_050), "inside the interval");
        assert!(d.held());
        assert!(!d.due(1_099));
        assert!(d.due(1_100), "due exactly one interval after the raise");
        assert!(!d.due(5_000), "raised once");
        assert_eq!((d.rings(), d.raised()), (2, 2));
    }

    #[test]
    fn a_storm_is_one_raise_per_interval() {
        let mut d = LinuxToRt::new(1_000);
        let raises = (0..1_000_000u64).filter(|&t| d.ring(t)).count();
        assert_eq!(raises, 1_000);
        assert_eq!(d.rings(), 1_000_000);
    }

    #[derive(Clone, Debug)]
    enum Event {
        Ring(u64),
        Tick(u64),
    }

    fn events() -> impl Strategy<Value = Vec<Event>> {
        proptest::collection::vec(
            (any::<bool>(), 0u64..3_000).prop_map(|(ring, dt)| {
                if ring {
                    Event::Ring(dt)
                } else {
                    Event::Tick(dt)
                }
            }),
            1..200,
        )
    }

    proptest! {
        /// Raises are at least one interval apart, never more than the rings, bounded by
        /// 1 + elapsed / interval, and no ring is lost: the last ring is followed by a
        /// raise at or after it once a tick comes an interval later.
        #[test]
        fn raises_are_spaced_bounded_and_cover_every_ring(
            interval in 1u64..2_000,
            script in events(),
        ) {
            let mut d = LinuxToRt::new(interval);
            let mut now = 0u64;
            let mut raises: Vec<u64> = Vec::new();
            let mut last_ring = None;
            for e in &script {
                let raised = match *e {
                    Event::Ring(dt) => {
                        now += dt;
                        last_ring = Some(now);
                        d.ring(now)
                    }
                    Event::Tick(dt) => {
                        now += dt;
                        d.due(now)
                    }
                };
                if raised {
                    raises.push(now);
                }
            }
            for pair in raises.windows(2) {
                prop_assert!(pair[1] - pair[0] >= interval);
            }
            prop_assert!(d.raised() <= d.rings());
            prop_assert_eq!(d.raised(), raises.len() as u64);
            if let (Some(&first), Some(&last)) = (raises.first(), raises.last()) {
                prop_assert!(raises.len() as u64 <= 1 + (last - first) / interval);
            }
            // Liveness: a tick one interval after everything delivers what was held.
            if d.due(now + interval) {
                raises.push(now + interval);
            }
            prop_assert!(!d.held());
            if let Some(ring) = last_ring {
                prop_assert!(raises.last().is_some_and(|&r| r >= ring));
            }
        }
    }
}
