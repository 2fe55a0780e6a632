//! Conversion between the generic timer's ticks and nanoseconds without dividing: the
//! factors are computed once from the counter frequency (CNTFRQ, read once at boot), and
//! each conversion is then a few multiplications.
//!
//! Owns the arithmetic only; it never reads a register (callers pass the frequency and the
//! values). Both directions give exactly what the u128 formulas they replace give
//! (`ticks * 1e9 / freq`, truncated to u64), except that [`ClockConversion::ns_to_ticks`]
//! rounds up to the first tick whose time is not before the deadline, so a one-shot timer
//! programmed with it never fires before its deadline.

const NS_PER_S: u64 = 1_000_000_000;

/// `a * b / d` for all `a`, split as `a * q + a * r / d` with `q = b / d`, `r = b % d`; the
/// fraction is a high multiply by `floor(r * 2^64 / d)` (at most one below the exact
/// floor), corrected by one exact comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ratio {
    q: u64,
    r: u64,
    d: u64,
    /// `floor(r * 2^64 / d)`.
    r_mult: u64,
}

impl Ratio {
    const fn new(b: u64, d: u64) -> Ratio {
        let (q, r) = (b / d, b % d);
        Ratio {
            q,
            r,
            d,
            // r < d, so the quotient is below 2^64.
            r_mult: (((r as u128) << 64) / d as u128) as u64,
        }
    }

    /// `floor(a * b / d)` truncated to u64, as `(a as u128 * b as u128 / d as u128) as u64`.
    #[inline]
    fn apply(&self, a: u64) -> u64 {
        if self.r == 0 {
            // A whole ratio (62.5 MHz is 16 ns a tick): one multiplication.
            return a.wrapping_mul(self.q);
        }
        let mut frac = ((u128::from(a) * u128::from(self.r_mult)) >> 64) as u64;
        // frac is floor(a * r / d) or one below it (r_mult is at most 1 below r * 2^64 / d,
        // which costs a * 1 / 2^64 < 1).
        if u128::from(frac + 1) * u128::from(self.d) <= u128::from(a) * u128::from(self.r) {
            frac += 1;
        }
        a.wrapping_mul(self.q).wrapping_add(frac)
    }
}

/// The factors for one counter frequency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockConversion {
    to_ns: Ratio,
    to_ticks: Ratio,
}

impl ClockConversion {
    /// The conversion for a counter running at `freq_hz` (a frequency of 0, a firmware
    /// that did not set CNTFRQ, is taken as 1 Hz rather than dividing by zero).
    pub const fn new(freq_hz: u64) -> ClockConversion {
        let freq = if freq_hz == 0 { 1 } else { freq_hz };
        ClockConversion {
            to_ns: Ratio::new(NS_PER_S, freq),
            to_ticks: Ratio::new(freq, NS_PER_S),
        }
    }

    pub fn freq_hz(&self) -> u64 {
        self.to_ns.d
    }

    /// Nanoseconds at counter value `ticks`: `floor(ticks * 1e9 / freq)`.
    #[inline]
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        self.to_ns.apply(ticks)
    }

    /// The first counter value whose [`ClockConversion::ticks_to_ns`] is at or after
    /// `ns`: a timer set to it fires at the deadline or after, never before.
    #[inline]
    pub fn ns_to_ticks(&self, ns: u64) -> u64 {
        if self.to_ns.r == 0 {
            // A whole number of ns per tick: one (hardware) division, rounded up.
            let per_tick = self.to_ns.q;
            let ticks = ns / per_tick;
            return if ticks * per_tick < ns {
                ticks + 1
            } else {
                ticks
            };
        }
        let floor = self.to_ticks.apply(ns);
        if self.ticks_to_ns(floor) < ns {
            floor + 1
        } else {
            floor
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frequencies of real boards and emulators, and awkward ones.
    const FREQS: [u64; 9] = [
        62_500_000,
        54_000_000,
        19_200_000,
        24_000_000,
        1_000_000_000,
        3_000_000_007,
        1,
        7,
        999_999_937,
    ];

    fn reference_ns(freq: u64, ticks: u64) -> u64 {
        (u128::from(ticks) * 1_000_000_000 / u128::from(freq)) as u64
    }

    fn values() -> impl Iterator<Item = u64> {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let random = core::iter::from_fn(move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Some(x)
        });
        (0..2_000u64)
            .chain([u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) - 1, 1 << 40])
            .chain(random.take(20_000).flat_map(|v| [v, v >> 20, v >> 40]))
    }

    #[test]
    fn ticks_to_ns_is_the_u128_formula_exactly() {
        for freq in FREQS {
            let c = ClockConversion::new(freq);
            for t in values() {
                assert_eq!(
                    c.ticks_to_ns(t),
                    reference_ns(freq, t),
                    "freq {freq} ticks {t}"
                );
            }
        }
    }

    #[test]
    fn ns_to_ticks_is_the_first_tick_not_before_the_deadline() {
        for freq in FREQS {
            let c = ClockConversion::new(freq);
            // Deadlines whose tick does not overflow (below the last tick's time).
            let last = c.ticks_to_ns(u64::MAX - 1);
            for ns in values().filter(|&ns| ns < last / 2) {
                let t = c.ns_to_ticks(ns);
                assert!(c.ticks_to_ns(t) >= ns, "freq {freq} ns {ns}: fires early");
                assert!(
                    t == 0 || c.ticks_to_ns(t - 1) < ns,
                    "freq {freq} ns {ns}: not the first tick"
                );
            }
        }
    }

    #[test]
    fn at_62_5_mhz_every_tick_is_16_ns() {
        let c = ClockConversion::new(62_500_000);
        assert_eq!(c.ticks_to_ns(3), 48);
        assert_eq!(c.ns_to_ticks(48), 3);
        assert_eq!(c.ns_to_ticks(49), 4, "rounded up, never early");
        assert_eq!(ClockConversion::new(0).freq_hz(), 1);
    }
}
