//! The watchdog: deadline-miss counting and the safe-state latch.
//!
//! Owns the decision whether the actuator may follow the controller. Once per period it is
//! told whether the control loop met its deadline and whether the plant is inside its
//! envelope; after `limit` misses in a row, or at the first envelope exit, it trips and from
//! then on turns every actuation into [`Actuation::SafeStop`] until someone re-arms it. It
//! never re-arms itself and never computes a control output.
//!
//! On target it runs in the highest-priority thread, released by its own timer: "the loop
//! met its deadline" is then "the loop's completion count advanced since my last release",
//! so a loop that stalls entirely still counts as missing.

use crate::motor::{Actuation, EnvelopeExit};

/// Why the watchdog tripped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TripReason {
    /// This many deadlines in a row were missed (the configured limit).
    DeadlineMisses {
        /// Consecutive misses at the trip.
        consecutive: u32,
    },
    /// The plant left its envelope.
    Envelope(EnvelopeExit),
}

/// The watchdog's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchdogState {
    /// The actuator follows the controller.
    Armed,
    /// The actuator is held in its safe state.
    Tripped(TripReason),
}

impl WatchdogState {
    /// The state as telemetry carries it: 0 armed, 1 tripped on deadline misses, 2 tripped
    /// on speed, 3 tripped on current.
    pub const fn code(self) -> u32 {
        match self {
            WatchdogState::Armed => 0,
            WatchdogState::Tripped(TripReason::DeadlineMisses { .. }) => 1,
            WatchdogState::Tripped(TripReason::Envelope(EnvelopeExit::Speed)) => 2,
            WatchdogState::Tripped(TripReason::Envelope(EnvelopeExit::Current)) => 3,
        }
    }
}

/// Why a re-arm was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RearmRefused {
    /// The plant was outside its envelope at the last observation.
    OutsideEnvelope(EnvelopeExit),
}

impl core::fmt::Display for RearmRefused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RearmRefused::OutsideEnvelope(EnvelopeExit::Speed) => {
                f.write_str("watchdog not re-armed: the plant's speed is outside its envelope")
            }
            RearmRefused::OutsideEnvelope(EnvelopeExit::Current) => {
                f.write_str("watchdog not re-armed: the plant's current is outside its envelope")
            }
        }
    }
}

/// The deadline/envelope watchdog.
#[derive(Clone, Debug)]
pub struct Watchdog {
    limit: u32,
    consecutive: u32,
    total: u32,
    state: WatchdogState,
    last_envelope: Result<(), EnvelopeExit>,
}

