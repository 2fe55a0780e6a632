//! Typed parameters: each has a name, a unit, a fixed-point format, a range and a default,
//! and a schema (an ordered list of them) has an id derived from all of that, so a version
//! published for another schema is never taken for this one. The RT side checks every
//! accepted value against its range (a checksum is no defence against a hostile writer);
//! `rtctl set` refuses out-of-range input with the range and unit in the message.
//!
//! This module parses and formats values; it never touches the region.

use core::fmt;

use crate::checksum::Fnv64;

/// One parameter. Values are `i64` in units of 10^-decimals of `unit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub unit: &'static str,
    /// Digits after the decimal point (0..=6).
    pub decimals: u32,
    pub min: i64,
    pub max: i64,
    pub default: i64,
    pub help: &'static str,
}

/// An ordered list of parameters; a version's payload word `i` is parameter `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schema {
    pub name: &'static str,
    pub params: &'static [ParamSpec],
    /// Derived from every name, unit, format and range: equal ids, equal schemas.
    pub id: u32,
}

/// The most parameters a schema may hold (one version's payload).
pub const MAX_PARAMS: usize = 60;

impl Schema {
    pub const fn new(name: &'static str, params: &'static [ParamSpec]) -> Self {
        assert!(params.len() <= MAX_PARAMS);
        let mut h = Fnv64::new().bytes(name.as_bytes());
        let mut i = 0;
        while i < params.len() {
            let p = &params[i];
            assert!(p.decimals <= 6 && p.min <= p.default && p.default <= p.max);
            h = h
                .bytes(p.name.as_bytes())
                .word(0)
                .bytes(p.unit.as_bytes())
                .word(p.decimals as u64)
                .word(p.min as u64)
                .word(p.max as u64);
            i += 1;
        }
        let h = h.finish();
        // Never 0, so a zeroed slot never matches a schema.
        let id = (h ^ h >> 32) as u32 | 1;
        Schema { name, params, id }
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    pub fn get(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The payload of a version holding every default.
    pub fn defaults(&self, out: &mut [u64]) -> usize {
        for (o, p) in out.iter_mut().zip(self.params) {
            *o = p.default as u64;
        }
        self.params.len().min(out.len())
    }

    /// Whether `words` is a payload of this schema: its length, and every value in range.
    pub fn check(&self, words: &[u64]) -> Result<(), SchemaError> {
        if words.len() != self.params.len() {
            return Err(SchemaError::Length {
                found: words.len(),
                expected: self.params.len(),
            });
        }
        for (index, (p, &w)) in self.params.iter().zip(words).enumerate() {
            if !(p.min..=p.max).contains(&(w as i64)) {
                return Err(SchemaError::Range { index });
            }
        }
        Ok(())
    }

    /// Parses `NAME=VALUE` into the parameter's index and value, refusing unknown names,
    /// malformed numbers and values out of range.
    pub fn parse_assignment<'s>(&self, text: &'s str) -> Result<(usize, i64), SetError<'s>> {
        let (name, value) = text.split_once('=').ok_or(SetError::NoEquals)?;
        let (name, value) = (name.trim(), value.trim());
        let index = self.index(name).ok_or(SetError::UnknownName(name))?;
        let spec = &self.params[index];
        let parsed = parse_fixed(value, spec.decimals)
            .map_err(|why| SetError::Value { spec: *spec, why })?;
        if !(spec.min..=spec.max).contains(&parsed) {
            return Err(SetError::OutOfRange {
                spec: *spec,
                value: parsed,
            });
        }
        Ok((index, parsed))
    }
}

/// Why a payload is not one of this schema's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaError {
    Length { found: usize, expected: usize },
    Range { index: usize },
}

/// A fixed-point value shown with its unit: `21.500 degC`.
#[derive(Clone, Copy, Debug)]
pub struct Shown<'a> {
    pub spec: &'a ParamSpec,
    pub value: i64,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Fixed(self.value, self.spec.decimals))?;
        if !self.spec.unit.is_empty() {
            write!(f, " {}", self.spec.unit)?;
        }
        Ok(())
    }
}

/// `value` / 10^decimals, written with exactly `decimals` digits after the point.
#[derive(Clone, Copy, Debug)]
pub struct Fixed(pub i64, pub u32);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Fixed(value, decimals) = *self;
        if decimals == 0 {
            return write!(f, "{value}");
        }
        let scale = 10u64.pow(decimals);
        let magnitude = value.unsigned_abs();
        let sign = if value < 0 { "-" } else { "" };
        write!(
            f,
            "{sign}{}.{:0width$}",
            magnitude / scale,
            magnitude % scale,
            width = decimals as usize
        )
    }
}

