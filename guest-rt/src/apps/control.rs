//! The industrial-control demo (`rt.app=control`): on each RT vCPU, a PID loop holds the
//! speed of a simulated DC motor (the `control` crate's plant, controller and watchdog)
//! at `rt.control.period-us` (1 kHz by default), steered from Linux through the channel.
//!
//! Written against the app API ([`super::api`]) only. Per vCPU, all pinned to it:
//! * the **watchdog** thread ([`WATCHDOG_PRIORITY`], the highest), released by its own
//!   periodic timer three quarters of a period after each loop release: if the loop did not finish the
//!   period whose deadline just passed (a stalled loop counts too) `watchdog_misses` times
//!   in a row, or the plant is outside its envelope, it trips the watchdog and puts the
//!   actuator in its safe state (0 V, brake on) itself;
//! * the **sensing** thread, periodic at absolute deadlines: takes the parameters (an
//!   [`RcuCell`] read), samples the plant, lets the loop's watchdog judge, runs the PID,
//!   and hands the command to
//! * the **actuation** thread, woken by a [`Completion`]: applies the command (its
//!   release-to-actuation latency is the loop latency), advances the plant to the next
//!   release, and publishes the period's telemetry into this vCPU's channel block;
//! * the plant and controller sit behind a [`Mutex`] (priority inheritance between the
//!   three, and the reporter);
//! * a **reporter** thread prints a line every [`REPORT_EVERY`] periods from the plant
//!   and the sensing thread's wake-up statistics, kept in a [`PerCpuLocked`] slot.
//!
//! The vCPUs' grids are staggered by half a period (vCPU `v` releases at
//! `start + v * period / vcpus`), so the two loops' work, and their kernel entries, do not
//! coincide: the kernel has one lock, and under QEMU's -icount a vCPU that spins on it
//! while the holder is descheduled loses a whole time slice.
//!
//! One **parameters** thread (vCPU 0) takes the versions Linux publishes from its channel
//! endpoint and publishes them, converted and validated, into the [`RcuCell`] every
//! sensing thread reads, so a version reaches both loops at their next release. vCPU 0
//! also replays [`control::reference_run`] once at the lowest priority and prints its
//! fingerprint, which the host's run of the same crate must match.
//!
//! What it never does: wait for Linux (the channel is loads and stores), or let a drive
//! command reach a tripped actuator (the `control` crate's gate).

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU64, Ordering};

use control::{
    Actuation, ControlLoop, Fingerprint, Parameters, Release, TripReason, WatchdogState,
};
use guest_rt::tracing::latency::LatencyStats;
use log::{info, warn};
use spin::Once;

use super::api::channel::{self as ch, ControlFigures, Publisher, WatchdogCode};
use super::api::{self, Completion, CpuMask, Mutex, PerCpuLocked, Periodic, RcuCell};
use super::{App, Context};
use crate::arch::boot::{heartbeat, report_ready};

pub const APP: App = App {
    name: "control",
    about: "PID speed loop on a simulated DC motor per vCPU, steered through the channel",
    run,
};

/// The watchdog thread's priority: above everything of the loop's.
pub const WATCHDOG_PRIORITY: u8 = 95;
pub const SENSING_PRIORITY: u8 = 90;
pub const ACTUATION_PRIORITY: u8 = 85;
/// Taking Linux's versions may wait behind the loop, never the other way round.
pub const PARAMS_PRIORITY: u8 = 50;
pub const REPORTER_PRIORITY: u8 = 10;
/// The reference run is background work.
pub const REFERENCE_PRIORITY: u8 = 1;

/// Loop periods between two looks at the channel for a new parameter version.
pub const PARAMS_EVERY: u64 = 10;

/// Periods between two console reports of a vCPU.
pub const REPORT_EVERY: u64 = 1_000;

/// The loop's first release comes this long after the app starts (room for the threads
/// to be created on both vCPUs).
const START_DELAY_NS: u64 = 5_000_000;

/// The parameters in force, as every sensing thread reads them.
#[derive(Clone, Copy, Debug)]
struct LoopParams {
    /// The channel version they came from (0: the defaults).
    version: u64,
    block: Parameters,
    /// Raised by Linux to ask for a re-arm.
    rearm: i64,
}

/// What the sensing thread hands the actuation thread.
#[derive(Clone, Copy, Debug)]
struct Pending {
    release: Release,
    command: Actuation,
    release_ns: u64,
}

