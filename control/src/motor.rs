//! The simulated plant: a permanent-magnet DC motor driving a load, with a holding brake.
//!
//! Owns the motor's physics (armature circuit and shaft mechanics), its fixed-step
//! integration, the speed sensor and the operating envelope. It never decides anything: what
//! voltage to apply comes from the controller, whether to brake from the watchdog.
//!
//! Model (SI units), with armature current `i`, shaft speed `w` and shaft angle `theta`:
//!
//! ```text
//! L di/dt     = V - R i - Ke w
//! J dw/dt     = Kt i - (b + b_brake) w - T_load      (b_brake only while braked)
//!   dtheta/dt = w
//! ```
//!
//! Integration is classic fourth-order Runge-Kutta with a fixed step derived from the model's
//! fastest rate, so every run with the same inputs performs the same IEEE-754 operations in the
//! same order: only `+ - * /`, comparisons and integer casts, no `mul_add` and no libm call, so
//! the host and `aarch64-unknown-none` produce the same bits.

/// Physical parameters of the motor, its driver and its brake.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MotorParams {
    /// Rotor and load inertia `J`, kg·m².
    pub inertia: f64,
    /// Viscous friction `b`, N·m·s/rad.
    pub viscous_friction: f64,
    /// Torque constant `Kt`, N·m/A.
    pub torque_constant: f64,
    /// Back-EMF constant `Ke`, V·s/rad (equal to `Kt` in SI units).
    pub back_emf_constant: f64,
    /// Armature resistance `R`, Ω.
    pub resistance: f64,
    /// Armature inductance `L`, H.
    pub inductance: f64,
    /// Extra viscous friction of the engaged holding brake, N·m·s/rad.
    pub brake_friction: f64,
    /// Supply of the H-bridge: the driver clamps any command to ±this, V.
    pub max_voltage: f64,
    /// Resolution of the speed sensor (a tachometer read by an ADC), rad/s.
    pub speed_resolution: f64,
}

impl MotorParams {
    /// The DC motor of the University of Michigan "Control Tutorials for MATLAB and Simulink"
    /// (CTMS), *DC Motor Speed: System Modeling*: J = 0.01 kg·m², b = 0.1 N·m·s,
    /// Ke = Kt = 0.01, R = 1 Ω, L = 0.5 H. Its open-loop poles are at about -2.0 and
    /// -10.0 rad/s and 1 rad/s needs about 10 V, so a 24 V bridge saturates on large steps,
    /// which is what the anti-windup has to handle. The brake (b_brake = 10 N·m·s) and the
    /// sensor resolution (1e-4 rad/s, a 16-bit ADC over ±3.3 rad/s) are this demo's choices.
    pub const CTMS_SPEED: Self = Self {
        inertia: 0.01,
        viscous_friction: 0.1,
        torque_constant: 0.01,
        back_emf_constant: 0.01,
        resistance: 1.0,
        inductance: 0.5,
        brake_friction: 10.0,
        max_voltage: 24.0,
        speed_resolution: 1e-4,
    };

    /// An upper bound on the magnitude of the model's eigenvalues (Gershgorin discs of the
    /// state matrix, brake engaged), 1/s.
    fn rate_bound(&self) -> f64 {
        let electrical = (self.resistance + self.back_emf_constant) / self.inductance;
        let mechanical =
            (self.viscous_friction + self.brake_friction + self.torque_constant) / self.inertia;
        if electrical > mechanical {
            electrical
        } else {
            mechanical
        }
    }

    /// The integration step: `rate_bound * h <= 0.1`, deep inside RK4's stability region
    /// (which reaches 2.78 on the negative real axis) and accurate to far below the sensor's
    /// resolution; rounded down to whole nanoseconds so the step is an exact integer.
    fn max_step_ns(&self) -> u64 {
        let step_s = 0.1 / self.rate_bound();
        let ns = (step_s * 1e9) as u64;
        if ns == 0 {
            1
        } else {
            ns
        }
    }
}

/// The region the plant may operate in; leaving it trips the watchdog.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Envelope {
    /// Largest allowed |speed|, rad/s.
    pub max_speed: f64,
    /// Largest allowed |armature current|, A.
    pub max_current: f64,
}