/// Why a value does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueError {
    NotANumber,
    TooManyDecimals,
    TooLarge,
}

/// Parses `-12.5` with `decimals` = 3 into -12500.
pub fn parse_fixed(text: &str, decimals: u32) -> Result<i64, ValueError> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return Err(ValueError::NotANumber);
    }
    if frac.len() > decimals as usize {
        return Err(ValueError::TooManyDecimals);
    }
    let mut value: i64 = 0;
    let padded = frac.len()..decimals as usize;
    for b in int.bytes().chain(frac.bytes()).chain(padded.map(|_| b'0')) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or(ValueError::TooLarge)?;
    }
    Ok(if negative { -value } else { value })
}

/// Why `rtctl set NAME=VALUE` is refused; the message says what would be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetError<'s> {
    NoEquals,
    UnknownName(&'s str),
    Value { spec: ParamSpec, why: ValueError },
    OutOfRange { spec: ParamSpec, value: i64 },
}

impl fmt::Display for SetError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = |f: &mut fmt::Formatter<'_>, spec: &ParamSpec| {
            write!(
                f,
                "{} takes {} to {}",
                spec.name,
                Shown {
                    spec,
                    value: spec.min
                },
                Shown {
                    spec,
                    value: spec.max
                }
            )
        };
        match self {
            SetError::NoEquals => write!(f, "expected NAME=VALUE"),
            SetError::UnknownName(name) => write!(f, "no parameter named `{name}`"),
            SetError::Value { spec, why } => {
                match why {
                    ValueError::NotANumber => write!(f, "not a number: ")?,
                    ValueError::TooManyDecimals => write!(
                        f,
                        "too many decimals ({} has {} after the point): ",
                        spec.name, spec.decimals
                    )?,
                    ValueError::TooLarge => write!(f, "number too large: ")?,
                }
                range(f, spec)
            }
            SetError::OutOfRange { spec, value } => {
                write!(
                    f,
                    "{} is out of range: ",
                    Shown {
                        spec,
                        value: *value
                    }
                )?;
                range(f, spec)
            }
        }
    }
}