/// The plant, its controller and what the loop's threads share about them.
struct Plant {
    ctl: ControlLoop,
    pending: Option<Pending>,
    last: control::Telemetry,
    fingerprint: Fingerprint,
    params_version: u64,
    rearm_seen: i64,
    /// Periods the supervisor found unfinished at their deadline, in a row and in all.
    stalled_run: u32,
    stalled: u64,
    /// The watchdog state last reported on the console.
    reported: WatchdogState,
}

/// One vCPU's loop.
struct Loop {
    vcpu: usize,
    period_ns: u64,
    first_release_ns: u64,
    plant: Mutex<Plant>,
    go: Completion,
    /// Periods the actuation thread finished.
    done: AtomicU64,
}

static PARAMS: Once<RcuCell<LoopParams>> = Once::new();
/// Each vCPU's sensing wake-up statistics.
static WAKEUPS: Once<PerCpuLocked<LatencyStats>> = Once::new();
static START_NS: Once<u64> = Once::new();

/// Sets the loop up on this vCPU and runs its threads.
fn run(cx: &Context) -> ! {
    let cx = *cx;
    let period_us = cx.args.control_period_us as u32;
    let period_ns = u64::from(period_us) * 1_000;
    let defaults = Parameters {
        period_us,
        ..Parameters::DEFAULT
    };
    let params = PARAMS.call_once(|| {
        RcuCell::new(LoopParams {
            version: 0,
            block: defaults,
            rearm: 0,
        })
    });
    let wakeups = WAKEUPS.call_once(|| PerCpuLocked::new(|_| LatencyStats::new(period_ns)));
    // Both vCPUs release on the same grid.
    let start = *START_NS.call_once(|| api::now_ns() + START_DELAY_NS);
    let ctl = match ControlLoop::new(defaults) {
        Ok(ctl) => ctl,
        Err(e) => panic!("control: the boot period is outside the loop's range: {e}"),
    };
    let lp: &'static Loop = Box::leak(Box::new(Loop {
        vcpu: cx.vcpu,
        period_ns,
        first_release_ns: start + cx.vcpu as u64 * period_ns / cx.vcpus.max(1) as u64,
        plant: Mutex::new(Plant {
            ctl,
            pending: None,
            last: control::Telemetry::default(),
            fingerprint: Fingerprint::new(),
            params_version: 0,
            rearm_seen: 0,
            stalled_run: 0,
            stalled: 0,
            reported: WatchdogState::Armed,
        }),
        go: Completion::new(),
        done: AtomicU64::new(0),
    }));
    if cx.vcpu == 0 {
        info!(
            "control: every {period_us} us on each of {} vCPUs: DC motor (CTMS), PID \
             kp {} ki {} kd {}, set-point {} rad/s, watchdog after {} misses",
            cx.vcpus,
            defaults.kp,
            defaults.ki,
            defaults.kd,
            defaults.setpoint,
            defaults.watchdog_misses
        );
    }
    let here = CpuMask::single(cx.vcpu);
    api::spawn(api::thread(WATCHDOG_PRIORITY, here), move || {
        watchdog_thread(lp)
    });
    api::spawn(api::thread(SENSING_PRIORITY, here), move || {
        sensing_thread(lp, params, wakeups)
    });
    api::spawn(api::thread(ACTUATION_PRIORITY, here), move || {
        actuation_thread(lp)
    });
    if cx.vcpu == 0 {
        let first = lp.first_release_ns + period_ns * 3 / 8;
        api::spawn(api::thread(PARAMS_PRIORITY, here), move || {
            parameters_thread(params, first, period_ns * PARAMS_EVERY, defaults)
        });
        api::spawn(api::thread(REFERENCE_PRIORITY, here), reference_thread);
    }
    api::spawn(api::thread(REPORTER_PRIORITY, here), move || {
        reporter_thread(lp, wakeups, cx)
    });
    api::run_threads()
}

