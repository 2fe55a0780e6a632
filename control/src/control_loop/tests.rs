extern crate std;

use super::*;
use crate::motor::EnvelopeExit;
use crate::watchdog::TripReason;
use std::vec::Vec;

const PERIOD_S: f64 = 1e-3;

/// Rise time, overshoot and settling time of a recorded step from `from` to `to`.
#[derive(Debug)]
struct StepMetrics {
    /// 10 % to 90 % of the step, s.
    rise: f64,
    /// Peak beyond the target, as a fraction of the step.
    overshoot: f64,
    /// Last time outside ±2 % of the step around the target, s.
    settling: f64,
}

fn metrics(samples: &[f64], from: f64, to: f64) -> StepMetrics {
    let step = to - from;
    let frac = |y: f64| (y - from) / step;
    let t = |k: usize| k as f64 * PERIOD_S;
    let t10 = samples.iter().position(|&y| frac(y) >= 0.1).map(t);
    let t90 = samples.iter().position(|&y| frac(y) >= 0.9).map(t);
    let peak = samples.iter().map(|&y| frac(y)).fold(f64::MIN, f64::max);
    let settling = samples
        .iter()
        .rposition(|&y| (frac(y) - 1.0).abs() > 0.02)
        .map_or(0.0, |k| t(k + 1));
    StepMetrics {
        rise: t90.expect("never reached 90 %") - t10.expect("never reached 10 %"),
        overshoot: (peak - 1.0).max(0.0),
        settling,
    }
}

fn run(ctl: &mut ControlLoop, periods: usize) -> Vec<Telemetry> {
    (0..periods).map(|_| ctl.step(0)).collect()
}

fn settled_at(setpoint: f64) -> ControlLoop {
    let mut ctl = ControlLoop::new(Parameters {
        setpoint,
        ..Parameters::DEFAULT
    })
    .unwrap();
    run(&mut ctl, 3000);
    assert!((ctl.motor().state().speed - setpoint).abs() < 1e-3);
    ctl
}

/// The design's set-point response, `400 / (s + 20)²` for a unit step.
fn designed_response(t: f64) -> f64 {
    1.0 - (1.0 + 20.0 * t) * (-20.0 * t).exp()
}

#[test]
fn a_small_step_follows_the_designed_critically_damped_response() {
    let mut ctl = settled_at(1.0);
    ctl.set(Param::Setpoint, 1.05).unwrap();
    let tel = run(&mut ctl, 1000);
    // The step is small enough for the bridge: the response is the linear design's.
    assert!(tel.iter().all(|r| r.effort.abs() < 24.0));
    // Measurement k is taken at the release of period k+1, i.e. at t = k ms after the step.
    let ys: Vec<f64> = tel.iter().map(|r| r.measurement).collect();
    // Deviation from the continuous design: the 5 ms derivative filter (a pole at -200,
    // ten times the loop's) and the 1 ms sample and hold add phase lag of a few ms; on a
    // 0.05 rad/s step whose fastest slope is 0.37 rad/s², 5 ms is 2e-3 rad/s (4 %).
    for (k, &y) in ys.iter().enumerate() {
        let design = 1.0 + 0.05 * designed_response(k as f64 * PERIOD_S);
        assert!((y - design).abs() < 2e-3, "t = {k} ms: {y} vs {design}");
    }
    let m = metrics(&ys[1..], 1.0, 1.05);
    std::println!("small step: {m:?}");
    // Design: rise 0.168 s, 2 % settling 0.292 s, no overshoot; the few ms of lag above
    // shift these by as much and may add a little overshoot.
    assert!((m.rise - 0.168).abs() < 0.01, "{m:?}");
    assert!(m.settling < 0.292 + 0.02, "{m:?}");
    assert!(m.overshoot < 0.02, "{m:?}");
}

#[test]
fn integral_action_removes_the_steady_state_error() {
    let ctl = settled_at(-1.5);
    assert!((ctl.motor().measure_speed() + 1.5).abs() <= 1e-4);
}

