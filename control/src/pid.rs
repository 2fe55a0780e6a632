//! The discrete PID controller.
//!
//! Owns the control law and its memory (integral, filtered derivative, ramped set-point). It
//! never touches the plant or time: the caller hands it a measurement once per period and
//! applies what it returns.
//!
//! The law, per period `dt`, with set-point `r`, measurement `y` and set-point weight `β`:
//!
//! ```text
//! u = Kp (β r - y) + I + Kd D          clamped to [min, max]
//! D ← (Tf D - (y - y_prev)) / (Tf + dt) the derivative of -y through a first-order filter
//! I ← I + Ki dt (r - y)                 under the anti-windup rule
//! ```
//!
//! * Derivative on the measurement, not the error, so a set-point step gives no derivative
//!   kick; the filter (time constant `Tf`, backward Euler so stable for every `dt`) keeps the
//!   sensor's quantisation from reaching the actuator as noise.
//! * The set-point weight `β` (a 2-degree-of-freedom PID; Åström & Hägglund, *Advanced PID
//!   Control*, ISA 2006) shapes the set-point response without touching the disturbance
//!   response.
//! * `I` is kept in output units (volts), not as the integral of the error, so a change of
//!   `Ki` does not move the output; changes of `Kp` and `Kd` are made bumpless by moving into
//!   `I` the step they would cause ([`Pid::set_gains`]).
//! * Anti-windup by **conditional integration** (the default, [`AntiWindup`]): the integral
//!   stops while the output is saturated, unless the error drives it back out of saturation.
//!   Chosen over back-calculation because it has no tuning parameter (back-calculation needs
//!   a tracking time, whose usual rule of thumb `√(Ti·Td)` breaks down when `Ki` or `Kd`
//!   is 0, both legal parameter values here), it keeps the integral exactly where it was when
//!   saturation began, and it cannot make the integral oscillate against the limit.
//!   Back-calculation is available for comparison.

/// Proportional, integral and derivative gains, in output units per measurement unit
/// (V per rad/s for the motor), times 1/s for `ki` and s for `kd`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gains {
    /// Proportional gain.
    pub kp: f64,
    /// Integral gain.
    pub ki: f64,
    /// Derivative gain.
    pub kd: f64,
}

/// How the integral is kept from winding up while the output is saturated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AntiWindup {
    /// None: the integral keeps integrating the error whatever the output does. Only for
    /// showing what the other two prevent.
    None,
    /// Integrate only while unsaturated, or when the error points back into the range.
    ConditionalIntegration,
    /// Feed the saturation excess back into the integral with time constant
    /// `tracking_time` (s).
    BackCalculation {
        /// Tracking time constant, s (positive).
        tracking_time: f64,
    },
}

/// Everything about a PID that does not change while it runs, plus the initial gains.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PidConfig {
    /// The initial gains.
    pub gains: Gains,
    /// Set-point weight `β` in the proportional term, 0..=1.
    pub setpoint_weight: f64,
    /// Time constant of the derivative's filter, s (0 disables the filter).
    pub derivative_filter: f64,
    /// Lowest output.
    pub output_min: f64,
    /// Highest output.
    pub output_max: f64,
    /// The anti-windup rule.
    pub anti_windup: AntiWindup,
    /// Largest rate of change of the set-point the controller follows, units/s (`None`:
    /// steps are followed at once).
    pub setpoint_rate_limit: Option<f64>,
}

/// The PID controller's state.
#[derive(Clone, Debug)]
pub struct Pid {
    config: PidConfig,
    dt: f64,
    integral: f64,
    derivative: f64,
    prev_measurement: Option<f64>,
    ramped_setpoint: Option<f64>,
    /// `β r - y` of the last update, for bumpless gain changes.
    last_weighted_error: f64,
    /// Output to continue from at the next update (set by [`Pid::restart_from`]).
    restart_output: Option<f64>,
    saturated: bool,
}

impl Pid {
    /// A controller with period `dt` seconds and an empty history.
    pub fn new(config: PidConfig, dt: f64) -> Self {
        Self {
            config,
            dt,
            integral: 0.0,
            derivative: 0.0,
            prev_measurement: None,
            ramped_setpoint: None,
            last_weighted_error: 0.0,
            restart_output: None,
            saturated: false,
        }
    }

    /// The gains in force.
    pub fn gains(&self) -> Gains {
        self.config.gains
    }

    /// The integral term, in output units.
    pub fn integral(&self) -> f64 {
        self.integral
    }

    /// Whether the last output was clamped to a limit.
    pub fn saturated(&self) -> bool {
        self.saturated
    }

    /// The set-point the last update worked with (after ramp limiting).
    pub fn effective_setpoint(&self) -> Option<f64> {
        self.ramped_setpoint
    }

