//! The telemetry record the control loop produces once per period.
//!
//! Owns the record's layout: `#[repr(C)]`, fixed-size fields, no padding and no pointers, so
//! the record can later be copied as is into a per-CPU block of shared memory and read by
//! Linux. It never decides what goes into a record ([`crate::ControlLoop`] fills it in).

/// One period's telemetry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Telemetry {
    /// Period number, from 1 (0: no period has run yet).
    pub seq: u64,
    /// Simulated time at the end of the period, ns.
    pub time_ns: u64,
    /// The set-point the controller followed (after ramp limiting), rad/s.
    pub setpoint: f64,
    /// The speed measurement taken at the period's release, rad/s.
    pub measurement: f64,
    /// The armature voltage commanded this period, V (0 in the safe state); it reaches the
    /// motor `latency_ns` after the release, or at the next release if that is later.
    pub effort: f64,
    /// The armature current at the end of the period, A.
    pub current: f64,
    /// Release-to-actuation latency reported for the period, ns.
    pub latency_ns: u32,
    /// Deadline misses since start, as the watchdog counted them at this period's release
    /// (a miss in this period shows in `latency_ns` now and in the counts next period).
    pub deadline_misses: u32,
    /// Deadline misses in a row, counted the same way.
    pub consecutive_misses: u32,
    /// The watchdog's state, [`crate::WatchdogState::code`].
    pub watchdog: u32,
}

/// Size of a record, bytes: a layout change must be deliberate (Linux reads it).
pub const TELEMETRY_SIZE: usize = 64;

const _: () = assert!(core::mem::size_of::<Telemetry>() == TELEMETRY_SIZE);
const _: () = assert!(core::mem::align_of::<Telemetry>() == 8);

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn the_layout_has_no_padding() {
        // Each field starts where the previous one ends.
        assert_eq!(offset_of!(Telemetry, seq), 0);
        assert_eq!(offset_of!(Telemetry, time_ns), 8);
        assert_eq!(offset_of!(Telemetry, setpoint), 16);
        assert_eq!(offset_of!(Telemetry, measurement), 24);
        assert_eq!(offset_of!(Telemetry, effort), 32);
        assert_eq!(offset_of!(Telemetry, current), 40);
        assert_eq!(offset_of!(Telemetry, latency_ns), 48);
        assert_eq!(offset_of!(Telemetry, deadline_misses), 52);
        assert_eq!(offset_of!(Telemetry, consecutive_misses), 56);
        assert_eq!(offset_of!(Telemetry, watchdog), 60);
    }
}
