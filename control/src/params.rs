//! The control loop's run-time parameters and their ranges.
//!
//! Owns what an operator may change while the loop runs (from Linux through the channel), the
//! range each value must lie in, and the refusal that names the parameter and its range. It
//! never applies anything: [`crate::ControlLoop`] does, after validation here.

use core::fmt;

/// The demo's tuning: all three closed-loop poles at -20 rad/s on the CTMS motor.
///
/// With derivative on the measurement the loop's characteristic polynomial is
/// `s³ + (12 + 2 Kd) s² + (20.02 + 2 Kp) s + 2 Ki` (from `(Js+b)(Ls+R) + K²` divided by `JL`
/// and the motor's gain `K/(JL) = 2`); matching `(s + 20)³` gives these gains, and the
/// set-point weight `β = Ki / (20 Kp)` cancels the loop's zero so that the set-point response
/// is `400 / (s + 20)²`: critically damped, no overshoot, 10–90 % rise 0.168 s, 2 % settling
/// 0.292 s while the bridge does not saturate.
pub mod tuning {
    /// Proportional gain, V/(rad/s).
    pub const KP: f64 = 589.99;
    /// Integral gain, V/rad.
    pub const KI: f64 = 4000.0;
    /// Derivative gain, V·s²/rad.
    pub const KD: f64 = 24.0;
    /// Set-point weight.
    pub const SETPOINT_WEIGHT: f64 = KI / (20.0 * KP);
    /// Derivative filter time constant, s: a pole at -200 rad/s, ten times the loop's.
    pub const DERIVATIVE_FILTER: f64 = 0.005;
}

/// One run-time parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Speed set-point, rad/s.
    Setpoint,
    /// Proportional gain.
    Kp,
    /// Integral gain.
    Ki,
    /// Derivative gain.
    Kd,
    /// Load torque on the motor, N·m (the disturbance an operator injects).
    Disturbance,
    /// Largest set-point rate, rad/s² (0: steps are followed at once).
    SetpointRamp,
    /// Loop period, µs.
    PeriodUs,
    /// Consecutive deadline misses that trip the watchdog.
    WatchdogMisses,
}

/// Every parameter, in the order [`Parameters`] holds them.
pub const ALL_PARAMS: [Param; 8] = [
    Param::Setpoint,
    Param::Kp,
    Param::Ki,
    Param::Kd,
    Param::Disturbance,
    Param::SetpointRamp,
    Param::PeriodUs,
    Param::WatchdogMisses,
];

/// The inclusive range a parameter must lie in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// Smallest allowed value.
    pub min: f64,
    /// Largest allowed value.
    pub max: f64,
    /// Whether only whole numbers are allowed.
    pub whole: bool,
    /// The unit, for messages.
    pub unit: &'static str,
}

impl Range {
    const fn real(min: f64, max: f64, unit: &'static str) -> Self {
        Self {
            min,
            max,
            whole: false,
            unit,
        }
    }

    const fn whole(min: u32, max: u32, unit: &'static str) -> Self {
        Self {
            min: min as f64,
            max: max as f64,
            whole: true,
            unit,
        }
    }

    /// Whether `value` is allowed (NaN never is).
    pub fn contains(&self, value: f64) -> bool {
        let in_range = value >= self.min && value <= self.max;
        in_range && (!self.whole || value == (value as u32) as f64)
    }
}