/// 0 → 2 rad/s from rest: the bridge saturates at 24 V for about a quarter of a second.
fn large_step(anti_windup: AntiWindup) -> (StepMetrics, usize) {
    let mut ctl = ControlLoop::with_anti_windup(
        Parameters {
            setpoint: 2.0,
            ..Parameters::DEFAULT
        },
        anti_windup,
    )
    .unwrap();
    let tel = run(&mut ctl, 4000);
    let saturated = tel.iter().filter(|r| r.effort.abs() >= 24.0).count();
    let ys: Vec<f64> = tel.iter().map(|r| r.measurement).collect();
    (metrics(&ys, 0.0, 2.0), saturated)
}

#[test]
fn anti_windup_keeps_a_saturated_step_from_overshooting() {
    let (none, sat_none) = large_step(AntiWindup::None);
    let (cond, sat_cond) = large_step(AntiWindup::ConditionalIntegration);
    let (back, _) = large_step(AntiWindup::BackCalculation {
        tracking_time: 0.01,
    });
    std::println!("no anti-windup:          {none:?}, {sat_none} ms saturated");
    std::println!("conditional integration: {cond:?}, {sat_cond} ms saturated");
    std::println!("back-calculation 10 ms:  {back:?}");
    // All three saturate for long; without anti-windup the integral gathers ~4000 V/rad
    // times the error area and has to be unwound by an overshoot.
    assert!(sat_cond > 100 && sat_none > sat_cond);
    assert!(none.overshoot > 0.1, "{none:?}");
    assert!(cond.overshoot < 0.05, "{cond:?}");
    assert!(back.overshoot < 0.05, "{back:?}");
    assert!(cond.settling < none.settling / 2.0, "{cond:?} vs {none:?}");
}

/// The design's response to a unit load-torque step: `-100 s (s + 2) / (s + 20)³` (the
/// motor's `(Ls + R)/(JL)` over the closed loop's triple pole), i.e.
/// `-100 e^{-20 t} (t - 9 t²)` rad/s per N·m: a dip of 1.2 rad/s per N·m at 31 ms.
fn designed_load_response(t: f64) -> f64 {
    -100.0 * (-20.0 * t).exp() * (t - 9.0 * t * t)
}

#[test]
fn a_small_load_step_is_rejected_as_designed() {
    let mut ctl = settled_at(1.0);
    let load = 0.005;
    ctl.set(Param::Disturbance, load).unwrap();
    let tel = run(&mut ctl, 1000);
    assert!(tel.iter().all(|r| r.effort.abs() < 24.0));
    let dip = tel
        .iter()
        .map(|r| 1.0 - r.measurement)
        .fold(f64::MIN, f64::max);
    std::println!(
        "load step {load} N·m: dip {dip} rad/s (design {})",
        1.2 * load
    );
    // Same lag allowance as for the set-point step: a few ms on the dip's slopes (at most
    // 100 × 0.005 = 0.5 rad/s² at the onset), plus a sensor step.
    for (k, r) in tel.iter().enumerate() {
        let design = 1.0 + load * designed_load_response(k as f64 * PERIOD_S);
        assert!(
            (r.measurement - design).abs() < 1.5e-3,
            "t = {k} ms: {} vs {design}",
            r.measurement
        );
    }
    assert!((dip - 1.2 * load).abs() < 0.3 * 1.2 * load);
    assert!((tel.last().unwrap().measurement - 1.0).abs() <= 1e-4);
}

#[test]
fn a_large_load_step_saturates_the_bridge_and_is_still_rejected() {
    let mut ctl = settled_at(1.0);
    // 5 A more current; the derivative's reaction to -5 rad/s² saturates the bridge, and
    // the 0.5 H armature then limits how fast the current can follow.
    ctl.set(Param::Disturbance, 0.05).unwrap();
    let tel = run(&mut ctl, 2000);
    assert!(tel.iter().any(|r| r.effort >= 24.0));
    let dip = tel
        .iter()
        .map(|r| 1.0 - r.measurement)
        .fold(f64::MIN, f64::max);
    let back_within_1pc = tel
        .iter()
        .rposition(|r| (r.measurement - 1.0).abs() > 0.01)
        .map_or(0, |k| k + 1);
    std::println!(
        "load step 0.05 N·m: dip {dip} rad/s, back within 1 % after {back_within_1pc} ms"
    );
    // Open loop the same load costs R T / (R b + Kt Ke) = 0.5 rad/s for good.
    assert!(dip > 0.0 && dip < 0.5 / 2.0, "dip {dip}");
    assert!(back_within_1pc < 1000, "{back_within_1pc} ms");
    assert!((tel.last().unwrap().measurement - 1.0).abs() <= 2e-4);
}