impl Envelope {
    /// The demo's envelope: ±3 rad/s (25 % above the fastest set-point the 24 V bridge can
    /// hold unloaded, 2.4 rad/s) and ±30 A (stall at 24 V draws 24 A).
    pub const DEMO: Self = Self {
        max_speed: 3.0,
        max_current: 30.0,
    };

    /// Which limit `state` violates, speed first; `Ok` inside the envelope. A NaN state is
    /// outside (a range never contains NaN).
    pub fn check(&self, state: &MotorState) -> Result<(), EnvelopeExit> {
        if !(-self.max_speed..=self.max_speed).contains(&state.speed) {
            return Err(EnvelopeExit::Speed);
        }
        if !(-self.max_current..=self.max_current).contains(&state.current) {
            return Err(EnvelopeExit::Current);
        }
        Ok(())
    }
}

/// Which envelope limit was exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvelopeExit {
    /// |speed| above [`Envelope::max_speed`].
    Speed,
    /// |current| above [`Envelope::max_current`].
    Current,
}

/// What the actuator is told to do for the rest of a period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Actuation {
    /// Apply this armature voltage (the bridge clamps it to its supply), brake released.
    Drive {
        /// Commanded voltage, V.
        volts: f64,
    },
    /// The safe state: bridge at 0 V (armature shorted, so it brakes dynamically too) and the
    /// holding brake engaged.
    SafeStop,
}

impl Actuation {
    /// The voltage this actuation puts on the armature with a bridge of supply `max_voltage`.
    /// A NaN command is treated as 0 V: the bridge cannot produce it.
    pub fn volts(&self, max_voltage: f64) -> f64 {
        match *self {
            Actuation::Drive { volts } if volts.is_nan() => 0.0,
            Actuation::Drive { volts } => crate::pid::limit(volts, -max_voltage, max_voltage),
            Actuation::SafeStop => 0.0,
        }
    }
}

/// The motor's state variables.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MotorState {
    /// Armature current, A.
    pub current: f64,
    /// Shaft speed, rad/s.
    pub speed: f64,
    /// Shaft angle, rad (unwrapped).
    pub angle: f64,
}

/// The simulated motor with its load, brake, sensor and envelope.
#[derive(Clone, Debug)]
pub struct DcMotor {
    params: MotorParams,
    envelope: Envelope,
    state: MotorState,
    load_torque: f64,
    max_step_ns: u64,
}

impl DcMotor {
    /// A motor at rest, unloaded.
    pub fn new(params: MotorParams, envelope: Envelope) -> Self {
        Self {
            params,
            envelope,
            state: MotorState::default(),
            load_torque: 0.0,
            max_step_ns: params.max_step_ns(),
        }
    }

    /// The motor's parameters.
    pub fn params(&self) -> &MotorParams {
        &self.params
    }

    /// The current state.
    pub fn state(&self) -> MotorState {
        self.state
    }

    /// The integration step the simulation uses at most, ns.
    pub fn max_step_ns(&self) -> u64 {
        self.max_step_ns
    }

    /// Sets the load torque opposing positive rotation (a disturbance), N·m.
    pub fn set_load_torque(&mut self, torque: f64) {
        self.load_torque = torque;
    }

    /// The load torque, N·m.
    pub fn load_torque(&self) -> f64 {
        self.load_torque
    }

    /// What the speed sensor reads now: the speed rounded to the sensor's resolution.
    pub fn measure_speed(&self) -> f64 {
        let res = self.params.speed_resolution;
        let steps = self.state.speed / res;
        // Round half away from zero through an integer cast: `f64::round` is not in `core`.
        let rounded = if steps >= 0.0 {
            (steps + 0.5) as i64
        } else {
            (steps - 0.5) as i64
        };
        rounded as f64 * res
    }

    /// Whether the motor is inside its envelope.
    pub fn in_envelope(&self) -> bool {
        self.check_envelope().is_ok()
    }

    /// Which envelope limit the motor violates, if any.
    pub fn check_envelope(&self) -> Result<(), EnvelopeExit> {
        self.envelope.check(&self.state)
    }