impl Param {
    /// The name operators use (`rtctl set NAME=VALUE`).
    pub const fn name(self) -> &'static str {
        match self {
            Param::Setpoint => "setpoint",
            Param::Kp => "kp",
            Param::Ki => "ki",
            Param::Kd => "kd",
            Param::Disturbance => "disturbance",
            Param::SetpointRamp => "setpoint_ramp",
            Param::PeriodUs => "period_us",
            Param::WatchdogMisses => "watchdog_misses",
        }
    }

    /// The parameter called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        ALL_PARAMS.into_iter().find(|p| p.name() == name)
    }

    /// The range the parameter must lie in. The set-point stays below what the 24 V bridge
    /// holds unloaded (2.4 rad/s); the disturbance reaches ±1 N·m, an overload the bridge
    /// cannot hold (it needs 100 A), so an operator can drive the plant out of its envelope
    /// on purpose; the gains reach about three times the demo's tuning.
    pub const fn range(self) -> Range {
        match self {
            Param::Setpoint => Range::real(-2.0, 2.0, "rad/s"),
            Param::Kp => Range::real(0.0, 2000.0, "V/(rad/s)"),
            Param::Ki => Range::real(0.0, 20000.0, "V/rad"),
            Param::Kd => Range::real(0.0, 100.0, "V·s²/rad"),
            Param::Disturbance => Range::real(-1.0, 1.0, "N·m"),
            Param::SetpointRamp => Range::real(0.0, 100.0, "rad/s²"),
            Param::PeriodUs => Range::whole(100, 10_000, "µs"),
            Param::WatchdogMisses => Range::whole(1, 1000, "periods"),
        }
    }
}

/// A refused parameter value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamError {
    /// The parameter.
    pub param: Param,
    /// The refused value.
    pub value: f64,
}

impl ParamError {
    /// The range the value should have been in.
    pub fn range(&self) -> Range {
        self.param.range()
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.range();
        let kind = if r.whole { "a whole number " } else { "" };
        write!(
            f,
            "{} = {} refused: must be {}within {}..={} {}",
            self.param.name(),
            self.value,
            kind,
            r.min,
            r.max,
            r.unit
        )
    }
}

/// A complete, plain parameter block: what the channel will publish RCU-style for the RT
/// side to read each period. `#[repr(C)]` with fixed-size fields so it can sit in shared
/// memory as is.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Parameters {
    /// Speed set-point, rad/s.
    pub setpoint: f64,
    /// Proportional gain, V/(rad/s).
    pub kp: f64,
    /// Integral gain, V/rad.
    pub ki: f64,
    /// Derivative gain, V·s²/rad.
    pub kd: f64,
    /// Load torque, N·m.
    pub disturbance: f64,
    /// Largest set-point rate, rad/s² (0: none).
    pub setpoint_ramp: f64,
    /// Loop period, µs.
    pub period_us: u32,
    /// Consecutive deadline misses that trip the watchdog.
    pub watchdog_misses: u32,
}

/// Size of a parameter block, bytes: a layout change must be deliberate (Linux writes it).
pub const PARAMETERS_SIZE: usize = 56;

const _: () = assert!(core::mem::size_of::<Parameters>() == PARAMETERS_SIZE);
const _: () = assert!(core::mem::align_of::<Parameters>() == 8);

impl Default for Parameters {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Parameters {
    /// 1 rad/s at 1 kHz with the demo's tuning, no load, no ramp, trip after 3 misses.
    pub const DEFAULT: Self = Self {
        setpoint: 1.0,
        kp: tuning::KP,
        ki: tuning::KI,
        kd: tuning::KD,
        disturbance: 0.0,
        setpoint_ramp: 0.0,
        period_us: 1000,
        watchdog_misses: 3,
    };

    /// The value of `param`.
    pub fn get(&self, param: Param) -> f64 {
        match param {
            Param::Setpoint => self.setpoint,
            Param::Kp => self.kp,
            Param::Ki => self.ki,
            Param::Kd => self.kd,
            Param::Disturbance => self.disturbance,
            Param::SetpointRamp => self.setpoint_ramp,
            Param::PeriodUs => f64::from(self.period_us),
            Param::WatchdogMisses => f64::from(self.watchdog_misses),
        }
    }