#[test]
fn n_missed_deadlines_trip_the_watchdog_which_holds_the_safe_state() {
    let mut ctl = settled_at(1.0);
    let n = ctl.parameters().watchdog_misses;
    let late = 1_000_000; // latency equal to the period: the deadline is missed.
                          // A miss is known at the period's deadline, the next release: the k-th late period is
                          // counted by the watchdog at the start of period k + 1.
    assert_eq!(ctl.step(late).consecutive_misses, 0);
    for k in 1..n {
        let r = ctl.step(late);
        assert_eq!(r.watchdog, 0, "tripped after {k} misses");
        assert_eq!(r.consecutive_misses, k);
        assert!(r.effort > 0.0);
    }
    // The n-th miss: tripped at this release, so this period is already in the safe state.
    let r = ctl.step(0);
    assert_eq!(
        r.watchdog,
        WatchdogState::Tripped(TripReason::DeadlineMisses { consecutive: n }).code()
    );
    assert_eq!(r.effort, 0.0);
    assert_eq!(r.deadline_misses, n);
    // On time again, it stays tripped and the brake stops the motor.
    let tel = run(&mut ctl, 2000);
    assert!(tel.iter().all(|r| r.watchdog == 1 && r.effort == 0.0));
    assert!(ctl.motor().state().speed.abs() < 1e-3);

    // Re-armed, the loop restarts from 0 V without a jump and gets back to its set-point.
    ctl.rearm().unwrap();
    let tel = run(&mut ctl, 3000);
    assert_eq!(tel[0].effort, 0.0);
    assert_eq!(tel[0].watchdog, 0);
    assert!((tel.last().unwrap().measurement - 1.0).abs() < 1e-3);
    assert_eq!(tel.last().unwrap().deadline_misses, n);
}

#[test]
fn a_late_actuation_is_applied_at_the_next_release() {
    let mut on_time = settled_at(1.0);
    let mut late = on_time.clone();
    on_time.set(Param::Setpoint, 1.05).unwrap();
    late.set(Param::Setpoint, 1.05).unwrap();
    on_time.step(0);
    late.step(1_000_000);
    // The late loop's motor ran the whole period on the old voltage.
    assert!(late.motor().state().current < on_time.motor().state().current);
    late.step(0);
    assert_eq!(late.watchdog().state(), WatchdogState::Armed);
    assert_eq!(late.watchdog().consecutive_misses(), 1);
}

#[test]
fn an_overload_drives_the_plant_out_of_its_envelope_and_trips_the_watchdog() {
    let mut ctl = settled_at(1.0);
    ctl.set(Param::Disturbance, 1.0).unwrap();
    let tel = run(&mut ctl, 3000);
    let trip = tel
        .iter()
        .position(|r| r.watchdog != 0)
        .expect("never tripped");
    assert_eq!(
        ctl.watchdog().state(),
        WatchdogState::Tripped(TripReason::Envelope(EnvelopeExit::Speed))
    );
    // Speed at the trip's release is past -3 rad/s.
    assert!(tel[trip].measurement < -3.0 + 1e-3);
    assert!(tel[..trip].iter().all(|r| r.measurement >= -3.0 - 1e-3));
    // The brake then holds the overload: back inside at about -0.1 rad/s.
    assert!(ctl.motor().in_envelope());
    assert!(ctl.motor().state().speed > -0.1);
    assert!(tel[trip..].iter().all(|r| r.effort == 0.0));
}

#[test]
fn rearm_is_refused_while_outside_the_envelope() {
    let mut ctl = settled_at(1.0);
    ctl.set(Param::Disturbance, 1.0).unwrap();
    while ctl.watchdog().state() == WatchdogState::Armed {
        ctl.step(0);
    }
    assert_eq!(
        ctl.rearm(),
        Err(RearmRefused::OutsideEnvelope(EnvelopeExit::Speed))
    );
    while !ctl.motor().in_envelope() {
        ctl.step(0);
    }
    ctl.step(0);
    ctl.set(Param::Disturbance, 0.0).unwrap();
    assert_eq!(ctl.rearm(), Ok(()));
    run(&mut ctl, 3000);
    assert!((ctl.motor().state().speed - 1.0).abs() < 1e-3);
}