    /// The envelope.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Lets `duration_ns` of time pass with `actuation` applied, in equal RK4 steps of at most
    /// [`Self::max_step_ns`].
    pub fn advance(&mut self, actuation: Actuation, duration_ns: u64) {
        if duration_ns == 0 {
            return;
        }
        // `max(1)`: the step is never 0 (see `max_step_ns`), and saying so drops the panic path.
        let steps = duration_ns.div_ceil(self.max_step_ns.max(1));
        let h = duration_ns as f64 * 1e-9 / steps as f64;
        let volts = actuation.volts(self.params.max_voltage);
        let brake = match actuation {
            Actuation::SafeStop => self.params.brake_friction,
            Actuation::Drive { .. } => 0.0,
        };
        for _ in 0..steps {
            self.rk4_step(volts, brake, h);
        }
    }

    fn derivative(&self, s: &MotorState, volts: f64, brake: f64) -> MotorState {
        let p = &self.params;
        MotorState {
            current: (volts - p.resistance * s.current - p.back_emf_constant * s.speed)
                / p.inductance,
            speed: (p.torque_constant * s.current
                - (p.viscous_friction + brake) * s.speed
                - self.load_torque)
                / p.inertia,
            angle: s.speed,
        }
    }

    fn rk4_step(&mut self, volts: f64, brake: f64, h: f64) {
        let s0 = self.state;
        let along = |k: &MotorState, f: f64| MotorState {
            current: s0.current + f * k.current,
            speed: s0.speed + f * k.speed,
            angle: s0.angle + f * k.angle,
        };
        let k1 = self.derivative(&s0, volts, brake);
        let k2 = self.derivative(&along(&k1, h / 2.0), volts, brake);
        let k3 = self.derivative(&along(&k2, h / 2.0), volts, brake);
        let k4 = self.derivative(&along(&k3, h), volts, brake);
        let combine = |a: f64, b: f64, c: f64, d: f64| (a + 2.0 * b + 2.0 * c + d) * (h / 6.0);
        self.state = MotorState {
            current: s0.current + combine(k1.current, k2.current, k3.current, k4.current),
            speed: s0.speed + combine(k1.speed, k2.speed, k3.speed, k4.speed),
            angle: s0.angle + combine(k1.angle, k2.angle, k3.angle, k4.angle),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn motor() -> DcMotor {
        DcMotor::new(MotorParams::CTMS_SPEED, Envelope::DEMO)
    }

    /// The exact open-loop step response of the linear model from rest (no load, no brake),
    /// by eigen-decomposition of the 2x2 state matrix, computed with std's exp/sqrt (host only).
    fn exact_speed(p: &MotorParams, volts: f64, t: f64) -> f64 {
        // x' = A x + B V with x = (i, w).
        let (a11, a12) = (
            -p.resistance / p.inductance,
            -p.back_emf_constant / p.inductance,
        );
        let (a21, a22) = (
            p.torque_constant / p.inertia,
            -p.viscous_friction / p.inertia,
        );
        let tr = a11 + a22;
        let det = a11 * a22 - a12 * a21;
        let disc = (tr * tr / 4.0 - det).sqrt();
        let (l1, l2) = (tr / 2.0 + disc, tr / 2.0 - disc);
        // Steady state and w(0) = 0, w'(0) = 0 (i(0) = 0): w(t) = ws + c1 e^{l1 t} + c2 e^{l2 t}.
        let ws = p.torque_constant * volts
            / (p.resistance * p.viscous_friction + p.torque_constant * p.back_emf_constant);
        // c1 + c2 = -ws, l1 c1 + l2 c2 = 0.
        let c1 = ws * l2 / (l1 - l2);
        let c2 = -ws - c1;
        ws + c1 * (l1 * t).exp() + c2 * (l2 * t).exp()
    }

    #[test]
    fn open_loop_step_matches_the_exact_solution() {
        let mut m = motor();
        let p = MotorParams::CTMS_SPEED;
        for k in 1..=10_000u64 {
            m.advance(Actuation::Drive { volts: 10.0 }, MS);
            if k % 100 == 0 {
                let t = k as f64 * 1e-3;
                let exact = exact_speed(&p, 10.0, t);
                assert!(
                    (m.state().speed - exact).abs() < 1e-9,
                    "t = {t}: simulated {} exact {exact}",
                    m.state().speed
                );
            }
        }
        // Steady state after 10 s (the slow pole, -2 rad/s, has decayed by e^-20):
        // w = Kt V / (R b + Kt Ke) = 0.1 / 0.1001.
        assert!((m.state().speed - 0.1 / 0.1001).abs() < 1e-7);
    }

    #[test]
    fn the_bridge_clamps_to_its_supply() {
        let mut a = motor();
        let mut b = motor();
        a.advance(Actuation::Drive { volts: 1000.0 }, 100 * MS);
        b.advance(Actuation::Drive { volts: 24.0 }, 100 * MS);
        assert_eq!(a.state(), b.state());
        assert_eq!(Actuation::Drive { volts: f64::NAN }.volts(24.0), 0.0);
    }

    #[test]
    fn load_torque_slows_the_motor_and_an_overload_drives_it_backwards() {
        let mut free = motor();
        let mut loaded = motor();
        loaded.set_load_torque(0.05);
        free.advance(Actuation::Drive { volts: 10.0 }, 10_000 * MS);
        loaded.advance(Actuation::Drive { volts: 10.0 }, 10_000 * MS);
        assert!(loaded.state().speed < free.state().speed);
        // Steady state with load: w = (Kt V - R T) / (R b + Kt Ke).
        assert!((loaded.state().speed - (0.1 - 0.05) / 0.1001).abs() < 1e-7);

        let mut overloaded = motor();
        overloaded.set_load_torque(1.0);
        overloaded.advance(Actuation::Drive { volts: 24.0 }, 3000 * MS);
        assert!(overloaded.state().speed < -3.0, "{:?}", overloaded.state());
        assert_eq!(overloaded.check_envelope(), Err(EnvelopeExit::Speed));
    }

    #[test]
    fn the_brake_holds_an_overload_where_zero_volts_alone_would_not() {
        let mut braked = motor();
        let mut coasting = motor();
        braked.set_load_torque(1.0);
        coasting.set_load_torque(1.0);
        braked.advance(Actuation::SafeStop, 3000 * MS);
        coasting.advance(Actuation::Drive { volts: 0.0 }, 3000 * MS);
        // Braked: w = -R T / (R (b + b_brake) + Kt Ke) ≈ -0.099 rad/s, inside the envelope.
        assert!(braked.state().speed > -0.1 && braked.in_envelope());
        assert!(!coasting.in_envelope());
    }

    #[test]
    fn the_sensor_rounds_to_its_resolution() {
        let mut m = motor();
        m.advance(Actuation::Drive { volts: 10.0 }, 500 * MS);
        let w = m.state().speed;
        let y = m.measure_speed();
        assert!((y - w).abs() <= 0.5e-4 + 1e-15);
        let steps = y / 1e-4;
        assert!(
            (steps - steps.round()).abs() < 1e-6,
            "{y} is not a multiple of 1e-4"
        );
    }

    #[test]
    fn the_envelope_names_the_violated_limit_and_refuses_nan() {
        let env = Envelope::DEMO;
        let ok = MotorState {
            current: 29.0,
            speed: -2.9,
            angle: 0.0,
        };
        assert_eq!(env.check(&ok), Ok(()));
        let fast = MotorState { speed: 3.5, ..ok };
        assert_eq!(env.check(&fast), Err(EnvelopeExit::Speed));
        let hot = MotorState {
            current: -31.0,
            ..ok
        };
        assert_eq!(env.check(&hot), Err(EnvelopeExit::Current));
        let nan = MotorState {
            speed: f64::NAN,
            ..ok
        };
        assert_eq!(env.check(&nan), Err(EnvelopeExit::Speed));
    }

    #[test]
    fn splitting_a_period_changes_nothing_when_the_input_does_not_change() {
        let mut whole = motor();
        let mut split = motor();
        whole.advance(Actuation::Drive { volts: 12.0 }, MS);
        split.advance(Actuation::Drive { volts: 12.0 }, 300_000);
        split.advance(Actuation::Drive { volts: 12.0 }, 700_000);
        assert!((whole.state().speed - split.state().speed).abs() < 1e-12);
    }
}