    /// Sets `param` to `value` if it is in range; otherwise leaves the block unchanged.
    pub fn set(&mut self, param: Param, value: f64) -> Result<(), ParamError> {
        if !param.range().contains(value) {
            return Err(ParamError { param, value });
        }
        match param {
            Param::Setpoint => self.setpoint = value,
            Param::Kp => self.kp = value,
            Param::Ki => self.ki = value,
            Param::Kd => self.kd = value,
            Param::Disturbance => self.disturbance = value,
            Param::SetpointRamp => self.setpoint_ramp = value,
            // In range and whole, so the casts are exact.
            Param::PeriodUs => self.period_us = value as u32,
            Param::WatchdogMisses => self.watchdog_misses = value as u32,
        }
        Ok(())
    }

    /// The first out-of-range value in the block, if any (a block read from shared memory
    /// is checked whole before any of it is used).
    pub fn validate(&self) -> Result<(), ParamError> {
        for param in ALL_PARAMS {
            let value = self.get(param);
            if !param.range().contains(value) {
                return Err(ParamError { param, value });
            }
        }
        Ok(())
    }

    /// The period in nanoseconds.
    pub fn period_ns(&self) -> u64 {
        u64::from(self.period_us) * 1000
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn the_defaults_are_in_range() {
        assert_eq!(Parameters::DEFAULT.validate(), Ok(()));
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_parameter_and_its_range() {
        let mut p = Parameters::DEFAULT;
        let err = p.set(Param::Kp, 5000.0).unwrap_err();
        assert_eq!(err.param, Param::Kp);
        assert_eq!(
            err.to_string(),
            "kp = 5000 refused: must be within 0..=2000 V/(rad/s)"
        );
        assert_eq!(p, Parameters::DEFAULT);

        let err = p.set(Param::PeriodUs, 1500.5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "period_us = 1500.5 refused: must be a whole number within 100..=10000 µs"
        );
        assert_eq!(
            p.set(Param::WatchdogMisses, 0.0).unwrap_err().to_string(),
            "watchdog_misses = 0 refused: must be a whole number within 1..=1000 periods"
        );
        assert_eq!(
            p.set(Param::Setpoint, -2.5).unwrap_err().to_string(),
            "setpoint = -2.5 refused: must be within -2..=2 rad/s"
        );
        assert_eq!(p, Parameters::DEFAULT);
    }

    #[test]
    fn nan_and_infinities_are_refused_everywhere() {
        for param in ALL_PARAMS {
            let mut p = Parameters::DEFAULT;
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                assert!(
                    p.set(param, bad).is_err(),
                    "{} accepted {bad}",
                    param.name()
                );
            }
        }
    }

    #[test]
    fn the_bounds_themselves_are_accepted() {
        for param in ALL_PARAMS {
            let mut p = Parameters::DEFAULT;
            let r = param.range();
            p.set(param, r.min).unwrap();
            assert_eq!(p.get(param), r.min);
            p.set(param, r.max).unwrap();
            assert_eq!(p.get(param), r.max);
        }
    }

    #[test]
    fn a_block_is_validated_whole() {
        let mut p = Parameters::DEFAULT;
        p.kd = -1.0;
        p.period_us = 50;
        assert_eq!(
            p.validate(),
            Err(ParamError {
                param: Param::Kd,
                value: -1.0
            })
        );
        p.kd = 1.0;
        assert_eq!(p.validate().unwrap_err().param, Param::PeriodUs);
    }

    #[test]
    fn the_block_layout_has_no_padding() {
        use core::mem::offset_of;
        assert_eq!(offset_of!(Parameters, setpoint_ramp), 40);
        assert_eq!(offset_of!(Parameters, period_us), 48);
        assert_eq!(offset_of!(Parameters, watchdog_misses), 52);
    }

    #[test]
    fn names_round_trip() {
        for param in ALL_PARAMS {
            assert_eq!(Param::from_name(param.name()), Some(param));
        }
        assert_eq!(Param::from_name("gain"), None);
    }
}
