//! Properties of the control loop under any operator behaviour: whatever in-range parameters
//! arrive in whatever order, with whatever latencies, the actuator stays within the bridge's
//! limits, nothing becomes NaN or infinite, out-of-range values change nothing, and the same
//! inputs give the same bits.

use control::params::{Param, ALL_PARAMS};
use control::{ControlLoop, Parameters, Telemetry, TripReason, Watchdog, WatchdogState};
use proptest::prelude::*;

/// What happens to the loop between two observations.
#[derive(Clone, Debug)]
enum Op {
    /// Set a parameter to a value inside its range.
    Set(Param, f64),
    /// Try a value outside the parameter's range.
    SetOutOfRange(Param, f64),
    /// Run `periods` periods, each actuated at `latency_fraction` of its period (≥ 1: late).
    Run { periods: u32, latency_fraction: f64 },
    /// Ask the watchdog to re-arm.
    Rearm,
}

fn param() -> impl Strategy<Value = Param> {
    prop::sample::select(ALL_PARAMS.to_vec())
}

fn in_range(p: Param, frac: f64) -> f64 {
    let r = p.range();
    let v = r.min + frac * (r.max - r.min);
    if r.whole {
        // Whole parameters: truncate, which stays inside [min, max].
        (v as u32) as f64
    } else {
        v
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (param(), 0.0..=1.0f64).prop_map(|(p, f)| Op::Set(p, in_range(p, f))),
        1 => (param(), prop_oneof![
            (1e-6..1e6f64).prop_map(|d| d),
            Just(f64::NAN),
            Just(f64::INFINITY),
        ], any::<bool>())
            .prop_map(|(p, d, below)| {
                let r = p.range();
                Op::SetOutOfRange(p, if below { r.min - d } else { r.max + d })
            }),
        6 => (1u32..60, prop_oneof![4 => 0.0..0.99f64, 1 => 1.0..3.0f64])
            .prop_map(|(periods, latency_fraction)| Op::Run { periods, latency_fraction }),
        1 => Just(Op::Rearm),
    ]
}

/// Runs `ops` on a fresh loop and returns every telemetry record, checking the invariants on
/// the way.
fn play(ops: &[Op]) -> Result<Vec<Telemetry>, TestCaseError> {
    let mut ctl = ControlLoop::new(Parameters::DEFAULT).unwrap();
    let mut records = Vec::new();
    for op in ops {
        match *op {
            Op::Set(p, v) => ctl
                .set(p, v)
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
            Op::SetOutOfRange(p, v) => {
                let before = *ctl.parameters();
                let err = ctl
                    .set(p, v)
                    .expect_err("an out-of-range value was accepted");
                prop_assert_eq!(err.param, p);
                prop_assert_eq!(*ctl.parameters(), before);
            }
            Op::Run {
                periods,
                latency_fraction,
            } => {
                for _ in 0..periods {
                    let period = ctl.parameters().period_ns() as f64;
                    let rec = ctl.step((latency_fraction * period) as u32);
                    let max = ctl.motor().params().max_voltage;
                    prop_assert!(
                        rec.effort.is_finite() && rec.effort.abs() <= max,
                        "{:?}",
                        rec
                    );
                    prop_assert!(rec.measurement.is_finite(), "{:?}", rec);
                    prop_assert!(rec.setpoint.is_finite(), "{:?}", rec);
                    prop_assert!(rec.current.is_finite(), "{:?}", rec);
                    let s = ctl.motor().state();
                    prop_assert!(s.speed.is_finite() && s.angle.is_finite(), "{:?}", s);
                    prop_assert!(ctl.pid().integral().is_finite());
                    records.push(rec);
                }
            }
            Op::Rearm => {
                // Refusal (outside the envelope) is a legal outcome; either way the state
                // must stay consistent, which the next run checks.
                let _ = ctl.rearm();
            }
        }
    }
    Ok(records)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_in_range_operation_sequence_keeps_the_loop_bounded_and_finite(
        ops in prop::collection::vec(op(), 1..120)
    ) {
        play(&ops)?;
    }

    #[test]
    fn the_watchdog_trips_exactly_when_a_run_of_n_misses_completes(
        limit in 1u32..8,
        met in prop::collection::vec(prop::bool::weighted(0.6), 0..200),
    ) {
        let mut wd = Watchdog::new(limit);
        let mut run = 0u32;
        let mut tripped = false;
        for (k, &ok) in met.iter().enumerate() {
            run = if ok { 0 } else { run + 1 };
            tripped |= run == limit;
            let expected = if tripped {
                WatchdogState::Tripped(TripReason::DeadlineMisses { consecutive: limit })
            } else {
                WatchdogState::Armed
            };
            prop_assert_eq!(wd.observe(ok, Ok(())), expected, "observation {}", k);
        }
        let misses = met.iter().filter(|&&ok| !ok).count() as u32;
        prop_assert_eq!(wd.total_misses(), misses);
    }

    #[test]
    fn the_same_inputs_give_the_same_bits(ops in prop::collection::vec(op(), 1..80)) {
        let a = play(&ops)?;
        let b = play(&ops)?;
        prop_assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            prop_assert_eq!(x.words(), y.words());
        }
    }
}

#[test]
fn the_parameter_list_covers_every_field_of_the_block() {
    // Setting each parameter to a distinct in-range value changes a distinct field.
    let mut p = Parameters::DEFAULT;
    for (k, param) in ALL_PARAMS.into_iter().enumerate() {
        let v = in_range(param, 0.1 + 0.1 * k as f64);
        p.set(param, v).unwrap();
        assert_eq!(p.get(param), v, "{}", param.name());
    }
    assert_eq!(p.validate(), Ok(()));
    assert_ne!(p, Parameters::DEFAULT);
}