/// Converts a channel version into the loop's parameter block (the schema's fixed point
/// into the crate's units) and validates it whole.
fn block_of(p: &ch::Parameters, period_us: u32) -> Result<(Parameters, i64), control::ParamError> {
    let real = |name: &str, fallback: f64| match p.get(name) {
        Some(v) => v as f64 / 1000.0,
        None => fallback,
    };
    let d = Parameters::DEFAULT;
    let block = Parameters {
        setpoint: real("setpoint", d.setpoint),
        kp: real("kp", d.kp),
        ki: real("ki", d.ki),
        kd: real("kd", d.kd),
        disturbance: real("disturbance", d.disturbance),
        setpoint_ramp: real("setpoint_ramp", d.setpoint_ramp),
        period_us,
        watchdog_misses: p
            .get("watchdog_misses")
            .map_or(d.watchdog_misses, |v| v as u32),
    };
    block.validate()?;
    Ok((block, p.get("rearm").unwrap_or(0)))
}

/// vCPU 0: Linux's versions into the RCU cell, polled every [`PARAMS_EVERY`] periods.
fn parameters_thread(
    params: &'static RcuCell<LoopParams>,
    first_ns: u64,
    every_ns: u64,
    defaults: Parameters,
) {
    let mut release = Periodic::new(first_ns, every_ns);
    loop {
        release.wait();
        let Some(taken) = ch::take_parameters() else {
            continue;
        };
        match block_of(&taken, defaults.period_us) {
            Ok((block, rearm)) => {
                params.publish(LoopParams {
                    version: taken.version,
                    block,
                    rearm,
                });
                info!(
                    "control: parameters version {} taken: set-point {} rad/s, kp {} ki {} \
                     kd {}, disturbance {} N*m, watchdog after {} misses",
                    taken.version,
                    block.setpoint,
                    block.kp,
                    block.ki,
                    block.kd,
                    block.disturbance,
                    block.watchdog_misses
                );
            }
            Err(e) => warn!("control: parameters version {} refused: {e}", taken.version),
        }
    }
}

fn sensing_thread(
    lp: &'static Loop,
    params: &'static RcuCell<LoopParams>,
    wakeups: &'static PerCpuLocked<LatencyStats>,
) {
    let mut release = Periodic::new(lp.first_release_ns, lp.period_ns);
    loop {
        let woke = release.wait();
        wakeups.with_local(|s| {
            s.record(woke.deadline_ns, woke.woke_ns);
        });
        let now = params.get();
        let mut plant = lp.plant.lock();
        if now.version != plant.params_version {
            plant.params_version = now.version;
            if let Err(e) = plant.ctl.apply(&now.block) {
                warn!("control vCPU {}: parameters refused: {e}", lp.vcpu);
            }
        }
        if now.rearm != plant.rearm_seen {
            plant.rearm_seen = now.rearm;
            match plant.ctl.rearm() {
                Ok(()) => {
                    plant.stalled_run = 0;
                    info!("control vCPU {}: watchdog re-armed", lp.vcpu);
                }
                Err(e) => info!("control vCPU {}: {e}", lp.vcpu),
            }
        }
        let sampled = plant.ctl.release();
        let command = plant.ctl.compute(&sampled);
        plant.pending = Some(Pending {
            release: sampled,
            command,
            release_ns: woke.deadline_ns,
        });
        note_watchdog(lp.vcpu, &mut plant);
        drop(plant);
        lp.go.complete();
    }
}

fn actuation_thread(lp: &'static Loop) {
    loop {
        lp.go.wait();
        let mut plant = lp.plant.lock();
        let Some(p) = plant.pending.take() else {
            continue;
        };
        let latency_ns = api::now_ns().saturating_sub(p.release_ns);
        let record = plant.ctl.actuate(
            &p.release,
            p.command,
            latency_ns.min(u64::from(u32::MAX)) as u32,
        );
        plant.fingerprint.add(&record);
        plant.last = record;
        let fingerprint = plant.fingerprint.value();
        let stalled = plant.stalled;
        let version = plant.params_version;
        let disturbance = plant.ctl.parameters().disturbance;
        note_watchdog(lp.vcpu, &mut plant);
        drop(plant);
        lp.done.fetch_add(1, Ordering::Release);
        ch::publish_telemetry(|t| {
            t.publisher = Publisher::Control;
            t.periods = record.seq;
            t.missed = u64::from(record.deadline_misses) + stalled;
            t.record_latency(latency_ns);
            t.params_version = version;
            t.control = ControlFigures {
                setpoint: record.setpoint,
                measurement: record.measurement,
                effort: record.effort,
                current: record.current,
                disturbance,
                watchdog: WatchdogCode::from_word(u64::from(record.watchdog)),
                consecutive_misses: u64::from(record.consecutive_misses),
                fingerprint,
            };
        });
    }
}

