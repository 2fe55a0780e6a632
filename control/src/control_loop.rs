//! One control period: sense, watch, control, actuate, report.
//!
//! Owns the composition of the motor, the PID and the watchdog, the parameter block in force
//! and the order things happen in within a period. It never measures time itself: the host
//! (the RT kernel's periodic thread, or a test) says how late the actuation came, and the
//! loop's clock is simulated time, one period per [`ControlLoop::step`].
//!
//! Within a period of length `T` released at `t`:
//! 1. the speed is sampled at `t`;
//! 2. the watchdog observes whether the previous period met its deadline (that is known at
//!    `t`, which was its deadline) and whether the plant is inside its envelope; if it is
//!    (or was already) tripped, the actuator goes to its safe state at `t` and the
//!    controller does not run;
//! 3. otherwise the PID computes the voltage, which reaches the motor at `t + latency`: until
//!    then the previous actuation stays on; a late command (latency ≥ `T`) misses the whole
//!    period and takes effect at the next release;
//! 4. the motor is integrated across the period and a [`Telemetry`] record is returned.
//!
//! [`ControlLoop::step`] runs the three parts [`ControlLoop::release`],
//! [`ControlLoop::compute`] and [`ControlLoop::actuate`] in a row; on target they run in
//! the watchdog/sensing, control and actuation threads.

use crate::motor::{Actuation, DcMotor, Envelope, MotorParams};
use crate::params::{tuning, Param, ParamError, Parameters};
use crate::pid::{AntiWindup, Gains, Pid, PidConfig};
use crate::telemetry::Telemetry;
use crate::watchdog::{RearmRefused, TripReason, Watchdog, WatchdogState};

/// The control loop around the simulated motor.
#[derive(Clone, Debug)]
pub struct ControlLoop {
    params: Parameters,
    motor: DcMotor,
    pid: Pid,
    watchdog: Watchdog,
    applied: Actuation,
    /// Whether the previous period's actuation came before its deadline.
    previous_deadline_met: bool,
    seq: u64,
    time_ns: u64,
}

impl ControlLoop {
    /// A loop on the CTMS motor at rest with the demo's envelope and conditional integration.
    pub fn new(params: Parameters) -> Result<Self, ParamError> {
        Self::with_anti_windup(params, AntiWindup::ConditionalIntegration)
    }

    /// A loop like [`ControlLoop::new`] with another anti-windup rule (for comparisons).
    pub fn with_anti_windup(
        params: Parameters,
        anti_windup: AntiWindup,
    ) -> Result<Self, ParamError> {
        params.validate()?;
        let motor_params = MotorParams::CTMS_SPEED;
        let mut motor = DcMotor::new(motor_params, Envelope::DEMO);
        motor.set_load_torque(params.disturbance);
        let pid = Pid::new(
            PidConfig {
                gains: gains_of(&params),
                setpoint_weight: tuning::SETPOINT_WEIGHT,
                derivative_filter: tuning::DERIVATIVE_FILTER,
                output_min: -motor_params.max_voltage,
                output_max: motor_params.max_voltage,
                anti_windup,
                setpoint_rate_limit: ramp_of(&params),
            },
            period_s(&params),
        );
        Ok(Self {
            params,
            motor,
            pid,
            watchdog: Watchdog::new(params.watchdog_misses),
            applied: Actuation::Drive { volts: 0.0 },
            previous_deadline_met: true,
            seq: 0,
            time_ns: 0,
        })
    }

    /// The parameters in force.
    pub fn parameters(&self) -> &Parameters {
        &self.params
    }

    /// The simulated motor.
    pub fn motor(&self) -> &DcMotor {
        &self.motor
    }

    /// The controller.
    pub fn pid(&self) -> &Pid {
        &self.pid
    }

    /// The watchdog.
    pub fn watchdog(&self) -> &Watchdog {
        &self.watchdog
    }

    /// Sets one parameter; an out-of-range value is refused and nothing changes.
    pub fn set(&mut self, param: Param, value: f64) -> Result<(), ParamError> {
        let mut next = self.params;
        next.set(param, value)?;
        self.apply(&next)
    }

    /// Switches to a whole new parameter block (as read from the channel): validated whole
    /// first, so a bad block changes nothing; gain changes are bumpless.
    pub fn apply(&mut self, next: &Parameters) -> Result<(), ParamError> {
        next.validate()?;
        let gains = gains_of(next);
        if gains != self.pid.gains() {
            self.pid.set_gains(gains);
        }
        self.pid.set_period(period_s(next));
        self.pid.set_setpoint_rate_limit(ramp_of(next));
        self.motor.set_load_torque(next.disturbance);
        self.watchdog.set_limit(next.watchdog_misses);
        self.params = *next;
        Ok(())
    }

