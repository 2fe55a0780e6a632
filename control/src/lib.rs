//! The industrial-control demo's portable core.
//!
//! A simulated DC motor ([`motor`]) a PID controller with anti-windup ([`pid`])
//! and a watchdog that latches the actuator's safe state ([`watchdog`]). Everything here is deterministic, allocation-free and
//! target-independent; threads, timers, shared memory and the channel belong to the RT kernel
//! that hosts it, never to this crate.
#![no_std]
#![forbid(unsafe_code)]

pub mod motor;
pub mod pid;
pub mod watchdog;

pub use motor::{Actuation, DcMotor, Envelope, EnvelopeExit, MotorParams, MotorState};
pub use pid::{AntiWindup, Gains, Pid, PidConfig};
pub use watchdog::{RearmRefused, TripReason, Watchdog, WatchdogState};