/// The parameters of the RT partition's control loop (`rt.app=control`: the DC motor of the
/// `control` crate, whose own ranges these are, in fixed point) and of its latency probe.
/// Units are ASCII so every console shows them.
pub const CONTROL: Schema = Schema::new(
    "control",
    &[
        ParamSpec {
            name: "setpoint",
            unit: "rad/s",
            decimals: 3,
            min: -2_000,
            max: 2_000,
            default: 1_000,
            help: "motor speed the control loop holds",
        },
        ParamSpec {
            name: "kp",
            unit: "V/(rad/s)",
            decimals: 3,
            min: 0,
            max: 2_000_000,
            default: 589_990,
            help: "proportional gain",
        },
        ParamSpec {
            name: "ki",
            unit: "V/rad",
            decimals: 3,
            min: 0,
            max: 20_000_000,
            default: 4_000_000,
            help: "integral gain",
        },
        ParamSpec {
            name: "kd",
            unit: "V*s^2/rad",
            decimals: 3,
            min: 0,
            max: 100_000,
            default: 24_000,
            help: "derivative gain",
        },
        ParamSpec {
            name: "disturbance",
            unit: "N*m",
            decimals: 3,
            min: -1_000,
            max: 1_000,
            default: 0,
            help: "load torque on the motor (beyond about 0.24 N*m the bridge cannot hold it)",
        },
        ParamSpec {
            name: "setpoint_ramp",
            unit: "rad/s^2",
            decimals: 3,
            min: 0,
            max: 100_000,
            default: 0,
            help: "largest set-point rate (0: steps at once)",
        },
        ParamSpec {
            name: "watchdog_misses",
            unit: "periods",
            decimals: 0,
            min: 1,
            max: 1_000,
            default: 3,
            help: "deadline misses in a row that trip the watchdog",
        },
        ParamSpec {
            name: "rearm",
            unit: "",
            decimals: 0,
            min: 0,
            max: 1_000_000_000,
            default: 0,
            help: "raise it to re-arm a tripped watchdog (refused outside the envelope)",
        },
        ParamSpec {
            name: "probe_period",
            unit: "us",
            decimals: 0,
            min: 100,
            max: 1_000_000,
            default: 1_000,
            help: "period of the latency probe",
        },
    ],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_values_parse_and_print_back() {
        for (text, decimals, value, shown) in [
            ("21.5", 3, 21_500, "21.500"),
            ("-0.25", 3, -250, "-0.250"),
            ("+7", 1, 70, "7.0"),
            (".5", 1, 5, "0.5"),
            ("1000", 0, 1000, "1000"),
            ("3.", 2, 300, "3.00"),
        ] {
            assert_eq!(parse_fixed(text, decimals), Ok(value), "{text}");
            assert_eq!(Fixed(value, decimals).to_string(), shown);
        }
        assert_eq!(parse_fixed("1.2345", 3), Err(ValueError::TooManyDecimals));
        for bad in ["", "-", ".", "1e3", "1.2.3", "0x10", " 1", "--1"] {
            assert_eq!(parse_fixed(bad, 3), Err(ValueError::NotANumber), "{bad:?}");
        }
        assert_eq!(
            parse_fixed("99999999999999999999", 0),
            Err(ValueError::TooLarge)
        );
    }

    #[test]
    fn an_assignment_in_range_is_taken() {
        assert_eq!(CONTROL.parse_assignment("kp=2.5"), Ok((1, 2_500)));
        assert_eq!(CONTROL.parse_assignment("probe_period = 500"), Ok((8, 500)));
        assert_eq!(CONTROL.parse_assignment("disturbance=-0.3"), Ok((4, -300)));
    }

    #[test]
    fn refusals_say_what_would_be_accepted() {
        let msg = |t| CONTROL.parse_assignment(t).unwrap_err().to_string();
        assert_eq!(
            msg("kp=5000"),
            "5000.000 V/(rad/s) is out of range: kp takes 0.000 V/(rad/s) to 2000.000 V/(rad/s)"
        );
        assert_eq!(
            msg("setpoint=-2.5"),
            "-2.500 rad/s is out of range: setpoint takes -2.000 rad/s to 2.000 rad/s"
        );
        assert_eq!(
            msg("disturbance=1.5"),
            "1.500 N*m is out of range: disturbance takes -1.000 N*m to 1.000 N*m"
        );
        assert_eq!(msg("gain=1"), "no parameter named `gain`");
        assert_eq!(msg("kp"), "expected NAME=VALUE");
        assert_eq!(
            msg("probe_period=1.5"),
            "too many decimals (probe_period has 0 after the point): \
             probe_period takes 100 us to 1000000 us"
        );
        assert!(msg("kp=fast").starts_with("not a number: kp takes"));
    }

    #[test]
    fn payload_checks_cover_length_and_every_range() {
        let mut words = [0u64; MAX_PARAMS];
        let n = CONTROL.defaults(&mut words);
        assert_eq!(CONTROL.check(&words[..n]), Ok(()));
        assert!(matches!(
            CONTROL.check(&words[..n - 1]),
            Err(SchemaError::Length { .. })
        ));
        words[8] = 99;
        assert_eq!(
            CONTROL.check(&words[..n]),
            Err(SchemaError::Range { index: 8 })
        );
        words[8] = (-1i64) as u64;
        assert!(CONTROL.check(&words[..n]).is_err());
    }

    #[cfg(not(loom))]
    #[test]
    fn the_control_schema_is_the_control_loops_ranges_and_defaults() {
        use control::params::Param;
        for (name, param) in [
            ("setpoint", Param::Setpoint),
            ("kp", Param::Kp),
            ("ki", Param::Ki),
            ("kd", Param::Kd),
            ("disturbance", Param::Disturbance),
            ("setpoint_ramp", Param::SetpointRamp),
            ("watchdog_misses", Param::WatchdogMisses),
        ] {
            let spec = CONTROL.get(name).unwrap();
            let scale = 10f64.powi(spec.decimals as i32);
            let range = param.range();
            assert_eq!(spec.min as f64 / scale, range.min, "{name}");
            assert_eq!(spec.max as f64 / scale, range.max, "{name}");
            assert_eq!(
                spec.default as f64 / scale,
                control::Parameters::DEFAULT.get(param),
                "{name}"
            );
        }
    }

    #[test]
    fn the_schema_id_follows_every_field() {
        const A: &[ParamSpec] = &[ParamSpec {
            name: "x",
            unit: "",
            decimals: 0,
            min: 0,
            max: 10,
            default: 0,
            help: "",
        }];
        const B: &[ParamSpec] = &[ParamSpec { max: 11, ..A[0] }];
        const C: &[ParamSpec] = &[ParamSpec { unit: "s", ..A[0] }];
        let ids = [
            Schema::new("s", A).id,
            Schema::new("s", B).id,
            Schema::new("s", C).id,
            Schema::new("t", A).id,
        ];
        for i in 0..ids.len() {
            for j in i + 1..ids.len() {
                assert_ne!(ids[i], ids[j]);
            }
        }
        // The help text is documentation, not format.
        const D: &[ParamSpec] = &[ParamSpec {
            help: "about x",
            ..A[0]
        }];
        assert_eq!(Schema::new("s", D).id, ids[0]);
    }
}