/// The supervisor: three quarters of a period after each release it checks that the period whose
/// deadline passed was finished and that the plant is inside its envelope.
fn watchdog_thread(lp: &'static Loop) {
    let mut release = Periodic::new(lp.first_release_ns + lp.period_ns * 3 / 4, lp.period_ns);
    // The first check comes before the first deadline: nothing is due yet.
    let mut due = 0u64;
    loop {
        release.wait();
        let finished = lp.done.load(Ordering::Acquire);
        let mut plant = lp.plant.lock();
        let limit = plant.ctl.parameters().watchdog_misses;
        if finished < due {
            plant.stalled_run = plant.stalled_run.saturating_add(1);
            plant.stalled += 1;
            if plant.stalled_run >= limit {
                let consecutive = plant.stalled_run;
                plant.ctl.trip(TripReason::DeadlineMisses { consecutive });
            }
        } else {
            plant.stalled_run = 0;
        }
        if let Err(exit) = plant.ctl.motor().check_envelope() {
            plant.ctl.trip(TripReason::Envelope(exit));
        }
        note_watchdog(lp.vcpu, &mut plant);
        drop(plant);
        due += 1;
    }
}

/// Prints a change of the watchdog's state once, whoever saw it first.
fn note_watchdog(vcpu: usize, plant: &mut Plant) {
    let state = plant.ctl.watchdog().state();
    if state == plant.reported {
        return;
    }
    plant.reported = state;
    match state {
        WatchdogState::Armed => info!("control vCPU {vcpu}: watchdog armed"),
        WatchdogState::Tripped(reason) => info!(
            "control vCPU {vcpu}: watchdog tripped ({}) at period {}: actuator safe \
             (0 V, brake on), applied {:?}",
            match reason {
                TripReason::DeadlineMisses { .. } => "deadline misses",
                TripReason::Envelope(control::EnvelopeExit::Speed) => "speed outside envelope",
                TripReason::Envelope(control::EnvelopeExit::Current) => {
                    "current outside envelope"
                }
            },
            plant.last.seq,
            plant.ctl.applied()
        ),
    }
}

fn reporter_thread(lp: &'static Loop, wakeups: &'static PerCpuLocked<LatencyStats>, cx: Context) {
    report_ready(cx.vcpu, false, cx.vcpus);
    let every = REPORT_EVERY * lp.period_ns;
    // Just after the loop's REPORT_EVERY-th actuation (an eighth of a period past its
    // release, clear of the other vCPU's work).
    let mut release = Periodic::new(
        lp.first_release_ns + every - lp.period_ns + lp.period_ns / 8,
        every,
    );
    let beat_ms = cx.args.heartbeat_ms;
    let vcpu = cx.vcpu;
    api::spawn(api::thread(0, CpuMask::single(vcpu)), move || {
        heartbeat(vcpu, beat_ms, api::sleep_ns)
    });
    loop {
        release.wait();
        let (last, stalled, state, version, fingerprint) = {
            let plant = lp.plant.lock();
            (
                plant.last,
                plant.stalled,
                plant.ctl.watchdog().state(),
                plant.params_version,
                plant.fingerprint.value(),
            )
        };
        let max_wake = wakeups.with_local(|s| s.max_ns);
        // Under hv's 256-byte console line (about 230 bytes at most here).
        info!(
            "control vCPU {}: period {}: setpoint {:.4}, measurement {:.4} rad/s, effort \
             {:.3} V, current {:.3} A, latency {} ns (wake-up max {} ns), misses {}, \
             watchdog {}, params v{}, fingerprint {:#018x}",
            lp.vcpu,
            last.seq,
            last.setpoint,
            last.measurement,
            last.effort,
            last.current,
            last.latency_ns,
            max_wake,
            u64::from(last.deadline_misses) + stalled,
            WatchdogCode::from_word(u64::from(state.code())).name(),
            version,
            fingerprint
        );
    }
}

/// vCPU 0, background: the `control` crate's scripted run, on this target.
fn reference_thread() {
    let (fingerprint, last) = control::reference_run();
    info!(
        "control: reference run: {} periods, fingerprint {:#018x}",
        last.seq,
        fingerprint.value()
    );
}