    /// Re-arms a tripped watchdog; the controller restarts bumplessly from the safe state's
    /// 0 V. Refused while the plant is outside its envelope.
    pub fn rearm(&mut self) -> Result<(), RearmRefused> {
        if self.watchdog.state() == WatchdogState::Armed {
            return Ok(());
        }
        self.watchdog.rearm()?;
        self.pid.restart_from(0.0);
        Ok(())
    }

    /// Trips the watchdog from outside the loop (the RT side's supervisor thread, on a
    /// stalled loop or an envelope exit it saw first) and puts the actuator in its safe
    /// state at once: the brake holds from now on, whatever the loop computes.
    pub fn trip(&mut self, reason: TripReason) -> WatchdogState {
        let state = self.watchdog.trip(reason);
        self.applied = Actuation::SafeStop;
        state
    }

    /// The actuation in force (what the motor gets until the next command).
    pub fn applied(&self) -> Actuation {
        self.applied
    }

    /// Runs one period whose actuation came `latency_ns` after its release. A latency of a
    /// period or more is a deadline miss, which the watchdog counts at the next release.
    pub fn step(&mut self, latency_ns: u32) -> Telemetry {
        let release = self.release();
        let command = self.compute(&release);
        self.actuate(&release, command, latency_ns)
    }

    /// The release of a period (on target: the watchdog's and the sensing thread's part):
    /// samples the speed, and the watchdog judges the previous period's deadline and the
    /// envelope.
    pub fn release(&mut self) -> Release {
        let measurement = self.motor.measure_speed();
        let watchdog = self
            .watchdog
            .observe(self.previous_deadline_met, self.motor.check_envelope());
        Release {
            measurement,
            watchdog,
        }
    }

    /// The controller's part: the voltage for this period, or the safe stop if the
    /// watchdog is tripped (the PID does not run then, so it cannot wind up).
    pub fn compute(&mut self, release: &Release) -> Actuation {
        match release.watchdog {
            WatchdogState::Armed => Actuation::Drive {
                volts: self.pid.update(self.params.setpoint, release.measurement),
            },
            WatchdogState::Tripped(_) => Actuation::SafeStop,
        }
    }

    /// The actuator's part: `command` reaches the motor `latency_ns` after the release (at
    /// the next release if that is later; at the release itself for the safe stop, which
    /// the watchdog commands), the motor runs to the end of the period, and the period's
    /// telemetry comes out. The command passes the watchdog's gate first, so no drive
    /// command reaches a tripped actuator, however late it was computed.
    pub fn actuate(&mut self, release: &Release, command: Actuation, latency_ns: u32) -> Telemetry {
        let period_ns = self.params.period_ns();
        let deadline_met = u64::from(latency_ns) < period_ns;
        self.previous_deadline_met = deadline_met;
        let command = self.watchdog.gate(command);
        let takes_effect_ns = match command {
            Actuation::SafeStop => 0,
            Actuation::Drive { .. } if deadline_met => u64::from(latency_ns),
            Actuation::Drive { .. } => period_ns,
        };
        self.motor.advance(self.applied, takes_effect_ns);
        self.motor.advance(command, period_ns - takes_effect_ns);
        self.applied = command;

        self.seq += 1;
        self.time_ns += period_ns;
        Telemetry {
            seq: self.seq,
            time_ns: self.time_ns,
            setpoint: match release.watchdog {
                WatchdogState::Armed => self
                    .pid
                    .effective_setpoint()
                    .unwrap_or(self.params.setpoint),
                WatchdogState::Tripped(_) => self.params.setpoint,
            },
            measurement: release.measurement,
            // What the controller asked for, not what the bridge made of it, so telemetry
            // shows a controller that exceeds its limits.
            effort: match command {
                Actuation::Drive { volts } => volts,
                Actuation::SafeStop => 0.0,
            },
            current: self.motor.state().current,
            latency_ns,
            deadline_misses: self.watchdog.total_misses(),
            consecutive_misses: self.watchdog.consecutive_misses(),
            watchdog: release.watchdog.code(),
        }
    }
}

/// What a period's release found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Release {
    /// The speed sample, rad/s.
    pub measurement: f64,
    /// The watchdog's state after judging the previous deadline and the envelope.
    pub watchdog: WatchdogState,
}

fn gains_of(p: &Parameters) -> Gains {
    Gains {
        kp: p.kp,
        ki: p.ki,
        kd: p.kd,
    }
}

fn ramp_of(p: &Parameters) -> Option<f64> {
    if p.setpoint_ramp > 0.0 {
        Some(p.setpoint_ramp)
    } else {
        None
    }
}

fn period_s(p: &Parameters) -> f64 {
    p.period_ns() as f64 * 1e-9
}

#[cfg(test)]
mod tests;