    /// Changes the period; the state is kept in per-second units, so nothing jumps.
    pub fn set_period(&mut self, dt: f64) {
        self.dt = dt;
    }

    /// Changes the set-point rate limit (`None`: none).
    pub fn set_setpoint_rate_limit(&mut self, limit: Option<f64>) {
        self.config.setpoint_rate_limit = limit;
    }

    /// Changes the gains bumplessly: the proportional and derivative steps the change would
    /// cause on the last error and derivative go into the integral instead, so the output
    /// moves only as the error does.
    pub fn set_gains(&mut self, gains: Gains) {
        let old = self.config.gains;
        self.integral +=
            (old.kp - gains.kp) * self.last_weighted_error + (old.kd - gains.kd) * self.derivative;
        self.config.gains = gains;
    }

    /// Forgets the history and makes the next update output exactly `output` (then follow
    /// the law from there): a bumpless start after the actuator was held elsewhere, e.g. in
    /// its safe state.
    pub fn restart_from(&mut self, output: f64) {
        self.prev_measurement = None;
        self.ramped_setpoint = None;
        self.derivative = 0.0;
        self.restart_output = Some(output);
    }

    /// One period: takes the set-point and the measurement, returns the clamped output.
    pub fn update(&mut self, setpoint: f64, measurement: f64) -> f64 {
        let c = self.config;
        let (dt, y) = (self.dt, measurement);
        let r = self.ramp(setpoint, y);

        let dy = match self.prev_measurement {
            Some(prev) => y - prev,
            None => 0.0,
        };
        self.prev_measurement = Some(y);
        self.derivative = (c.derivative_filter * self.derivative - dy) / (c.derivative_filter + dt);

        let weighted_error = c.setpoint_weight * r - y;
        self.last_weighted_error = weighted_error;
        let p = c.gains.kp * weighted_error;
        let d = c.gains.kd * self.derivative;
        if let Some(output) = self.restart_output.take() {
            self.integral = output - p - d;
        }
        let unclamped = p + self.integral + d;
        let output = limit(unclamped, c.output_min, c.output_max);
        self.saturated = output != unclamped;

        let error = r - y;
        let step = c.gains.ki * dt * error;
        match c.anti_windup {
            AntiWindup::None => self.integral += step,
            AntiWindup::ConditionalIntegration => {
                let winding_up = (unclamped > c.output_max && error > 0.0)
                    || (unclamped < c.output_min && error < 0.0);
                if !winding_up {
                    self.integral += step;
                }
            }
            AntiWindup::BackCalculation { tracking_time } => {
                self.integral += step + dt / tracking_time * (output - unclamped);
            }
        }
        output
    }

    fn ramp(&mut self, target: f64, measurement: f64) -> f64 {
        let r = match (self.config.setpoint_rate_limit, self.ramped_setpoint) {
            (Some(rate), Some(prev)) => {
                let max_step = rate * self.dt;
                prev + limit(target - prev, -max_step, max_step)
            }
            // A ramp starts where the plant is, so a restart does not step either.
            (Some(rate), None) => {
                let max_step = rate * self.dt;
                measurement + limit(target - measurement, -max_step, max_step)
            }
            (None, _) => target,
        };
        self.ramped_setpoint = Some(r);
        r
    }
}