impl Watchdog {
    /// An armed watchdog that trips after `limit` consecutive misses (`limit` is at least 1;
    /// 0 is treated as 1).
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit.max(1),
            consecutive: 0,
            total: 0,
            state: WatchdogState::Armed,
            last_envelope: Ok(()),
        }
    }

    /// Changes the miss limit; takes effect at the next observation.
    pub fn set_limit(&mut self, limit: u32) {
        self.limit = limit.max(1);
    }

    /// The miss limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The state.
    pub fn state(&self) -> WatchdogState {
        self.state
    }

    /// Misses in a row up to the last observation.
    pub fn consecutive_misses(&self) -> u32 {
        self.consecutive
    }

    /// Misses since the watchdog was made (re-arming does not clear it), saturating.
    pub fn total_misses(&self) -> u32 {
        self.total
    }

    /// One period's observation. Returns the state after it.
    pub fn observe(
        &mut self,
        deadline_met: bool,
        envelope: Result<(), EnvelopeExit>,
    ) -> WatchdogState {
        if deadline_met {
            self.consecutive = 0;
        } else {
            self.consecutive = self.consecutive.saturating_add(1);
            self.total = self.total.saturating_add(1);
        }
        self.last_envelope = envelope;
        if self.state == WatchdogState::Armed {
            // An envelope exit is the more urgent reason and is reported when both happen.
            if let Err(exit) = envelope {
                self.state = WatchdogState::Tripped(TripReason::Envelope(exit));
            } else if self.consecutive >= self.limit {
                self.state = WatchdogState::Tripped(TripReason::DeadlineMisses {
                    consecutive: self.consecutive,
                });
            }
        }
        self.state
    }

    /// What the actuator may do: `requested` while armed, the safe state once tripped.
    pub fn gate(&self, requested: Actuation) -> Actuation {
        match self.state {
            WatchdogState::Armed => requested,
            WatchdogState::Tripped(_) => Actuation::SafeStop,
        }
    }

    /// Trips at once for `reason` (an armed watchdog only; a tripped one keeps its first
    /// reason): what a supervisor outside the loop does when it sees the loop stall or the
    /// plant leave its envelope between releases. Returns the state after it.
    pub fn trip(&mut self, reason: TripReason) -> WatchdogState {
        if self.state == WatchdogState::Armed {
            self.state = WatchdogState::Tripped(reason);
        }
        if let TripReason::Envelope(exit) = reason {
            self.last_envelope = Err(exit);
        }
        self.state
    }

    /// Re-arms a tripped watchdog (clearing the consecutive count), unless the plant was
    /// outside its envelope at the last observation. Re-arming an armed watchdog does nothing.
    pub fn rearm(&mut self) -> Result<(), RearmRefused> {
        if let Err(exit) = self.last_envelope {
            return Err(RearmRefused::OutsideEnvelope(exit));
        }
        self.consecutive = 0;
        self.state = WatchdogState::Armed;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSIDE: Result<(), EnvelopeExit> = Ok(());
    const DRIVE: Actuation = Actuation::Drive { volts: 5.0 };

    #[test]
    fn trips_after_exactly_n_consecutive_misses() {
        for n in [1u32, 2, 5, 17] {
            let mut wd = Watchdog::new(n);
            for k in 1..n {
                assert_eq!(
                    wd.observe(false, INSIDE),
                    WatchdogState::Armed,
                    "n {n} miss {k}"
                );
            }
            assert_eq!(
                wd.observe(false, INSIDE),
                WatchdogState::Tripped(TripReason::DeadlineMisses { consecutive: n })
            );
            assert_eq!(wd.gate(DRIVE), Actuation::SafeStop);
        }
    }

    #[test]
    fn a_met_deadline_resets_the_run_but_not_the_total() {
        let mut wd = Watchdog::new(3);
        for _ in 0..10 {
            wd.observe(false, INSIDE);
            wd.observe(false, INSIDE);
            wd.observe(true, INSIDE);
        }
        assert_eq!(wd.state(), WatchdogState::Armed);
        assert_eq!(wd.total_misses(), 20);
        assert_eq!(wd.consecutive_misses(), 0);
        assert_eq!(wd.gate(DRIVE), DRIVE);
    }

    #[test]
    fn trips_at_the_first_envelope_exit() {
        let mut wd = Watchdog::new(100);
        wd.observe(true, INSIDE);
        assert_eq!(
            wd.observe(true, Err(EnvelopeExit::Current)),
            WatchdogState::Tripped(TripReason::Envelope(EnvelopeExit::Current))
        );
        assert_eq!(wd.state().code(), 3);
    }

    #[test]
    fn stays_tripped_with_its_first_reason_until_rearmed() {
        let mut wd = Watchdog::new(2);
        wd.observe(false, INSIDE);
        wd.observe(false, INSIDE);
        let tripped = WatchdogState::Tripped(TripReason::DeadlineMisses { consecutive: 2 });
        for _ in 0..1000 {
            assert_eq!(wd.observe(true, INSIDE), tripped);
        }
        wd.observe(true, Err(EnvelopeExit::Speed));
        assert_eq!(wd.state(), tripped);
        assert_eq!(wd.gate(DRIVE), Actuation::SafeStop);
    }

    #[test]
    fn rearm_is_refused_outside_the_envelope_and_clears_the_run_inside() {
        let mut wd = Watchdog::new(2);
        wd.observe(false, Err(EnvelopeExit::Speed));
        assert_eq!(
            wd.rearm(),
            Err(RearmRefused::OutsideEnvelope(EnvelopeExit::Speed))
        );
        assert_ne!(wd.state(), WatchdogState::Armed);
        wd.observe(false, INSIDE);
        assert_eq!(wd.rearm(), Ok(()));
        assert_eq!(wd.state(), WatchdogState::Armed);
        assert_eq!(wd.consecutive_misses(), 0);
        assert_eq!(wd.total_misses(), 2);
        // A fresh run of misses is needed to trip again.
        assert_eq!(wd.observe(false, INSIDE), WatchdogState::Armed);
    }

    #[test]
    fn an_outside_trip_latches_its_reason_and_an_envelope_trip_blocks_the_rearm() {
        let mut wd = Watchdog::new(5);
        let stalled = TripReason::DeadlineMisses { consecutive: 5 };
        assert_eq!(wd.trip(stalled), WatchdogState::Tripped(stalled));
        assert_eq!(
            wd.trip(TripReason::Envelope(EnvelopeExit::Speed)),
            WatchdogState::Tripped(stalled)
        );
        assert_eq!(wd.gate(DRIVE), Actuation::SafeStop);
        assert!(wd.rearm().is_err());
        wd.observe(true, INSIDE);
        assert_eq!(wd.rearm(), Ok(()));
    }

    #[test]
    fn a_lowered_limit_applies_to_the_run_in_progress() {
        let mut wd = Watchdog::new(10);
        for _ in 0..4 {
            wd.observe(false, INSIDE);
        }
        wd.set_limit(3);
        assert_eq!(
            wd.observe(false, INSIDE),
            WatchdogState::Tripped(TripReason::DeadlineMisses { consecutive: 5 })
        );
    }
}
