//! The industrial-control demo's portable core.
//!
//! A simulated DC motor ([`motor`]), a PID controller with anti-windup ([`pid`]), a watchdog
//! that latches the actuator's safe state ([`watchdog`]), the range-checked run-time
//! parameters ([`params`]), the telemetry record ([`telemetry`]) and the loop that runs them
//! once per period ([`control_loop`]). Everything here is deterministic, allocation-free and
//! target-independent; threads, timers, shared memory and the channel belong to the RT kernel
//! that hosts it, never to this crate.
#![no_std]
#![forbid(unsafe_code)]

pub mod control_loop;
pub mod motor;
pub mod params;
pub mod pid;
pub mod reference_run;
pub mod telemetry;
pub mod watchdog;

pub use control_loop::{ControlLoop, Release};
pub use motor::{Actuation, DcMotor, Envelope, EnvelopeExit, MotorParams, MotorState};
pub use params::{Param, ParamError, Parameters};
pub use pid::{AntiWindup, Gains, Pid, PidConfig};
pub use reference_run::reference_run;
pub use telemetry::{Fingerprint, Telemetry};
pub use watchdog::{RearmRefused, TripReason, Watchdog, WatchdogState};