/// `x` limited to `[lo, hi]` by comparisons: unlike `f64::clamp` it has no panic path (an
/// RT thread must not panic on a bad bound), and unlike `max`/`min` it never lets the sign
/// of a zero depend on the target.
pub(crate) fn limit(x: f64, lo: f64, hi: f64) -> f64 {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kp: f64, ki: f64, kd: f64) -> PidConfig {
        PidConfig {
            gains: Gains { kp, ki, kd },
            setpoint_weight: 1.0,
            derivative_filter: 0.0,
            output_min: -10.0,
            output_max: 10.0,
            anti_windup: AntiWindup::ConditionalIntegration,
            setpoint_rate_limit: None,
        }
    }

    #[test]
    fn proportional_and_integral_terms_follow_the_law() {
        let mut pid = Pid::new(config(2.0, 10.0, 0.0), 0.01);
        // First update: P = 2 * 1, I was 0 and then integrates 10 * 0.01 * 1.
        assert_eq!(pid.update(1.0, 0.0), 2.0);
        assert!((pid.integral() - 0.1).abs() < 1e-15);
        assert!((pid.update(1.0, 0.0) - 2.1).abs() < 1e-15);
    }

    #[test]
    fn the_output_is_clamped_and_reported_saturated() {
        let mut pid = Pid::new(config(100.0, 0.0, 0.0), 0.01);
        assert_eq!(pid.update(1.0, 0.0), 10.0);
        assert!(pid.saturated());
        assert_eq!(pid.update(-1.0, 0.0), -10.0);
        assert_eq!(pid.update(0.01, 0.0), 1.0);
        assert!(!pid.saturated());
    }

    #[test]
    fn a_setpoint_step_gives_no_derivative_kick_but_a_measurement_step_does() {
        let mut pid = Pid::new(config(0.0, 0.0, 1.0), 0.01);
        pid.update(0.0, 0.0);
        assert_eq!(pid.update(5.0, 0.0), 0.0);
        // y rises by 0.01 in 0.01 s: D = -1 rad/s² × Kd 1.
        assert!((pid.update(5.0, 0.01) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_derivative_filter_spreads_a_measurement_step() {
        let mut cfg = config(0.0, 0.0, 1.0);
        cfg.derivative_filter = 0.01;
        let mut pid = Pid::new(cfg, 0.01);
        pid.update(0.0, 0.0);
        // Tf = dt: the first sample sees half the raw derivative, the next a quarter.
        assert!((pid.update(0.0, 0.01) + 0.5).abs() < 1e-12);
        assert!((pid.update(0.0, 0.01) + 0.25).abs() < 1e-12);
    }

    #[test]
    fn conditional_integration_freezes_the_integral_while_saturated() {
        let mut none = Pid::new(
            PidConfig {
                anti_windup: AntiWindup::None,
                ..config(100.0, 10.0, 0.0)
            },
            0.01,
        );
        let mut cond = Pid::new(config(100.0, 10.0, 0.0), 0.01);
        for _ in 0..100 {
            none.update(1.0, 0.0);
            cond.update(1.0, 0.0);
        }
        assert_eq!(cond.integral(), 0.0);
        assert!((none.integral() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn conditional_integration_integrates_an_error_that_leads_out_of_saturation() {
        // β = 0: P = -Kp y saturates high at y = -1 while r = -2 makes the error negative.
        let mut pid = Pid::new(
            PidConfig {
                setpoint_weight: 0.0,
                ..config(100.0, 10.0, 0.0)
            },
            0.01,
        );
        assert_eq!(pid.update(-2.0, -1.0), 10.0);
        assert!((pid.integral() + 0.1).abs() < 1e-15);
    }

    #[test]
    fn back_calculation_bleeds_the_excess_off_the_integral() {
        let mut pid = Pid::new(
            PidConfig {
                anti_windup: AntiWindup::BackCalculation {
                    tracking_time: 0.05,
                },
                ..config(5.0, 10.0, 0.0)
            },
            0.01,
        );
        for _ in 0..1000 {
            pid.update(4.0, 0.0);
        }
        // Equilibrium of I += Ki dt e + dt/Tt (u - (P + I)): I = Ki Tt e - (P - max) = 2 - 10.
        assert!(
            (pid.integral() - (2.0 - 10.0)).abs() < 1e-9,
            "{}",
            pid.integral()
        );
    }

    #[test]
    fn gain_changes_are_bumpless() {
        let mut cfg = config(2.0, 1.0, 0.5);
        cfg.output_min = -100.0;
        cfg.output_max = 100.0;
        let mut a = Pid::new(cfg, 0.01);
        let mut y = 0.0;
        for _ in 0..50 {
            a.update(1.0, y);
            y += 0.01;
        }
        let mut b = a.clone();
        b.set_gains(Gains {
            kp: 8.0,
            ki: 3.0,
            kd: 2.0,
        });
        // Same input once more: only the (small) change in the error moves the output.
        let ua = a.update(1.0, y);
        let ub = b.update(1.0, y);
        assert!((ua - ub).abs() < 0.1, "{ua} vs {ub}");
        // Without the compensation the step would be ΔKp e ≈ 6 × 0.5.
        assert!(6.0 * (1.0 - y) > 2.0);
    }

    #[test]
    fn a_restart_continues_from_the_given_output() {
        let mut pid = Pid::new(config(3.0, 1.0, 0.2), 0.01);
        for _ in 0..10 {
            pid.update(1.0, 0.5);
        }
        pid.restart_from(0.0);
        assert_eq!(pid.update(1.0, 0.2), 0.0);
        assert!(pid.update(1.0, 0.2) > 0.0);
    }

    #[test]
    fn the_setpoint_ramp_limits_the_rate_and_starts_at_the_plant() {
        let mut cfg = config(1.0, 0.0, 0.0);
        cfg.setpoint_rate_limit = Some(2.0);
        let mut pid = Pid::new(cfg, 0.01);
        pid.update(1.0, 0.3);
        assert!((pid.effective_setpoint().unwrap() - 0.32).abs() < 1e-12);
        for _ in 0..100 {
            pid.update(1.0, 0.3);
        }
        assert_eq!(pid.effective_setpoint(), Some(1.0));
    }
}