#[test]
fn refused_parameters_change_nothing() {
    let mut ctl = settled_at(1.0);
    let before = *ctl.parameters();
    let err = ctl.set(Param::Ki, -1.0).unwrap_err();
    assert_eq!(err.param, Param::Ki);
    let mut block = before;
    block.setpoint = 0.5;
    block.period_us = 20_000;
    assert_eq!(ctl.apply(&block).unwrap_err().param, Param::PeriodUs);
    assert_eq!(*ctl.parameters(), before);
    assert!(ControlLoop::new(block).is_err());
}

#[test]
fn a_new_period_is_used_by_the_next_step() {
    let mut ctl = settled_at(1.0);
    ctl.set(Param::PeriodUs, 500.0).unwrap();
    let a = ctl.step(0);
    let b = ctl.step(0);
    assert_eq!(b.time_ns - a.time_ns, 500_000);
    // 400 µs is inside a 500 µs period, 500 µs is not (counted at the next release).
    ctl.step(400_000);
    assert_eq!(ctl.step(500_000).consecutive_misses, 0);
    assert_eq!(ctl.step(0).consecutive_misses, 1);
    run(&mut ctl, 2000);
    assert!((ctl.motor().state().speed - 1.0).abs() < 1e-3);
}

#[test]
fn a_gain_change_while_running_is_bumpless() {
    let mut changed = settled_at(1.0);
    changed.set(Param::Setpoint, 1.05).unwrap();
    run(&mut changed, 30);
    let mut unchanged = changed.clone();
    changed.set(Param::Kp, 1500.0).unwrap();
    changed.set(Param::Kd, 60.0).unwrap();
    let a = changed.step(0).effort;
    let b = unchanged.step(0).effort;
    // Uncompensated, the new Kp alone would move the output by ΔKp (β r - y) ≈ -586 V; what
    // is left is the new gains acting on one period's change of error and of the (sensor-
    // quantised) derivative.
    let weighted_error = tuning::SETPOINT_WEIGHT * 1.05 - changed.motor().measure_speed();
    assert!(((1500.0 - tuning::KP) * weighted_error).abs() > 100.0);
    assert!(
        (a - b).abs() < 1.5,
        "{a} V with the new gains, {b} V without"
    );
}

#[test]
fn the_setpoint_ramp_keeps_a_large_step_out_of_saturation() {
    let params = Parameters {
        setpoint: 1.5,
        ..Parameters::DEFAULT
    };
    let mut stepped = ControlLoop::new(params).unwrap();
    assert!(run(&mut stepped, 100).iter().any(|r| r.effort >= 24.0));
    // At 1 rad/s² the motor needs 15 V (speed) + 1 V (inertia) + 5 V (the armature
    // inductance carrying a current rising at b/Kt × 1 = 10 A/s): inside 24 V.
    let mut ramped = ControlLoop::new(Parameters {
        setpoint_ramp: 1.0,
        ..params
    })
    .unwrap();
    let tel = run(&mut ramped, 4000);
    assert!(tel.iter().all(|r| r.effort.abs() < 24.0));
    assert!((tel[999].setpoint - 1.0).abs() < 1e-9);
    let peak = tel.iter().map(|r| r.measurement).fold(f64::MIN, f64::max);
    assert!(peak < 1.5 * 1.01);
    assert!((tel.last().unwrap().measurement - 1.5).abs() < 1e-3);
}

#[test]
fn a_drive_command_computed_before_a_trip_does_not_reach_the_actuator() {
    let mut ctl = settled_at(1.0);
    let armed = ctl.release();
    let stale = ctl.compute(&armed);
    assert!(matches!(stale, Actuation::Drive { volts } if volts > 0.0));
    ctl.actuate(&armed, stale, 0);
    // The overload trips the watchdog at a later release; the stale command arrives after.
    ctl.set(Param::Disturbance, 1.0).unwrap();
    let tripped = loop {
        let r = ctl.release();
        if r.watchdog != WatchdogState::Armed {
            break r;
        }
        let c = ctl.compute(&r);
        ctl.actuate(&r, c, 0);
    };
    let rec = ctl.actuate(&tripped, stale, 0);
    assert_eq!(rec.effort, 0.0);
    assert_eq!(ctl.compute(&tripped), Actuation::SafeStop);
}
