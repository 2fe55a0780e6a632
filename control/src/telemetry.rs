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

impl Telemetry {
    /// The record's fields as raw 64-bit words in layout order (floats by their bits), for
    /// comparisons that must tell -0.0 from 0.0 and one NaN from another.
    pub fn words(&self) -> [u64; 10] {
        [
            self.seq,
            self.time_ns,
            self.setpoint.to_bits(),
            self.measurement.to_bits(),
            self.effort.to_bits(),
            self.current.to_bits(),
            u64::from(self.latency_ns),
            u64::from(self.deadline_misses),
            u64::from(self.consecutive_misses),
            u64::from(self.watchdog),
        ]
    }
}

/// A 64-bit FNV-1a hash over a run's records: the RT partition can print the fingerprint of
/// a scripted run and a host test compare it with the host's, which checks the bit-for-bit
/// determinism across targets without shipping every record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Self::new()
    }
}

impl Fingerprint {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// The fingerprint of no records.
    pub const fn new() -> Self {
        Self(Self::OFFSET)
    }

    /// Adds one record (its words, little-endian bytes).
    pub fn add(&mut self, record: &Telemetry) {
        for word in record.words() {
            for byte in word.to_le_bytes() {
                self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(Self::PRIME);
            }
        }
    }

    /// The hash so far.
    pub const fn value(&self) -> u64 {
        self.0
    }
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

    #[test]
    fn the_fingerprint_is_fnv1a_over_the_words() {
        // FNV-1a of the single byte 0x61 ('a') is a published test vector.
        let mut h = Fingerprint::new();
        h.0 = (h.0 ^ 0x61).wrapping_mul(Fingerprint::PRIME);
        assert_eq!(h.value(), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn any_change_to_a_record_changes_the_fingerprint() {
        let base = Telemetry {
            seq: 7,
            effort: 3.5,
            ..Telemetry::default()
        };
        let mut reference = Fingerprint::new();
        reference.add(&base);
        let variants = [
            Telemetry { seq: 8, ..base },
            Telemetry { time_ns: 1, ..base },
            Telemetry {
                setpoint: -0.0,
                ..base
            },
            Telemetry {
                measurement: 1e-300,
                ..base
            },
            Telemetry {
                effort: 3.5000000000000004,
                ..base
            },
            Telemetry {
                current: 1.0,
                ..base
            },
            Telemetry {
                latency_ns: 1,
                ..base
            },
            Telemetry {
                deadline_misses: 1,
                ..base
            },
            Telemetry {
                consecutive_misses: 1,
                ..base
            },
            Telemetry {
                watchdog: 1,
                ..base
            },
        ];
        for v in variants {
            let mut h = Fingerprint::new();
            h.add(&v);
            assert_ne!(h, reference, "{v:?}");
        }
        let mut again = Fingerprint::new();
        again.add(&base);
        assert_eq!(again, reference);
    }
}
